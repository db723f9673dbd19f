//! `renew` against real kubeadm 1.20.2's `certs renew all` on two copies of one kubeadm PKI: attribute by
//! attribute the same certificates (subject bytes, issuer bytes, SANs in order, usages, key type and size,
//! authority key id), kubeconfig files identical but for the credentials, keys in kubeadm's encodings and
//! modes; and where we differ on purpose (only what is due, backups, the CA-expiry cut) we say so.

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use x509_parser::prelude::*;

struct Attrs {
    subject: Vec<u8>,
    issuer: Vec<u8>,
    sans: Vec<String>,
    eku: Vec<String>,
    key_usage: Option<u16>,
    basic_constraints: Option<bool>,
    key_alg: String,
    key_bits: usize,
    akid: Option<Vec<u8>>,
    not_after: i64,
}

fn attrs(der: &[u8]) -> Attrs {
    let (_, c) = parse_x509_certificate(der).unwrap();
    let sans = c
        .subject_alternative_name()
        .unwrap()
        .map(|s| s.value.general_names.iter().map(|n| format!("{n}")).collect())
        .unwrap_or_default();
    let eku = c
        .extended_key_usage()
        .unwrap()
        .map(|e| {
            let mut v = Vec::new();
            if e.value.server_auth {
                v.push("serverAuth".to_string());
            }
            if e.value.client_auth {
                v.push("clientAuth".to_string());
            }
            v
        })
        .unwrap_or_default();
    let akid = c.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0.to_vec()),
        _ => None,
    });
    Attrs {
        subject: c.subject().as_raw().to_vec(),
        issuer: c.issuer().as_raw().to_vec(),
        sans,
        eku,
        key_usage: c.key_usage().unwrap().map(|k| k.value.flags),
        basic_constraints: c.basic_constraints().unwrap().map(|b| b.value.ca),
        key_alg: c.public_key().algorithm.algorithm.to_id_string(),
        key_bits: c.public_key().parsed().unwrap().key_size(),
        akid,
        not_after: c.validity().not_after.timestamp(),
    }
}

fn kubeadm_renew_all(pki: &Pki) {
    let out = Command::new(kubeadm())
        .args(["certs", "renew", "all", "--config", "/kubeadm-config.yaml", "--rootfs"])
        .arg(pki.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "kubeadm certs renew all: {}", String::from_utf8_lossy(&out.stderr));
}

fn without_credentials(kubeconfig: &[u8]) -> serde_norway::Value {
    let mut v: serde_norway::Value = serde_norway::from_slice(kubeconfig).unwrap();
    let user = v["users"][0]["user"].as_mapping_mut().unwrap();
    user.remove("client-certificate-data");
    user.remove("client-key-data");
    v
}

#[test]
fn renew_all_issues_what_kubeadm_issues() {
    let theirs = std_pki();
    let ours = kubeadm_pki("std", "cp1", "127.0.0.11");
    let before = ours.snapshot();
    kubeadm_renew_all(&theirs);
    let (code, out, err) = run_on(&ours, &["renew", "all", "--force"]);
    assert_eq!(code, 0, "{out}{err}");

    for name in ALL_CERTS {
        let (t, o) = (attrs(&cert_der(&theirs, name)), attrs(&cert_der(&ours, name)));
        assert_eq!(o.subject, t.subject, "{name}: subject bytes");
        assert_eq!(o.issuer, t.issuer, "{name}: issuer bytes");
        assert_eq!(o.sans, t.sans, "{name}: SANs in kubeadm's order");
        assert_eq!(o.eku, t.eku, "{name}: extended key usage");
        assert_eq!(o.key_usage, t.key_usage, "{name}: key usage");
        assert_eq!(o.basic_constraints, t.basic_constraints, "{name}: basic constraints");
        assert_eq!((o.key_alg, o.key_bits), (t.key_alg, t.key_bits), "{name}: key algorithm and size");
        assert_eq!(o.akid, t.akid, "{name}: authority key identifier");
        // both: one year from now (kubeadm 1.20 and ours), within the seconds between the two runs
        assert!((o.not_after - t.not_after).abs() < 120, "{name}: NotAfter {} vs {}", o.not_after, t.not_after);
        // a new certificate and a new key
        assert_ne!(cert_der(&ours, name), before.0[&std::path::PathBuf::from(cert_rel(name))].0, "{name} unchanged");
    }
    for conf in ["admin.conf", "controller-manager.conf", "scheduler.conf"] {
        assert_eq!(without_credentials(&ours.read(conf)), without_credentials(&theirs.read(conf)), "{conf}");
    }
    // keys: kubeadm's PKCS#1 PEM, 0600; certificates 0644; kubeconfigs 0600
    for base in ["apiserver", "front-proxy-client", "etcd/server"] {
        let key = ours.certs().join(format!("{base}.key"));
        assert!(std::fs::read_to_string(&key).unwrap().starts_with("-----BEGIN RSA PRIVATE KEY-----\n"), "{base}");
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600, "{base}.key");
        let crt = ours.certs().join(format!("{base}.crt"));
        assert_eq!(std::fs::metadata(&crt).unwrap().permissions().mode() & 0o777, 0o644, "{base}.crt");
    }
    assert_eq!(std::fs::metadata(ours.kube().join("admin.conf")).unwrap().permissions().mode() & 0o777, 0o600);
    // everything chains to its CA for OpenSSL too
    let p = ours.certs();
    let ca = p.join("ca.crt");
    openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        p.join("apiserver.crt").to_str().unwrap(),
        p.join("apiserver-kubelet-client.crt").to_str().unwrap(),
    ]);
    let eca = p.join("etcd/ca.crt");
    for f in ["etcd/server.crt", "etcd/peer.crt", "etcd/healthcheck-client.crt", "apiserver-etcd-client.crt"] {
        openssl(&["verify", "-CAfile", eca.to_str().unwrap(), p.join(f).to_str().unwrap()]);
    }
    let fca = p.join("front-proxy-ca.crt");
    openssl(&["verify", "-CAfile", fca.to_str().unwrap(), p.join("front-proxy-client.crt").to_str().unwrap()]);
    // the CAs and service-account keys are not touched
    let after = ours.snapshot();
    for untouched in ["pki/ca.crt", "pki/ca.key", "pki/sa.key", "pki/sa.pub", "pki/etcd/ca.key", "kubelet.conf"] {
        assert_eq!(
            before.0[&std::path::PathBuf::from(untouched)],
            after.0[&std::path::PathBuf::from(untouched)],
            "{untouched}"
        );
    }
}

fn cert_rel(name: &str) -> String {
    if name.ends_with(".conf") { name.to_string() } else { format!("pki/{}.crt", base_of(name)) }
}

#[test]
fn renews_only_what_is_due_unlike_kubeadm() {
    let pki = std_pki();
    let before = pki.snapshot();
    let (code, out, _) = run_on(&pki, &["renew", "all"]);
    assert_eq!(code, 0);
    assert!(out.contains("none"), "{out}");
    assert_unchanged(&before, &pki.snapshot(), "fresh certificates (364 days left) are not due under the 90d default");

    // due: renew_before above the residual time renews them all; a second run renews nothing
    let (code, _, _) = run_on(&pki, &["renew", "--renew-before", "400d"]);
    assert_eq!(code, 0);
    let changed = before.changed(&pki.snapshot());
    assert_eq!(changed.len(), 7 * 2 + 3, "7 PEM pairs and 3 kubeconfigs: {changed:?}");
    let once = pki.snapshot();
    let (code, out, _) = run_on(&pki, &["renew", "--renew-before", "300d"]);
    assert_eq!(code, 0);
    assert_unchanged(&once, &pki.snapshot(), &format!("idempotent:\n{out}"));
}

#[test]
fn named_certificates_only_and_backups() {
    let pki = std_pki();
    let before = pki.snapshot();
    let (code, out, err) = run_on(&pki, &["renew", "apiserver", "scheduler.conf", "--force", "--backup", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["renewed"], serde_json::json!(["apiserver", "scheduler.conf"]));
    assert_eq!(v["restart"], serde_json::json!(["kube-apiserver", "kube-scheduler"]));
    let backups: Vec<String> =
        v["backup_files"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()).collect();
    assert_eq!(backups.len(), 3, "apiserver.crt, apiserver.key, scheduler.conf");
    for b in &backups {
        let meta = std::fs::metadata(b).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{b}");
        let original = std::path::Path::new(b)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .split('.')
            .take_while(|p| !p.chars().all(|c| c.is_ascii_digit()))
            .collect::<Vec<_>>()
            .join(".");
        let rel = std::path::Path::new(b).strip_prefix(pki.kube()).unwrap().with_file_name(&original);
        assert_eq!(std::fs::read(b).unwrap(), before.0[&rel].0, "{b} holds the old {original}");
    }
    let changed: Vec<_> =
        before.changed(&pki.snapshot()).into_iter().filter(|p| !p.to_string_lossy().ends_with('~')).collect();
    assert_eq!(changed.len(), 3, "{changed:?}");
}

#[test]
fn extra_sans_renew_the_apiserver_and_keep_the_rest() {
    let pki = std_pki();
    let (code, out, err) =
        run_on(&pki, &["renew", "--extra-san", "lb.example.internal", "--extra-san", "192.0.2.100", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["renewed"], serde_json::json!(["apiserver"]), "only the apiserver lacks them");
    let text = openssl(&[
        "x509",
        "-noout",
        "-ext",
        "subjectAltName",
        "-in",
        pki.certs().join("apiserver.crt").to_str().unwrap(),
    ]);
    assert!(text.contains("DNS:lb.example.internal") && text.contains("IP Address:192.0.2.100"), "{text}");
    assert!(
        text.contains("DNS:kubernetes.default.svc.cluster.local") && text.contains("IP Address:10.96.0.1"),
        "{text}"
    );
    let (_, out, _) = run_on(&pki, &["renew", "--extra-san", "lb.example.internal", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["changed"], false, "present SANs need no renewal");
}

#[test]
fn validity_is_cut_to_the_ca_with_a_warning() {
    let pki = std_pki();
    let (code, out, err) = run_on(&pki, &["renew", "front-proxy-client", "--force", "--validity", "20y", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("front-proxy-client") && warnings.contains("front-proxy-ca"), "{warnings}");
    let ca = attrs(::pem::parse(pki.read("pki/front-proxy-ca.crt")).unwrap().contents());
    let leaf = attrs(&cert_der(&pki, "front-proxy-client"));
    assert_eq!(leaf.not_after, ca.not_after);
}

#[test]
fn check_mode_decides_without_writing() {
    let pki = std_pki();
    let before = pki.snapshot();
    let (code, out, _) = run_on(&pki, &["renew", "--force", "--check", "--diff"]);
    assert_eq!(code, 0);
    assert!(out.contains("would_renew"), "{out}");
    assert!(out.contains("--- ") && out.contains("+not_after: "), "{out}");
    assert!(!out.contains("PRIVATE KEY"), "{out}");
    assert_unchanged(&before, &pki.snapshot(), "check mode");
}
