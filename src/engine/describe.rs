//! Turning what was read into report rows.

use chrono::{DateTime, Utc};

use crate::duration;
use crate::inventory::CaId;
use crate::pki::cert::Certificate;
use crate::pki::{Ca, Entry, Pki};
use crate::report::{Action, CaReport, CertReport, rfc3339};

pub fn residual_seconds(not_after: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (not_after - now).num_seconds()
}

pub fn externally_managed(pki: &Pki, ca: CaId) -> bool {
    pki.ca(ca).externally_managed()
}

/// A row for `entry`, showing `cert` (the one on disk, or the new one after a renewal).
pub fn cert_row(
    pki: &Pki,
    entry: &Entry,
    cert: Option<&Certificate>,
    now: DateTime<Utc>,
    action: Action,
) -> CertReport {
    let residual = cert.map(|c| residual_seconds(c.not_after, now));
    CertReport {
        name: entry.spec.name.to_string(),
        kind: entry.location.kind(),
        path: entry.location.path().display().to_string(),
        subject: cert.map(|c| c.subject.to_string()),
        sans: cert.map(Certificate::sans).unwrap_or_default(),
        serial: cert.map(|c| c.serial_hex.clone()),
        not_before: cert.map(|c| rfc3339(c.not_before)),
        not_after: cert.map(|c| rfc3339(c.not_after)),
        residual_seconds: residual,
        residual: residual.map(duration::human),
        ca: entry.spec.ca.name(),
        key_algorithm: cert.map(|c| c.key_kind.to_string()),
        externally_managed: externally_managed(pki, entry.spec.ca),
        missing: cert.is_none(),
        action,
        reason: None,
    }
}

pub fn ca_row(ca: &Ca, now: DateTime<Utc>) -> CaReport {
    let residual = ca.cert.as_ref().map(|c| residual_seconds(c.not_after, now));
    CaReport {
        name: ca.spec.name,
        path: ca.cert_path.display().to_string(),
        subject: ca.cert.as_ref().map(|c| c.subject.to_string()),
        serial: ca.cert.as_ref().map(|c| c.serial_hex.clone()),
        not_before: ca.cert.as_ref().map(|c| rfc3339(c.not_before)),
        not_after: ca.cert.as_ref().map(|c| rfc3339(c.not_after)),
        residual_seconds: residual,
        residual: residual.map(duration::human),
        externally_managed: ca.externally_managed(),
        missing: ca.cert.is_none(),
        action: None,
        reason: None,
        kubeconfigs: Vec::new(),
        previous_not_after: None,
    }
}

pub fn ca_rows(pki: &Pki, now: DateTime<Utc>) -> Vec<CaReport> {
    pki.cas.iter().map(|ca| ca_row(ca, now)).collect()
}
