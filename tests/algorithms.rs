//! Newer kubeadm's `encryptionAlgorithm`: PKIs of ECDSA P-256/P-384 and RSA 3072/4096 keys (made with
//! OpenSSL by tests/fixtures/synthetic-pki.sh) renew into keys of the same algorithm and size, in
//! kubeadm's encodings, with kubeadm's key usage, and verify with OpenSSL; `--key-algorithm` changes them.

mod common;
use common::*;

use x509_parser::asn1_rs::Tag;
use x509_parser::prelude::*;

const O: &str = "2.5.4.10";
const CN: &str = "2.5.4.3";

/// A certificate's subject as (attribute OID, ASN.1 string tag, value), in order: what "string types
/// survive" is about (Go writes PrintableString, OpenSSL UTF8String, and kube-apiserver compares bytes).
fn subject_attrs(der: &[u8]) -> Vec<(String, Tag, String)> {
    let (_, c) = parse_x509_certificate(der).unwrap();
    c.subject()
        .iter_attributes()
        .map(|a| {
            (a.attr_type().to_id_string(), a.attr_value().tag(), String::from_utf8_lossy(a.as_slice()).into_owned())
        })
        .collect()
}

/// Subject and issuer as DER bytes.
fn names(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (_, c) = parse_x509_certificate(der).unwrap();
    (c.subject().as_raw().to_vec(), c.issuer().as_raw().to_vec())
}

/// The private key PEM of `name`: a file under pki/, or a kubeconfig's `client-key-data`.
fn key_pem(pki: &Pki, name: &str) -> String {
    if name.ends_with(".conf") {
        let kc: serde_norway::Value = serde_norway::from_slice(&pki.read(name)).unwrap();
        let data = kc["users"][0]["user"]["client-key-data"].as_str().unwrap().to_string();
        String::from_utf8(base64_decode(&data)).unwrap()
    } else {
        String::from_utf8(pki.read(&format!("pki/{}.key", base_of(name)))).unwrap()
    }
}

/// Asserts that `name`'s certificate carries a public key of `alg` (algorithm OID and curve, or RSA
/// modulus size), that its private key is in kubeadm's encoding for `alg` (PKCS#1 `RSA PRIVATE KEY`,
/// SEC1 `EC PRIVATE KEY`), and that the two are a pair: OpenSSL derives from the key exactly the
/// certificate's SubjectPublicKeyInfo.
fn assert_key_pair(pki: &Pki, name: &str, alg: &str) {
    let der = cert_der(pki, name);
    let (_, c) = parse_x509_certificate(&der).unwrap();
    let spki = c.public_key();
    let key_oid = spki.algorithm.algorithm.to_id_string();
    let (want_oid, pem_tag) = match alg {
        "ecdsa-p256" | "ecdsa-p384" => ("1.2.840.10045.2.1", "EC PRIVATE KEY"),
        _ => ("1.2.840.113549.1.1.1", "RSA PRIVATE KEY"),
    };
    assert_eq!(key_oid, want_oid, "{name}: certificate key algorithm, want {alg}");
    match alg {
        "ecdsa-p256" | "ecdsa-p384" => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
            let want = if alg == "ecdsa-p256" { "1.2.840.10045.3.1.7" } else { "1.3.132.0.34" };
            assert_eq!(curve.as_deref(), Some(want), "{name}: curve, want {alg}");
        }
        _ => {
            let bits: usize = alg.trim_start_matches("rsa-").parse().unwrap();
            assert_eq!(spki.parsed().unwrap().key_size(), bits, "{name}: RSA modulus size, want {alg}");
        }
    }
    let pem_text = key_pem(pki, name);
    let block = ::pem::parse(&pem_text).unwrap();
    assert_eq!(block.tag(), pem_tag, "{name}: key encoding for {alg}");
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, &pem_text).unwrap();
    let public = openssl(&["pkey", "-pubout", "-in", key_file.to_str().unwrap()]);
    assert_eq!(::pem::parse(public).unwrap().contents(), spki.raw, "{name}: the key does not match the certificate");
}

fn text(pki: &Pki, rel: &str) -> String {
    openssl(&["x509", "-noout", "-text", "-in", pki.kube().join(rel).to_str().unwrap()])
}

fn verify(pki: &Pki, ca: &str, certs: &[&str]) {
    let ca = pki.certs().join(ca);
    for c in certs {
        let out = openssl(&["verify", "-CAfile", ca.to_str().unwrap(), pki.certs().join(c).to_str().unwrap()]);
        assert!(out.trim().ends_with(": OK"), "{out}");
    }
}

fn renew_and_verify(alg: &str, signature: &str, key_usage: &str) {
    let pki = synthetic_pki(alg);
    let before = pki.snapshot();
    let subjects_before: Vec<_> = ALL_CERTS.iter().map(|n| subject_attrs(&cert_der(&pki, n))).collect();
    let (code, out, err) = run_on(&pki, &["renew", "all", "--force"]);
    assert_eq!(code, 0, "{alg}: {out}{err}");
    assert_eq!(before.changed(&pki.snapshot()).len(), 7 * 2 + 4, "{alg}: every pair and kubeconfig");
    verify(&pki, "ca.crt", &["apiserver.crt", "apiserver-kubelet-client.crt"]);
    verify(
        &pki,
        "etcd/ca.crt",
        &["etcd/server.crt", "etcd/peer.crt", "etcd/healthcheck-client.crt", "apiserver-etcd-client.crt"],
    );
    verify(&pki, "front-proxy-ca.crt", &["front-proxy-client.crt"]);
    for base in ["apiserver", "etcd/peer", "front-proxy-client"] {
        let t = text(&pki, &format!("pki/{base}.crt"));
        assert!(t.contains(&format!("Signature Algorithm: {signature}")), "{alg} {base}: {t}");
        assert!(t.contains(key_usage), "{alg} {base}: key usage {key_usage}: {t}");
    }
    // every renewed key, in files and in kubeconfigs, is of the same algorithm, in kubeadm's encoding, and
    // belongs to its certificate
    for name in ALL_CERTS.iter().chain(&["super-admin.conf"]) {
        assert_key_pair(&pki, name, alg);
    }
    // subjects and string types survive: OpenSSL wrote UTF8String where Go writes PrintableString
    assert_eq!(
        subject_attrs(&cert_der(&pki, "apiserver-kubelet-client")),
        [
            (O.to_string(), Tag::Utf8String, "kubeadm:cluster-admins".to_string()),
            (CN.to_string(), Tag::Utf8String, "kube-apiserver-kubelet-client".to_string()),
        ],
        "{alg}: O then CN, both UTF8String as on disk"
    );
    for (name, was) in ALL_CERTS.iter().zip(&subjects_before) {
        assert_eq!(&subject_attrs(&cert_der(&pki, name)), was, "{alg} {name}: subject order, string types, values");
    }
    // and the issuer is the CA's subject byte for byte (Go chains by bytes; OpenSSL's verify does not)
    for (name, ca) in [("apiserver", "ca"), ("etcd-peer", "etcd/ca"), ("front-proxy-client", "front-proxy-ca")] {
        let (ca_subject, _) = names(::pem::parse(pki.read(&format!("pki/{ca}.crt"))).unwrap().contents());
        assert_eq!(names(&cert_der(&pki, name)).1, ca_subject, "{alg} {name}: issuer");
    }
    // and the report reads the algorithm back
    let (code, json, _) = run_on(&pki, &["renew", "--renew-before", "0s", "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sa = v["certificates"].as_array().unwrap().iter().find(|c| c["name"] == "super-admin.conf").unwrap().clone();
    assert_eq!(sa["key_algorithm"], alg, "{sa}");
    assert_eq!(v["changed"], false);
}

#[test]
fn ecdsa_p256() {
    renew_and_verify("ecdsa-p256", "ecdsa-with-SHA256", "Digital Signature\n");
}

#[test]
fn ecdsa_p384() {
    renew_and_verify("ecdsa-p384", "ecdsa-with-SHA384", "Digital Signature\n");
}

#[test]
fn rsa_3072() {
    renew_and_verify("rsa-3072", "sha256WithRSAEncryption", "Digital Signature, Key Encipherment");
}

#[test]
fn rsa_4096() {
    renew_and_verify("rsa-4096", "sha256WithRSAEncryption", "Digital Signature, Key Encipherment");
}

#[test]
fn key_algorithm_switches_rsa_to_ecdsa_and_back() {
    let pki = std_pki();
    let switched = ["apiserver", "etcd-server", "admin.conf"];
    let (code, _, err) =
        run_on(&pki, &["renew", "apiserver", "etcd-server", "admin.conf", "--force", "--key-algorithm", "ecdsa-p256"]);
    assert_eq!(code, 0, "{err}");
    for name in switched {
        assert_key_pair(&pki, name, "ecdsa-p256");
    }
    assert_key_pair(&pki, "apiserver-kubelet-client", "rsa-2048");
    verify(&pki, "ca.crt", &["apiserver.crt"]);
    verify(&pki, "etcd/ca.crt", &["etcd/server.crt"]);
    // the RSA CA still signs with sha256WithRSA
    assert!(text(&pki, "pki/apiserver.crt").contains("Signature Algorithm: sha256WithRSAEncryption"));
    let (code, _, err) = run_on(&pki, &["renew", "apiserver", "--force", "--key-algorithm", "rsa-3072"]);
    assert_eq!(code, 0, "{err}");
    assert_key_pair(&pki, "apiserver", "rsa-3072");
    verify(&pki, "ca.crt", &["apiserver.crt"]);
    // the report reads back what is on disk (a renewal that renews nothing, for its detailed report)
    let (code, json, _) = run_on(&pki, &["renew", "--renew-before", "0s", "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let alg_of = |name: &str| {
        let c = v["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {v}"));
        c["key_algorithm"].as_str().unwrap().to_string()
    };
    assert_eq!(
        [alg_of("apiserver"), alg_of("etcd-server"), alg_of("admin.conf"), alg_of("scheduler.conf")],
        ["rsa-3072", "ecdsa-p256", "ecdsa-p256", "rsa-2048"]
    );
}
