//! The end that `renew`, `csr` and `install` share: the transaction, the rows of what changed, and the
//! closing lines of the report.

use chrono::{DateTime, Utc};

use super::describe::ca_rows;
use super::diff;
use crate::commit::{self, FileWrite};
use crate::error::Result;
use crate::inventory::{CaId, CertSpec};
use crate::pki::cert::Certificate;
use crate::pki::{Layout, Pki};
use crate::report::{CertReport, Outcome, Settle};

/// Writes `writes` in one transaction (`commit`); returns the backups made, as the report lists them.
pub(super) fn commit(layout: &Layout, writes: &[FileWrite], backup: bool, now: DateTime<Utc>) -> Result<Vec<String>> {
    Ok(commit::commit(layout, writes, backup, now)?.iter().map(|p| p.display().to_string()).collect())
}

/// A certificate this run replaced (or would): named in `renewed`, with its diff from `before` to `after`.
pub(super) fn changed(out: &mut Outcome, row: &CertReport, before: Option<&Certificate>, after: String) {
    out.renewed.push(row.name.clone());
    out.diff.push(diff::entry(&row.path, before.map(diff::describe).unwrap_or_default(), after));
}

/// The CA table, and what to look at in what runs on the PKI once the lock is released (`engine::run` then
/// calls `inuse::settle`): the restarts `changed` asks for, and one an earlier run left undone. `changed` is true
/// when a certificate was (or would be) replaced.
pub(super) fn close(out: &mut Outcome, pki: &Pki, changed: &[&'static CertSpec], check_mode: bool, now: DateTime<Utc>) {
    close_with_cas(out, pki, changed, &[], check_mode, now)
}

/// [`close`] for a run that also renewed (or would renew) the CA certificates `cas`: their readers count as a
/// certificate's do.
pub(super) fn close_with_cas(
    out: &mut Outcome,
    pki: &Pki,
    changed: &[&'static CertSpec],
    cas: &[CaId],
    check_mode: bool,
    now: DateTime<Utc>,
) {
    out.certificate_authorities = ca_rows(pki, now);
    out.settle = Some(Settle { changed: changed.to_vec(), cas: cas.to_vec(), check_mode, ..Settle::default() });
    out.changed |= !out.renewed.is_empty();
}
