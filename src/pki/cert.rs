//! Reading a certificate into a plain owned value: everything check, renew and the diffs need, with the
//! raw bytes that must be preserved exactly (subject and issuer names, the public key).

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use chrono::{DateTime, Utc};
use x509_parser::prelude::*;

use super::der;
use crate::error::{Error, Result};

pub const OID_CN: &str = "2.5.4.3";
pub const OID_O: &str = "2.5.4.10";
const OID_EKU: &str = "2.5.29.37";
pub const EKU_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
pub const EKU_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

/// One attribute of a distinguished name, as on disk: type, ASN.1 string tag, text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAttr {
    pub oid: String,
    pub tag: u32,
    pub value: String,
}

impl NameAttr {
    pub fn short_name(&self) -> &str {
        match self.oid.as_str() {
            OID_CN => "CN",
            OID_O => "O",
            "2.5.4.11" => "OU",
            "2.5.4.6" => "C",
            "2.5.4.7" => "L",
            "2.5.4.8" => "ST",
            "2.5.4.5" => "serialNumber",
            other => other,
        }
    }
}

/// A subject in on-disk order, printed `O=system:masters, CN=kubernetes-admin`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Name(pub Vec<NameAttr>);

impl Name {
    pub fn common_name(&self) -> Option<&str> {
        self.0.iter().find(|a| a.oid == OID_CN).map(|a| a.value.as_str())
    }
    /// The attributes kubeadm carries over on renewal (CommonName, Organization), in on-disk order.
    pub fn kubeadm_kept(&self) -> Name {
        Name(self.0.iter().filter(|a| a.oid == OID_CN || a.oid == OID_O).cloned().collect())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={}", a.short_name(), a.value)?;
        }
        Ok(())
    }
}

/// The public key's algorithm and size, which decides the new key's unless told otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa(u32),
    EcP256,
    EcP384,
    EcP521,
    Ed25519,
    Other,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa(bits) => write!(f, "rsa-{bits}"),
            KeyKind::EcP256 => f.write_str("ecdsa-p256"),
            KeyKind::EcP384 => f.write_str("ecdsa-p384"),
            KeyKind::EcP521 => f.write_str("ecdsa-p521"),
            KeyKind::Ed25519 => f.write_str("ed25519"),
            KeyKind::Other => f.write_str("unknown"),
        }
    }
}

/// SHA-256, lowercase hex: how fingerprints of certificates and public keys are compared across nodes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Debug)]
pub struct Certificate {
    pub der: Vec<u8>,
    /// Further certificates after the first in the same PEM file (an intermediate chain); kept on rewrite.
    pub chain_rest: Vec<Vec<u8>>,
    pub subject: Name,
    pub subject_raw: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    pub issuer: Name,
    pub serial_hex: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// Extended key usage OIDs in on-disk order.
    pub ext_key_usage: Vec<String>,
    pub key_usage: Option<u16>,
    /// `Some(is_ca)` when the basic constraints extension is present.
    pub basic_constraints: Option<bool>,
    pub subject_key_id: Option<Vec<u8>>,
    pub key_kind: KeyKind,
    /// The subjectPublicKey bit string: what a private key's public half must equal.
    pub public_key_raw: Vec<u8>,
    pub tbs_raw: Vec<u8>,
    pub signature_oid: String,
    pub signature: Vec<u8>,
}

impl Certificate {
    pub fn is_ca(&self) -> bool {
        self.basic_constraints == Some(true)
    }

    /// SANs as community.crypto prints them: `DNS:kubernetes`, `IP:10.96.0.1`.
    pub fn sans(&self) -> Vec<String> {
        san_strings(&self.dns_names, &self.ip_addresses)
    }

    pub fn pem(&self) -> String {
        let mut out = pem_encode("CERTIFICATE", &self.der);
        for extra in &self.chain_rest {
            out.push_str(&pem_encode("CERTIFICATE", extra));
        }
        out
    }

    /// Parses one DER certificate; `path` names the file in errors.
    pub fn from_der(path: &Path, der: &[u8]) -> Result<Certificate> {
        let (rest, x) = parse_x509_certificate(der)
            .map_err(|e| Error::invalid(path, format!("not a valid X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::invalid(path, format!("{} bytes of trailing data after the certificate", rest.len())));
        }
        let invalid = |what: &str, e: X509Error| Error::invalid(path, format!("bad {what}: {e}"));

        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        if let Some(san) = x.subject_alternative_name().map_err(|e| invalid("subjectAltName", e))? {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => dns_names.push(d.to_string()),
                    GeneralName::IPAddress(b) => ip_addresses.extend(ip_from_bytes(b)),
                    // kubeadm's certificates carry DNS names and IP addresses only; nothing reads the others
                    _ => {}
                }
            }
        }

        let mut ext_key_usage = Vec::new();
        let mut subject_key_id = None;
        for ext in x.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => subject_key_id = Some(k.0.to_vec()),
                ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::ParseError { .. }
                    if ext.oid.to_id_string() == OID_EKU =>
                {
                    return Err(Error::invalid(path, "malformed extended key usage extension"));
                }
                _ => {}
            }
            if ext.oid.to_id_string() == OID_EKU {
                ext_key_usage = eku_in_order(ext.value)
                    .ok_or_else(|| Error::invalid(path, "malformed extended key usage extension"))?;
            }
        }
        let key_usage = x.key_usage().map_err(|e| invalid("keyUsage", e))?.map(|k| k.value.flags);
        let basic_constraints = x.basic_constraints().map_err(|e| invalid("basicConstraints", e))?.map(|b| b.value.ca);

        let spki = x.public_key();
        let key_kind = key_kind(spki);
        let tbs = &x.tbs_certificate;
        Ok(Certificate {
            der: der.to_vec(),
            chain_rest: Vec::new(),
            subject: name_attrs(path, tbs.subject())?,
            subject_raw: tbs.subject().as_raw().to_vec(),
            issuer_raw: tbs.issuer().as_raw().to_vec(),
            issuer: name_attrs(path, tbs.issuer())?,
            serial_hex: hex_colon(x.raw_serial()),
            not_before: to_utc(path, x.validity().not_before)?,
            not_after: to_utc(path, x.validity().not_after)?,
            dns_names,
            ip_addresses,
            ext_key_usage,
            key_usage,
            basic_constraints,
            subject_key_id,
            key_kind,
            public_key_raw: spki.subject_public_key.data.to_vec(),
            tbs_raw: tbs.as_ref().to_vec(),
            signature_oid: x.signature_algorithm.algorithm.to_id_string(),
            signature: x.signature_value.data.to_vec(),
        })
    }

    /// A certificate file: PEM (one or more CERTIFICATE blocks; the first is the certificate, the rest a
    /// chain that is kept) or raw DER.
    pub fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<Certificate> {
        if looks_like_pem(bytes) {
            let blocks = ::pem::parse_many(bytes).map_err(|e| Error::invalid(path, format!("corrupt PEM: {e}")))?;
            let mut certs = blocks.iter().filter(|b| b.tag() == "CERTIFICATE");
            let first = certs.next().ok_or_else(|| {
                let tags: Vec<_> = blocks.iter().map(|b| b.tag().to_string()).collect();
                if tags.is_empty() {
                    Error::invalid(path, "corrupt PEM: no complete PEM block found")
                } else {
                    Error::invalid(path, format!("no CERTIFICATE PEM block (found {})", tags.join(", ")))
                }
            })?;
            let mut cert = Certificate::from_der(path, first.contents())?;
            for extra in certs {
                // a chain member must at least parse, or a rewrite would copy garbage along
                Certificate::from_der(path, extra.contents())?;
                cert.chain_rest.push(extra.contents().to_vec());
            }
            Ok(cert)
        } else {
            Certificate::from_der(path, bytes)
        }
    }

    pub fn read(path: &Path) -> Result<Certificate> {
        let bytes = super::read_file(path, super::Links::Follow)?;
        Certificate::from_file_bytes(path, &bytes)
    }
}

/// PEM when a `-----BEGIN` line is anywhere in the file: like Go's `pem.Decode` (so kubeadm), text before
/// the first block is skipped (`openssl x509 -text` and `openssl pkcs12` put `subject=`, `Bag Attributes`
/// lines there). A DER certificate never holds those bytes in its outer structure.
pub fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(b"-----BEGIN ".len()).any(|w| w == b"-----BEGIN ")
}

pub fn pem_encode(tag: &str, der: &[u8]) -> String {
    ::pem::encode_config(&::pem::Pem::new(tag, der), ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF))
}

pub fn san_strings(dns: &[String], ips: &[IpAddr]) -> Vec<String> {
    dns.iter().map(|d| format!("DNS:{d}")).chain(ips.iter().map(|ip| format!("IP:{ip}"))).collect()
}

pub fn hex_colon(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub(crate) fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

fn eku_in_order(ext_value: &[u8]) -> Option<Vec<String>> {
    let (seq, rest) = der::read(ext_value)?;
    if seq.tag != 0x30 || !rest.is_empty() {
        return None;
    }
    der::elements(seq.value)?.into_iter().map(|t| if t.tag == 0x06 { der::oid_string(t.value) } else { None }).collect()
}

fn name_attrs(path: &Path, name: &X509Name<'_>) -> Result<Name> {
    let mut out = Vec::new();
    for attr in name.iter_attributes() {
        let value = attr.attr_value();
        let text = match value.tag() {
            x509_parser::der_parser::asn1_rs::Tag::BmpString => {
                let units: Vec<u16> =
                    value.data.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
                String::from_utf16_lossy(&units)
            }
            _ => String::from_utf8(value.data.to_vec())
                .map_err(|_| Error::invalid(path, "a name attribute is not valid text"))?,
        };
        out.push(NameAttr { oid: attr.attr_type().to_id_string(), tag: value.tag().0, value: text });
    }
    Ok(Name(out))
}

fn to_utc(path: &Path, t: ASN1Time) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(t.timestamp(), 0).ok_or_else(|| Error::invalid(path, "validity date out of range"))
}

pub(crate) fn key_kind(spki: &SubjectPublicKeyInfo<'_>) -> KeyKind {
    match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" => match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                let m = rsa.modulus;
                let start = m.iter().position(|&b| b != 0).unwrap_or(m.len());
                let m = &m[start..];
                let bits = if m.is_empty() { 0 } else { (m.len() * 8) as u32 - m[0].leading_zeros() };
                KeyKind::Rsa(bits)
            }
            _ => KeyKind::Other,
        },
        "1.2.840.10045.2.1" => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => KeyKind::EcP256,
                Some("1.3.132.0.34") => KeyKind::EcP384,
                Some("1.3.132.0.35") => KeyKind::EcP521,
                _ => KeyKind::Other,
            }
        }
        "1.3.101.112" => KeyKind::Ed25519,
        _ => KeyKind::Other,
    }
}
