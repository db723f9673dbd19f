//! `renew ca|etcd-ca|front-proxy-ca` on PKIs made by real kubeadm 1.20.2: a CA certificate issued again with its
//! own key keeps its key, subject, key identifiers and extensions and gets a new serial and validity; every
//! certificate the old one issued verifies under it (`openssl verify`); the kubeconfigs embedding it follow in the
//! same transaction; it is never part of `all`, idempotent, transactional (a failed rename and a kill between
//! renames), and proven on a real etcd and kube-apiserver with kubectl. The certificates here are read with
//! x509-parser and OpenSSL, never with the tool's own reader.

mod common;
use common::*;
#[path = "crash/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use x509_parser::prelude::*;

const CAS: [(&str, &str); 3] =
    [("ca", "pki/ca.crt"), ("etcd-ca", "pki/etcd/ca.crt"), ("front-proxy-ca", "pki/front-proxy-ca.crt")];

/// The leaves of kubeadm's PKI by the CA file that issued them (PEM pairs; kubeconfigs apart).
const LEAVES: [(&str, &str); 7] = [
    ("pki/apiserver.crt", "pki/ca.crt"),
    ("pki/apiserver-kubelet-client.crt", "pki/ca.crt"),
    ("pki/front-proxy-client.crt", "pki/front-proxy-ca.crt"),
    ("pki/apiserver-etcd-client.crt", "pki/etcd/ca.crt"),
    ("pki/etcd/server.crt", "pki/etcd/ca.crt"),
    ("pki/etcd/peer.crt", "pki/etcd/ca.crt"),
    ("pki/etcd/healthcheck-client.crt", "pki/etcd/ca.crt"),
];

/// The kubeconfigs kubeadm 1.20 writes, all embedding `ca`.
const KUBECONFIGS: [&str; 4] = ["admin.conf", "controller-manager.conf", "kubelet.conf", "scheduler.conf"];

/// What a test compares of a certificate, read with x509-parser.
#[derive(Debug)]
struct Seen {
    serial: Vec<u8>,
    subject_raw: Vec<u8>,
    spki_raw: Vec<u8>,
    /// (oid, critical, value) of every extension, in order.
    extensions: Vec<(String, bool, Vec<u8>)>,
    not_before: i64,
    not_after: i64,
}

fn seen(pem_bytes: &[u8]) -> Seen {
    let der = ::pem::parse(pem_bytes).unwrap().contents().to_vec();
    let (_, x) = parse_x509_certificate(&der).unwrap();
    Seen {
        serial: x.raw_serial().to_vec(),
        subject_raw: x.subject().as_raw().to_vec(),
        spki_raw: x.public_key().raw.to_vec(),
        extensions: x.extensions().iter().map(|e| (e.oid.to_id_string(), e.critical, e.value.to_vec())).collect(),
        not_before: x.validity().not_before.timestamp(),
        not_after: x.validity().not_after.timestamp(),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The certificate-authority-data of a kubeconfig's (only) cluster, decoded.
fn ca_data(pki: &Pki, conf: &str) -> Vec<u8> {
    let kc: serde_norway::Value = serde_norway::from_slice(&pki.read(conf)).unwrap();
    base64_decode(kc["clusters"][0]["cluster"]["certificate-authority-data"].as_str().unwrap())
}

/// `openssl verify -CAfile CA CERT`: (passed, what it said).
fn openssl_verify(ca: &Path, cert: &Path) -> (bool, String) {
    let out = Command::new("openssl").arg("verify").arg("-CAfile").arg(ca).arg(cert).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A kubeconfig's client certificate written to a file of its own, for openssl.
fn client_cert_file(pki: &Pki, conf: &str, dir: &Path) -> PathBuf {
    let kc: serde_norway::Value = serde_norway::from_slice(&pki.read(conf)).unwrap();
    let path = dir.join(format!("{conf}.crt"));
    std::fs::write(&path, base64_decode(kc["users"][0]["user"]["client-certificate-data"].as_str().unwrap())).unwrap();
    path
}

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn ca_row<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["certificate_authorities"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()
}

#[test]
fn each_ca_renewed_keeps_its_key_subject_identifiers_and_extensions_with_a_new_serial_and_ten_years() {
    let pki = std_pki();
    let old: Vec<Seen> = CAS.iter().map(|(_, f)| seen(&pki.read(f))).collect();
    let keys_before: Vec<Vec<u8>> = CAS.iter().map(|(_, f)| pki.read(&f.replace(".crt", ".key"))).collect();
    let before = pki.snapshot();
    let started = now();
    let (code, out, err) = run_on(&pki, &["renew", "ca", "etcd-ca", "front-proxy-ca", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json_of(&out);
    assert_eq!(v["renewed"], json!(["ca", "etcd-ca", "front-proxy-ca"]), "{out}");
    for (i, (name, file)) in CAS.iter().enumerate() {
        let new = seen(&pki.read(file));
        assert_eq!(new.subject_raw, old[i].subject_raw, "{name}: the subject as encoded");
        assert_eq!(new.spki_raw, old[i].spki_raw, "{name}: the public key");
        assert_eq!(new.extensions, old[i].extensions, "{name}: every extension (basic constraints, key usage, SKI)");
        assert!(new.extensions.iter().any(|(oid, _, _)| oid == "2.5.29.14"), "{name}: kubeadm's CA has an SKI");
        assert_ne!(new.serial, old[i].serial, "{name}: a new serial");
        assert_eq!(old[i].serial, [0], "{name}: kubeadm 1.20 gives its CAs serial 0");
        // notBefore backdated five minutes, notAfter ten years (kubeadm's 87600h) from the run
        assert!((started - 300 - 2..=now() - 300).contains(&new.not_before), "{name}: not_before {}", new.not_before);
        let ten_years = 3650 * 86_400;
        assert!((started + ten_years..=now() + ten_years).contains(&new.not_after), "{name}: {}", new.not_after);
        assert_eq!(pki.read(&file.replace(".crt", ".key")), keys_before[i], "{name}: the key is never written");
        let row = ca_row(&v, name);
        assert_eq!(row["action"], "renewed", "{row}");
        assert_eq!(row["reason"], "forced", "{row}");
    }
    // what changed: the three CA certificates and the kubeconfigs embedding ca; no leaf, no key
    let mut changed: Vec<String> = before.changed(&pki.snapshot()).iter().map(|p| p.display().to_string()).collect();
    changed.sort();
    let mut expected: Vec<String> =
        CAS.iter().map(|(_, f)| f.to_string()).chain(KUBECONFIGS.iter().map(|k| k.to_string())).collect();
    expected.sort();
    assert_eq!(changed, expected);
}

#[test]
fn every_leaf_and_kubeconfig_client_certificate_verifies_under_the_renewed_cas_with_openssl() {
    let pki = std_pki();
    let (code, out, err) = run_on(&pki, &["renew", "ca", "etcd-ca", "front-proxy-ca", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    for (leaf, ca) in LEAVES {
        let (ok, said) = openssl_verify(&pki.kube().join(ca), &pki.kube().join(leaf));
        assert!(ok, "{leaf} under the renewed {ca}: {said}");
    }
    let tmp = tempfile::tempdir().unwrap();
    for conf in KUBECONFIGS {
        let (ok, said) = openssl_verify(&pki.certs().join("ca.crt"), &client_cert_file(&pki, conf, tmp.path()));
        assert!(ok, "{conf}'s client certificate under the renewed ca: {said}");
        assert_eq!(ca_data(&pki, conf), pki.read("pki/ca.crt"), "{conf}: certificate-authority-data is the new ca.crt");
    }
    // the cause: the old certificates' issuer and key, not a second trusted CA (the new ca alone is in -CAfile, and
    // a CA of another cluster with the same name is refused)
    let other = kubeadm_pki("std", "other", "127.0.0.19");
    let (ok, said) = openssl_verify(&other.certs().join("ca.crt"), &pki.certs().join("apiserver.crt"));
    assert!(!ok, "another kubeadm CA named kubernetes must not verify it: {said}");
}

#[test]
fn ecdsa_cas_made_by_openssl_keep_their_authority_key_identifier_and_still_verify_their_certificates() {
    for alg in ["ecdsa-p256", "ecdsa-p384"] {
        let pki = synthetic_pki(alg);
        let old = seen(&pki.read("pki/ca.crt"));
        assert!(old.extensions.iter().any(|(oid, _, _)| oid == "2.5.29.35"), "{alg}: OpenSSL's CA has an AKI");
        let (code, out, err) = run_on(&pki, &["renew", "ca", "etcd-ca", "front-proxy-ca", "--force"]);
        assert_eq!(code, 0, "{alg}: {out}{err}");
        let new = seen(&pki.read("pki/ca.crt"));
        assert_eq!((new.extensions, new.spki_raw), (old.extensions, old.spki_raw), "{alg}");
        for (leaf, ca) in LEAVES {
            let (ok, said) = openssl_verify(&pki.kube().join(ca), &pki.kube().join(leaf));
            assert!(ok, "{alg}: {leaf} under the renewed {ca}: {said}");
        }
    }
}

#[test]
fn a_ca_that_is_not_due_is_kept_and_a_second_run_changes_nothing() {
    let pki = std_pki();
    let before = pki.snapshot();
    let (code, out, err) = run_on(&pki, &["renew", "ca", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json_of(&out);
    assert_eq!(v["changed"], false, "{out}");
    assert_eq!(ca_row(&v, "ca")["action"], "none");
    let reason = ca_row(&v, "ca")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("not within renew_before 365d"), "the CA default is a year: {reason}");
    assert_unchanged(&before, &pki.snapshot(), "a CA with ten years left");

    // due by --renew-before (10 years left, under 3651 days), then not due again
    let (code, out, err) = run_on(&pki, &["renew", "ca", "--renew-before", "3651d", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json_of(&out)["renewed"], json!(["ca"]), "{out}");
    let after = pki.snapshot();
    let (code, out, err) = run_on(&pki, &["renew", "ca", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json_of(&out)["changed"], false, "{out}");
    assert_unchanged(&after, &pki.snapshot(), "a second run");
}

#[test]
fn all_never_renews_a_ca_even_forced() {
    let pki = std_pki();
    let cas: Vec<Vec<u8>> = CAS.iter().map(|(_, f)| pki.read(f)).collect();
    let (code, out, err) = run_on(&pki, &["renew", "all", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json_of(&out);
    assert_eq!(v["renewed"].as_array().unwrap().len(), 10, "{out}");
    for (i, (name, file)) in CAS.iter().enumerate() {
        assert_eq!(pki.read(file), cas[i], "{name} is not part of all");
        assert!(!v["renewed"].as_array().unwrap().iter().any(|n| n == name), "{out}");
        assert!(ca_row(&v, name).get("action").is_none(), "{name} was not named: no action");
    }
    // the CA names are renew's alone
    for args in [&["check", "ca"][..], &["csr", "ca", "--csr-dir", "/nonexistent"]] {
        let (code, _, err) = run_on(&pki, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("ca is a CA: only renew takes it"), "{args:?}: {err}");
    }
}

#[test]
fn check_mode_and_diff_show_serial_validity_and_subject_and_write_nothing() {
    let pki = std_pki();
    let before = pki.snapshot();
    let (code, out, err) = run_on(&pki, &["renew", "ca", "--force", "--check", "--diff"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_unchanged(&before, &pki.snapshot(), "--check");
    let ca = pki.certs().join("ca.crt").display().to_string();
    assert!(out.contains(&format!("--- {ca} (before)")), "{out}");
    assert!(out.contains("+serial: (new random serial)") && out.contains("-serial: 00"), "{out}");
    assert!(out.contains(" subject: CN=kubernetes"), "{out}");
    assert!(out.contains(&format!("--- {} (before)", pki.kube().join("kubelet.conf").display())), "{out}");
    assert!(out.contains("would_renew"), "{out}");
    assert!(!out.contains("PRIVATE KEY"), "{out}");

    // the module: Ansible's check mode and diff
    let v = module_on(
        &pki,
        json!({"state": "renew", "certificates": ["ca"], "force": true, "_ansible_check_mode": true, "_ansible_diff": true}),
    );
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["renewed"], json!(["ca"]), "{v}");
    assert_eq!(ca_row(&v, "ca")["action"], "would_renew", "{v}");
    let diff = v["diff"].as_array().unwrap();
    assert_eq!(diff.len(), 1 + KUBECONFIGS.len(), "the CA and each kubeconfig embedding it: {v}");
    assert!(diff[0]["before"].as_str().unwrap().contains("not_after: "), "{v}");
    let text = v.to_string();
    assert!(!text.contains("PRIVATE KEY") && !text.contains("client-key-data"), "no key material: {text}");
    assert_unchanged(&before, &pki.snapshot(), "the module in check mode");
}

#[test]
fn the_module_renews_a_ca_named_in_certificates_and_names_the_components_that_read_it_at_start() {
    let pki = std_pki();
    let v = module_on(&pki, json!({"state": "renew", "certificates": "ca", "force": "yes", "backup": true}));
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["renewed"], json!(["ca"]), "{v}");
    let row = ca_row(&v, "ca");
    assert_eq!(row["action"], "renewed", "{v}");
    assert_eq!(row["kubeconfigs"].as_array().unwrap().len(), KUBECONFIGS.len(), "{v}");
    assert_eq!(row["previous_not_after"].as_str().unwrap().len(), 20, "{v}");
    // --root-ca-file and the kubeconfigs' CA data are read at start; kube-apiserver reloads --client-ca-file but is
    // named too here because it is not running on this PKI (nothing is)
    let restart: Vec<&str> = v["restart"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    for c in ["kube-controller-manager", "kube-scheduler"] {
        assert!(restart.contains(&c), "{c}: {v}");
    }
    assert!(!restart.contains(&"etcd"), "etcd reads no file of ca: {v}");
    assert!(v["msg"].as_str().unwrap().contains("same key"), "{v}");
    assert!(
        v["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("systemctl restart kubelet")),
        "kubelet.conf followed: {v}"
    );
    let backups = v["backup_files"].as_array().unwrap();
    assert_eq!(backups.len(), 1 + KUBECONFIGS.len(), "{v}");
    // the module's value checks: a validity for a CA and certificates together, the certificates API
    let e = module_on(&pki, json!({"state": "renew", "certificates": ["ca", "apiserver"], "validity": "1y"}));
    assert!(e["failed"] == true && e["msg"].as_str().unwrap().contains("ambiguous"), "{e}");
    let e = module_on(&pki, json!({"state": "renew", "certificates": ["ca"], "signer": "api"}));
    assert!(e["failed"] == true && e["msg"].as_str().unwrap().contains("not CAs"), "{e}");
    let e = module_on(&pki, json!({"state": "check", "ca_cert": "/x"}));
    assert!(e["failed"] == true && e["msg"].as_str().unwrap().contains("ca_cert applies to state renew"), "{e}");
}

#[test]
fn an_external_ca_without_its_key_is_refused_naming_the_key_file_and_what_to_do() {
    let pki = kubeadm_pki("extca", "cp1", "127.0.0.11");
    let before = pki.snapshot();
    let (code, out, err) = run_on(&pki, &["renew", "ca", "--force"]);
    assert_eq!(code, 1, "{out}{err}");
    let key = pki.certs().join("ca.key").display().to_string();
    assert!(err.contains(&format!("{key}: ca cannot be renewed")), "names the missing key: {err}");
    assert!(err.contains("external-CA") && err.contains("renew ca --ca-cert FILE"), "says what to do: {err}");
    assert_unchanged(&before, &pki.snapshot(), "an external CA");
    // the other CAs have their keys
    let (code, out, err) = run_on(&pki, &["renew", "front-proxy-ca", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_v1beta4_config_sets_the_ca_validity_and_a_typed_validity_wins() {
    let pki = std_pki();
    let config = pki.root().join("kubeadm-v1beta4.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncertificateValidityPeriod: 2160h\n\
         caCertificateValidityPeriod: 43800h0m0s\n",
    )
    .unwrap();
    let started = now();
    let (code, out, err) = run_on(&pki, &["renew", "ca", "--force", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let five_years = 1825 * 86_400;
    let na = seen(&pki.read("pki/ca.crt")).not_after;
    assert!((started + five_years..=now() + five_years).contains(&na), "caCertificateValidityPeriod 43800h: {na}");
    // certificateValidityPeriod is the certificates' (not the CA's); --validity wins over the file
    let (code, out, err) =
        run_on(&pki, &["renew", "etcd-ca", "--force", "--validity", "20y", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let na = seen(&pki.read("pki/etcd/ca.crt")).not_after;
    assert!((started + 7300 * 86_400..=now() + 7300 * 86_400).contains(&na), "--validity 20y: {na}");
    // one validity for a CA and certificates together is ambiguous, and a shorter CA needs --force
    let before = pki.snapshot();
    let (code, _, err) = run_on(&pki, &["renew", "ca", "apiserver", "--validity", "1y"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ambiguous") && err.contains("renew ca --validity"), "{err}");
    let (code, _, err) = run_on(&pki, &["renew", "ca", "--renew-before", "20y", "--validity", "1y"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("before the one it replaces") && err.contains("--force"), "{err}");
    assert_unchanged(&before, &pki.snapshot(), "refused runs");
}

#[test]
fn a_certificate_renewed_with_its_ca_is_signed_as_the_new_ca_and_may_outlive_the_old_one() {
    let pki = std_pki();
    // a CA with 200 days left (shortened on purpose, which takes --force)
    let (code, out, err) = run_on(&pki, &["renew", "ca", "--force", "--validity", "200d"]);
    assert_eq!(code, 0, "{out}{err}");
    let short = seen(&pki.read("pki/ca.crt")).not_after;
    // alone, a renewed certificate is cut to the CA's expiry
    let (code, out, err) = run_on(&pki, &["renew", "apiserver", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("validity cut to the ca CA's expiry"), "{out}");
    assert_eq!(seen(&pki.read("pki/apiserver.crt")).not_after, short);
    // with the CA in the same run it gets its full year: the CA goes first
    let started = now();
    let (code, out, err) = run_on(&pki, &["renew", "ca", "apiserver", "admin.conf", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json_of(&out)["renewed"], json!(["ca", "admin.conf", "apiserver"]), "{out}");
    let na = seen(&pki.read("pki/apiserver.crt")).not_after;
    assert!(na >= started + 365 * 86_400 && na > short, "apiserver outlives the old CA: {na} vs {short}");
    let (ok, said) = openssl_verify(&pki.certs().join("ca.crt"), &pki.certs().join("apiserver.crt"));
    assert!(ok, "{said}");
    // admin.conf: the new client certificate and the new CA data in one file
    let tmp = tempfile::tempdir().unwrap();
    let (ok, said) = openssl_verify(&pki.certs().join("ca.crt"), &client_cert_file(&pki, "admin.conf", tmp.path()));
    assert!(ok, "{said}");
    assert_eq!(ca_data(&pki, "admin.conf"), pki.read("pki/ca.crt"));
}

#[test]
fn a_kubeconfig_naming_its_ca_by_file_is_left_as_it_is_and_named_unless_the_file_is_ca_crt() {
    let pki = std_pki();
    // kubelet.conf as after kubeadm's kubelet-finalize, its CA by file: another file, then ca.crt itself
    let with_ca_file = |file: &str| {
        let text = String::from_utf8(pki.read("kubelet.conf")).unwrap();
        let text: String = text
            .lines()
            .map(|l| match l.trim_start().starts_with("certificate-authority") {
                true => format!("    certificate-authority: {file}"),
                false => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(pki.kube().join("kubelet.conf"), text + "\n").unwrap();
        pki.read("kubelet.conf")
    };
    let elsewhere = with_ca_file("/etc/kubernetes/elsewhere/ca.crt");
    let (code, out, err) = run_on(&pki, &["renew", "ca", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json_of(&out);
    assert_eq!(pki.read("kubelet.conf"), elsewhere, "left as it is");
    let kubelet = pki.kube().join("kubelet.conf").display().to_string();
    let warning =
        v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).find(|w| w.starts_with(&kubelet));
    assert!(
        warning.is_some_and(|w| w.contains("names its CA by file (/etc/kubernetes/elsewhere/ca.crt), left as it is")),
        "{out}"
    );
    assert!(!ca_row(&v, "ca")["kubeconfigs"].as_array().unwrap().iter().any(|k| k == &kubelet), "{out}");
    // naming ca.crt itself: the renewed file is what it reads, nothing to say
    let own = with_ca_file(pki.certs().join("ca.crt").to_str().unwrap());
    let (code, out, err) = run_on(&pki, &["renew", "ca", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(pki.read("kubelet.conf"), own);
    assert!(!out.contains(&format!("{kubelet}: cluster")), "{out}");
}

/// A second control-plane node of the same cluster (the CAs of `first`), made by kubeadm with mkpki.sh's CA_FROM.
fn second_node(first: &Pki, node: &str, ip: &str) -> Pki {
    let pki = Pki { dir: tempfile::tempdir().unwrap() };
    let out = Command::new(repo().join("scripts/mkpki.sh"))
        .arg(pki.root())
        .args(["std", node, ip])
        .env("CA_FROM", first.root())
        .env("K8S_BIN", k8s_bin())
        .output()
        .unwrap();
    assert!(out.status.success(), "mkpki.sh: {}", String::from_utf8_lossy(&out.stderr));
    pki
}

#[test]
fn the_ca_certificate_renewed_on_one_node_is_installed_as_it_is_on_the_others() {
    let cp1 = std_pki();
    let cp2 = second_node(&cp1, "cp2", "127.0.0.12");
    let (code, out, err) = run_on(&cp1, &["renew", "ca", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    let given = cp1.certs().join("ca.crt");
    let given_s = given.to_str().unwrap();

    let before = cp2.snapshot();
    let (code, out, err) = run_on(&cp2, &["renew", "ca", "--ca-cert", given_s, "--check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("would_renew") && out.contains("given"), "{out}");
    assert_unchanged(&before, &cp2.snapshot(), "--check");
    let (code, out, err) = run_on(&cp2, &["renew", "ca", "--ca-cert", given_s, "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(cp2.read("pki/ca.crt"), cp1.read("pki/ca.crt"), "the same CA certificate on both nodes");
    for conf in KUBECONFIGS {
        assert_eq!(ca_data(&cp2, conf), cp1.read("pki/ca.crt"), "cp2's {conf}");
    }
    for (leaf, ca) in LEAVES.iter().filter(|(_, ca)| *ca == "pki/ca.crt") {
        let (ok, said) = openssl_verify(&cp2.kube().join(ca), &cp2.kube().join(leaf));
        assert!(ok, "cp2's {leaf}: {said}");
    }
    // installed: a second run changes nothing
    let after = cp2.snapshot();
    let (code, out, err) = run_on(&cp2, &["renew", "ca", "--ca-cert", given_s, "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json_of(&out)["changed"], false, "{out}");
    assert!(ca_row(&json_of(&out), "ca")["reason"].as_str().unwrap().contains("already is"), "{out}");
    assert_unchanged(&after, &cp2.snapshot(), "the same certificate again");

    // refused, naming why: another CA's certificate, another cluster's CA of the same name, a bundle
    let other_cluster = kubeadm_pki("std", "other", "127.0.0.19");
    let bundle = cp1.root().join("bundle.crt");
    std::fs::write(&bundle, [cp1.read("pki/ca.crt"), cp1.read("pki/front-proxy-ca.crt")].concat()).unwrap();
    let cases = [
        (cp1.certs().join("front-proxy-ca.crt"), "its public key is not the CA's"),
        (other_cluster.certs().join("ca.crt"), "its public key is not the CA's"),
        (bundle, "it holds 2 certificates"),
    ];
    for (file, why) in cases {
        let (code, out, err) = run_on(&cp2, &["renew", "ca", "--ca-cert", file.to_str().unwrap()]);
        assert_eq!(code, 1, "{}: {out}{err}", file.display());
        assert!(err.contains(&format!("{}: not a certificate of ca to install: {why}", file.display())), "{err}");
        assert_unchanged(&after, &cp2.snapshot(), "a refused certificate");
    }
}

#[test]
fn a_worker_with_only_ca_crt_and_kubelet_conf_takes_the_given_ca_certificate() {
    let cp1 = std_pki();
    let worker = Pki { dir: tempfile::tempdir().unwrap() };
    std::fs::create_dir_all(worker.certs()).unwrap();
    std::fs::write(worker.certs().join("ca.crt"), cp1.read("pki/ca.crt")).unwrap();
    std::fs::write(worker.kube().join("kubelet.conf"), cp1.read("kubelet.conf")).unwrap();
    let (code, out, err) = run_on(&cp1, &["renew", "ca", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) =
        run_on(&worker, &["renew", "ca", "--ca-cert", cp1.certs().join("ca.crt").to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(worker.read("pki/ca.crt"), cp1.read("pki/ca.crt"));
    assert_eq!(ca_data(&worker, "kubelet.conf"), cp1.read("pki/ca.crt"));
    // and without the given certificate: no key there, refused
    let (code, _, err) = run_on(&worker, &["renew", "ca", "--force"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("its key is not on this node"), "{err}");
}

#[test]
fn a_failed_rename_puts_back_the_ca_certificate_and_every_kubeconfig() {
    let pki = std_pki();
    let before = pki.snapshot();
    // the CA certificate is renamed first (rename-0), the kubeconfigs after it: fail at the third
    let out = Command::new(support::fault_bin())
        .args(["renew", "ca", "--force"])
        .args(pki.dirs())
        .env("KUBEADM_CERTS_FAIL_AT", "rename-2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("injected failure at rename-2"));
    assert_unchanged(&before, &pki.snapshot(), "a failed rename");
}

#[test]
fn a_run_killed_between_renames_is_completed_by_the_next_run() {
    let pki = std_pki();
    let old_ca = pki.read("pki/ca.crt");
    support::killed_at("renamed-0", &["renew", "ca", "--force"], &pki.dirs());
    // killed after the CA certificate's rename: the kubeconfigs still hold the old one (which the same key makes
    // equally good), and the journal is pending
    assert_ne!(pki.read("pki/ca.crt"), old_ca);
    assert_eq!(ca_data(&pki, "admin.conf"), old_ca);
    assert!(pki.certs().join(".kubeadm-certs.journal").exists());
    // the next run, with nothing due, completes the interrupted one first
    let (code, out, err) = run_on(&pki, &["renew", "ca", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json_of(&out);
    assert_eq!(v["changed"], true, "{out}");
    assert!(v["warnings"][0].as_str().unwrap().contains("completed an interrupted renewal"), "{out}");
    for conf in KUBECONFIGS {
        assert_eq!(ca_data(&pki, conf), pki.read("pki/ca.crt"), "{conf} followed");
    }
    assert!(!pki.certs().join(".kubeadm-certs.journal").exists());
}

const IP: &str = "127.0.0.90";

fn kubectl(conf: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("/usr/bin/kubectl").arg("--kubeconfig").arg(conf).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn restart_of(v: &serde_json::Value) -> Vec<String> {
    v["restart"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// The real consumers: an etcd and kube-apiserver running when the CAs are renewed keep accepting the old
/// admin.conf and accept the renewed one (same key), and `restart` names exactly the running components that
/// read the renewed CA only at start; started again on the renewed PKI, they run and accept both admin.confs.
#[test]
fn running_etcd_and_apiserver_accept_old_and_renewed_credentials_across_a_ca_renewal() {
    let pki = kubeadm_pki("std", "cp1", IP);
    let keep = tempfile::tempdir().unwrap();
    let old_admin = keep.path().join("old-admin.conf");
    std::fs::copy(pki.kube().join("admin.conf"), &old_admin).unwrap();
    let new_admin = pki.kube().join("admin.conf");
    let cluster = Cluster::start(&pki, IP);
    let (ok, text) = kubectl(&old_admin, &["get", "--raw", "/readyz"]);
    assert!(ok && text.trim() == "ok", "before: {text}");

    // ca alone: kube-apiserver reloads --client-ca-file, so it is not to restart (it runs); the two that read it at
    // start are not running here and are named for that
    let (code, out, err) = run_on(&pki, &["renew", "ca", "admin.conf", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json_of(&out);
    assert_eq!(restart_of(&v), ["kube-controller-manager", "kube-scheduler"], "{out}");
    for conf in [&old_admin, &new_admin] {
        let (ok, text) = kubectl(conf, &["get", "namespaces", "-o", "name"]);
        assert!(ok && text.contains("namespace/kube-system"), "{}: {text}", conf.display());
    }
    // etcd-ca: etcd (--trusted-ca-file) and kube-apiserver (--etcd-cafile) read it only at start
    let (code, out, err) = run_on(&pki, &["renew", "etcd-ca", "front-proxy-ca", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = json_of(&out);
    assert_eq!(restart_of(&v), ["etcd", "kube-apiserver", "kube-controller-manager"], "{out}");
    let etcd_row = v["components"].as_array().unwrap().iter().find(|c| c["name"] == "etcd").unwrap();
    assert!(etcd_row["reason"].as_str().unwrap().contains("etcd/ca.crt was written"), "{out}");
    let (ok, text) = kubectl(&new_admin, &["get", "--raw", "/readyz"]);
    assert!(ok && text.trim() == "ok", "the apiserver and etcd holding the old CA certificates still talk: {text}");

    // started again on the renewed PKI (new CAs loaded everywhere): both admin.confs still work
    cluster.stop("kube-apiserver");
    cluster.stop("etcd");
    cluster.cluster_sh("start");
    for conf in [&old_admin, &new_admin] {
        let (ok, text) = kubectl(conf, &["get", "namespaces", "-o", "name"]);
        assert!(ok && text.contains("namespace/kube-system"), "after the restart, {}: {text}", conf.display());
    }
    let (code, out, err) = run_on(&pki, &["check", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    for c in json_of(&out)["components"].as_array().unwrap() {
        if c["pid"].is_number() {
            assert_eq!(c["stale"], false, "{c}");
        }
    }
}

#[test]
fn cluster_info_follows_only_the_cluster_ca_and_an_apiserver_that_cannot_be_asked_fails_nothing_but_itself() {
    let pki = std_pki();
    // the cluster-info ConfigMap holds the cluster CA: naming another CA alone is a usage error
    let (code, _, err) = run_on(&pki, &["renew", "etcd-ca", "--force", "--cluster-info"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cluster-info (--cluster-info, module cluster_info) follows the cluster CA: name ca"),
        "{err}"
    );
    let v = module_on(&pki, json!({"state": "check", "cluster_info": true}));
    assert_eq!(v["failed"], true, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("cluster_info applies to state renew"), "{v}");
    // admin.conf names an apiserver nobody serves here: the CA is renewed all the same (the PKI's transaction is
    // done first), and what became of cluster-info is said, with the command to look at it
    let before = pki.read("pki/ca.crt");
    let v = module_on(&pki, json!({"state": "renew", "certificates": ["ca"], "force": true, "cluster_info": true}));
    assert_eq!(v["failed"], serde_json::Value::Null, "{v}");
    assert_eq!(v["changed"], true, "{v}");
    assert_ne!(pki.read("pki/ca.crt"), before);
    assert_eq!(v["cluster_info"]["action"], "failed", "{v}");
    let reason = v["cluster_info"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("the cluster-info ConfigMap (kube-public) was not updated: "), "{reason}");
    assert!(reason.contains("-n kube-public get configmap cluster-info -o yaml"), "{reason}");
    assert!(v["warnings"].as_array().unwrap().iter().any(|w| w == reason), "{v}");
    assert!(v["msg"].as_str().unwrap().starts_with("renewed ca; cluster-info: failed"), "{v}");
}
