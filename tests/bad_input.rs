//! Bad input: each case is a clear error that names the file and the problem, a non-zero exit (1, or 2 for
//! usage) or `failed: true`, and a PKI that is byte-for-byte what it was.

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// Runs `args` on the PKI; asserts the exit code, that stderr names every `needles`, and that nothing
/// under etc/kubernetes changed.
#[track_caller]
fn refused(pki: &Pki, args: &[&str], code: i32, needles: &[&str]) {
    let before = pki.snapshot();
    let (got, out, err) = run_on(pki, args);
    assert_eq!(got, code, "{args:?}: exit {got}\nstdout: {out}\nstderr: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr does not name {n:?}:\n{err}");
    }
    assert_unchanged(&before, &pki.snapshot(), &format!("{args:?}"));
}

fn write(pki: &Pki, rel: &str, bytes: &[u8]) {
    std::fs::write(pki.kube().join(rel), bytes).unwrap();
}

const RENEW_ALL: &[&str] = &["renew", "all", "--force"];

#[test]
fn corrupt_pem() {
    let pki = std_pki();
    let mut text = String::from_utf8(pki.read("pki/apiserver.crt")).unwrap();
    text.replace_range(200..240, &"!".repeat(40));
    write(&pki, "pki/apiserver.crt", text.as_bytes());
    refused(&pki, RENEW_ALL, 1, &["pki/apiserver.crt", "corrupt PEM"]);
    refused(&pki, &["check"], 1, &["pki/apiserver.crt"]);
    // a PEM cut in half (no END line)
    let pki = std_pki();
    let text = pki.read("pki/etcd/peer.crt");
    write(&pki, "pki/etcd/peer.crt", &text[..text.len() / 2]);
    refused(&pki, RENEW_ALL, 1, &["pki/etcd/peer.crt"]);
}

#[test]
fn truncated_der() {
    let pki = std_pki();
    let der = cert_der(&pki, "front-proxy-client");
    write(&pki, "pki/front-proxy-client.crt", &der[..der.len() - 100]);
    refused(&pki, RENEW_ALL, 1, &["pki/front-proxy-client.crt", "not a valid X.509 certificate"]);
    // the whole DER is fine, though: a DER file is read like kubeadm's PEM
    let pki = std_pki();
    write(&pki, "pki/front-proxy-client.crt", &der);
    let (code, _, err) = run_on(&pki, &["check", "front-proxy-client"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn key_that_does_not_match_its_certificate() {
    let pki = std_pki();
    let other = pki.read("pki/front-proxy-client.key");
    write(&pki, "pki/apiserver.key", &other);
    refused(&pki, RENEW_ALL, 1, &["pki/apiserver.key", "does not match", "apiserver.crt"]);
    // even when only another certificate is due: a PKI that does not hold together is not touched
    refused(&pki, &["renew", "scheduler.conf", "apiserver", "--force"], 1, &["pki/apiserver.key"]);
    // a kubeconfig whose key and certificate differ
    let pki = std_pki();
    let admin = String::from_utf8(pki.read("admin.conf")).unwrap();
    let sched = String::from_utf8(pki.read("scheduler.conf")).unwrap();
    let key_line = |s: &str| s.lines().find(|l| l.contains("client-key-data")).unwrap().to_string();
    write(&pki, "admin.conf", admin.replace(&key_line(&admin), &key_line(&sched)).as_bytes());
    refused(&pki, RENEW_ALL, 1, &["admin.conf", "client-key-data does not match"]);
}

#[test]
fn certificate_not_issued_by_the_ca_on_disk() {
    let pki = std_pki();
    let stranger = kubeadm_pki("std", "cp9", "127.0.0.19");
    write(&pki, "pki/apiserver.crt", &stranger.read("pki/apiserver.crt"));
    write(&pki, "pki/apiserver.key", &stranger.read("pki/apiserver.key"));
    refused(&pki, RENEW_ALL, 1, &["pki/apiserver.crt", "not issued by the CA", "pki/ca.crt"]);
    refused(&pki, &["check"], 1, &["pki/apiserver.crt", "not issued by the CA"]);
    // same subject and issuer name, other CA key: the signature decides
    let pki = std_pki();
    write(&pki, "pki/etcd/server.crt", &stranger.read("pki/etcd/server.crt"));
    write(&pki, "pki/etcd/server.key", &stranger.read("pki/etcd/server.key"));
    refused(&pki, RENEW_ALL, 1, &["pki/etcd/server.crt", "does not verify its signature"]);
}

#[test]
fn ca_key_that_does_not_match_the_ca() {
    let pki = std_pki();
    let stranger = kubeadm_pki("std", "cp9", "127.0.0.19");
    write(&pki, "pki/front-proxy-ca.key", &stranger.read("pki/front-proxy-ca.key"));
    refused(&pki, RENEW_ALL, 1, &["pki/front-proxy-ca.key", "does not match", "front-proxy-ca.crt"]);
}

#[test]
fn kubeconfig_without_current_context_or_embedded_data() {
    let pki = std_pki();
    let admin = String::from_utf8(pki.read("admin.conf")).unwrap();
    let no_ctx: String =
        admin.lines().filter(|l| !l.starts_with("current-context:")).map(|l| format!("{l}\n")).collect();
    write(&pki, "admin.conf", no_ctx.as_bytes());
    refused(&pki, RENEW_ALL, 1, &["admin.conf", "no current-context"]);
    refused(&pki, &["check"], 1, &["admin.conf"]);

    let pki = std_pki();
    let ctx = admin.replace("current-context: kubernetes-admin@kubernetes", "current-context: elsewhere");
    write(&pki, "admin.conf", ctx.as_bytes());
    refused(&pki, RENEW_ALL, 1, &["admin.conf", "\"elsewhere\" is not in contexts"]);

    let pki = std_pki();
    let sched = String::from_utf8(pki.read("scheduler.conf")).unwrap();
    let by_path: String = sched
        .lines()
        .map(|l| {
            if l.contains("client-certificate-data") {
                "    client-certificate: /etc/kubernetes/pki/scheduler.crt".to_string()
            } else {
                l.to_string()
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write(&pki, "scheduler.conf", by_path.as_bytes());
    refused(
        &pki,
        RENEW_ALL,
        1,
        &["scheduler.conf", "no embedded client-certificate-data", "/etc/kubernetes/pki/scheduler.crt"],
    );

    let pki = std_pki();
    write(&pki, "controller-manager.conf", b"apiVersion: v1\nkind: Config\n  clusters: [\n");
    refused(&pki, RENEW_ALL, 1, &["controller-manager.conf", "not a valid kubeconfig"]);
}

#[test]
fn unreadable_file() {
    let pki = std_pki();
    let key = pki.certs().join("apiserver.key");
    let before = pki.snapshot();
    let mut args: Vec<String> = vec!["renew".into(), "all".into(), "--force".into()];
    args.extend(pki.dirs());
    let out = if is_root() {
        // root reads everything: run as nobody on a PKI nobody owns, but for one root-only key
        let st = Command::new("chown").args(["-R", "65534:65534"]).arg(pki.root()).status().unwrap();
        assert!(st.success());
        std::fs::set_permissions(pki.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&key, Some(0), Some(0)).unwrap();
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin_path())
            .args(&args)
            .output()
            .unwrap()
    } else {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o000)).unwrap();
        bin().args(&args).output().unwrap()
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pki/apiserver.key") && err.contains("ermission denied"), "{err}");
    let after = pki.snapshot();
    let changed: Vec<_> = before.changed(&after);
    assert!(changed.is_empty(), "{changed:?}");
}

#[test]
fn usage_errors_exit_2() {
    let pki = std_pki();
    refused(&pki, &["renew", "apiservr"], 2, &["unknown certificate name \"apiservr\"", "apiserver"]);
    refused(&pki, &["check", "etcd"], 2, &["\"etcd\""]);
    refused(&pki, &["renew", "--renew-before", "90days"], 2, &["90days"]);
    refused(&pki, &["renew", "--validity=-1d"], 2, &["-1d"]);
    refused(&pki, &["check", "--fail-within", "soon"], 2, &["soon"]);
    refused(&pki, &["check", "--at", "tomorrow"], 2, &["tomorrow"]);
    refused(&pki, &["renew", "--key-algorithm", "dsa"], 2, &["dsa"]);
    refused(&pki, &["renew", "--extra-san", "not a name"], 2, &["not a name"]);
    refused(&pki, &["renew", "--frobnicate"], 2, &["--frobnicate"]);
}

#[test]
fn named_but_missing_is_an_error_missing_in_all_is_not() {
    let pki = kubeadm_pki("extetcd", "cp1", "127.0.0.11");
    refused(&pki, &["renew", "etcd-server", "--force"], 1, &["etcd-server", "pki/etcd/server.crt", "does not exist"]);
    let (code, out, err) = run_on(&pki, &["renew", "all", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("!MISSING! etcd-server"), "{out}");
}

#[test]
fn module_failures_are_one_json_object_and_change_nothing() {
    let pki = std_pki();
    let before = pki.snapshot();
    let v = module_on(&pki, serde_json::json!({"state": "renew", "forse": true}));
    assert_eq!(v["failed"], true);
    assert!(v["msg"].as_str().unwrap().contains("forse"), "{v}");
    let v = module_on(&pki, serde_json::json!({"state": "renew", "force": "sometimes"}));
    assert_eq!(v["failed"], true);
    assert!(v["msg"].as_str().unwrap().contains("'force'"), "{v}");
    let v = module_on(&pki, serde_json::json!({"state": "renew", "renew_before": "soon"}));
    assert_eq!(v["failed"], true);
    assert!(v["msg"].as_str().unwrap().contains("renew_before") && v["msg"].as_str().unwrap().contains("soon"), "{v}");
    let v = module_on(&pki, serde_json::json!({"state": "renew", "certificates": ["apiserver", "nope"]}));
    assert_eq!(v["failed"], true);
    assert!(v["msg"].as_str().unwrap().contains("\"nope\""), "{v}");
    write(&pki, "pki/apiserver.key", &pki.read("pki/front-proxy-client.key"));
    let before_key = pki.snapshot();
    let v = module_on(&pki, serde_json::json!({"state": "renew", "force": true}));
    assert_eq!(v["failed"], true);
    assert!(v["msg"].as_str().unwrap().contains("pki/apiserver.key"), "{v}");
    assert_unchanged(&before_key, &pki.snapshot(), "module renew on a broken PKI");
    assert_eq!(before.changed(&pki.snapshot()).len(), 1, "only the key the test replaced");

    // an args file that is not JSON
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("args");
    std::fs::write(&f, "state=renew force=yes").unwrap();
    let out = bin().arg(&f).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failed"], true);
    assert!(v["msg"].as_str().unwrap().contains(f.to_str().unwrap()), "{v}");
}

#[test]
fn a_wrong_directory_is_an_error_not_all_missing() {
    let (code, _, err) = run(&["check", "--cert-dir", "/nonexistent/pki", "--kubeconfig-dir", "/nonexistent"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/pki") && err.contains("No such file"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let d = empty.path().to_str().unwrap();
    let (code, _, err) = run(&["renew", "--cert-dir", d, "--kubeconfig-dir", d]);
    assert_eq!(code, 1);
    assert!(err.contains(d) && err.contains("no kubeadm PKI here"), "{err}");
    let pki = std_pki();
    let (code, _, err) = run(&["check", "--cert-dir", pki.certs().join("ca.crt").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("ca.crt: is not a directory"), "{err}");
}

// ---------------------------------------------------------------- check sees a broken PKI (issue 9)

/// `check` on a PKI that fails whatever the dates say: kubeadm's document on stdout unchanged (as on the
/// healthy PKI), each `needles` on stderr, exit 1, `failed` and `warnings` from the module, nothing changed.
#[track_caller]
fn check_fails(pki: &Pki, healthy: &[String; 3], needles: &[&str]) {
    let before = pki.snapshot();
    for (i, format) in ["table", "json", "yaml"].into_iter().enumerate() {
        let (code, out, err) = run_on(pki, &["check", "-o", format]);
        assert_eq!(code, 1, "-o {format}: a broken PKI passed check:\n{out}{err}");
        if format == "table" {
            assert_eq!(out, healthy[i], "kubeadm's table stays as it is");
        } else {
            // residualTime may tick by a second between the runs; the consistency section (not kubeadm's) names
            // this PKI's own paths and what could not be read, which differ from the healthy PKI's
            let kubeadms = |s: &str| {
                let mut doc: serde_json::Value = serde_norway::from_str(s).unwrap();
                doc.as_object_mut().unwrap().remove("consistency");
                doc.to_string().chars().filter(|c| !c.is_ascii_digit()).collect::<String>()
            };
            assert_eq!(kubeadms(&out), kubeadms(&healthy[i]), "-o {format}: kubeadm's document stays as it is");
        }
        for n in needles {
            assert!(err.contains(n), "-o {format}: stderr does not say {n:?}:\n{err}");
        }
    }
    // broken beats expiring: 1, not 3
    let (code, _, _) = run_on(pki, &["check", "--fail-within", "100y"]);
    assert_eq!(code, 1);
    let v = module_on(pki, serde_json::json!({"state": "check"}));
    assert_eq!(v["failed"], true, "{v}");
    let warnings = v["warnings"].to_string();
    for n in needles {
        assert!(warnings.contains(n), "module warnings do not say {n:?}: {v}");
    }
    assert!(v["msg"].as_str().unwrap().contains("the PKI is broken"), "{v}");
    assert_eq!(v["certificates"].as_array().map(Vec::len), Some(11), "the report is still there: {v}");
    assert_unchanged(&before, &pki.snapshot(), "check");
}

fn healthy_outputs(pki: &Pki) -> [String; 3] {
    ["table", "json", "yaml"].map(|format| {
        let (code, out, err) = run_on(pki, &["check", "-o", format]);
        assert_eq!(code, 0, "{err}");
        assert!(err.is_empty(), "a healthy PKI warns: {err}");
        out
    })
}

#[test]
fn check_fails_on_a_key_that_does_not_match_its_certificate() {
    let pki = std_pki();
    let healthy = healthy_outputs(&pki);
    write(&pki, "pki/apiserver.key", &pki.read("pki/front-proxy-client.key"));
    check_fails(&pki, &healthy, &["apiserver", "pki/apiserver.key", "does not match", "pki/apiserver.crt"]);

    // a kubeconfig whose embedded key is another's
    let pki = std_pki();
    let admin = String::from_utf8(pki.read("admin.conf")).unwrap();
    let sched = String::from_utf8(pki.read("scheduler.conf")).unwrap();
    let key_line = |s: &str| s.lines().find(|l| l.contains("client-key-data")).unwrap().to_string();
    write(&pki, "admin.conf", admin.replace(&key_line(&admin), &key_line(&sched)).as_bytes());
    check_fails(&pki, &healthy, &["admin.conf", "client-key-data does not match"]);

    // a CA key that is not the CA's
    let pki = std_pki();
    let stranger = kubeadm_pki("std", "cp9", "127.0.0.19");
    write(&pki, "pki/etcd/ca.key", &stranger.read("pki/etcd/ca.key"));
    check_fails(&pki, &healthy, &["etcd-ca", "pki/etcd/ca.key", "does not match", "pki/etcd/ca.crt"]);

    // a certificate whose key is gone
    let pki = std_pki();
    std::fs::remove_file(pki.certs().join("etcd/peer.key")).unwrap();
    check_fails(&pki, &healthy, &["etcd-peer", "pki/etcd/peer.key is missing"]);
}

#[test]
fn check_fails_when_the_ca_of_present_certificates_is_missing() {
    let pki = std_pki();
    std::fs::remove_file(pki.certs().join("front-proxy-ca.crt")).unwrap();
    let (code, table, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 1, "{table}{err}");
    assert!(table.contains("!MISSING! front-proxy-ca"), "kubeadm's table as it is:\n{table}");
    assert!(
        err.contains("front-proxy-ca")
            && err.contains("pki/front-proxy-ca.crt is missing")
            && err.contains("front-proxy-client"),
        "{err}"
    );
    let v = module_on(&pki, serde_json::json!({"state": "check"}));
    assert_eq!(v["failed"], true, "{v}");
    assert!(v["warnings"].to_string().contains("front-proxy-ca.crt is missing"), "{v}");
    // a CA whose certificates are all absent too (external etcd) is no fault
    let pki = kubeadm_pki("extetcd", "cp1", "127.0.0.11");
    let (code, _, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn check_by_a_user_who_cannot_read_a_key_warns_and_passes() {
    // a non-root user may run check (monitoring); a key only root may read says nothing about the pair
    assert!(is_root(), "this test changes owners: run the tests as root");
    let pki = std_pki();
    let st = Command::new("chown").args(["-R", "65534:65534"]).arg(pki.root()).status().unwrap();
    assert!(st.success());
    std::fs::set_permissions(pki.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = pki.certs().join("apiserver.key");
    std::os::unix::fs::chown(&key, Some(0), Some(0)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin_path())
        .arg("check")
        .args(pki.dirs())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("[warning] apiserver: cannot read")
            && err.contains("pki/apiserver.key")
            && err.contains("ermission denied"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one warning, for the one key: {err}");
}

/// Whether process `pid` holds an open descriptor on `dir` (check opens the cert dir only to lock it).
fn has_open(pid: u32, dir: &std::path::Path) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == dir)))
        .unwrap_or(false)
}

#[test]
fn check_judges_a_mismatch_again_once_the_renewal_holding_the_lock_is_done() {
    // a renewal renames the new key, then the new certificate: check reading between the two sees a mismatch
    let pki = std_pki();
    let good = pki.read("pki/apiserver.key");
    write(&pki, "pki/apiserver.key", &pki.read("pki/front-proxy-client.key"));
    let certs = std::fs::canonicalize(pki.certs()).unwrap();
    // the renewal's lock: exclusive, on the cert dir, held by this test
    let holder = std::fs::File::open(&certs).unwrap();
    holder.lock().unwrap();
    let child = Command::new(bin_path())
        .arg("check")
        .args(pki.dirs())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // it read the mismatch and now waits for the lock
    let start = std::time::Instant::now();
    while !has_open(child.id(), &certs) {
        assert!(start.elapsed().as_secs() < 30, "check never waited for the lock");
        std::thread::yield_now();
    }
    // the renewal completes its pair and releases the lock
    write(&pki, "pki/apiserver.key", &good);
    holder.unlock().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "a pair caught mid-renewal failed check: {err}");
    assert!(err.is_empty(), "{err}");
}

/// `kubeadm-certs SUBCOMMAND` alone is that subcommand, even where a file of that name lies in the working
/// directory: only a lone argument that names no subcommand is an Ansible args file. `sign` was missing
/// from that list: beside a file named `sign` it ran as the module and printed its JSON.
#[test]
fn a_subcommand_alone_beside_a_file_of_its_name_is_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sign"), "{}").unwrap();
    let out = bin().current_dir(dir.path()).arg("sign").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(serde_json::from_str::<serde_json::Value>(&stdout).is_err(), "ran as the module: {stdout}");
    assert_eq!(out.status.code(), Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("--csr-dir"), "not sign's usage error: {stderr}");
}
