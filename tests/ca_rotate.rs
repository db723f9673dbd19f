//! `rotate ca|etcd-ca|front-proxy-ca --phase trust|reissue|drop` on PKIs made by real kubeadm 1.20.2: a node goes
//! from its CA to a new one (a new key) in three steps, each read off the files (no state file), each changing
//! nothing when run again; `check` reports where it stands. Certificates are judged with `openssl verify` against
//! one CA certificate at a time (`-partial_chain`-free: the CA file given alone), never with the tool's own reader.

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A CA's files, and the PEM pairs and kubeconfigs it issues on a kubeadm 1.20 node.
struct Ca {
    crt: &'static str,
    leaves: &'static [&'static str],
    kubeconfigs: &'static [&'static str],
}

const CA: Ca = Ca {
    crt: "pki/ca.crt",
    leaves: &["pki/apiserver.crt", "pki/apiserver-kubelet-client.crt"],
    kubeconfigs: &["admin.conf", "controller-manager.conf", "kubelet.conf", "scheduler.conf"],
};
const ETCD_CA: Ca = Ca {
    crt: "pki/etcd/ca.crt",
    leaves: &[
        "pki/apiserver-etcd-client.crt",
        "pki/etcd/server.crt",
        "pki/etcd/peer.crt",
        "pki/etcd/healthcheck-client.crt",
    ],
    kubeconfigs: &[],
};

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn rotate(pki: &Pki, ca: &str, args: &[&str]) -> (i32, Value, String) {
    let kubelet = pki.kubelet().display().to_string();
    let mut all = vec!["rotate", ca];
    all.extend(args);
    all.extend(["--kubelet-dir", &kubelet, "-o", "json"]);
    let (code, out, err) = run_on(pki, &all);
    let v = if out.trim().is_empty() { Value::Null } else { json_of(&out) };
    (code, v, format!("{out}{err}"))
}

fn rotated(pki: &Pki, ca: &str, args: &[&str]) -> Value {
    let (code, v, said) = rotate(pki, ca, args);
    assert_eq!(code, 0, "rotate {ca} {args:?}: {said}");
    v
}

/// `check`'s `ca_rotation` item of one CA, through the module (which always carries it).
fn rotation_state(pki: &Pki, ca: &str) -> Value {
    let v = module_on(pki, serde_json::json!({"state": "check"}));
    assert_ne!(v["failed"], true, "{v}");
    v["ca_rotation"].as_array().unwrap().iter().find(|r| r["name"] == ca).cloned().unwrap_or(Value::Null)
}

/// The certificates of a PEM file, each as PEM of its own.
fn pems(bytes: &[u8]) -> Vec<String> {
    ::pem::parse_many(bytes).unwrap().iter().map(|p| ::pem::encode(p).replace("\r\n", "\n")).collect()
}

/// `openssl verify` of `cert` (a file) with `ca_pem` alone as the trust anchor.
fn verifies_under(ca_pem: &str, cert: &Path, tmp: &Path) -> bool {
    let anchor = tmp.join("anchor.pem");
    std::fs::write(&anchor, ca_pem).unwrap();
    Command::new("openssl").arg("verify").arg("-CAfile").arg(&anchor).arg(cert).output().unwrap().status.success()
}

fn client_cert_file(pki: &Pki, conf: &str, dir: &Path) -> PathBuf {
    let kc: serde_norway::Value = serde_norway::from_slice(&pki.read(conf)).unwrap();
    let user = &kc["users"][0]["user"];
    // kubelet.conf names the kubelet's file once its certificate was issued again (as kubeadm's kubelet-finalize does)
    if let Some(file) = user["client-certificate"].as_str() {
        return PathBuf::from(file);
    }
    let path = dir.join(format!("{conf}.crt"));
    std::fs::write(&path, base64_decode(user["client-certificate-data"].as_str().unwrap())).unwrap();
    path
}

fn ca_data(pki: &Pki, conf: &str) -> Vec<u8> {
    let kc: serde_norway::Value = serde_norway::from_slice(&pki.read(conf)).unwrap();
    base64_decode(kc["clusters"][0]["cluster"]["certificate-authority-data"].as_str().unwrap())
}

/// Every certificate `ca` issues on the node (PEM pairs and kubeconfigs' client certificates) verifies under
/// `anchor` alone.
fn all_issued_by(pki: &Pki, ca: &Ca, anchor: &str, tmp: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    for leaf in ca.leaves {
        if !verifies_under(anchor, &pki.kube().join(leaf), tmp) {
            bad.push(leaf.to_string());
        }
    }
    for conf in ca.kubeconfigs {
        if !verifies_under(anchor, &client_cert_file(pki, conf, tmp), tmp) {
            bad.push(conf.to_string());
        }
    }
    bad
}

#[test]
fn a_node_rotates_ca_in_three_steps_each_read_off_its_files_and_each_idempotent() {
    let pki = std_pki();
    let tmp = tempfile::tempdir().unwrap();
    let old = pki.read(CA.crt);
    let old_pem = pems(&old).remove(0);
    let old_key = pki.read("pki/ca.key");
    assert_eq!(rotation_state(&pki, "ca")["state"], "single");

    // a: trust both; the old CA still signs
    let v = rotated(&pki, "ca", &["--phase", "trust", "--generate"]);
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(
        (v["rotation"]["state_before"].as_str(), v["rotation"]["state_after"].as_str()),
        (Some("single"), Some("trusting"))
    );
    let bundle = pems(&pki.read(CA.crt));
    assert_eq!(bundle.len(), 2, "old and new");
    assert_eq!(bundle[0], old_pem, "the old one first: it still signs");
    let new_pem = bundle[1].clone();
    assert_eq!(pki.read("pki/ca.key"), old_key, "the signing key is not touched in phase a");
    let next = pki.certs().join("ca.next.key");
    assert_eq!(std::fs::metadata(&next).unwrap().permissions().mode() & 0o777, 0o600);
    let new_pub = openssl(&["x509", "-noout", "-pubkey", "-in", &write(tmp.path(), "new.pem", &new_pem)]);
    let next_pub = openssl(&["pkey", "-pubout", "-in", &next.display().to_string()]);
    assert_eq!(new_pub, next_pub, "ca.next.key is the new CA's key");
    let subj = |p: &str| openssl(&["x509", "-noout", "-subject", "-in", &write(tmp.path(), "s.pem", p)]);
    assert_eq!(subj(&new_pem), subj(&old_pem), "the same subject, a new key");
    assert_ne!(new_pub, openssl(&["pkey", "-pubout", "-in", &pki.certs().join("ca.key").display().to_string()]));
    for conf in CA.kubeconfigs {
        assert_eq!(ca_data(&pki, conf), pki.read(CA.crt), "{conf} trusts both");
    }
    assert!(all_issued_by(&pki, &CA, &old_pem, tmp.path()).is_empty(), "nothing is issued again in phase a");
    let state = rotation_state(&pki, "ca");
    assert_eq!(state["state"], "trusting", "{state}");
    assert_eq!(state["certificates"][0]["signing"], true, "{state}");
    let again = rotated(&pki, "ca", &["--phase", "trust", "--generate"]);
    assert_eq!(again["changed"], false, "a second phase a keeps the new CA made: {again}");
    assert_eq!(pems(&pki.read(CA.crt)), bundle);

    // b: the new CA signs, everything the old one issued here is issued again under it
    let v = rotated(&pki, "ca", &["--phase", "reissue"]);
    assert_eq!(v["rotation"]["state_after"], "reissued", "{v}");
    assert_eq!(pems(&pki.read(CA.crt)), vec![new_pem.clone(), old_pem.clone()], "the new one first");
    assert_eq!(pki.read("pki/ca.previous.key"), old_key, "the old key kept beside it");
    assert!(!next.exists(), "ca.next.key is ca.key now");
    let bad = all_issued_by(&pki, &CA, &new_pem, tmp.path());
    assert!(bad.is_empty(), "not issued by the new CA: {bad:?}");
    assert_eq!(all_issued_by(&pki, &CA, &old_pem, tmp.path()).len(), CA.leaves.len() + CA.kubeconfigs.len());
    let before = pki.snapshot();
    let again = rotated(&pki, "ca", &["--phase", "reissue"]);
    assert_eq!(again["changed"], false, "{again}");
    assert_unchanged(&before, &pki.snapshot(), "a second phase b");
    // the other CAs are not part of it
    assert!(all_issued_by(&pki, &ETCD_CA, &pems(&pki.read(ETCD_CA.crt))[0], tmp.path()).is_empty());

    // c: refused without a backup directory, then the old CA dropped and kept there
    let (code, _, said) = rotate(&pki, "ca", &["--phase", "drop"]);
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("--old-ca-backup"), "names the option: {said}");
    assert_eq!(pems(&pki.read(CA.crt)).len(), 2, "nothing dropped");
    let backup = tmp.path().join("old-ca");
    let v = rotated(&pki, "ca", &["--phase", "drop", "--old-ca-backup", &backup.display().to_string()]);
    assert_eq!(v["rotation"]["state_after"], "single", "{v}");
    assert_eq!(pems(&pki.read(CA.crt)), vec![new_pem.clone()]);
    assert!(!pki.certs().join("ca.previous.key").exists());
    assert_eq!(std::fs::read(backup.join("ca.key")).unwrap(), old_key);
    assert_eq!(std::fs::read_to_string(backup.join("ca.crt")).unwrap(), old_pem);
    assert_eq!(std::fs::metadata(backup.join("ca.key")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o700);
    for conf in CA.kubeconfigs {
        assert_eq!(pems(&ca_data(&pki, conf)), vec![new_pem.clone()], "{conf} trusts the new CA alone");
    }
    let before = pki.snapshot();
    let again = rotated(&pki, "ca", &["--phase", "drop", "--old-ca-backup", &backup.display().to_string()]);
    assert_eq!(again["changed"], false, "{again}");
    assert_unchanged(&before, &pki.snapshot(), "a second phase c");
    assert_eq!(rotation_state(&pki, "ca")["state"], "single");
    // kubeadm's own check still reads the node
    let (code, out, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p.display().to_string()
}

#[test]
fn a_second_node_gets_the_same_new_ca_and_a_worker_its_certificate_alone() {
    let first = std_pki();
    let second = std_pki();
    let tmp = tempfile::tempdir().unwrap();
    rotated(&first, "etcd-ca", &["--phase", "trust", "--generate"]);
    let new_pem = pems(&first.read(ETCD_CA.crt)).remove(1);
    let cert = write(tmp.path(), "new.crt", &new_pem);
    let key = first.certs().join("etcd/ca.next.key").display().to_string();

    // the certificate alone on a node that holds the CA key is refused: it could not sign in phase b
    let (code, _, said) = rotate(&second, "etcd-ca", &["--phase", "trust", "--next-ca-cert", &cert]);
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("next-ca-key") || said.contains("next_ca_key"), "{said}");
    // another key than the certificate's is refused naming both files
    let wrong = second.certs().join("etcd/ca.key").display().to_string();
    let (code, _, said) =
        rotate(&second, "etcd-ca", &["--phase", "trust", "--next-ca-cert", &cert, "--next-ca-key", &wrong]);
    assert_ne!(code, 0, "{said}");
    assert!(said.contains(&wrong) && said.contains(&cert), "{said}");
    assert_eq!(pems(&second.read(ETCD_CA.crt)).len(), 1, "nothing written");

    rotated(&second, "etcd-ca", &["--phase", "trust", "--next-ca-cert", &cert, "--next-ca-key", &key]);
    assert_eq!(second.read(ETCD_CA.crt), first.read(ETCD_CA.crt), "the same bundle on both nodes");
    // a different new CA for a node that trusts one already is refused
    let third = std_pki();
    rotated(&third, "etcd-ca", &["--phase", "trust", "--generate"]);
    let other = write(tmp.path(), "other.crt", &pems(&third.read(ETCD_CA.crt)).remove(1));
    let other_key = third.certs().join("etcd/ca.next.key").display().to_string();
    let (code, _, said) =
        rotate(&second, "etcd-ca", &["--phase", "trust", "--next-ca-cert", &other, "--next-ca-key", &other_key]);
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("another new CA"), "{said}");

    // a worker: ca.crt and kubelet.conf, no key
    let worker = std_pki();
    for f in std::fs::read_dir(worker.certs()).unwrap() {
        let p = f.unwrap().path();
        if p.file_name().unwrap() != "ca.crt" {
            let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir_all(&p));
        }
    }
    for conf in ["admin.conf", "controller-manager.conf", "scheduler.conf"] {
        std::fs::remove_file(worker.kube().join(conf)).unwrap();
    }
    rotated(&first, "ca", &["--phase", "trust", "--generate"]);
    let ca_new = write(tmp.path(), "ca-new.crt", &pems(&first.read(CA.crt)).remove(1));
    let ca_key = first.certs().join("ca.next.key").display().to_string();
    let (code, _, said) =
        rotate(&worker, "ca", &["--phase", "trust", "--next-ca-cert", &ca_new, "--next-ca-key", &ca_key]);
    assert_ne!(code, 0, "a worker gets no CA key: {said}");
    let v = rotated(&worker, "ca", &["--phase", "trust", "--next-ca-cert", &ca_new]);
    assert_eq!(v["rotation"]["state_after"], "trusting", "{v}");
    assert_eq!(ca_data(&worker, "kubelet.conf"), worker.read(CA.crt), "kubelet.conf trusts both");
    // its kubelet's client certificate (kubelet.conf's, by the old CA) keeps it from dropping the old CA
    let (code, _, said) = rotate(&worker, "ca", &["--phase", "drop"]);
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("kubelet"), "{said}");
}

/// The backup is the last copy of the old CA's key: a directory someone else could write (a link planted where the
/// key is to be saved, pointing at `<base>.previous.key`, read as "already saved", and the drop then deleted the
/// only copy), or a directory of the PKI, is refused before anything changes.
#[test]
fn drop_saves_the_old_key_only_in_a_directory_nobody_else_can_write() {
    let pki = std_pki();
    let tmp = tempfile::tempdir().unwrap();
    rotated(&pki, "front-proxy-ca", &["--phase", "trust", "--generate"]);
    rotated(&pki, "front-proxy-ca", &["--phase", "reissue"]);
    let previous = pki.certs().join("front-proxy-ca.previous.key");
    let old_key = std::fs::read(&previous).unwrap();
    let refused = |dir: &Path, why: &str| {
        let before = pki.snapshot();
        let (code, _, said) =
            rotate(&pki, "front-proxy-ca", &["--phase", "drop", "--old-ca-backup", &dir.display().to_string()]);
        assert_ne!(code, 0, "{said}");
        assert!(said.contains(why), "says why ({why}): {said}");
        assert_unchanged(&before, &pki.snapshot(), "a refused drop");
        assert_eq!(std::fs::read(&previous).unwrap(), old_key, "the old key is still on the node");
    };

    let linked = tmp.path().join("linked");
    std::fs::create_dir(&linked).unwrap();
    std::os::unix::fs::symlink(&previous, linked.join("front-proxy-ca.key")).unwrap();
    refused(&linked, "is a symbolic link");
    assert!(!linked.join("front-proxy-ca.crt").exists(), "nothing written to the backup either");

    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(&open, "writable by other users");
    let below = open.join("backup");
    refused(&below, "writable by other users");
    assert!(!below.exists());

    refused(&pki.certs(), "is the cert dir");

    let good = tmp.path().join("good").join("backup");
    rotated(&pki, "front-proxy-ca", &["--phase", "drop", "--old-ca-backup", &good.display().to_string()]);
    assert_eq!(std::fs::read(good.join("front-proxy-ca.key")).unwrap(), old_key);
    assert!(!previous.exists());
}

/// etcd-ca's files are `etcd/ca.*`: its old pair is kept as `DIR/etcd/ca.crt` and `DIR/etcd/ca.key`, the
/// subdirectory made 0700 like DIR (the real HA cluster's drop failed with "DIR/etcd/.ca.crt.tmp: cannot write: No
/// such file or directory" once DIR alone was made).
#[test]
fn etcd_ca_drop_keeps_the_old_pair_under_the_backups_etcd_directory() {
    let pki = std_pki();
    let tmp = tempfile::tempdir().unwrap();
    let old_pem = pems(&pki.read(ETCD_CA.crt)).remove(0);
    let old_key = pki.read("pki/etcd/ca.key");
    rotated(&pki, "etcd-ca", &["--phase", "trust", "--generate"]);
    rotated(&pki, "etcd-ca", &["--phase", "reissue"]);
    let backup = tmp.path().join("etcd-ca-old");
    let v = rotated(&pki, "etcd-ca", &["--phase", "drop", "--old-ca-backup", &backup.display().to_string()]);
    assert_eq!(v["rotation"]["state_after"], "single", "{v}");
    assert_eq!(std::fs::read(backup.join("etcd/ca.key")).unwrap(), old_key);
    assert_eq!(std::fs::read_to_string(backup.join("etcd/ca.crt")).unwrap(), old_pem);
    for (path, mode) in [(backup.clone(), 0o700), (backup.join("etcd"), 0o700), (backup.join("etcd/ca.key"), 0o600)] {
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, mode, "{}", path.display());
    }
    assert!(!pki.certs().join("etcd/ca.previous.key").exists());
}

#[test]
fn renew_refuses_what_the_old_ca_issued_unless_told_and_drop_names_what_is_left() {
    let pki = std_pki();
    let tmp = tempfile::tempdir().unwrap();
    rotated(&pki, "front-proxy-ca", &["--phase", "trust", "--generate"]);
    let leaf_before = pki.read("pki/front-proxy-client.crt");
    let key_before = pki.read("pki/front-proxy-client.key");
    rotated(&pki, "front-proxy-ca", &["--phase", "reissue"]);
    // put the old leaf back, as a node restored from a backup would have it: issued by the old CA
    std::fs::write(pki.certs().join("front-proxy-client.crt"), &leaf_before).unwrap();
    std::fs::write(pki.certs().join("front-proxy-client.key"), &key_before).unwrap();
    let state = rotation_state(&pki, "front-proxy-ca");
    assert_eq!(state["state"], "reissuing", "{state}");
    assert_eq!(state["issued_by_other"][0]["name"], "front-proxy-client", "{state}");
    // check's table says so after kubeadm's two
    let (_, table, _) = run_on(&pki, &["check"]);
    assert!(table.contains("CA ROTATION") && table.contains("reissuing"), "{table}");
    assert!(table.contains("front-proxy-client") && table.contains("second certificate"), "{table}");

    let backup = tmp.path().join("b").display().to_string();
    let (code, _, said) = rotate(&pki, "front-proxy-ca", &["--phase", "drop", "--old-ca-backup", &backup]);
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("front-proxy-client") && said.contains("still issued by the old CA"), "{said}");

    let (code, out, err) = run_on(&pki, &["renew", "front-proxy-client", "-o", "json"]);
    assert_ne!(code, 0, "renew refuses a certificate the CA file's first certificate did not issue: {out}{err}");
    let (code, out, err) = run_on(&pki, &["renew", "all", "--resign-old-issuer", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json_of(&out);
    assert_eq!(v["renewed"], serde_json::json!(["front-proxy-client"]), "only what the old CA issued: {out}");
    let new_pem = pems(&pki.read("pki/front-proxy-ca.crt")).remove(0);
    assert!(verifies_under(&new_pem, &pki.certs().join("front-proxy-client.crt"), tmp.path()));
    rotated(&pki, "front-proxy-ca", &["--phase", "drop", "--old-ca-backup", &backup]);
    assert_eq!(pems(&pki.read("pki/front-proxy-ca.crt")), vec![new_pem]);
}

#[test]
fn check_mode_writes_nothing_and_says_what_each_phase_would_do() {
    let pki = std_pki();
    let before = pki.snapshot();
    let v = rotated(&pki, "ca", &["--phase", "trust", "--generate", "--check"]);
    assert_eq!(v["changed"], true, "{v}");
    assert_unchanged(&before, &pki.snapshot(), "phase a in check mode");
    rotated(&pki, "ca", &["--phase", "trust", "--generate"]);
    let before = pki.snapshot();
    let v = rotated(&pki, "ca", &["--phase", "reissue", "--check"]);
    assert_eq!(v["changed"], true, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("apiserver"), "names what it would issue again: {v}");
    assert_unchanged(&before, &pki.snapshot(), "phase b in check mode");
    // the module takes the same step
    let v = module_on(
        &pki,
        serde_json::json!({"state": "rotate", "certificates": ["ca"], "phase": "reissue",
        "kubelet_dir": pki.kubelet().display().to_string(), "_ansible_check_mode": true}),
    );
    assert_ne!(v["failed"], true, "{v}");
    assert_eq!(v["rotation"]["state_before"], "trusting", "{v}");
    assert_unchanged(&before, &pki.snapshot(), "the module in check mode");
    let v =
        module_on(&pki, serde_json::json!({"state": "rotate", "certificates": ["ca", "etcd-ca"], "phase": "reissue"}));
    assert_eq!(v["failed"], true, "one CA at a time: {v}");
}

/// On the command line, `--cluster-info` is carried out (it was parsed and dropped by `rotate`) with the credentials
/// `--api-kubeconfig` names (`renew ca` took them only with `--use-api`): here a file that is not there, so
/// cluster-info alone fails, naming it, and the node's step is done.
#[test]
fn the_command_lines_cluster_info_uses_the_credentials_it_is_given() {
    let pki = std_pki();
    let tmp = tempfile::tempdir().unwrap();
    let creds = tmp.path().join("not-there.conf").display().to_string();
    let v = rotated(&pki, "ca", &["--phase", "trust", "--generate", "--cluster-info"]);
    assert_eq!(v["rotation"]["state_after"], "trusting", "{v}");
    assert_eq!(v["cluster_info"]["action"], "failed", "no apiserver runs for this PKI: {v}");
    let admin = pki.kube().join("admin.conf").display().to_string();
    assert!(v["cluster_info"]["reason"].as_str().unwrap().contains(&format!("kubectl --kubeconfig {admin}")), "{v}");
    let v = rotated(&pki, "ca", &["--phase", "trust", "--generate", "--cluster-info", "--api-kubeconfig", &creds]);
    assert_eq!(v["cluster_info"]["action"], "failed", "{v}");
    let reason = v["cluster_info"]["reason"].as_str().unwrap();
    assert!(reason.contains(&creds) && reason.contains(&format!("kubectl --kubeconfig {creds}")), "{reason}");

    let (code, out, err) = run_on(&pki, &["renew", "front-proxy-ca", "--force", "--api-kubeconfig", &creds]);
    assert_eq!(code, 2, "--api-kubeconfig alone is a usage error: {out}{err}");
    assert!(err.contains("--use-api") && err.contains("--cluster-info"), "names both: {err}");
    let pki = std_pki();
    let (code, out, err) =
        run_on(&pki, &["renew", "ca", "--force", "--cluster-info", "--api-kubeconfig", &creds, "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json_of(&out);
    assert_eq!(v["cluster_info"]["action"], "failed", "{v}");
    assert!(v["cluster_info"]["reason"].as_str().unwrap().contains(&creds), "{v}");
}
