//! Printing results for people and scripts. Deciding happens elsewhere; this only formats.

pub mod kubeadm;
pub mod restart;
pub mod tabwriter;

use crate::report::{Action, Outcome};
use tabwriter::TabWriter;

/// `renew`, `csr` and `install` as a table: what happened to each entry and why.
pub fn actions_table(out: &Outcome) -> String {
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
    let mut text = TabWriter::new(10, 3).format(&s);
    for w in &out.warnings {
        text.push_str(&format!("[warning] {w}\n"));
    }
    if out.certificates.iter().any(|c| c.action == Action::Renewed || c.action == Action::Installed)
        && !out.restart.is_empty()
    {
        text.push_str(&format!(
            "\nDone renewing certificates. You must restart {} so that they can use the new certificates.\n",
            out.restart.join(", ")
        ));
    }
    for s in out.stale.iter().filter(|s| s.pid.is_some()) {
        text.push_str(&format!("[stale] {} (pid {}): {}\n", s.name, s.pid.unwrap_or_default(), s.reason));
    }
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
