//! Checks on a certificate before it replaces anything, whoever signed it (the local CA, the
//! certificates API, an external CA): it matches the new key, chains to the CA on disk, and keeps the
//! subject, SANs and usages the entry needs.

use crate::inventory::{CertSpec, Usage};
use crate::pki::cert::{Certificate, EKU_CLIENT_AUTH, EKU_SERVER_AUTH, Name};
use crate::pki::key::PrivateKey;
use crate::pki::verify;

pub struct Expect<'a> {
    pub subject: &'a Name,
    pub dns_names: &'a [String],
    pub ip_addresses: &'a [std::net::IpAddr],
}

/// Whether `cert` may replace the certificate of `spec`: it matches `key`, chains to `ca`, and has the
/// subject, SANs and usages `expect` and the entry ask for; the reason when not.
pub fn fit_to_replace(
    spec: &CertSpec,
    cert: &Certificate,
    key: &PrivateKey,
    ca: &Certificate,
    expect: &Expect<'_>,
) -> Result<(), String> {
    if !key.matches(&cert.public_key_raw) {
        return Err("the certificate does not match its private key".into());
    }
    verify::chains_to(cert, ca)?;
    let kept = cert.subject.kubeadm_kept();
    if kept.0.iter().map(|a| (&a.oid, &a.value)).ne(expect.subject.0.iter().map(|a| (&a.oid, &a.value))) {
        return Err(format!("its subject \"{}\" differs from the expected \"{}\"", cert.subject, expect.subject));
    }
    for d in expect.dns_names {
        if !cert.dns_names.iter().any(|have| have.eq_ignore_ascii_case(d)) {
            return Err(format!("it lacks the SAN DNS:{d}"));
        }
    }
    for ip in expect.ip_addresses {
        if !cert.ip_addresses.contains(ip) {
            return Err(format!("it lacks the SAN IP:{ip}"));
        }
    }
    for usage in spec.usages {
        let (oid, name) = match usage {
            Usage::ServerAuth => (EKU_SERVER_AUTH, "serverAuth"),
            Usage::ClientAuth => (EKU_CLIENT_AUTH, "clientAuth"),
        };
        if !cert.ext_key_usage.iter().any(|o| o == oid || o == "2.5.29.37.0") {
            return Err(format!("it lacks the extended key usage {name}"));
        }
    }
    if cert.is_ca() {
        return Err("it is a CA certificate".into());
    }
    Ok(())
}
