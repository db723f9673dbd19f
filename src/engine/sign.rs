//! Issuing a certificate from a `Desired` value with the CA key on disk (rcgen). The issuer name is the
//! CA's subject with its exact string types and order, and the authority key identifier is the CA's
//! subject key identifier, so Go, OpenSSL and kube-apiserver all chain the result to the CA. A CA
//! certificate issued again with its own key ([`reissue_ca`]) is written field by field instead: rcgen would
//! rebuild its extensions, and they must stay as they are.

use rcgen::string::{BmpString, Ia5String, PrintableString, TeletexString, UniversalString};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyUsagePurpose, SanType, SerialNumber,
};

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::plan::Desired;
use crate::pki::cert::{Certificate, Name, pem_encode};
use crate::pki::der;
use crate::pki::key::PrivateKey;

fn oid_arcs(oid: &str) -> Vec<u64> {
    oid.split('.').filter_map(|a| a.parse().ok()).collect()
}

fn dn_value(tag: u32, value: &str) -> Result<DnValue, String> {
    fn bad(value: &str, e: impl std::fmt::Display) -> String {
        format!("name value {value:?}: {e}")
    }
    Ok(match tag {
        19 => DnValue::PrintableString(PrintableString::try_from(value).map_err(|e| bad(value, e))?),
        22 => DnValue::Ia5String(Ia5String::try_from(value).map_err(|e| bad(value, e))?),
        20 => DnValue::TeletexString(TeletexString::try_from(value).map_err(|e| bad(value, e))?),
        30 => DnValue::BmpString(BmpString::try_from(value).map_err(|e| bad(value, e))?),
        28 => DnValue::UniversalString(UniversalString::try_from(value).map_err(|e| bad(value, e))?),
        _ => DnValue::Utf8String(value.to_string()),
    })
}

/// rcgen keeps one value per attribute type, so a name that repeats a type (two O=) cannot be
/// reproduced; say so instead of dropping one silently.
pub fn distinguished_name(name: &Name) -> Result<DistinguishedName, String> {
    let mut dn = DistinguishedName::new();
    for (i, attr) in name.0.iter().enumerate() {
        if name.0[..i].iter().any(|a| a.oid == attr.oid) {
            return Err(format!(
                "its subject repeats {} (\"{}\"), which kubeadm-certs cannot reproduce",
                attr.short_name(),
                name
            ));
        }
        dn.push(DnType::from_oid(&oid_arcs(&attr.oid)), dn_value(attr.tag, &attr.value)?);
    }
    Ok(dn)
}

fn eku(oid: &str) -> ExtendedKeyUsagePurpose {
    match oid {
        "1.3.6.1.5.5.7.3.1" => ExtendedKeyUsagePurpose::ServerAuth,
        "1.3.6.1.5.5.7.3.2" => ExtendedKeyUsagePurpose::ClientAuth,
        "1.3.6.1.5.5.7.3.3" => ExtendedKeyUsagePurpose::CodeSigning,
        "1.3.6.1.5.5.7.3.4" => ExtendedKeyUsagePurpose::EmailProtection,
        "1.3.6.1.5.5.7.3.8" => ExtendedKeyUsagePurpose::TimeStamping,
        "1.3.6.1.5.5.7.3.9" => ExtendedKeyUsagePurpose::OcspSigning,
        "2.5.29.37.0" => ExtendedKeyUsagePurpose::Any,
        other => ExtendedKeyUsagePurpose::Other(oid_arcs(other)),
    }
}

fn offset(t: chrono::DateTime<chrono::Utc>) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| e.to_string())
}

/// kubeadm's serial: random in [1, 2^63), big-endian.
fn random_serial_bytes() -> Result<[u8; 8], String> {
    let mut b = [0u8; 8];
    loop {
        aws_lc_rs::rand::fill(&mut b).map_err(|_| "no randomness available".to_string())?;
        b[0] &= 0x7f;
        if b.iter().any(|&x| x != 0) {
            return Ok(b);
        }
    }
}

fn random_serial() -> Result<SerialNumber, String> {
    random_serial_bytes().map(|b| SerialNumber::from_slice(&b))
}

/// The subject and SANs: all a certificate request carries (the CA decides usages, validity and serial).
fn names(subject: &Name, dns_names: &[String], ip_addresses: &[IpAddr]) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::default();
    p.distinguished_name = distinguished_name(subject)?;
    p.subject_alt_names = dns_names
        .iter()
        .map(|d| Ia5String::try_from(d.as_str()).map(SanType::DnsName).map_err(|e| format!("DNS SAN {d:?}: {e}")))
        .chain(ip_addresses.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
        .collect::<Result<_, _>>()?;
    Ok(p)
}

/// A PKCS#10 request (PEM) for `subject` and SANs, signed with `key`.
pub fn request_pem(
    subject: &Name,
    dns_names: &[String],
    ip_addresses: &[IpAddr],
    key: &PrivateKey,
) -> Result<String, String> {
    let csr = names(subject, dns_names, ip_addresses)?.serialize_request(key.pair()).map_err(|e| e.to_string())?;
    Ok(pem_encode("CERTIFICATE REQUEST", csr.der()))
}

/// The certificate parameters of a `Desired`, the serial aside (drawn when it is signed).
fn params(desired: &Desired) -> Result<CertificateParams, String> {
    let mut p = names(&desired.subject, &desired.dns_names, &desired.ip_addresses)?;
    p.not_before = offset(desired.not_before)?;
    p.not_after = offset(desired.not_after)?;
    p.is_ca = if desired.basic_constraints { IsCa::ExplicitNoCa } else { IsCa::NoCa };
    p.key_usages = if desired.key_algorithm.is_rsa() {
        vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    p.extended_key_usages = desired.ext_key_usage.iter().map(|o| eku(o)).collect();
    Ok(p)
}

/// Signs `desired` for `subject_key` with the CA on disk; returns the DER certificate.
pub fn sign_local(
    desired: &Desired,
    subject_key: &impl rcgen::PublicKeyData,
    ca: &Certificate,
    ca_key: &PrivateKey,
) -> Result<Vec<u8>, String> {
    let mut p = params(desired)?;
    p.serial_number = Some(random_serial()?);
    p.use_authority_key_identifier_extension = ca.subject_key_id.is_some();
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = distinguished_name(&ca.subject).map_err(|e| format!("the CA: {e}"))?;
    if let Some(skid) = &ca.subject_key_id {
        ca_params.key_identifier_method = KeyIdMethod::PreSpecified(skid.clone());
    }
    let issuer = Issuer::new(ca_params, ca_key.pair());
    let cert = p.signed_by(subject_key, &issuer).map_err(|e| format!("signing failed: {e}"))?;
    Ok(cert.der().to_vec())
}

/// A CA certificate of one's own for `subject`, self-signed with `key`, as client-go's
/// `GenerateSelfSignedCertKeyWithFixtures` makes the throwaway CA of the kubelet's self-signed serving
/// certificate: basic constraints CA, key usages key encipherment, digital signature and certificate signing, a
/// random serial (Go's is 1). Returns the DER certificate.
pub fn self_signed_ca(
    subject: &Name,
    key: &PrivateKey,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<Vec<u8>, String> {
    let mut p = CertificateParams::default();
    p.distinguished_name = distinguished_name(subject)?;
    p.not_before = offset(not_before)?;
    p.not_after = offset(not_after)?;
    p.serial_number = Some(random_serial()?);
    p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages =
        vec![KeyUsagePurpose::KeyEncipherment, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign];
    let cert = p.self_signed(key.pair()).map_err(|e| format!("signing failed: {e}"))?;
    Ok(cert.der().to_vec())
}

/// The signature algorithm `key` signs with (rcgen's choice for the key: SHA-256 for RSA and P-256, SHA-384 for
/// P-384, as Go and kubeadm choose), as its OID and DER `AlgorithmIdentifier`.
fn signature_algorithm(key: &PrivateKey) -> Result<(&'static str, &'static [u8]), String> {
    let alg = key.pair().algorithm();
    Ok(if alg == &rcgen::PKCS_RSA_SHA256 {
        // sha256WithRSAEncryption, NULL parameters (as Go writes it)
        (
            "1.2.840.113549.1.1.11",
            &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00],
        )
    } else if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        ("1.2.840.10045.4.3.2", &[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        ("1.2.840.10045.4.3.3", &[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03])
    } else if alg == &rcgen::PKCS_ED25519 {
        ("1.3.101.112", &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70])
    } else {
        return Err(format!("its key's signature algorithm {alg:?} is not one a CA certificate is issued with here"));
    })
}

/// The CA certificate `old` issued again with its own `key`: its tbsCertificate with a new random serial and
/// the validity `not_before`..`not_after`, every other field as it was, byte for byte (version, issuer,
/// subject, public key, and every extension with its criticality: basic constraints, key usage, the subject
/// key identifier, an authority key identifier if it had one), self-signed. So every certificate the old one
/// issued verifies under it: the same issuer name, the same key, and their authority key identifier is its
/// subject key identifier. The signature algorithm is the key's (see [`signature_algorithm`]); the old one's
/// encoding is kept when it is the same algorithm.
pub fn reissue_ca(
    old: &Certificate,
    key: &PrivateKey,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<Vec<u8>, String> {
    let malformed = || "its tbsCertificate is not the DER X.509 expects".to_string();
    let (tbs, _) = der::read(&old.tbs_raw).filter(|(t, _)| t.tag == 0x30).ok_or_else(malformed)?;
    let mut fields = der::raw_elements(tbs.value).ok_or_else(malformed)?;
    // [0] version (absent in v1), serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
    let serial_at = usize::from(fields.first().is_some_and(|f| f[0] == 0xa0));
    if fields.len() < serial_at + 6 || fields[serial_at][0] != 0x02 || fields[serial_at + 3][0] != 0x30 {
        return Err(malformed());
    }
    let (oid, alg_id) = signature_algorithm(key)?;
    let alg_id = if old.signature_oid == oid { fields[serial_at + 1] } else { alg_id };
    let serial = der::unsigned_integer(&random_serial_bytes()?);
    let validity = der::encode(0x30, &[der::time(not_before), der::time(not_after)].concat());
    fields[serial_at] = &serial;
    fields[serial_at + 1] = alg_id;
    fields[serial_at + 3] = &validity;
    let tbs = der::encode(0x30, &fields.concat());
    let signature = rcgen::SigningKey::sign(key.pair(), &tbs).map_err(|e| format!("signing failed: {e}"))?;
    let bits = der::encode(0x03, &[&[0u8][..], &signature].concat());
    Ok(der::encode(0x30, &[&tbs[..], alg_id, &bits].concat()))
}
