//! kubeadm's own output formats for `check`: the two tables of `kubeadm certs check-expiration` and its
//! `CertificateExpirationInfo` document (`-o json|yaml`), so scripts written for kubeadm keep working.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::tabwriter::TabWriter;
use crate::report::{CaRotationReport, ComponentReport, ConsistencyReport, CopyReport, KubeletCertReport, Outcome};

/// Go's `Jan 02, 2006 15:04 MST` in UTC.
fn expires(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Utc).format("%b %d, %Y %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// kubeadm's two tables as the node's own kubeadm prints them (`out.dialect`: its residual-time printer, its CA
/// column), then ours after them: the kubelet's certificates, the credential copies, the components (each only
/// when there is something in it).
pub fn table(out: &Outcome) -> String {
    let dialect = out.dialect;
    let mut s = String::from("CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tCERTIFICATE AUTHORITY\tEXTERNALLY MANAGED\n");
    for c in &out.certificates {
        if c.missing {
            s.push_str(&format!("!MISSING! {}\t\t\t\t\n", c.name));
            continue;
        }
        let ca = if c.kind == "kubeconfig" && !dialect.names_kubeconfig_ca() { "" } else { c.ca };
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{:<8}\n",
            c.name,
            expires(c.not_after.as_deref().unwrap_or_default()),
            dialect.residual(c.residual_seconds.unwrap_or_default()),
            ca,
            yes_no(c.externally_managed)
        ));
    }
    s.push('\n');
    s.push_str("CERTIFICATE AUTHORITY\tEXPIRES\tRESIDUAL TIME\tEXTERNALLY MANAGED\n");
    for ca in &out.certificate_authorities {
        if ca.missing {
            s.push_str(&format!("!MISSING! {}\t\t\t\n", ca.name));
            continue;
        }
        s.push_str(&format!(
            "{}\t{}\t{}\t{:<8}\n",
            ca.name,
            expires(ca.not_after.as_deref().unwrap_or_default()),
            dialect.residual(ca.residual_seconds.unwrap_or_default()),
            yes_no(ca.externally_managed)
        ));
    }
    let mut text = TabWriter::new(10, 3).format(&s);
    text.push_str(&rotation_table(out));
    text.push_str(&kubelet_table(out));
    text.push_str(&copies_table(out));
    text.push_str(&components_table(out));
    text.push_str(&consistency_table(out));
    text
}

/// What this node's certificates fail to cover (`consistency.findings`), last: nothing when all is well, so that
/// output stays kubeadm's. The message names the file again; the table puts the file first for the eye.
fn consistency_table(out: &Outcome) -> String {
    let Some(c) = out.consistency.as_ref().filter(|c| !c.findings.is_empty()) else { return String::new() };
    let mut s = String::from("\nINCONSISTENT FILE\tFINDING\n");
    for f in &c.findings {
        let what = f.message.strip_prefix(&format!("{}: ", f.file)).unwrap_or(&f.message);
        s.push_str(&format!("{}\t{}\n", f.file, what));
    }
    TabWriter::new(10, 3).format(&s)
}

/// Copies of this cluster's credentials outside the kubeconfig dir (nothing where there are none, so that output
/// stays kubeadm's): whether each carries admin.conf's certificate now, whose file it is.
fn copies_table(out: &Outcome) -> String {
    if out.copies.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nKUBECONFIG COPY\tEXPIRES\tRESIDUAL TIME\tCURRENT\tOWNER\tSUBJECT\n");
    for c in &out.copies {
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            c.path,
            expires(&c.expiration_date),
            out.dialect.residual(c.residual_time),
            yes_no(c.current),
            c.owner,
            c.subject
        ));
    }
    TabWriter::new(10, 3).format(&s)
}

/// The kubelet's certificates, after kubeadm's two tables (nothing where no kubelet directory is, so that
/// output stays kubeadm's there). A missing one is marked as kubeadm marks its own, with where it should be.
fn kubelet_table(out: &Outcome) -> String {
    if out.kubelet.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nKUBELET CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tROTATION\tPATH\n");
    for k in &out.kubelet {
        let (name, expires_at, residual) = if k.missing {
            (format!("!MISSING! {}", k.name), String::new(), String::new())
        } else {
            (
                k.name.to_string(),
                expires(k.expiration_date.as_deref().unwrap_or_default()),
                out.dialect.residual(k.residual_time),
            )
        };
        s.push_str(&format!("{name}\t{expires_at}\t{residual}\t{}\t{}\n", yes_no(k.rotation), k.path));
    }
    TabWriter::new(10, 3).format(&s)
}

/// The third table, after kubeadm's two: the components running on this PKI. Nothing when none runs
/// here, so that output on a PKI no component uses is kubeadm's, byte for byte.
fn components_table(out: &Outcome) -> String {
    if out.components.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nCOMPONENT\tPID\tSTARTED\tSTALE\tREASON\n");
    for c in &out.components {
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            c.name,
            c.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            c.started_at.as_deref().map(expires).unwrap_or_else(|| "-".into()),
            yes_no(c.stale),
            c.reason
        ));
    }
    TabWriter::new(10, 3).format(&s)
}

/// `output.kubeadm.k8s.io/v1alpha3` `Certificate`, field order and names as kubeadm's Go struct.
#[derive(Serialize)]
struct Item<'a> {
    name: &'a str,
    #[serde(rename = "expirationDate")]
    expiration_date: Option<&'a str>,
    #[serde(rename = "residualTime")]
    residual_time: i64,
    #[serde(rename = "externallyManaged")]
    externally_managed: bool,
    #[serde(rename = "caName", skip_serializing_if = "str::is_empty")]
    ca_name: &'a str,
    missing: bool,
}

#[derive(Serialize)]
struct Info<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    certificates: Vec<Item<'a>>,
    #[serde(rename = "certificateAuthorities")]
    certificate_authorities: Vec<Item<'a>>,
    /// Not kubeadm's: the kubelet's client and serving certificates, present where a kubelet directory is.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    kubelet: &'a [KubeletCertReport],
    /// Not kubeadm's: copies of this cluster's credentials outside the kubeconfig dir, present when found.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    copies: &'a [CopyReport],
    /// Not kubeadm's: present only when a component runs on this PKI (see `components_table`).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    components: &'a [ComponentReport],
    /// Not kubeadm's: where a CA rotation stands, present when one is in progress here or a certificate is trusted by
    /// no CA certificate of its CA file (see `rotation_table`).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    ca_rotation: Vec<&'a CaRotationReport>,
    /// Not kubeadm's: what must be one truth across the cluster's nodes, and what this node fails to cover
    /// (`check` of every entry).
    #[serde(skip_serializing_if = "Option::is_none")]
    consistency: Option<&'a ConsistencyReport>,
}

fn info(out: &Outcome) -> Info<'_> {
    Info {
        kind: "CertificateExpirationInfo",
        api_version: "output.kubeadm.k8s.io/v1alpha3",
        certificates: out
            .certificates
            .iter()
            .map(|c| Item {
                name: &c.name,
                expiration_date: c.not_after.as_deref(),
                residual_time: c.residual_seconds.unwrap_or(0),
                externally_managed: c.externally_managed,
                ca_name: if c.missing { "" } else { c.ca },
                missing: c.missing,
            })
            .collect(),
        certificate_authorities: out
            .certificate_authorities
            .iter()
            .map(|c| Item {
                name: c.name,
                expiration_date: c.not_after.as_deref(),
                residual_time: c.residual_seconds.unwrap_or(0),
                externally_managed: c.externally_managed,
                ca_name: "",
                missing: c.missing,
            })
            .collect(),
        kubelet: &out.kubelet,
        copies: &out.copies,
        components: &out.components,
        ca_rotation: notable_rotations(out),
        consistency: out.consistency.as_ref(),
    }
}

/// The CAs whose rotation state is worth a word: a rotation in progress (or files that make none), a certificate no
/// CA certificate of the CA file issued. A CA with one certificate that issued everything here is left out, so that
/// output stays kubeadm's.
fn notable_rotations(out: &Outcome) -> Vec<&CaRotationReport> {
    out.ca_rotation.iter().filter(|r| r.state != "single" || !r.untrusted.is_empty()).collect()
}

/// Where a CA rotation stands (docs/ca-rotation.md), right after kubeadm's two tables: one row per CA certificate of
/// a notable CA file, then what is issued by the other certificate of the bundle or by none.
fn rotation_table(out: &Outcome) -> String {
    let notable = notable_rotations(out);
    if notable.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nCA ROTATION\tSTATE\tCERTIFICATE SHA-256\tSIGNS\tEXPIRES\n");
    for r in &notable {
        for c in &r.certificates {
            s.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                r.name,
                r.state,
                c.sha256,
                yes_no(c.signing),
                expires(&c.not_after)
            ));
        }
    }
    let mut text = TabWriter::new(10, 3).format(&s);
    let mut notes = String::new();
    for r in &notable {
        if let Some(reason) = &r.reason {
            notes.push_str(&format!("{}: {reason}\n", r.name));
        }
        for l in &r.issued_by_other {
            notes.push_str(&format!(
                "{}: {} ({}) is still issued by the CA file's second certificate\n",
                r.name, l.name, l.path
            ));
        }
        for l in &r.untrusted {
            notes.push_str(&format!(
                "{}: {} ({}) is issued by no certificate of {} (issuer {})\n",
                r.name, l.name, l.path, r.path, l.issuer
            ));
        }
    }
    if !notes.is_empty() {
        text.push('\n');
        text.push_str(&notes);
    }
    text
}

/// kubectl's JSON printer: four-space indent, trailing newline.
pub fn json(out: &Outcome) -> String {
    let mut buf = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut buf, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    info(out).serialize(&mut ser).expect("serializing plain data");
    let mut s = String::from_utf8(buf).expect("serde_json writes UTF-8");
    s.push('\n');
    s
}

/// kubectl's YAML printer: the JSON document through `sigs.k8s.io/yaml` (go-yaml v2): keys sorted, lists
/// flush with their key, and a string that would read back as something else quoted. That matters for
/// `expirationDate`: an RFC 3339 time left plain is a YAML 1.1 timestamp, which PyYAML (Ansible's
/// `from_yaml`) and other YAML 1.1 readers turn into a date; kubeadm writes `expirationDate: "2027-…Z"`.
pub fn yaml(out: &Outcome) -> String {
    let value: serde_json::Value = serde_json::to_value(info(out)).expect("serializing plain data");
    let mut text = String::new();
    go_yaml_map(&value, 0, false, &mut text);
    text
}

/// A mapping's entries, sorted by key, at `indent` spaces; `in_item`: the first entry shares the line of a list
/// item's `- `.
fn go_yaml_map(v: &serde_json::Value, indent: usize, in_item: bool, text: &mut String) {
    let serde_json::Value::Object(map) = v else { return };
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (key, value)) in entries.into_iter().enumerate() {
        // the first entry of a list item shares the line of its `- `
        if i > 0 || !in_item {
            text.push_str(&" ".repeat(indent));
        }
        text.push_str(&go_yaml_scalar_str(key));
        text.push(':');
        match value {
            serde_json::Value::Array(items) if !items.is_empty() => {
                text.push('\n');
                for item in items {
                    text.push_str(&" ".repeat(indent));
                    text.push_str("- ");
                    match item {
                        serde_json::Value::Object(_) => go_yaml_map(item, indent + 2, true, text),
                        other => {
                            text.push_str(&go_yaml_scalar(other));
                            text.push('\n');
                        }
                    }
                }
            }
            serde_json::Value::Object(m) if !m.is_empty() => {
                text.push('\n');
                go_yaml_map(value, indent + 2, false, text);
            }
            other => {
                text.push(' ');
                text.push_str(&go_yaml_scalar(other));
                text.push('\n');
            }
        }
    }
}

fn go_yaml_scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => go_yaml_scalar_str(s),
        serde_json::Value::Array(_) => "[]".into(),
        serde_json::Value::Object(_) => "{}".into(),
    }
}

/// Plain when the string reads back as that string (names like `etcd-ca`, `output.kubeadm.k8s.io/v1alpha3`),
/// else double-quoted as go-yaml quotes: whatever YAML 1.1 would resolve to a bool, null, number or
/// timestamp, or whatever holds a character outside the plainly safe ones.
fn go_yaml_scalar_str(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '-');
    let starts_plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let resolves_otherwise = matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "yes" | "n" | "no" | "true" | "false" | "on" | "off" | "null" | "~"
    );
    if starts_plain && s.chars().all(safe) && !resolves_otherwise {
        return s.to_string();
    }
    // JSON's escaping is YAML's double-quoted escaping for everything these documents hold
    serde_json::to_string(s).expect("a string serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CaReport, CertReport};

    fn cert(name: &str, not_after: Option<&str>, residual: i64) -> CertReport {
        CertReport {
            name: name.into(),
            kind: "cert",
            path: String::new(),
            subject: None,
            sans: Vec::new(),
            serial: None,
            not_before: None,
            not_after: not_after.map(String::from),
            residual_seconds: not_after.map(|_| residual),
            residual: None,
            ca: "ca",
            key_algorithm: None,
            externally_managed: false,
            missing: not_after.is_none(),
            action: crate::report::Action::None,
            reason: None,
        }
    }

    /// The bytes `sigs.k8s.io/yaml.JSONToYAML` (kubeadm's vendored copy, go-yaml v2.2.8) prints for the
    /// same JSON document, run with Go 1.19: time strings double-quoted, a missing date `null`, an empty
    /// list `[]`, keys sorted, list items flush with their key.
    #[test]
    fn yaml_is_byte_for_byte_what_kubeadm_prints() {
        let out = Outcome {
            certificates: vec![
                cert("admin.conf", Some("2027-11-29T00:42:00Z"), 31535999),
                cert("super-admin.conf", None, 0),
            ],
            certificate_authorities: Vec::<CaReport>::new(),
            ..Outcome::default()
        };
        let go = "apiVersion: output.kubeadm.k8s.io/v1alpha3
certificateAuthorities: []
certificates:
- caName: ca
  expirationDate: \"2027-11-29T00:42:00Z\"
  externallyManaged: false
  missing: false
  name: admin.conf
  residualTime: 31535999
- expirationDate: null
  externallyManaged: false
  missing: true
  name: super-admin.conf
  residualTime: 0
kind: CertificateExpirationInfo
";
        assert_eq!(yaml(&out), go);
    }
}
