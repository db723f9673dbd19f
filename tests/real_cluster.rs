//! A renewed PKI proven by its real consumers: etcd (Debian's 3.4) and kube-apiserver 1.20.2 start from
//! it on a loopback address, the apiserver serves the renewed certificate, etcd accepts the renewed
//! client certificates, and kubectl authenticates with every rewritten kubeconfig.

mod common;
use common::*;

use std::process::Command;

const IP: &str = "127.0.0.41";

fn kubectl(pki: &Pki, conf: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl").arg("--kubeconfig").arg(pki.kube().join(conf)).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn serial_of_file(pki: &Pki, rel: &str) -> String {
    openssl(&["x509", "-noout", "-serial", "-in", pki.kube().join(rel).to_str().unwrap()]).trim().to_string()
}

#[test]
fn etcd_and_apiserver_run_on_the_renewed_pki_and_kubectl_authenticates() {
    let pki = kubeadm_pki("std", "cp1", IP);
    let before = pki.snapshot();
    let (code, out, err) = run_on(&pki, &["renew", "all", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(before.changed(&pki.snapshot()).len(), 7 * 2 + 3);

    let _cluster = Cluster::start(&pki, IP);
    // the rewritten admin.conf: its CA verifies the server, its new client certificate authenticates
    let (ok, text) = kubectl(&pki, "admin.conf", &["get", "--raw", "/readyz"]);
    assert!(ok && text.trim() == "ok", "{text}");
    let (ok, text) = kubectl(&pki, "admin.conf", &["get", "namespaces", "-o", "name"]);
    assert!(ok && text.contains("namespace/kube-system"), "admin.conf (system:masters) lists namespaces: {text}");
    // controller-manager.conf and scheduler.conf authenticate as their users (anonymous would be refused)
    for (conf, user_can) in
        [("controller-manager.conf", "list serviceaccounts -n kube-system"), ("scheduler.conf", "list pods -A")]
    {
        let mut args = vec!["auth", "can-i"];
        args.extend(user_can.split(' '));
        let (ok, text) = kubectl(&pki, conf, &args);
        assert!(ok && text.trim() == "yes", "{conf}: can-i {user_can}: {text}");
    }
    // the served certificate is the renewed one
    let served = Command::new("sh")
        .arg("-c")
        .arg(format!("echo | openssl s_client -connect {IP}:6443 2>/dev/null | openssl x509 -noout -serial"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&served.stdout).trim(), serial_of_file(&pki, "pki/apiserver.crt"));
    // etcd serves the renewed etcd-server certificate and accepts the renewed healthcheck client
    let p = pki.certs();
    let health = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &format!("https://{IP}:2379")])
        .arg("--cacert")
        .arg(p.join("etcd/ca.crt"))
        .arg("--cert")
        .arg(p.join("etcd/healthcheck-client.crt"))
        .arg("--key")
        .arg(p.join("etcd/healthcheck-client.key"))
        .args(["endpoint", "health"])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&health.stdout), String::from_utf8_lossy(&health.stderr));
    assert!(health.status.success() && text.contains("is healthy"), "{text}");
    let served = Command::new("sh")
        .arg("-c")
        .arg(format!("echo | openssl s_client -connect {IP}:2379 2>/dev/null | openssl x509 -noout -serial"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&served.stdout).trim(), serial_of_file(&pki, "pki/etcd/server.crt"));
}
