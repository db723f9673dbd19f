//! Deciding what is due and what the new certificate must look like. A `Desired` is a plain value (as
//! rcgen's `CertificateParams` is): printable, comparable, the "after" side of a diff, testable without
//! a disk.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

use crate::duration::{self, Span};
use crate::inventory::CertSpec;
use crate::pki::cert::{Certificate, Name, san_strings};
use crate::pki::key::KeyAlgorithm;
use crate::report::rfc3339;
use crate::request::San;

/// kubeadm 1.31+ backdates NotBefore by five minutes to tolerate clock skew between nodes.
pub const BACKDATE: Duration = Duration::minutes(5);

pub struct Policy<'a> {
    pub renew_before: Span,
    pub force: bool,
    pub extra_sans: &'a [San],
    pub key_algorithm: Option<KeyAlgorithm>,
    pub validity: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Missing,
    Keep(String),
    Renew(String),
    /// The CA's key is not here (kubeadm's "external CA"): only that CA's owner can renew.
    SkipExternal,
}

/// SANs from `extra_sans` that the apiserver certificate lacks. Only the apiserver serves clients that
/// reach it by new names (a load balancer, a new DNS record).
pub fn missing_sans(spec: &CertSpec, cert: &Certificate, extra: &[San]) -> Vec<San> {
    if spec.name != "apiserver" {
        return Vec::new();
    }
    extra.iter().filter(|san| !has_san(cert, san)).cloned().collect()
}

/// Whether `cert` carries `san` (DNS names compared without case).
pub fn has_san(cert: &Certificate, san: &San) -> bool {
    match san {
        San::Dns(d) => cert.dns_names.iter().any(|have| have.eq_ignore_ascii_case(d)),
        San::Ip(ip) => cert.ip_addresses.contains(ip),
    }
}

pub fn decide(
    spec: &CertSpec,
    cert: Option<&Certificate>,
    external: bool,
    policy: &Policy<'_>,
    now: DateTime<Utc>,
) -> Decision {
    let Some(cert) = cert else { return Decision::Missing };
    if external {
        return Decision::SkipExternal;
    }
    let residual = (cert.not_after - now).num_seconds();
    if residual < policy.renew_before.seconds() {
        let when =
            if residual < 0 { "expired".to_string() } else { format!("expires in {}", duration::human(residual)) };
        return Decision::Renew(format!("{when}, within renew_before {}", policy.renew_before));
    }
    let missing = missing_sans(spec, cert, policy.extra_sans);
    if !missing.is_empty() {
        let list: Vec<_> = missing.iter().map(ToString::to_string).collect();
        return Decision::Renew(format!("missing SAN {}", list.join(", ")));
    }
    if policy.force {
        return Decision::Renew("forced".into());
    }
    Decision::Keep(format!("expires in {}, not within renew_before {}", duration::human(residual), policy.renew_before))
}

/// The certificate a renewal issues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub subject: Name,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub ext_key_usage: Vec<String>,
    pub key_algorithm: KeyAlgorithm,
    /// Mirror whether the old certificate had basic constraints (kubeadm versions differ).
    pub basic_constraints: bool,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// NotAfter was cut to the CA's NotAfter: a certificate cannot outlive its issuer.
    pub clamped_to_ca: bool,
}

impl Desired {
    pub fn sans(&self) -> Vec<String> {
        san_strings(&self.dns_names, &self.ip_addresses)
    }

    /// kubeadm's key usage: DigitalSignature + KeyEncipherment for RSA, DigitalSignature for ECDSA.
    pub fn key_usage_names(&self) -> Vec<&'static str> {
        key_usage_names(self.key_algorithm)
    }
}

/// kubeadm's renewal rule: keep CommonName, Organization, DNS and IP SANs, extended key usages from the
/// existing certificate; rebuild everything else. DNS names sorted and de-duplicated, IPs de-duplicated
/// in order, then the `extra_sans` the apiserver lacks.
pub fn desired(
    spec: &CertSpec,
    cert: &Certificate,
    ca_not_after: DateTime<Utc>,
    policy: &Policy<'_>,
    now: DateTime<Utc>,
) -> Result<Desired, String> {
    let key_algorithm = match policy.key_algorithm {
        Some(a) => a,
        None => KeyAlgorithm::of(cert.key_kind).ok_or_else(|| {
            format!("its {} key cannot be kept; choose key_algorithm ({})", cert.key_kind, KeyAlgorithm::NAMES)
        })?,
    };
    let mut dns_names = cert.dns_names.clone();
    let mut ip_addresses: Vec<IpAddr> = Vec::new();
    for ip in &cert.ip_addresses {
        if !ip_addresses.contains(ip) {
            ip_addresses.push(*ip);
        }
    }
    for san in missing_sans(spec, cert, policy.extra_sans) {
        match san {
            San::Dns(d) => dns_names.push(d),
            San::Ip(ip) => ip_addresses.push(ip),
        }
    }
    dns_names.sort();
    dns_names.dedup();
    let not_before = now - BACKDATE;
    let wanted_after = now + policy.validity.as_chrono();
    let clamped_to_ca = wanted_after > ca_not_after;
    let not_after = if clamped_to_ca { ca_not_after } else { wanted_after };
    if not_after <= now {
        return Err(format!(
            "its CA expired on {}; renew the CA first (kubeadm-certs renew {}, alone or in the same run)",
            rfc3339(ca_not_after),
            spec.ca.name()
        ));
    }
    Ok(Desired {
        subject: cert.subject.kubeadm_kept(),
        dns_names,
        ip_addresses,
        ext_key_usage: cert.ext_key_usage.clone(),
        key_algorithm,
        basic_constraints: cert.basic_constraints.is_some(),
        not_before,
        not_after,
        clamped_to_ca,
    })
}

/// The key usages kubeadm gives a leaf with a key of `algorithm` (RSA keys also encipher).
pub fn key_usage_names(algorithm: KeyAlgorithm) -> Vec<&'static str> {
    if algorithm.is_rsa() { vec!["digitalSignature", "keyEncipherment"] } else { vec!["digitalSignature"] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory;

    fn policy(extra: &[San]) -> Policy<'_> {
        Policy {
            renew_before: Span::days(90),
            force: false,
            extra_sans: extra,
            key_algorithm: None,
            validity: Span::days(365),
        }
    }

    #[test]
    fn missing_is_never_due() {
        let spec = inventory::find("super-admin.conf").unwrap();
        let p = Policy { force: true, ..policy(&[]) };
        assert_eq!(decide(spec, None, false, &p, Utc::now()), Decision::Missing);
    }
}
