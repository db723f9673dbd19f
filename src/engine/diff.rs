//! Before/after of a changed entry on the properties a reviewer compares (serial, validity, subject,
//! SANs, key algorithm), never key material.

use super::plan::Desired;
use crate::pki::cert::Certificate;
use crate::report::DiffEntry;
use crate::report::rfc3339;

fn block(serial: &str, not_before: &str, not_after: &str, subject: &str, sans: &[String], key: &str) -> String {
    format!(
        "serial: {serial}\nnot_before: {not_before}\nnot_after: {not_after}\nsubject: {subject}\nsans: [{}]\nkey_algorithm: {key}\n",
        sans.join(", ")
    )
}

pub fn describe(c: &Certificate) -> String {
    block(
        &c.serial_hex,
        &rfc3339(c.not_before),
        &rfc3339(c.not_after),
        &c.subject.to_string(),
        &c.sans(),
        &c.key_kind.to_string(),
    )
}

/// Check mode: the certificate that would be issued (its serial is not drawn yet).
pub fn describe_desired(d: &Desired) -> String {
    block(
        "(new random serial)",
        &rfc3339(d.not_before),
        &rfc3339(d.not_after),
        &d.subject.to_string(),
        &d.sans(),
        &d.key_algorithm.to_string(),
    )
}

/// Check mode: a CA certificate that would be issued again with its own key (`old`'s subject and key).
pub fn describe_ca_desired(
    old: &Certificate,
    not_before: chrono::DateTime<chrono::Utc>,
    not_after: chrono::DateTime<chrono::Utc>,
) -> String {
    block(
        "(new random serial)",
        &rfc3339(not_before),
        &rfc3339(not_after),
        &old.subject.to_string(),
        &old.sans(),
        &old.key_kind.to_string(),
    )
}

pub fn entry(path: &str, before: String, after: String) -> DiffEntry {
    DiffEntry { before_header: format!("{path} (before)"), after_header: format!("{path} (after)"), before, after }
}
