//! `sign kubelet-client`, on a control-plane node: a worker's CSR for its kubelet's client certificate signed
//! by `ca` here, so that the CA key never leaves this node (the middle step of a worker's repair; the others
//! are in [`super::kubelet_csr`]).
//!
//! The CSR came from the worker through the controller: untrusted. It may ask for exactly what the kubelet's
//! own rotation asks of `kubernetes.io/kube-apiserver-client-kubelet` and nothing else; each refusal below
//! says why, and nothing is signed. The certificate takes only the CSR's public key: the subject is built
//! from the node name the caller gives (its inventory, never the CSR), the usages and dates are this side's.
//!
//! 1. read: `CSR_DIR/kubelet-client.csr` (one PEM block, at most 4 MiB), its signature verified with its own
//!    key (the worker holds the key it asks a certificate for)
//! 2. judge: [`refusal`]
//! 3. decide: a certificate already signed here for that key, still valid, is kept (a rerun changes nothing)
//! 4. sign with `ca` and write `CSR_DIR/kubelet-client.crt` (0644, atomically)

use chrono::{DateTime, Utc};

use super::key_dir::{self, KeyDir};
use super::kubelet_client::{cluster_ca, describe, node_certificate, node_subject};
use super::sign::sign_local;
use crate::commit::{self, FileWrite, MODE_PUBLIC};
use crate::error::{Error, Result};
use crate::pki::cert::{Certificate, KeyKind, pem_encode};
use crate::pki::csr::{Csr, parse};
use crate::pki::key::KeyAlgorithm;
use crate::pki::{self, Links};
use crate::report::{DiffEntry, Outcome};
use crate::request::{KUBELET_CLIENT, KubeletSignRequest};

/// Why `csr` must not be signed for `node`, or `None`. What the kubelet's own rotation asks for and the
/// apiserver's `kube-apiserver-client-kubelet` signer accepts: `O=system:nodes, CN=system:node:NODE` and no
/// more, a key the kubelet would make (ECDSA P-256/P-384, RSA of 2048 bits or more), no extensions.
pub fn refusal(csr: &Csr, node: &str) -> Option<String> {
    let key_ok = matches!(csr.key_kind, KeyKind::EcP256 | KeyKind::EcP384)
        || matches!(csr.key_kind, KeyKind::Rsa(bits) if (2048..=8192).contains(&bits));
    if !key_ok {
        return Some(format!(
            "its key is {}: a kubelet's client key is ECDSA P-256 or P-384, or RSA of 2048 bits or more",
            csr.key_kind
        ));
    }
    let want: Vec<(String, String)> = node_subject(node).0.iter().map(|a| (a.oid.clone(), a.value.clone())).collect();
    let mut got = csr.subject.clone();
    got.sort();
    let mut sorted = want.clone();
    sorted.sort();
    if got != sorted {
        let shown: Vec<String> = csr.subject.iter().map(|(oid, v)| format!("{}={v}", short(oid))).collect();
        return Some(format!(
            "it asks for subject {{{}}}, a node {node}'s kubelet may ask for exactly O=system:nodes, \
             CN=system:node:{node} (another node's name would let it act as that node, system:masters as \
             cluster-admin)",
            shown.join(", ")
        ));
    }
    if csr.extensions > 0 {
        return Some(format!(
            "it requests {} extension(s): a kubelet's client certificate carries none the node chooses (its usages \
             are the signer's)",
            csr.extensions
        ));
    }
    None
}

fn short(oid: &str) -> &str {
    match oid {
        crate::pki::cert::OID_CN => "CN",
        crate::pki::cert::OID_O => "O",
        other => other,
    }
}

/// A node's name as the apiserver takes it: a lowercase RFC 1123 subdomain.
pub fn valid_node_name(name: &str) -> bool {
    crate::request::is_dns_subdomain(name)
}

pub fn sign(req: &KubeletSignRequest, now: DateTime<Utc>) -> Result<Outcome> {
    if !valid_node_name(&req.node_name) {
        return Err(Error::Usage(format!(
            "invalid node name {:?}: a node's name is a lowercase DNS subdomain, as `kubectl get nodes` shows it",
            req.node_name
        )));
    }
    let dir = key_dir::check(&req.layout, &req.csr_dir, &KeyDir::CSR)?;
    key_dir::require_existing(&dir)?;
    let csr_path = req.csr_dir.join(format!("{KUBELET_CLIENT}.csr"));
    let crt_path = req.csr_dir.join(format!("{KUBELET_CLIENT}.crt"));
    // 1. read
    let bytes = pki::read_file(&csr_path, Links::Refuse)?;
    let csr = parse(&bytes).map_err(|why| Error::invalid(&csr_path, format!("{why}; nothing was signed")))?;
    // 2. judge
    if let Some(why) = refusal(&csr, &req.node_name) {
        return Err(Error::invalid(&csr_path, format!("refused: {why}; nothing was signed")));
    }
    let (ca, ca_key, ca_crt) = cluster_ca(&req.layout)?;
    // 3. decide
    let existing = match pki::exists(&crt_path)? {
        true => Some(Certificate::read(&crt_path)?),
        false => None,
    };
    let kept = existing.as_ref().is_some_and(|c| {
        c.public_key_raw == csr.public_key_raw
            && crate::pki::verify::issued_by(c, &ca).is_ok()
            && c.subject.to_string() == node_subject(&req.node_name).to_string()
            && c.not_after > now
    });
    let mut out = Outcome::default();
    if kept {
        out.msg = format!("{} already holds a certificate for this CSR's key, signed here", crt_path.display());
        return Ok(out);
    }
    // 4. sign and write
    let algorithm = KeyAlgorithm::of(csr.key_kind).expect("refusal() allows only what KeyAlgorithm names");
    let desired = node_certificate(&req.node_name, algorithm, req.validity, &ca, now);
    let subject_key = CsrKey { raw: csr.public_key_raw, algorithm };
    let der = sign_local(&desired, &subject_key, &ca, &ca_key).map_err(|e| Error::invalid(&ca_crt, e))?;
    let cert = Certificate::from_der(&crt_path, &der)?;
    out.diff.push(DiffEntry {
        before_header: crt_path.display().to_string(),
        after_header: crt_path.display().to_string(),
        before: existing.as_ref().map(describe).unwrap_or_else(|| "(missing)\n".into()),
        after: describe(&cert),
    });
    out.changed = true;
    if req.check_mode {
        out.msg = format!("would sign {KUBELET_CLIENT} of node {} into {}", req.node_name, crt_path.display());
        return Ok(out);
    }
    let write =
        FileWrite { path: crt_path.clone(), contents: pem_encode("CERTIFICATE", &der).into_bytes(), mode: MODE_PUBLIC };
    commit::commit(&req.layout, &[write], false, now)?;
    out.renewed = vec![KUBELET_CLIENT.to_string()];
    out.msg = format!(
        "signed {KUBELET_CLIENT} of node {} with {} until {}: {}",
        req.node_name,
        ca_crt.display(),
        crate::report::rfc3339(cert.not_after),
        crt_path.display()
    );
    Ok(out)
}

/// The CSR's public key, as rcgen takes a subject key it does not hold.
struct CsrKey {
    raw: Vec<u8>,
    algorithm: KeyAlgorithm,
}

impl rcgen::PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        // the key's algorithm identifier in the certificate's SubjectPublicKeyInfo (rsaEncryption, or
        // id-ecPublicKey with its curve); the signature is the CA's
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_lowercase_dns_subdomains() {
        for ok in ["w1", "worker-1.example.com", "a"] {
            assert!(valid_node_name(ok), "{ok}");
        }
        for bad in ["", "W1", "-w1", "w1-", "w1..x", "w 1", "w1/x", "system:masters", &"a".repeat(254)] {
            assert!(!valid_node_name(bad), "{bad}");
        }
    }

    #[test]
    fn only_the_named_nodes_kubelet_subject_on_a_kubelets_key_without_extensions_is_signed() {
        let node = |o: &str, cn: &str| {
            vec![
                (crate::pki::cert::OID_O.to_string(), o.to_string()),
                (crate::pki::cert::OID_CN.to_string(), cn.to_string()),
            ]
        };
        let csr = |subject, key_kind, extensions| Csr {
            public_key_raw: vec![],
            key_kind,
            subject,
            dns_names: vec![],
            ip_addresses: vec![],
            other_names: 0,
            extensions,
        };
        assert_eq!(refusal(&csr(node("system:nodes", "system:node:w1"), KeyKind::EcP256, 0), "w1"), None);
        assert_eq!(refusal(&csr(node("system:nodes", "system:node:w1"), KeyKind::Rsa(2048), 0), "w1"), None);
        let why = refusal(&csr(node("system:nodes", "system:node:cp1"), KeyKind::EcP256, 0), "w1").unwrap();
        assert!(why.contains("CN=system:node:cp1") && why.contains("another node's name"), "{why}");
        let why = refusal(&csr(node("system:masters", "system:node:w1"), KeyKind::EcP256, 0), "w1").unwrap();
        assert!(why.contains("O=system:masters"), "{why}");
        let mut three = node("system:nodes", "system:node:w1");
        three.push((crate::pki::cert::OID_O.to_string(), "system:masters".into()));
        assert!(refusal(&csr(three, KeyKind::EcP256, 0), "w1").is_some(), "a second organization");
        let why = refusal(&csr(node("system:nodes", "system:node:w1"), KeyKind::Rsa(1024), 0), "w1").unwrap();
        assert!(why.contains("rsa-1024"), "{why}");
        let why = refusal(&csr(node("system:nodes", "system:node:w1"), KeyKind::EcP256, 1), "w1").unwrap();
        assert!(why.contains("1 extension"), "{why}");
    }
}
