//! Issuing a certificate from a `Desired` value with the CA key on disk (rcgen). The issuer name is the
//! CA's subject with its exact string types and order, and the authority key identifier is the CA's
//! subject key identifier, so Go, OpenSSL and kube-apiserver all chain the result to the CA.

use rcgen::string::{BmpString, Ia5String, PrintableString, TeletexString, UniversalString};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyUsagePurpose, SanType, SerialNumber,
};

use std::net::IpAddr;

use super::plan::Desired;
use crate::pki::cert::{Certificate, Name, pem_encode};
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

/// kubeadm's serial: random in [1, 2^63).
fn random_serial() -> Result<SerialNumber, String> {
    let mut b = [0u8; 8];
    loop {
        aws_lc_rs::rand::fill(&mut b).map_err(|_| "no randomness available".to_string())?;
        b[0] &= 0x7f;
        if b.iter().any(|&x| x != 0) {
            return Ok(SerialNumber::from_slice(&b));
        }
    }
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
