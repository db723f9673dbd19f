//! `check`: kubeadm's `certs check-expiration`, plus `--at` and `--fail-within`.

use chrono::{DateTime, Utc};

use super::describe::{ca_rows, cert_row};
use crate::commit;
use crate::error::Result;
use crate::pki::{Keys, Pki};
use crate::report::{Action, Outcome};
use crate::request::CheckRequest;

pub fn check(req: &CheckRequest, now: DateTime<Utc>) -> Result<Outcome> {
    let now = req.at.unwrap_or(now);
    let pki = Pki::read(&req.layout, &req.selection.specs, req.selection.explicit, Keys::Skip)?;
    pki.validate()?;
    let mut out = Outcome {
        certificates: pki
            .entries
            .iter()
            .map(|e| cert_row(&pki, e, e.loaded.as_ref().map(|l| &l.cert), now, Action::None))
            .collect(),
        certificate_authorities: ca_rows(&pki, now),
        components: crate::inuse::components(&req.layout),
        ..Outcome::default()
    };
    if commit::journal_pending(&req.layout) {
        out.warnings.push(format!(
            "an interrupted renewal left a journal in {}; the next renew, csr or install completes it",
            req.layout.cert_dir.display()
        ));
    }
    let missing: Vec<_> = out.certificates.iter().filter(|c| c.missing).map(|c| c.name.clone()).collect();
    if let Some(window) = req.fail_within {
        let within = |r: Option<i64>| r.is_some_and(|r| r < window.seconds());
        out.expiring = out
            .certificates
            .iter()
            .filter(|c| within(c.residual_seconds))
            .map(|c| c.name.clone())
            .chain(
                out.certificate_authorities.iter().filter(|c| within(c.residual_seconds)).map(|c| c.name.to_string()),
            )
            .collect();
        out.threshold_failed = !out.expiring.is_empty();
    }
    let present = out.certificates.len() - missing.len();
    out.msg = if out.threshold_failed {
        format!(
            "{} expire within {}: {}",
            out.expiring.len(),
            req.fail_within.unwrap_or_default(),
            out.expiring.join(", ")
        )
    } else {
        let mut m = format!("{present} certificates checked");
        if !missing.is_empty() {
            m.push_str(&format!("; missing: {}", missing.join(", ")));
        }
        m
    };
    Ok(out)
}
