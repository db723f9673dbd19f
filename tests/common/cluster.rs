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
    /// etcd and kube-apiserver, then kube-controller-manager and kube-scheduler as kubeadm's static pods see
    /// their kubeconfigs: each bind-mounted on its own in a mount namespace of the component's
    /// (tests/fixtures/as-pod.sh); waits until both answer /healthz.
    pub fn start_as_pods(pki: &'a Pki, ip: &'static str) -> Cluster<'a> {
        let c = Cluster { pki, ip, all: false };
        c.cluster_sh("start");
        for name in ["kube-controller-manager", "kube-scheduler"] {
            c.start_as_pod(name);
        }
        c
    }
    /// The shell command that starts `name` as a pod in the background, its pid in `run/NAME.pid` (the pid stays
    /// the component's: unshare, bash and cluster.sh each exec the next), and with `wait` waits until it answers
    /// /healthz. A restart stand-in does not wait: only the product's own health gate may make its test pass.
    pub fn as_pod_command(&self, name: &str, wait: bool) -> String {
        let (root, ip) = (self.pki.root().display(), self.ip);
        let port = if name == "kube-scheduler" { 10259 } else { 10257 };
        format!(
            "mkdir -p {root}/run; K8S_BIN={bin} setsid {pod} {name} {root} {ip} >>{root}/run/{name}.log 2>&1 </dev/null & \
             echo $! > {root}/run/{name}.pid",
            bin = k8s_bin().display(),
            pod = repo().join("tests/fixtures/as-pod.sh").display(),
        ) + &if wait {
            format!(
                "; for i in $(seq 300); do curl -skf --max-time 1 https://{ip}:{port}/healthz >/dev/null && exit 0; \
                 sleep 0.2; done; exit 1"
            )
        } else {
            String::new()
        }
    }
    fn start_as_pod(&self, name: &str) {
        let out = Command::new("bash").arg("-c").arg(self.as_pod_command(name, true)).output().unwrap();
        assert!(out.status.success(), "{name} as a pod: {}", String::from_utf8_lossy(&out.stderr));
    }
    /// A test-only stand-in for what restarts a component (the kubelet, systemd), for method `command`: stops
    /// the pid it is given and starts the component again (`scripts/cluster.sh spawn`), returning at once. It never
    /// waits until the component is healthy: only the product's own health gate may make a restart test pass.
    pub fn restart_command(&self) -> String {
        let (root, ip) = (self.pki.root().display(), self.ip);
        format!(
            "kill \"$KUBEADM_CERTS_PID\"; \
             while [ -e /proc/$KUBEADM_CERTS_PID ] && ! grep -q ') Z' /proc/$KUBEADM_CERTS_PID/stat; do sleep 0.1; done; \
             rm -f {root}/run/$KUBEADM_CERTS_COMPONENT.pid; \
             K8S_BIN={} {} spawn $KUBEADM_CERTS_COMPONENT {root} {ip}",
            k8s_bin().display(),
            repo().join("scripts/cluster.sh").display()
        )
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
