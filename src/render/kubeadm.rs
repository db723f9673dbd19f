//! kubeadm's own output formats for `check`: the two tables of `kubeadm certs check-expiration` and its
//! `CertificateExpirationInfo` document (`-o json|yaml`), so scripts written for kubeadm keep working.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::tabwriter::TabWriter;
use crate::duration;
use crate::report::{ComponentReport, Outcome};

/// Go's `Jan 02, 2006 15:04 MST` in UTC.
fn expires(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Utc).format("%b %d, %Y %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub fn table(out: &Outcome) -> String {
    let mut s = String::from("CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tCERTIFICATE AUTHORITY\tEXTERNALLY MANAGED\n");
    for c in &out.certificates {
        if c.missing {
            s.push_str(&format!("!MISSING! {}\t\t\t\t\n", c.name));
            continue;
        }
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{:<8}\n",
            c.name,
            expires(c.not_after.as_deref().unwrap_or_default()),
            duration::human(c.residual_seconds.unwrap_or_default()),
            c.ca,
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
            duration::human(ca.residual_seconds.unwrap_or_default()),
            yes_no(ca.externally_managed)
        ));
    }
    let mut text = TabWriter::new(10, 3).format(&s);
    text.push_str(&components_table(out));
    text
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
    /// Not kubeadm's: present only when a component runs on this PKI (see `components_table`).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    components: &'a [ComponentReport],
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
        components: &out.components,
    }
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

/// kubectl's YAML printer goes through JSON into a map, so keys come out sorted.
pub fn yaml(out: &Outcome) -> String {
    let value: serde_json::Value = serde_json::to_value(info(out)).expect("serializing plain data");
    serde_norway::to_string(&sort_keys(value)).expect("serializing plain data")
}

fn sort_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sort_keys(v))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(sort_keys).collect()),
        other => other,
    }
}
