//! A certificate signing request (PKCS#10) read from disk: one PEM `CERTIFICATE REQUEST` whose signature its
//! own key verifies, with what a signer looks at: the subject, the key, the SANs and extensions it asks for.

use std::net::IpAddr;

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::cert::{KeyKind, ip_from_bytes, key_kind};
use super::verify::signed_with;

pub struct Csr {
    /// The SubjectPublicKeyInfo's key bits (an EC point, or an RSAPublicKey).
    pub public_key_raw: Vec<u8>,
    pub key_kind: KeyKind,
    /// (OID, value) of each subject attribute, in order.
    pub subject: Vec<(String, String)>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// Requested SANs that are neither a DNS name nor an IP address.
    pub other_names: usize,
    /// How many extensions it requests (SANs included).
    pub extensions: usize,
}

/// `bytes` as one PEM `CERTIFICATE REQUEST` whose signature its own key verifies; what is wrong otherwise.
pub fn parse(bytes: &[u8]) -> Result<Csr, String> {
    let blocks = pem::parse_many(bytes).map_err(|e| format!("not PEM: {e}"))?;
    let [block] = blocks.as_slice() else {
        return Err(format!("holds {} PEM blocks, a CSR is one CERTIFICATE REQUEST", blocks.len()));
    };
    if block.tag() != "CERTIFICATE REQUEST" {
        return Err(format!("holds a {}, not a CERTIFICATE REQUEST", block.tag()));
    }
    let (rest, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(block.contents())
        .map_err(|e| format!("not a valid certificate signing request: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing data after the certificate signing request".into());
    }
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    let kind = key_kind(spki);
    let public_key_raw = spki.subject_public_key.data.to_vec();
    signed_with(
        &csr.signature_algorithm.algorithm.to_id_string(),
        info.raw,
        &csr.signature_value.data,
        kind,
        &public_key_raw,
    )
    .map_err(|e| format!("its signature does not verify with its own public key ({e}): it proves no key"))?;
    let subject = info
        .subject
        .iter_attributes()
        .map(|a| (a.attr_type().to_id_string(), a.as_str().unwrap_or("(not a string)").to_string()))
        .collect();
    let mut out = Csr {
        public_key_raw,
        key_kind: kind,
        subject,
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        other_names: 0,
        extensions: 0,
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        out.extensions += 1;
        let ParsedExtension::SubjectAlternativeName(san) = ext else { continue };
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(d) => out.dns_names.push(d.to_string()),
                GeneralName::IPAddress(b) => match ip_from_bytes(b) {
                    Some(ip) => out.ip_addresses.push(ip),
                    None => out.other_names += 1,
                },
                _ => out.other_names += 1,
            }
        }
    }
    Ok(out)
}
