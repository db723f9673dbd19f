//! Newer kubeadm's `encryptionAlgorithm`: PKIs of ECDSA P-256/P-384 and RSA 3072/4096 keys (made with
//! OpenSSL by tests/fixtures/synthetic-pki.sh) renew into keys of the same algorithm and size, in
//! kubeadm's encodings, with kubeadm's key usage, and verify with OpenSSL; `--key-algorithm` changes them.

mod common;
use common::*;

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

fn renew_and_verify(alg: &str, key_header: &str, public_key: &str, signature: &str, key_usage: &str) {
    let pki = synthetic_pki(alg);
    let before = pki.snapshot();
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
        assert!(t.contains(public_key), "{alg} {base}: {t}");
        assert!(t.contains(&format!("Signature Algorithm: {signature}")), "{alg} {base}: {t}");
        assert!(t.contains(key_usage), "{alg} {base}: key usage {key_usage}: {t}");
        let key = String::from_utf8(pki.read(&format!("pki/{base}.key"))).unwrap();
        assert!(key.starts_with(key_header), "{alg} {base}: {key}");
        // the key and the certificate belong together (OpenSSL compares the public halves)
        let from_key = openssl(&["pkey", "-pubout", "-in", pki.certs().join(format!("{base}.key")).to_str().unwrap()]);
        let from_cert =
            openssl(&["x509", "-noout", "-pubkey", "-in", pki.certs().join(format!("{base}.crt")).to_str().unwrap()]);
        assert_eq!(from_key, from_cert, "{alg} {base}");
    }
    // subjects and string types survive: OpenSSL wrote UTF8String where Go writes PrintableString
    let t = text(&pki, "pki/apiserver-kubelet-client.crt");
    assert!(t.contains("Subject: O = kubeadm:cluster-admins, CN = kube-apiserver-kubelet-client"), "{t}");
    let der = cert_der(&pki, "apiserver-kubelet-client");
    assert!(der.windows(2).any(|w| w == [0x0c, 22]), "the O value stays a UTF8String (tag 12)");
    // kubeconfig credentials are the new ones and belong together
    let (code, json, _) = run_on(&pki, &["renew", "--renew-before", "0s", "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sa = v["certificates"].as_array().unwrap().iter().find(|c| c["name"] == "super-admin.conf").unwrap().clone();
    assert_eq!(sa["key_algorithm"], alg, "{sa}");
    assert_eq!(v["changed"], false);
}

#[test]
fn ecdsa_p256() {
    renew_and_verify(
        "ecdsa-p256",
        "-----BEGIN EC PRIVATE KEY-----",
        "ASN1 OID: prime256v1",
        "ecdsa-with-SHA256",
        "Digital Signature\n",
    );
}

#[test]
fn ecdsa_p384() {
    renew_and_verify(
        "ecdsa-p384",
        "-----BEGIN EC PRIVATE KEY-----",
        "ASN1 OID: secp384r1",
        "ecdsa-with-SHA384",
        "Digital Signature\n",
    );
}

#[test]
fn rsa_3072() {
    renew_and_verify(
        "rsa-3072",
        "-----BEGIN RSA PRIVATE KEY-----",
        "Public-Key: (3072 bit)",
        "sha256WithRSAEncryption",
        "Digital Signature, Key Encipherment",
    );
}

#[test]
fn rsa_4096() {
    renew_and_verify(
        "rsa-4096",
        "-----BEGIN RSA PRIVATE KEY-----",
        "Public-Key: (4096 bit)",
        "sha256WithRSAEncryption",
        "Digital Signature, Key Encipherment",
    );
}

#[test]
fn key_algorithm_switches_rsa_to_ecdsa_and_back() {
    let pki = std_pki();
    let (code, _, err) =
        run_on(&pki, &["renew", "apiserver", "etcd-server", "admin.conf", "--force", "--key-algorithm", "ecdsa-p256"]);
    assert_eq!(code, 0, "{err}");
    assert!(text(&pki, "pki/apiserver.crt").contains("ASN1 OID: prime256v1"));
    assert!(String::from_utf8(pki.read("pki/etcd/server.key")).unwrap().starts_with("-----BEGIN EC PRIVATE KEY-----"));
    verify(&pki, "ca.crt", &["apiserver.crt"]);
    // the RSA CA still signs with sha256WithRSA
    assert!(text(&pki, "pki/apiserver.crt").contains("Signature Algorithm: sha256WithRSAEncryption"));
    let (code, _, err) = run_on(&pki, &["renew", "apiserver", "--force", "--key-algorithm", "rsa-3072"]);
    assert_eq!(code, 0, "{err}");
    assert!(text(&pki, "pki/apiserver.crt").contains("Public-Key: (3072 bit)"));
    let (code, json, _) = run_on(&pki, &["check", "-o", "json"]);
    assert_eq!(code, 0);
    assert!(json.contains("admin.conf"));
}
