//! `renew --use-api` / `signer: api` against a real control plane: etcd, kube-apiserver 1.20.2 and
//! kube-controller-manager (the built-in signer, `--cluster-signing-cert-file/--cluster-signing-key-file`)
//! started by scripts/cluster.sh from a PKI made by real kubeadm (scripts/mkpki.sh), on loopback addresses
//! no other test uses (127.0.0.51, .52; .53 has nothing listening). Requests are approved by a second
//! actor (kubectl, as a person would) or by `--approve`; denied ones, timeouts and refusals must leave the
//! PKI byte-identical and no CertificateSigningRequest behind.

mod common;
use common::*;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

/// A running etcd + kube-apiserver + kube-controller-manager, stopped when dropped (also when a test
/// fails).
struct Cluster {
    pki: Pki,
    ip: &'static str,
}

impl Cluster {
    fn start(ip: &'static str) -> Cluster {
        let cluster = Cluster { pki: kubeadm_pki("std", "cp1", ip), ip };
        cluster.script("start");
        cluster
    }

    fn script(&self, cmd: &str) {
        let out = Command::new(repo().join("scripts/cluster.sh"))
            .args([cmd, &self.pki.root().display().to_string(), self.ip])
            .env("WITH_KCM", "1")
            .env("K8S_BIN", k8s_bin())
            .output()
            .unwrap();
        assert!(out.status.success(), "cluster.sh {cmd}: {}\n{}", stderr(&out), self.logs());
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for c in ["etcd", "kube-apiserver", "kube-controller-manager"] {
            let log = std::fs::read_to_string(self.run_dir().join(format!("{c}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            s.push_str(&format!("--- {c}.log (last lines)\n"));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    fn run_dir(&self) -> PathBuf {
        self.pki.root().join("run")
    }

    fn admin(&self) -> String {
        self.pki.kube().join("admin.conf").display().to_string()
    }

    /// `kubectl --kubeconfig admin.conf ARGS`, asserting success; stdout.
    fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl").arg("--kubeconfig").arg(self.admin()).args(args).output().unwrap();
        assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The names of every CertificateSigningRequest in the cluster.
    fn csrs(&self) -> Vec<String> {
        let out = self.kubectl(&["get", "csr", "-o", "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}"]);
        let mut names: Vec<String> = out.lines().map(str::to_string).filter(|l| !l.is_empty()).collect();
        names.sort();
        names
    }

    fn csr_field(&self, name: &str, jsonpath: &str) -> String {
        self.kubectl(&["get", "csr", name, "-o", &format!("jsonpath={jsonpath}")])
    }

    /// Kills one component (SIGKILL: a crash, or a node losing it); `cluster.sh start` brings it back.
    fn kill(&self, component: &str) {
        let pid = std::fs::read_to_string(self.run_dir().join(format!("{component}.pid"))).unwrap();
        let pid = pid.trim();
        assert!(Command::new("kill").args(["-9", pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(30);
        // until reaped: cluster.sh takes a zombie for a running component
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(Instant::now() < deadline, "{component} did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// With the apiserver down, waits until the run `pid` tries it again: the test holds the apiserver's
    /// address and port and closes, unanswered, every connection (a failed request, as against a restarting
    /// apiserver) until one comes from the run, so that the outage is known to have been met, not slept
    /// through. kube-controller-manager's connections are refused the same way.
    fn wait_for_a_request_while_down(&self, pid: u32) {
        let listener = std::net::TcpListener::bind((self.ip, 6443)).expect("the apiserver's port is free");
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match listener.accept() {
                Ok((_conn, peer)) if holds_socket(pid, peer) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "the run did not ask the apiserver again within 30 s");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    /// Plays an external signer: issues the request `name` with the CA `ca` (its base name under pki/) and
    /// writes the certificate to the request's status, as cert-manager or a custom signer would.
    fn sign_as_external_signer(&self, name: &str, ca: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = |f: &str| dir.path().join(f).display().to_string();
        let certs = |f: &str| self.pki.certs().join(f).display().to_string();
        std::fs::write(path("req.pem"), base64_decode(&self.csr_field(name, "{.spec.request}"))).unwrap();
        std::fs::write(
            path("ext.cnf"),
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        let (ca_crt, ca_key) = (certs(&format!("{ca}.crt")), certs(&format!("{ca}.key")));
        let req = path("req.pem");
        let (ext, out) = (path("ext.cnf"), path("cert.pem"));
        openssl(
            &["x509", "-req", "-in", &req, "-CA", &ca_crt, "-CAkey", &ca_key, "-set_serial", "4660", "-days", "365"]
                .into_iter()
                .chain(["-extfile", &ext, "-out", &out])
                .collect::<Vec<_>>(),
        );
        let cert = std::fs::read(&out).unwrap();
        let patch = json!({"status": {"certificate": base64_encode(&cert)}});
        std::fs::write(path("patch.json"), patch.to_string()).unwrap();
        let url =
            format!("https://{}:6443/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/status", self.ip);
        // not curl's own User-Agent: kube-apiserver pretty-prints JSON for "curl/…", and this 1.20.2 (built with
        // Go 1.19, whose map iteration its vendored reflect2 predates) crashes doing so
        let out = Command::new("curl")
            .args([
                "-sS",
                "-A",
                "kubeadm-certs-tests",
                "--max-time",
                "10",
                "-X",
                "PATCH",
                "-H",
                "Content-Type: application/merge-patch+json",
            ])
            .args(["--cacert", &certs("ca.crt"), "--cert", &certs("apiserver-kubelet-client.crt")])
            .args([
                "--key",
                &certs("apiserver-kubelet-client.key"),
                "--data-binary",
                &format!("@{}", path("patch.json")),
            ])
            .args(["-o", "/dev/stderr", "-w", "%{http_code}"])
            .arg(&url)
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&out.stdout);
        assert_eq!(code, "200", "curl PATCH {url}: {}", stderr(&out));
    }

    /// Waits until `count` requests that were not in `before` exist; returns them sorted.
    fn wait_for_new_csrs(&self, before: &[String], count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let new: Vec<String> = self.csrs().into_iter().filter(|n| !before.contains(n)).collect();
            if new.len() >= count {
                return new;
            }
            assert!(Instant::now() < deadline, "no new certificate signing requests after 60s (have {new:?})");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/cluster.sh"))
            .args(["stop", &self.pki.root().display().to_string(), self.ip])
            .output();
    }
}

/// Whether process `pid` holds the TCP socket whose local end is `addr` (its inode from /proc/net/tcp,
/// among the process's file descriptors).
fn holds_socket(pid: u32, addr: std::net::SocketAddr) -> bool {
    let std::net::SocketAddr::V4(a) = addr else { return false };
    let local = format!("{:08X}:{:04X}", u32::from_ne_bytes(a.ip().octets()), a.port());
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inode = tcp.lines().skip(1).find_map(|l| {
        let fields: Vec<&str> = l.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str())).then(|| fields[9].to_string())
    });
    let Some(inode) = inode else { return false };
    let link = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy() == link))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The binary with the PKI's directory flags, not yet started.
fn renew_cmd(pki: &Pki, args: &[&str]) -> Command {
    let mut c = Command::new(bin_path());
    c.arg("renew").args(args).args(pki.dirs());
    c
}

/// The client certificate embedded in a kubeconfig, as PEM text.
fn embedded_cert_pem(pki: &Pki, file: &str) -> String {
    let kc: serde_norway::Value = serde_norway::from_slice(&pki.read(file)).unwrap();
    let data = kc["users"][0]["user"]["client-certificate-data"].as_str().unwrap().to_string();
    String::from_utf8(base64_decode(&data)).unwrap()
}

/// Asserts exactly these files changed.
#[track_caller]
fn assert_changed_only(before: &Snapshot, after: &Snapshot, files: &[&str]) {
    let changed = before.changed(after);
    let want: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    assert_eq!(changed, want, "changed files");
}

#[test]
fn renews_through_the_api_approved_by_kubectl_and_by_approve_and_the_controller_manager_uses_it() {
    let cluster = Cluster::start("127.0.0.51");
    let pki = &cluster.pki;

    // 1. a second actor approves: kubectl certificate approve, while kubeadm-certs waits
    let before = pki.snapshot();
    let csrs_before = cluster.csrs();
    let child = renew_cmd(pki, &["controller-manager.conf", "--force", "--use-api", "--api-timeout", "90s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let new = cluster.wait_for_new_csrs(&csrs_before, 1);
    assert_eq!(new.len(), 1, "{new:?}");
    let name = &new[0];
    assert!(name.starts_with("kubeadm-certs-controller-manager.conf-"), "{name}");
    assert_eq!(cluster.csr_field(name, "{.spec.signerName}"), "kubernetes.io/kube-apiserver-client");
    assert_eq!(cluster.csr_field(name, "{.spec.usages}"), r#"["digital signature","key encipherment","client auth"]"#);
    cluster.kubectl(&["certificate", "approve", name]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("[certs] Certificate request \"{name}\" created")), "{}", stderr(&out));
    assert_changed_only(&before, &pki.snapshot(), &["controller-manager.conf"]);
    // what is installed is exactly what the cluster issued
    let issued = base64_decode(&cluster.csr_field(name, "{.status.certificate}"));
    assert_eq!(embedded_cert_pem(pki, "controller-manager.conf").as_bytes(), &issued[..]);

    // 2. --approve: approved as kubectl would, by the admin.conf credentials
    let before = pki.snapshot();
    let csrs_before = cluster.csrs();
    let (code, stdout, err) = run_on(
        pki,
        &["renew", "scheduler.conf", "--force", "--use-api", "--approve", "--api-timeout", "60s", "-o", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["renewed"], json!(["scheduler.conf"]));
    let names = v["csr_names"].as_array().unwrap();
    assert_eq!(names.len(), 1);
    let name = names[0].as_str().unwrap();
    assert_eq!(cluster.csrs().into_iter().filter(|n| !csrs_before.contains(n)).collect::<Vec<_>>(), [name]);
    assert_eq!(cluster.csr_field(name, "{.status.conditions[0].type}"), "Approved");
    assert_eq!(cluster.csr_field(name, "{.status.conditions[0].reason}"), "KubeadmCertsApprove");
    assert!(err.contains(&format!("[certs] Certificate request \"{name}\" approved")), "{err}");
    assert_changed_only(&before, &pki.snapshot(), &["scheduler.conf"]);
    let issued = base64_decode(&cluster.csr_field(name, "{.status.certificate}"));
    assert_eq!(embedded_cert_pem(pki, "scheduler.conf").as_bytes(), &issued[..]);

    // 3. the module front door: check mode creates nothing, then a real run renews both
    let before = pki.snapshot();
    let csrs_before = cluster.csrs();
    let args = json!({
        "state": "renew", "certificates": "controller-manager.conf,scheduler.conf", "force": "yes",
        "signer": "api", "approve": true, "api_timeout": "60s",
    });
    let mut check = args.clone();
    check["_ansible_check_mode"] = json!(true);
    let r = module_on(pki, check);
    assert_eq!(r["failed"], json!(null), "{r}");
    assert_eq!(r["changed"], json!(true), "{r}");
    assert_eq!(r["renewed"], json!(["controller-manager.conf", "scheduler.conf"]));
    assert!(r.get("csr_names").is_none(), "{r}");
    assert_eq!(cluster.csrs(), csrs_before, "check mode created requests");
    assert_unchanged(&before, &pki.snapshot(), "check mode");

    let r = module_on(pki, args);
    assert_eq!(r["failed"], json!(null), "{r}");
    assert_eq!(r["changed"], json!(true));
    assert_eq!(r["renewed"], json!(["controller-manager.conf", "scheduler.conf"]));
    let names: Vec<&str> = r["csr_names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(names[0].starts_with("kubeadm-certs-controller-manager.conf-"), "{names:?}");
    assert!(names[1].starts_with("kubeadm-certs-scheduler.conf-"), "{names:?}");
    for n in &names {
        assert!(cluster.csr_field(n, "{.status.certificate}").len() > 100, "{n} not issued");
    }
    assert_changed_only(&before, &pki.snapshot(), &["controller-manager.conf", "scheduler.conf"]);

    // 4. kube-controller-manager restarted on the controller-manager.conf renewed through the API
    // authenticates: the apiserver answers it, and the restarted controller manager signs the next request
    let log = cluster.run_dir().join("kube-controller-manager.log");
    cluster.kill("kube-controller-manager");
    let log_start = std::fs::metadata(&log).unwrap().len() as usize;
    cluster.script("start");
    let kcm_conf = pki.kube().join("controller-manager.conf");
    let out =
        Command::new("kubectl").arg("--kubeconfig").arg(&kcm_conf).args(["get", "--raw", "/api"]).output().unwrap();
    assert!(out.status.success(), "the renewed controller-manager.conf does not authenticate: {}", stderr(&out));
    let (code, stdout, err) = run_on(
        pki,
        &["renew", "scheduler.conf", "--force", "--use-api", "--approve", "--api-timeout", "90s", "-o", "json"],
    );
    assert_eq!(code, 0, "the restarted kube-controller-manager did not sign: {err}\n{}", cluster.logs());
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["renewed"], json!(["scheduler.conf"]));
    let new_log = String::from_utf8_lossy(&std::fs::read(&log).unwrap()[log_start..]).into_owned();
    assert!(!new_log.contains("Unauthorized") && !new_log.contains("x509:"), "{new_log}");
}

#[test]
fn refusals_denials_and_timeouts_change_nothing_and_leave_no_requests() {
    let cluster = Cluster::start("127.0.0.52");
    let pki = &cluster.pki;
    let before = pki.snapshot();
    let csrs_before = cluster.csrs();

    // what the built-in signer cannot issue is refused before anything is created
    for (name, why) in [
        ("admin.conf", "O=system:masters"),
        ("apiserver-kubelet-client", "O=system:masters"),
        ("front-proxy-client", "front-proxy-ca"),
        ("apiserver", "serving certificate"),
        ("etcd-healthcheck-client", "etcd-ca"),
    ] {
        let (code, _, err) = run_on(pki, &["renew", name, "--force", "--use-api", "--approve"]);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.contains(name) && err.contains(why), "{name}: {err}");
    }
    let r = module_on(
        pki,
        json!({"state": "renew", "certificates": ["admin.conf", "scheduler.conf"], "force": true, "signer": "api"}),
    );
    assert_eq!(r["failed"], json!(true), "{r}");
    assert!(r["msg"].as_str().unwrap().contains("system:masters"), "{r}");
    assert_eq!(cluster.csrs(), csrs_before, "a refusal created requests");
    assert_unchanged(&before, &pki.snapshot(), "refusals");

    // denied by a second actor: the other request was approved and issued, yet nothing is installed and
    // both requests are deleted
    let child =
        renew_cmd(pki, &["controller-manager.conf", "scheduler.conf", "--force", "--use-api", "--api-timeout", "90s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    let new = cluster.wait_for_new_csrs(&csrs_before, 2);
    let (cm, sched) = (&new[0], &new[1]);
    assert!(
        cm.starts_with("kubeadm-certs-controller-manager.conf-") && sched.starts_with("kubeadm-certs-scheduler.conf-")
    );
    cluster.kubectl(&["certificate", "approve", cm]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.csr_field(cm, "{.status.certificate}").is_empty() {
        assert!(Instant::now() < deadline, "{cm} not issued");
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.kubectl(&["certificate", "deny", sched]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("certificate signing request {sched} (scheduler.conf) was denied: KubectlDeny")),
        "{err}"
    );
    assert!(err.contains("deleted the certificate signing requests") && err.contains(cm.as_str()), "{err}");
    assert_eq!(cluster.csrs(), csrs_before, "requests left behind after a denial");
    assert_unchanged(&before, &pki.snapshot(), "denied");

    // nobody approves: a timeout, and the request is deleted
    let t0 = Instant::now();
    let (code, _, err) = run_on(pki, &["renew", "scheduler.conf", "--force", "--use-api", "--api-timeout", "3s"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("timed out after 3s") && err.contains("is not approved"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert_eq!(cluster.csrs(), csrs_before, "requests left behind after a timeout");
    assert_unchanged(&before, &pki.snapshot(), "timeout");

    // an apiserver not vouched for by the kubeconfig's CA is not talked to
    let wrong_ca = pki.root().join("wrong-ca.conf");
    let fp_ca = String::from_utf8(pki.read("pki/front-proxy-ca.crt")).unwrap();
    let mut kc: serde_norway::Value = serde_norway::from_slice(&pki.read("admin.conf")).unwrap();
    kc["clusters"][0]["cluster"]["certificate-authority-data"] = base64_encode(fp_ca.as_bytes()).into();
    std::fs::write(&wrong_ca, serde_norway::to_string(&kc).unwrap()).unwrap();
    let (code, _, err) = run_on(
        pki,
        &[
            "renew",
            "scheduler.conf",
            "--force",
            "--use-api",
            "--approve",
            "--api-kubeconfig",
            wrong_ca.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot talk to the apiserver at https://127.0.0.52:6443") && err.contains("certificate"),
        "{err}"
    );
    assert_eq!(cluster.csrs(), csrs_before);
    assert_unchanged(&before, &pki.snapshot(), "wrong CA");

    // the apiserver goes away while we wait (a restart): waited out, then the approval goes through
    let csrs_now = cluster.csrs();
    let child = renew_cmd(pki, &["scheduler.conf", "--force", "--use-api", "--api-timeout", "120s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let name = &cluster.wait_for_new_csrs(&csrs_now, 1)[0];
    cluster.kill("kube-apiserver");
    cluster.wait_for_a_request_while_down(child.id());
    cluster.script("start");
    cluster.kubectl(&["certificate", "approve", name]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", stderr(&out), cluster.logs());
    assert_changed_only(&before, &pki.snapshot(), &["scheduler.conf"]);
    let before = pki.snapshot();

    // a signer of the user's choosing (the test plays it, signing with OpenSSL): whatever it returns, only a
    // certificate that chains to the right CA on disk is installed
    for (ca, installs) in [("ca", false), ("front-proxy-ca", true)] {
        let csrs_before = cluster.csrs();
        let child = renew_cmd(
            pki,
            &[
                "front-proxy-client",
                "--force",
                "--use-api",
                "--signer-name",
                "example.com/front-proxy",
                "--api-timeout",
                "90s",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let name = &cluster.wait_for_new_csrs(&csrs_before, 1)[0];
        assert_eq!(cluster.csr_field(name, "{.spec.signerName}"), "example.com/front-proxy");
        cluster.kubectl(&["certificate", "approve", name]);
        cluster.sign_as_external_signer(name, ca);
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        if installs {
            assert!(out.status.success(), "{err}");
            assert_changed_only(
                &before,
                &pki.snapshot(),
                &["pki/front-proxy-client.crt", "pki/front-proxy-client.key"],
            );
            let issued = base64_decode(&cluster.csr_field(name, "{.status.certificate}"));
            assert_eq!(pki.read("pki/front-proxy-client.crt"), issued);
        } else {
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(err.contains("front-proxy-client cannot be renewed: the new certificate is wrong"), "{err}");
            assert_unchanged(&before, &pki.snapshot(), "signed by the wrong CA");
            assert_eq!(cluster.csrs(), csrs_before, "the request of a refused certificate was left behind");
        }
    }

    // `all`: what the built-in signer can issue is renewed, the rest skipped with the reason
    let before = pki.snapshot();
    let (code, stdout, err) = run_on(pki, &["renew", "all", "--force", "--use-api", "--approve", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["renewed"], json!(["controller-manager.conf", "scheduler.conf"]));
    let warnings = v["warnings"].to_string();
    for skipped in ["admin.conf: skipped", "front-proxy-client: skipped", "etcd-server: skipped", "apiserver: skipped"]
    {
        assert!(warnings.contains(skipped), "{skipped}: {warnings}");
    }
    assert_changed_only(&before, &pki.snapshot(), &["controller-manager.conf", "scheduler.conf"]);
}

#[test]
fn an_unreachable_apiserver_is_a_clean_error_and_check_mode_never_connects() {
    // nothing listens on 127.0.0.53
    let pki = kubeadm_pki("std", "cp1", "127.0.0.53");
    let before = pki.snapshot();
    let (code, _, err) = run_on(&pki, &["renew", "scheduler.conf", "--force", "--use-api", "--approve"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot talk to the apiserver at https://127.0.0.53:6443"), "{err}");
    assert!(err.contains("no file was changed"), "{err}");
    let r =
        module_on(&pki, json!({"state": "renew", "certificates": ["scheduler.conf"], "force": true, "signer": "api"}));
    assert_eq!(r["failed"], json!(true), "{r}");
    assert!(r["msg"].as_str().unwrap().contains("https://127.0.0.53:6443"), "{r}");
    assert_unchanged(&before, &pki.snapshot(), "unreachable");

    let (code, stdout, err) = run_on(&pki, &["renew", "all", "--force", "--use-api", "--check", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["renewed"], json!(["controller-manager.conf", "scheduler.conf"]));
    assert_unchanged(&before, &pki.snapshot(), "check mode");

    // credentials that cannot be used are said before anything else, in check mode too
    let no_ca = pki.root().join("no-ca.conf");
    let mut kc: serde_norway::Value = serde_norway::from_slice(&pki.read("admin.conf")).unwrap();
    kc["clusters"][0]["cluster"].as_mapping_mut().unwrap().remove("certificate-authority-data");
    std::fs::write(&no_ca, serde_norway::to_string(&kc).unwrap()).unwrap();
    let (code, _, err) = run_on(
        &pki,
        &["renew", "scheduler.conf", "--force", "--use-api", "--check", "--api-kubeconfig", no_ca.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no-ca.conf") && err.contains("cannot be verified"), "{err}");
}

/// `admin.conf` of `pki` with `edit` applied, written beside it as `name`; its server is `server`.
fn api_kubeconfig(pki: &Pki, name: &str, server: &str, edit: impl FnOnce(&mut serde_norway::Value)) -> PathBuf {
    let mut kc: serde_norway::Value = serde_norway::from_slice(&pki.read("admin.conf")).unwrap();
    kc["clusters"][0]["cluster"]["server"] = server.into();
    edit(&mut kc);
    let path = pki.kube().join(name);
    std::fs::write(&path, serde_norway::to_string(&kc).unwrap()).unwrap();
    path
}

/// A TCP listener on loopback that accepts connections and says nothing: far enough for a client to
/// build its TLS session. Returns its `https://` address.
fn silent_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    format!("https://{addr}")
}

fn ec_key_pem() -> String {
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout"])
}

#[test]
fn an_unusable_client_key_in_the_api_kubeconfig_is_a_clear_error() {
    let pki = synthetic_pki("ecdsa-p256");
    let server = silent_server();
    let pem_garbage = "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n";
    let other_key = ec_key_pem();
    for (name, key, problem) in [
        ("garbage.conf", pem_garbage.to_string(), "client-key-data: not a private key"),
        ("other-key.conf", other_key, "client-key-data does not match client-certificate-data"),
    ] {
        let kc = api_kubeconfig(&pki, name, &server, |kc| {
            kc["users"][0]["user"]["client-key-data"] = base64_encode(key.as_bytes()).into();
        });
        let before = pki.snapshot();
        let assert = bin()
            .args(["renew", "scheduler.conf", "--force", "--use-api", "--api-timeout", "10s", "--api-kubeconfig"])
            .arg(&kc)
            .args(pki.dirs())
            .timeout(Duration::from_secs(120))
            .assert()
            .code(1);
        let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(err.contains(&format!("{}: ", kc.display())) && err.contains(problem), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert_unchanged(&before, &pki.snapshot(), name);
    }
}

#[test]
fn a_certificate_authority_file_that_is_a_fifo_is_refused_at_once() {
    let pki = synthetic_pki("ecdsa-p256");
    let fifo = pki.kube().join("ca-fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let kc = api_kubeconfig(&pki, "fifo-ca.conf", "https://127.0.0.1:1", |kc| {
        let cluster = kc["clusters"][0]["cluster"].as_mapping_mut().unwrap();
        cluster.remove("certificate-authority-data");
        cluster.insert("certificate-authority".into(), "ca-fifo".into());
    });
    let before = pki.snapshot();
    // the timeout is a safety net that fails the test (a FIFO blocks its reader until a writer comes)
    let assert = bin()
        .args(["renew", "scheduler.conf", "--force", "--use-api", "--api-kubeconfig"])
        .arg(&kc)
        .args(pki.dirs())
        .timeout(Duration::from_secs(60))
        .assert();
    let out = assert.get_output();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "still reading the FIFO after 60 s, or failed otherwise: {err}");
    assert!(err.contains(&format!("{}: is not a regular file", fifo.display())), "{err}");
    assert_unchanged(&before, &pki.snapshot(), "a FIFO as the CA file");
    // the lock was released: a run right after is not kept waiting
    let (code, _, err) = run_on(&pki, &["renew", "scheduler.conf", "--force", "--lock-timeout", "0s"]);
    assert_eq!(code, 0, "{err}");
}
