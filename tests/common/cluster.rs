//! Real etcd 3.4 and kube-apiserver 1.20.2 (with kube-controller-manager and kube-scheduler when asked) on a
//! kubeadm PKI, started by scripts/cluster.sh on a loopback address and stopped when dropped.

use std::process::Command;

use super::{Pki, k8s_bin, repo};

/// The components scripts/cluster.sh runs for one PKI.
pub struct Cluster<'a> {
    pub pki: &'a Pki,
    pub ip: &'static str,
    pub all: bool,
}

impl<'a> Cluster<'a> {
    pub fn start(pki: &'a Pki, ip: &'static str) -> Cluster<'a> {
        let c = Cluster { pki, ip, all: false };
        c.cluster_sh("start");
        c
    }
    /// With kube-controller-manager and kube-scheduler too.
    pub fn start_all(pki: &'a Pki, ip: &'static str) -> Cluster<'a> {
        let c = Cluster { pki, ip, all: true };
        c.cluster_sh("start");
        c
    }
    pub fn cluster_sh(&self, cmd: &str) {
        let mut command = Command::new(repo().join("scripts/cluster.sh"));
        if self.all {
            command.env("WITH_KCM", "1").env("WITH_SCHEDULER", "1");
        }
        let out = command.arg(cmd).arg(self.pki.root()).arg(self.ip).env("K8S_BIN", k8s_bin()).output().unwrap();
        assert!(
            out.status.success(),
            "cluster.sh {cmd}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    pub fn pid(&self, name: &str) -> u64 {
        let text = std::fs::read_to_string(self.pki.root().join(format!("run/{name}.pid"))).unwrap();
        text.trim().parse().unwrap()
    }
    /// Stops one component the way a crash or a kubelet would (SIGTERM, waited for), leaving the rest.
    pub fn stop(&self, name: &str) {
        let pid = self.pid(name).to_string();
        assert!(Command::new("kill").arg(&pid).status().unwrap().success());
        let proc_dir = std::path::Path::new("/proc").join(&pid);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while proc_dir.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(!proc_dir.exists(), "{name} ({pid}) did not stop");
        std::fs::remove_file(self.pki.root().join(format!("run/{name}.pid"))).unwrap();
    }
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/cluster.sh")).arg("stop").arg(self.pki.root()).output();
    }
}
