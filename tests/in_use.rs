//! Certificates in use, not just on disk: real etcd 3.4 and kube-apiserver 1.20.2 (scripts/cluster.sh)
//! on a kubeadm PKI, found through /proc, judged by what they serve and when they started.

mod common;
use common::*;

use std::process::Command;

use serde_json::Value;

struct Cluster<'a> {
    pki: &'a Pki,
    ip: &'static str,
}

impl<'a> Cluster<'a> {
    fn start(pki: &'a Pki, ip: &'static str) -> Cluster<'a> {
        let c = Cluster { pki, ip };
        c.cluster_sh("start");
        c
    }
    fn cluster_sh(&self, cmd: &str) {
        let out = Command::new(repo().join("scripts/cluster.sh"))
            .arg(cmd)
            .arg(self.pki.root())
            .arg(self.ip)
            .env("K8S_BIN", k8s_bin())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster.sh {cmd}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fn pid(&self, name: &str) -> u64 {
        let text = std::fs::read_to_string(self.pki.root().join(format!("run/{name}.pid"))).unwrap();
        text.trim().parse().unwrap()
    }
    /// Stops one component the way a crash or a kubelet would (SIGTERM, waited for), leaving the rest.
    fn stop(&self, name: &str) {
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

fn check_json(pki: &Pki) -> Value {
    let (code, out, err) = run_on(pki, &["check", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap()
}

fn component<'a>(v: &'a Value, name: &str) -> &'a Value {
    let list = v["components"].as_array().unwrap_or_else(|| panic!("no components in {v}"));
    let found: Vec<&Value> = list.iter().filter(|c| c["name"] == name).collect();
    assert_eq!(found.len(), 1, "{name} once in {v}");
    found[0]
}

#[test]
fn a_stale_apiserver_is_found_by_start_time_and_fresh_again_after_it_restarts() {
    let ip = "127.0.0.61";
    let pki = kubeadm_pki("std", "cp1", ip);
    let cluster = Cluster::start(&pki, ip);

    // 1. both found in /proc by the files their command lines name, neither stale
    let v = check_json(&pki);
    let api = component(&v, "kube-apiserver");
    assert_eq!(api["pid"], cluster.pid("kube-apiserver"), "{v}");
    assert_eq!(api["stale"], false, "{v}");
    assert!(api["startedAt"].as_str().is_some_and(|s| s.ends_with('Z')), "{v}");
    assert_eq!(component(&v, "etcd")["pid"], cluster.pid("etcd"), "{v}");
    assert_eq!(component(&v, "etcd")["stale"], false, "{v}");
    // not running is reported, not an error
    for absent in ["kube-controller-manager", "kube-scheduler"] {
        let c = component(&v, absent);
        assert!(c["pid"].is_null() && c["stale"] == false, "{v}");
        assert_eq!(c["reason"], "not running on this PKI");
    }
    // the table: kubeadm's two, then the components
    let (code, table, _) = run_on(&pki, &["check"]);
    assert_eq!(code, 0);
    let at = table.find("\nCOMPONENT ").expect("a components table");
    assert!(table[..at].contains("CERTIFICATE AUTHORITY"), "{table}");
    assert!(table[at..].lines().any(|l| l.starts_with("kube-apiserver ") && l.contains(" no ")), "{table}");

    // 2. a client certificate the apiserver reads only at start renewed on disk: stale by start time
    let (code, out, err) = run_on(&pki, &["renew", "apiserver-kubelet-client", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let renewed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(renewed["restart"], serde_json::json!(["kube-apiserver"]), "{out}");
    let v = check_json(&pki);
    let api = component(&v, "kube-apiserver");
    assert_eq!(api["stale"], true, "{v}");
    let reason = api["reason"].as_str().unwrap();
    assert!(reason.contains("apiserver-kubelet-client.crt was written") && reason.starts_with("started "), "{reason}");
    assert_eq!(component(&v, "etcd")["stale"], false, "etcd reads nothing that was renewed: {v}");

    // 3. the rerun finds nothing due and still names the stale apiserver (the outage of issue 11)
    let (code, out, err) = run_on(&pki, &["renew", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let rerun: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rerun["changed"], false, "{out}");
    assert_eq!(rerun["renewed"], serde_json::json!([]), "{out}");
    assert_eq!(rerun["restart"], serde_json::json!(["kube-apiserver"]), "{out}");
    assert!(rerun["msg"].as_str().unwrap().contains("kube-apiserver"), "{out}");
    let m = module_on(&pki, serde_json::json!({"state": "renew"}));
    assert_eq!(m["changed"], false, "{m}");
    assert_eq!(m["restart"], serde_json::json!(["kube-apiserver"]), "{m}");
    assert_eq!(m["components"].as_array().map(Vec::len), Some(4), "{m}");

    // 4. restarted, it reads the new file: fresh
    cluster.stop("kube-apiserver");
    cluster.cluster_sh("start");
    let v = check_json(&pki);
    let api = component(&v, "kube-apiserver");
    assert_eq!(api["pid"], cluster.pid("kube-apiserver"), "{v}");
    assert_eq!(api["stale"], false, "{v}");
    let (_, out, _) = run_on(&pki, &["renew", "-o", "json"]);
    let rerun: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rerun["restart"], serde_json::json!([]), "{out}");
}

#[test]
fn served_certificates_are_judged_by_the_serial_served_and_etcd_reloads_its_own() {
    let ip = "127.0.0.62";
    let pki = kubeadm_pki("std", "cp1", ip);
    let _cluster = Cluster::start(&pki, ip);
    // etcd 3.4 reads its server certificate on every handshake: renewed on disk, served at once, not stale
    let (code, out, err) = run_on(&pki, &["renew", "etcd-server", "etcd-peer", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let renewed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(renewed["restart"], serde_json::json!([]), "etcd serves the renewed files already: {out}");
    let v = check_json(&pki);
    assert_eq!(component(&v, "etcd")["stale"], false, "{v}");

    // kube-apiserver reloads its serving certificate too, but one it cannot load (here: a certificate that
    // does not match apiserver.key) it never serves: judged by the serial it serves, it is stale
    std::fs::copy(pki.certs().join("apiserver-kubelet-client.crt"), pki.certs().join("apiserver.crt")).unwrap();
    let v = check_json(&pki);
    let api = component(&v, "kube-apiserver");
    assert_eq!(api["stale"], true, "{v}");
    let reason = api["reason"].as_str().unwrap();
    assert!(reason.starts_with("serves apiserver serial ") && reason.contains("apiserver.crt has serial"), "{v}");
}
