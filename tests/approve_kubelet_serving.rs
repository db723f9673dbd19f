//! `approve kubelet-serving` / module `state: approve` against a real control plane: etcd, kube-apiserver 1.20.2
//! (authorization Node,RBAC, NodeRestriction) and kube-controller-manager (its `csrsigning` signs
//! `kubernetes.io/kubelet-serving` with the cluster CA), started by scripts/cluster.sh from a PKI made by real kubeadm
//! on 127.0.0.110, which no other test uses. Nodes `w1` and `w2` are Node objects with addresses (no kubelet runs);
//! requests are made as the nodes themselves (client certificates `O=system:nodes, CN=system:node:NAME` from the
//! cluster CA, as a kubelet's), and as the admin. Exactly the request for w1's own names and addresses is approved
//! (and then issued by the controller manager); every other is left pending, each refused by its named reason.

mod common;
use common::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const IP: &str = "127.0.0.110";

/// etcd, kube-apiserver and kube-controller-manager on `IP`, stopped when dropped (also when a test fails).
struct ControlPlane {
    pki: Pki,
}

impl ControlPlane {
    fn start() -> ControlPlane {
        let cp = ControlPlane { pki: kubeadm_pki("std", "cp1", IP) };
        cp.script("start");
        cp
    }

    fn script(&self, cmd: &str) {
        let out = Command::new(repo().join("scripts/cluster.sh"))
            .args([cmd, &self.pki.root().display().to_string(), IP])
            .env("WITH_KCM", "1")
            .env("K8S_BIN", k8s_bin())
            .output()
            .unwrap();
        assert!(out.status.success(), "cluster.sh {cmd}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn admin(&self) -> PathBuf {
        self.pki.kube().join("admin.conf")
    }

    /// `kubectl --kubeconfig KUBECONFIG ARGS` with `stdin`, asserting success; stdout.
    fn kubectl_as(&self, kubeconfig: &Path, args: &[&str], stdin: &str) -> String {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_as(&self.admin(), args, "")
    }

    fn csr(&self, name: &str) -> Value {
        serde_json::from_str(&self.kubectl(&["get", "csr", name, "-o", "json"])).unwrap()
    }

    /// A Node object with `addresses` (type, address), as a registered kubelet leaves it.
    fn node(&self, name: &str, addresses: &[(&str, &str)]) {
        let addresses: Vec<Value> = addresses.iter().map(|(t, a)| json!({"type": t, "address": a})).collect();
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                          "status": {"addresses": addresses}});
        self.kubectl_as(&self.admin(), &["create", "-f", "-"], &node.to_string());
        let back = self.kubectl(&["get", "node", name, "-o", "jsonpath={.status.addresses}"]);
        if back.trim().is_empty() || back.trim() == "[]" {
            let patch = json!({"status": {"addresses": addresses}}).to_string();
            self.kubectl(&["patch", "node", name, "--subresource=status", "--type=merge", "-p", &patch]);
        }
    }

    /// A kubeconfig for `user` (`O=GROUP, CN=USER`): admin.conf with a client certificate of the cluster CA's.
    fn kubeconfig_for(&self, file: &str, subject: &str) -> PathBuf {
        let dir = self.pki.root().join("creds");
        std::fs::create_dir_all(&dir).unwrap();
        let p = |n: &str| dir.join(format!("{file}.{n}")).display().to_string();
        let ca = |n: &str| self.pki.certs().join(n).display().to_string();
        openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &p("key")]);
        openssl(&["req", "-new", "-key", &p("key"), "-subj", subject, "-out", &p("csr")]);
        std::fs::write(p("ext"), "extendedKeyUsage = clientAuth\nkeyUsage = critical, digitalSignature\n").unwrap();
        #[rustfmt::skip]
        openssl(&["x509", "-req", "-in", &p("csr"), "-CA", &ca("ca.crt"), "-CAkey", &ca("ca.key"), "-CAcreateserial",
                  "-days", "1", "-extfile", &p("ext"), "-out", &p("crt")]);
        let mut kc: serde_norway::Value = serde_norway::from_slice(&std::fs::read(self.admin()).unwrap()).unwrap();
        let user = &mut kc["users"][0]["user"];
        user["client-certificate-data"] = base64_encode(&std::fs::read(p("crt")).unwrap()).into();
        user["client-key-data"] = base64_encode(&std::fs::read(p("key")).unwrap()).into();
        let out = dir.join(format!("{file}.conf"));
        std::fs::write(&out, serde_norway::to_string(&kc).unwrap()).unwrap();
        out
    }

    /// Creates the request `name` as `who` (a kubeconfig): a PKCS#10 request made by openssl for a new P-256 key
    /// (an Ed25519 key when `req_args` starts with `ed25519`) with the subject and extensions of `req_args`, with
    /// `signer` and `usages`.
    fn request(&self, who: &Path, name: &str, req_args: &[&str], signer: &str, usages: &[&str]) {
        let dir = self.pki.root().join("requests");
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join(format!("{name}.key")).display().to_string();
        let csr = dir.join(format!("{name}.csr")).display().to_string();
        match req_args.first() {
            Some(&"ed25519") => openssl(&["genpkey", "-algorithm", "ed25519", "-out", &key]),
            _ => openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &key]),
        };
        let mut args = vec!["req", "-new", "-key", &key, "-out", &csr];
        args.extend(req_args.iter().filter(|a| **a != "ed25519"));
        openssl(&args);
        let object = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": base64_encode(&std::fs::read(&csr).unwrap()), "signerName": signer, "usages": usages}});
        self.kubectl_as(who, &["create", "-f", "-"], &object.to_string());
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/cluster.sh")).arg("stop").arg(self.pki.root()).output();
    }
}

const SERVING: &str = "kubernetes.io/kubelet-serving";
const KUBELET_USAGES: [&str; 3] = ["digital signature", "key encipherment", "server auth"];

/// One request the test makes: who makes it, openssl's arguments for it, its signer and usages, and the reason it
/// is refused by (empty: approved).
struct Req<'a> {
    name: &'static str,
    who: &'a Path,
    args: Vec<&'a str>,
    signer: &'static str,
    usages: &'static [&'static str],
    reason: &'static str,
}

/// A kubelet's request as the kubelet makes it, but for `args`.
fn req<'a>(name: &'static str, who: &'a Path, args: Vec<&'a str>, reason: &'static str) -> Req<'a> {
    Req { name, who, args, signer: SERVING, usages: &KUBELET_USAGES, reason }
}

fn subj(cn: &str) -> String {
    format!("/O=system:nodes/CN=system:node:{cn}")
}

/// `approve kubelet-serving -o json EXTRA...` on the control plane's PKI: (exit code, JSON, all text).
fn approve(cp: &ControlPlane, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["approve", "kubelet-serving", "-o", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run_on(&cp.pki, &args);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), format!("{out}{err}"))
}

/// Action and reason of each request in a result, by name.
fn verdicts(v: &Value) -> Vec<(String, String, String)> {
    let mut all: Vec<(String, String, String)> = v["approvals"]
        .as_array()
        .unwrap_or_else(|| panic!("no approvals: {v}"))
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("action"), s("reason"))
        })
        .collect();
    all.sort();
    all
}

fn pending(cp: &ControlPlane, name: &str) -> bool {
    let o = cp.csr(name);
    o["status"]["conditions"].as_array().is_none_or(Vec::is_empty) && o["status"]["certificate"].is_null()
}

#[test]
fn kubelet_serving_requests_are_approved_only_for_their_own_nodes_names_and_addresses_by_a_real_apiserver() {
    let cp = ControlPlane::start();
    cp.node("w1", &[("InternalIP", "10.0.0.1"), ("Hostname", "w1")]);
    cp.node("w2", &[("InternalIP", "10.0.0.2"), ("Hostname", "w2")]);
    let w1 = cp.kubeconfig_for("w1", &subj("w1"));
    let w9 = cp.kubeconfig_for("w9", &subj("w9"));
    let admin = cp.admin();
    let w1_sans = "subjectAltName=DNS:w1,IP:10.0.0.1";
    let s = subj("w1");
    let requests = [
        req("kc-good", &w1, vec!["-subj", &s, "-addext", w1_sans], ""),
        req(
            "kc-other-node",
            &w1,
            vec!["-subj", "/O=system:nodes/CN=system:node:w2", "-addext", "subjectAltName=DNS:w2,IP:10.0.0.2"],
            "other_node",
        ),
        req("kc-ip", &w1, vec!["-subj", &s, "-addext", "subjectAltName=DNS:w1,IP:10.0.0.9"], "ip_address"),
        req("kc-dns", &w1, vec!["-subj", &s, "-addext", "subjectAltName=DNS:kubernetes.default"], "dns_name"),
        Req {
            signer: "kubernetes.io/kube-apiserver-client",
            usages: &["digital signature", "key encipherment", "client auth"],
            ..req("kc-signer", &w1, vec!["-subj", &s], "signer")
        },
        Req {
            usages: &["digital signature", "key encipherment", "server auth", "client auth"],
            ..req("kc-usages", &w1, vec!["-subj", &s, "-addext", w1_sans], "usages")
        },
        req("kc-admin", &admin, vec!["-subj", &s, "-addext", w1_sans], "requester"),
        req(
            "kc-ghost",
            &w9,
            vec!["-subj", "/O=system:nodes/CN=system:node:w9", "-addext", "subjectAltName=DNS:w9"],
            "no_such_node",
        ),
        req("kc-email", &w1, vec!["-subj", &s, "-addext", "subjectAltName=DNS:w1,email:w1@example.com"], "other_san"),
        req("kc-ext", &w1, vec!["-subj", &s, "-addext", w1_sans, "-addext", "basicConstraints=CA:TRUE"], "extensions"),
        req("kc-ed25519", &w1, vec!["ed25519", "-subj", &s, "-addext", w1_sans], "key"),
        req("kc-no-san", &w1, vec!["-subj", &s], "no_san"),
        req("kc-subject", &w1, vec!["-subj", "/O=system:masters/CN=system:node:w1", "-addext", w1_sans], "subject"),
    ];
    for r in &requests {
        cp.request(r.who, r.name, &r.args, r.signer, r.usages);
    }
    let mut expected: Vec<(String, String, String)> = requests
        .iter()
        .map(|r| {
            let action = if r.reason.is_empty() { "would_approve" } else { "refused" };
            (r.name.to_string(), action.to_string(), r.reason.to_string())
        })
        .collect();
    expected.sort();

    // check mode: judged, nothing approved
    let (code, v, text) = approve(&cp, &["--check"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(verdicts(&v), expected, "{v:#}");
    assert_eq!(v["changed"], true, "{v}");
    let good = v["approvals"].as_array().unwrap().iter().find(|a| a["name"] == "kc-good").unwrap();
    assert_eq!(good["requester"], "system:node:w1");
    assert_eq!(good["node"], "w1");
    assert_eq!(good["sans"], json!(["DNS:w1", "IP:10.0.0.1"]));
    let other = v["approvals"].as_array().unwrap().iter().find(|a| a["name"] == "kc-other-node").unwrap();
    assert!(other["message"].as_str().unwrap().contains("would let w1 serve as w2"), "{other}");
    let m = module_on(&cp.pki, json!({"state": "approve", "_ansible_check_mode": true}));
    assert_eq!(m["changed"], true, "{m}");
    assert_eq!(verdicts(&m), expected, "{m:#}");
    for r in &requests {
        assert!(pending(&cp, r.name), "{}: check mode approves nothing", r.name);
    }

    // credentials that may read but not approve (the node's own): refused by the apiserver, nothing approved
    let w1_arg = w1.display().to_string();
    let (code, _, text) = approve(&cp, &["--api-kubeconfig", &w1_arg]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("refused to approve certificate signing request kc-good: HTTP 403"), "{text}");
    assert!(text.contains("--api-kubeconfig"), "{text}");
    assert!(pending(&cp, "kc-good"));

    // the real run: kc-good approved and then issued by kube-controller-manager; every other left pending
    let (code, v, text) = approve(&cp, &[]);
    assert_eq!(code, 0, "{text}");
    let mut approved = expected.clone();
    for e in approved.iter_mut().filter(|e| e.0 == "kc-good") {
        e.1 = "approved".into();
    }
    assert_eq!(verdicts(&v), approved, "{v:#}");
    assert!(v["msg"].as_str().unwrap().starts_with("approved 1 kubelet-serving request(s): kc-good; left 12"), "{v}");
    let condition = &cp.csr("kc-good")["status"]["conditions"][0];
    assert_eq!(
        (condition["type"].as_str(), condition["reason"].as_str()),
        (Some("Approved"), Some("KubeadmCertsKubeletServing"))
    );
    assert!(condition["message"].as_str().unwrap().contains("kubeadm-certs approve kubelet-serving"), "{condition}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let issued = loop {
        let c = cp.csr("kc-good")["status"]["certificate"].as_str().map(String::from);
        match c {
            Some(c) if !c.is_empty() => break c,
            _ => assert!(Instant::now() < deadline, "kube-controller-manager did not issue kc-good"),
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let crt = cp.pki.root().join("requests/kc-good.crt");
    std::fs::write(&crt, base64_decode(&issued)).unwrap();
    let (crt_s, ca_s) = (crt.display().to_string(), cp.pki.certs().join("ca.crt").display().to_string());
    openssl(&["verify", "-CAfile", &ca_s, &crt_s]);
    let text = openssl(&["x509", "-in", &crt_s, "-noout", "-subject", "-ext", "subjectAltName", "-nameopt", "RFC2253"]);
    assert!(
        text.contains("CN=system:node:w1,O=system:nodes") && text.contains("DNS:w1, IP Address:10.0.0.1"),
        "{text}"
    );
    for r in requests.iter().filter(|r| r.name != "kc-good") {
        assert!(pending(&cp, r.name), "{}: left pending, not denied", r.name);
    }

    // a rerun: nothing left to approve, the refused ones named again; the table says the same
    let (code, v, text) = approve(&cp, &[]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(false)), "{text}");
    assert_eq!(v["approvals"].as_array().unwrap().len(), 12, "{v}");
    let (code, table, err) = run_on(&cp.pki, &["approve", "kubelet-serving"]);
    assert_eq!(code, 0, "{err}");
    assert!(table.starts_with("CERTIFICATE SIGNING REQUEST   REQUESTER "), "{table}");
    let line = table.lines().find(|l| l.starts_with("kc-ip ")).unwrap();
    assert!(
        line.contains("system:node:w1")
            && line.contains("refused")
            && line.contains("ip_address: it asks for IP:10.0.0.9"),
        "{table}"
    );
    assert!(table.trim_end().ends_with("left 12 pending request(s) alone: kc-admin (requester), kc-dns (dns_name), kc-ed25519 (key), kc-email (other_san), kc-ext (extensions), kc-ghost (no_such_node), kc-ip (ip_address), kc-no-san (no_san), kc-other-node (other_node), kc-signer (signer), kc-subject (subject), kc-usages (usages)"), "{table}");

    // the module: approves a new request of w1's, returns what it did
    cp.request(&w1, "kc-good-2", &["-subj", &s, "-addext", "subjectAltName=IP:10.0.0.1"], SERVING, &KUBELET_USAGES);
    let m = module_on(&cp.pki, json!({"state": "approve", "certificates": ["kubelet-serving"]}));
    assert_eq!(m["changed"], true, "{m}");
    let mine: Vec<&Value> = m["approvals"].as_array().unwrap().iter().filter(|a| a["action"] == "approved").collect();
    assert_eq!(mine.len(), 1, "{m}");
    assert_eq!(mine[0]["name"], "kc-good-2");
    assert!(mine[0].get("reason").is_none(), "{m}");
}

#[test]
fn approve_takes_its_own_parameters_and_names_what_does_not_apply() {
    let pki = kubeadm_pki("std", "cp1", IP);
    let (code, _, err) = run_on(&pki, &["approve", "kubelet-client"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("approve takes kubelet-serving"), "{err}");
    let v = module_on(&pki, json!({"state": "approve", "certificates": ["apiserver"]}));
    assert!(v["msg"].as_str().unwrap().contains("state approve takes certificates: [kubelet-serving]"), "{v}");
    let v = module_on(&pki, json!({"state": "approve", "force": true}));
    assert!(v["msg"].as_str().unwrap().contains("force does not apply to state approve"), "{v}");
    // credentials naming an address nothing listens on (127.0.0.111): a clean error naming the apiserver
    let conf = std::fs::read_to_string(pki.kube().join("admin.conf")).unwrap();
    let elsewhere = pki.root().join("elsewhere.conf");
    std::fs::write(&elsewhere, conf.replace(&format!("https://{IP}:6443"), "https://127.0.0.111:6443")).unwrap();
    let v = module_on(&pki, json!({"state": "approve", "api_kubeconfig": elsewhere.display().to_string()}));
    assert_eq!(v["failed"], true, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("cannot talk to the apiserver at https://127.0.0.111:6443"), "{v}");
}
