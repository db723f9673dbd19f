//! Printing results for people and scripts. Deciding happens elsewhere; this only formats.

pub mod kubeadm;
pub mod restart;
pub mod tabwriter;

use crate::report::{Action, CaReport, KubeletCertReport, Outcome};
use tabwriter::TabWriter;

/// `renew`, `csr` and `install` as a table: what happened to each entry and why; then, for `renew` of CAs, a
/// table of the CAs named (a run of CAs alone prints that one only), and of the credential copies looked at
/// (`--refresh-copies`, or a renewal of admin.conf). The kubelet's client certificate (`renew kubelet-client`) is a row of its own, with the
/// run's message (which node, the restart); a run with no rows at all (`sign`) prints its message.
pub fn actions_table(out: &Outcome) -> String {
    let cas: Vec<&CaReport> = out.certificate_authorities.iter().filter(|c| c.action.is_some()).collect();
    let kubelet: Vec<&KubeletCertReport> = out.kubelet.iter().filter(|k| k.action.is_some()).collect();
    let mut text = if !kubelet.is_empty() {
        kubelet_table(&kubelet)
    } else if cas.is_empty() || !out.certificates.is_empty() {
        certificates_table(out)
    } else {
        String::new()
    };
    if !cas.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        let mut s = String::from("CERTIFICATE AUTHORITY\tACTION\tEXPIRES\tRESIDUAL TIME\tREASON\n");
        for c in &cas {
            s.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                c.name,
                c.action.map(Action::as_str).unwrap_or_default(),
                c.not_after.as_deref().unwrap_or_default(),
                c.residual.as_deref().unwrap_or_default(),
                c.reason.as_deref().unwrap_or_default()
            ));
        }
        text.push_str(&TabWriter::new(10, 3).format(&s));
        for c in cas.iter().filter(|c| !c.kubeconfigs.is_empty()) {
            let done = if c.action == Some(Action::Renewed) { "now holds" } else { "would hold" };
            text.push_str(&format!(
                "certificate-authority-data {done} the new {} certificate in {}\n",
                c.name,
                c.kubeconfigs.join(", ")
            ));
        }
    }
    if !out.copies.is_empty() {
        text.push('\n');
        text.push_str(&copies_table(out));
    }
    for w in &out.warnings {
        text.push_str(&format!("[warning] {w}\n"));
    }
    let said_by_rows = !out.certificates.is_empty() || !cas.is_empty();
    if !kubelet.is_empty() || (!said_by_rows && !out.msg.is_empty()) {
        text.push_str(&out.msg);
        text.push('\n');
    }
    let renewed_cas: Vec<String> = cas
        .iter()
        .filter(|c| c.action == Some(Action::Renewed))
        .map(|c| format!("{} {}", c.name, c.previous_not_after.as_deref().unwrap_or_default()))
        .collect();
    let certificates = out.certificates.iter().any(|c| c.action == Action::Renewed || c.action == Action::Installed);
    if out.restart.is_empty() {
        // nothing to say
    } else if certificates {
        text.push_str(&format!(
            "\nDone renewing certificates. You must restart {} so that they can use the new certificates.\n",
            out.restart.join(", ")
        ));
    } else if !renewed_cas.is_empty() {
        text.push_str(&format!(
            "\nDone renewing CA certificates. Restart {} before the old CA certificates expire ({}): a component \
             that read one only at start keeps the old one, which verifies the same certificates (same key) until \
             then.\n",
            out.restart.join(", "),
            renewed_cas.join(", ")
        ));
    }
    for s in out.stale.iter().filter(|s| s.pid.is_some()) {
        text.push_str(&format!("[stale] {} (pid {}): {}\n", s.name, s.pid.unwrap_or_default(), s.reason));
    }
    text
}

/// The kubelet's rows of [`actions_table`], as the certificates' rows are.
fn kubelet_table(rows: &[&KubeletCertReport]) -> String {
    let mut s = String::from("CERTIFICATE\tACTION\tEXPIRES\tRESIDUAL TIME\tREASON\n");
    for k in rows {
        let residual = if k.missing { String::new() } else { crate::duration::human(k.residual_time) };
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            if k.missing { format!("!MISSING! {}", k.name) } else { k.name.to_string() },
            k.action.map(Action::as_str).unwrap_or_default(),
            k.expiration_date.as_deref().unwrap_or_default(),
            residual,
            k.reason.as_deref().unwrap_or_default()
        ));
    }
    TabWriter::new(10, 3).format(&s)
}

/// The credential copies a `renew --refresh-copies` looked at: refreshed, or left alone and why.
fn copies_table(out: &Outcome) -> String {
    let mut s = String::from("KUBECONFIG COPY\tACTION\tEXPIRES\tRESIDUAL TIME\tREASON\n");
    for c in &out.copies {
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            c.path,
            c.action.map(Action::as_str).unwrap_or("none"),
            c.expiration_date,
            crate::duration::human(c.residual_time),
            c.reason.as_deref().unwrap_or_default()
        ));
    }
    TabWriter::new(10, 3).format(&s)
}

/// The certificates' rows of [`actions_table`].
fn certificates_table(out: &Outcome) -> String {
    let mut s = String::from("CERTIFICATE\tACTION\tEXPIRES\tRESIDUAL TIME\tREASON\n");
    for c in &out.certificates {
        if c.missing {
            s.push_str(&format!("!MISSING! {}\t\t\t\t\n", c.name));
            continue;
        }
        let expires = c.not_after.as_deref().unwrap_or_default();
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            c.name,
            c.action.as_str(),
            expires,
            c.residual.as_deref().unwrap_or_default(),
            c.reason.as_deref().unwrap_or_default()
        ));
    }
    TabWriter::new(10, 3).format(&s)
}

/// `approve` as a table: each pending request, who asked, what became of it and why; then the run in one line.
pub fn approvals_table(out: &Outcome) -> String {
    let approvals = out.approvals.as_deref().unwrap_or_default();
    let mut text = String::new();
    if !approvals.is_empty() {
        let mut s = String::from("CERTIFICATE SIGNING REQUEST\tREQUESTER\tACTION\tREASON\n");
        for a in approvals {
            let why = match a.reason {
                Some(r) => format!("{r}: {}", a.message),
                None => a.message.clone(),
            };
            s.push_str(&format!("{}\t{}\t{}\t{why}\n", a.name, a.requester, a.action));
        }
        text.push_str(&TabWriter::new(10, 3).format(&s));
    }
    for w in &out.warnings {
        text.push_str(&format!("[warning] {w}\n"));
    }
    text.push_str(&out.msg);
    text.push('\n');
    text
}

/// A unified-diff-like rendering of the `diff` entries for `--diff`.
pub fn diff_text(out: &Outcome) -> String {
    let mut s = String::new();
    for d in &out.diff {
        s.push_str(&format!("--- {}\n+++ {}\n", d.before_header, d.after_header));
        let before: Vec<&str> = d.before.lines().collect();
        let after: Vec<&str> = d.after.lines().collect();
        for i in 0..before.len().max(after.len()) {
            match (before.get(i), after.get(i)) {
                (Some(b), Some(a)) if a == b => s.push_str(&format!(" {b}\n")),
                (b, a) => {
                    if let Some(b) = b {
                        s.push_str(&format!("-{b}\n"));
                    }
                    if let Some(a) = a {
                        s.push_str(&format!("+{a}\n"));
                    }
                }
            }
        }
    }
    s
}
