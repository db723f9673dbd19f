//! `certificates.k8s.io/v1` CertificateSigningRequest objects: building one for a certificate, reading
//! where one stands, and the approval `kubectl certificate approve` would add.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::engine::plan::Desired;
use crate::engine::sign;
use crate::inventory::CertSpec;
use crate::pki::key::PrivateKey;

pub const COLLECTION: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
pub const MANAGED_BY: &str = "kubeadm-certs";
/// certificates.k8s.io/v1 refuses shorter `expirationSeconds`.
const MIN_EXPIRATION_SECONDS: i64 = 600;

pub fn path(name: &str) -> String {
    format!("{COLLECTION}/{name}")
}

/// kubeadm's `kubeadm-cert-<CN>-` named the common name, which is no valid object name for
/// `system:kube-scheduler`; the entry name always is one.
pub fn generate_name(spec: &CertSpec) -> String {
    format!("kubeadm-certs-{}-", spec.name)
}

/// The PKCS#10 request for `desired` with `key`, as PEM: subject and SANs; usages go in the object.
pub fn request_pem(desired: &Desired, key: &PrivateKey) -> Result<String, String> {
    sign::request_pem(&desired.subject, &desired.dns_names, &desired.ip_addresses, key)
}

/// The object to create. `expirationSeconds` (Kubernetes 1.22+) asks for the validity `desired` has;
/// older apiservers drop the unknown field and the signer's own duration applies.
pub fn object(
    spec: &CertSpec,
    request_pem: &str,
    signer_name: &str,
    usages: &[&str],
    not_after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Value {
    let expiration = (not_after - now).num_seconds().max(MIN_EXPIRATION_SECONDS);
    json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {
            "generateName": generate_name(spec),
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                "kubeadm-certs/certificate": spec.name,
            },
        },
        "spec": {
            "request": B64.encode(request_pem),
            "signerName": signer_name,
            "usages": usages,
            "expirationSeconds": expiration,
        },
    })
}

pub fn name(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/name").and_then(Value::as_str).filter(|n| !n.is_empty())
}

#[derive(Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    Approved,
    /// `status.certificate`: PEM, the leaf first.
    Issued(Vec<u8>),
    Denied(String),
    Failed(String),
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?.as_array()?.iter().find(|c| {
        c.get("type").and_then(Value::as_str) == Some(kind)
            && c.get("status").and_then(Value::as_str).is_none_or(|s| s == "True")
    })
}

fn reason(c: &Value) -> String {
    let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().trim().trim_end_matches('.').to_string();
    match (field("reason"), field("message")) {
        (r, m) if r.is_empty() && m.is_empty() => "no reason given".into(),
        (r, m) if m.is_empty() => r,
        (r, m) if r.is_empty() => m,
        (r, m) => format!("{r}: {m}"),
    }
}

/// Where a request stands. A denial or failure is final and wins over anything else.
pub fn state(obj: &Value) -> Result<State, String> {
    if let Some(c) = condition(obj, "Denied") {
        return Ok(State::Denied(reason(c)));
    }
    if let Some(c) = condition(obj, "Failed") {
        return Ok(State::Failed(reason(c)));
    }
    match obj.pointer("/status/certificate").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(b64) => {
            B64.decode(b64).map(State::Issued).map_err(|e| format!("status.certificate is not valid base64: {e}"))
        }
        None if condition(obj, "Approved").is_some() => Ok(State::Approved),
        None => Ok(State::Pending),
    }
}

/// The first certificate of `status.certificate` (the leaf; a signer may append its chain), as DER.
pub fn leaf_der(pem_bytes: &[u8]) -> Result<Vec<u8>, String> {
    let blocks = pem::parse_many(pem_bytes).map_err(|e| format!("status.certificate is not PEM: {e}"))?;
    blocks
        .into_iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .ok_or_else(|| "status.certificate holds no CERTIFICATE".to_string())
}

/// `obj` with the Approved condition `kubectl certificate approve` adds, for PUT `.../approval`.
pub fn with_approval(obj: &Value) -> Value {
    with_condition(
        obj,
        "Approved",
        "KubeadmCertsApprove",
        "This CSR was approved by kubeadm-certs renew (approve: true).",
        Utc::now(),
    )
}

/// `obj` with one more condition of `kind` (`Approved`, `Denied`) set by kubeadm-certs, for PUT `.../approval`.
pub fn with_condition(obj: &Value, kind: &str, reason: &str, message: &str, now: DateTime<Utc>) -> Value {
    let mut obj = obj.clone();
    let condition = json!({
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastUpdateTime": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    });
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    match obj["status"].get_mut("conditions").and_then(Value::as_array_mut) {
        Some(list) => list.push(condition),
        None => obj["status"]["conditions"] = json!([condition]),
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_conditions() {
        assert_eq!(state(&json!({"status": {}})).unwrap(), State::Pending);
        let approved = with_approval(&json!({"metadata": {"name": "x"}}));
        assert_eq!(state(&approved).unwrap(), State::Approved);
        let mut issued = approved.clone();
        issued["status"]["certificate"] = json!(B64.encode("PEM"));
        assert_eq!(state(&issued).unwrap(), State::Issued(b"PEM".to_vec()));
        let denied = json!({"status": {"conditions": [
            {"type": "Approved", "status": "True"},
            {"type": "Denied", "status": "True", "reason": "KubectlDeny", "message": "no"}]}});
        assert_eq!(state(&denied).unwrap(), State::Denied("KubectlDeny: no".into()));
        let failed = json!({"status": {"certificate": "", "conditions": [
            {"type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": "invalid usage"}]}});
        assert_eq!(state(&failed).unwrap(), State::Failed("SignerValidationFailure: invalid usage".into()));
        let not_true = json!({"status": {"conditions": [{"type": "Denied", "status": "False"}]}});
        assert_eq!(state(&not_true).unwrap(), State::Pending);
        assert!(state(&json!({"status": {"certificate": "%%%"}})).is_err());
    }

    #[test]
    fn approval_keeps_existing_conditions() {
        let obj = json!({"status": {"conditions": [{"type": "Other", "status": "True"}]}});
        let a = with_approval(&obj);
        let types: Vec<_> = a["status"]["conditions"].as_array().unwrap().iter().map(|c| c["type"].clone()).collect();
        assert_eq!(types, [json!("Other"), json!("Approved")]);
    }

    #[test]
    fn names_are_valid_object_names() {
        for spec in crate::inventory::CERTIFICATES {
            let n = generate_name(spec);
            assert!(n.len() < 253 - 5);
            assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'), "{n}");
        }
    }
}
