//! What must hold for any input, one function per fuzz target: shared by the fuzz targets
//! (fuzz/fuzz_targets/*.rs) and by `cargo test` (tests/fuzz_regressions.rs replays the committed corpus and
//! every crash found through them). A property that does not hold panics.
#![allow(dead_code)]

use std::path::Path;

use kubeadm_certs::duration::{self, Span};
use kubeadm_certs::frontend::ansible::parse_request;
use kubeadm_certs::pki::cert::Certificate;
use kubeadm_certs::pki::key::PrivateKey;
use kubeadm_certs::pki::kubeconfig::Kubeconfig;
use kubeadm_certs::pki::verify::issued_by;

/// The certificate reader (PEM with a chain, text before the block, or raw DER) and what check and renew
/// do with a parsed certificate; a certificate's own PEM reads back as the same certificate and chain.
pub fn cert(data: &[u8]) {
    let Ok(cert) = Certificate::from_file_bytes(Path::new("fuzz.crt"), data) else { return };
    let _ = cert.sans();
    let _ = cert.subject.to_string();
    let _ = cert.issuer.to_string();
    let _ = cert.subject.kubeadm_kept();
    let _ = cert.key_kind.to_string();
    let _ = issued_by(&cert, &cert);
    let again = Certificate::from_file_bytes(Path::new("again.crt"), cert.pem().as_bytes())
        .expect("a certificate's own PEM reads back");
    assert_eq!(again.der, cert.der);
    assert_eq!(again.chain_rest, cert.chain_rest);
}

/// The private key reader (PKCS#1, SEC1, PKCS#8 PEM); a key never shows in Debug output.
pub fn key(data: &[u8]) {
    if let Ok(key) = PrivateKey::from_pem_bytes(Path::new("fuzz.key"), data) {
        let _ = key.public_key_raw();
        assert!(format!("{key:?}").contains("redacted"));
    }
}

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n";

/// The kubeconfig reader and the rewrite a renewal makes of what it read: the rewrite must read back, with
/// the same context, user and cluster and the new credentials in them.
pub fn kubeconfig(data: &[u8]) {
    let Ok(kc) = Kubeconfig::parse(Path::new("fuzz.conf"), data) else { return };
    let _ = kc.cluster_str("server");
    let _ = kc.cluster_bool("insecure-skip-tls-verify");
    let Ok(out) = kc.with_client(CERT, KEY, Some(CERT)) else { return };
    let again = Kubeconfig::parse(Path::new("again.conf"), &out).expect("a rewritten kubeconfig reads back");
    assert_eq!(again.context, kc.context);
    assert_eq!(again.user, kc.user);
    assert_eq!(again.cluster, kc.cluster);
    assert_eq!(again.client_certificate_pem, CERT.as_bytes());
    assert_eq!(again.client_key_pem, KEY.as_bytes());
}

/// The duration parser: never negative, and the shortest spelling reads back as the same span; kubeadm's
/// residual-time text for any number of seconds.
pub fn duration(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(span) = duration::parse(text)
    {
        assert!(span >= Span(0), "{text:?} parsed to a negative span");
        assert_eq!(duration::parse(&span.to_string()), Ok(span), "{text:?}");
        let _ = span.as_chrono();
    }
    if let Some(bytes) = data.get(..8) {
        let _ = duration::human(i64::from_le_bytes(bytes.try_into().unwrap()));
    }
}

/// The module's argument parsing: JSON, Ansible's coercions, the argument spec, each parameter's parser.
pub fn module_args(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_request(text);
    }
}
