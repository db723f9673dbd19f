//! The engine: check, renew, csr and install, knowing nothing of Ansible or clap. Each operation reads
//! the PKI (`pki`), decides (`plan`), builds new certificates (`sign`), checks them (`issued`) and hands
//! the files to `commit`, which writes all or nothing.

pub mod check;
pub mod csr;
pub mod csr_dir;
pub mod describe;
pub mod diff;
pub mod files;
pub mod install;
pub mod issued;
pub mod plan;
pub mod renew;
pub mod sign;

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::commit::{self, Lock};
use crate::duration::Span;
use crate::error::Result;
use crate::pki::Layout;
use crate::report::Outcome;
use crate::request::Request;

/// Runs one request as of `now`.
pub fn run(request: &Request, now: DateTime<Utc>) -> Result<Outcome> {
    match request {
        Request::Check(r) => check::check(r, now),
        Request::Renew(r) => renew::renew(r, now),
        Request::Csr(r) => csr::csr(r, now),
        Request::Install(r) => install::install(r, now),
    }
}

/// What a writing run (renew, csr, install) starts with: the PKI lock, held until the returned guard drops,
/// and a journal an interrupted run left settled first, so that the run reads a whole PKI. A real run
/// completes the journal and says so (`changed`, a warning); a check run takes no lock, changes nothing and
/// only warns.
pub(crate) fn begin(
    layout: &Layout,
    extra_dirs: &[&Path],
    check_mode: bool,
    lock_timeout: Span,
    out: &mut Outcome,
) -> Result<Option<Lock>> {
    if check_mode {
        if commit::journal_pending(layout) {
            out.warnings.push("an interrupted renewal left a journal; a real run completes it first".into());
        }
        return Ok(None);
    }
    let lock = commit::lock(&layout.cert_dir, lock_timeout)?;
    let completed = commit::recover(layout, extra_dirs)?;
    if !completed.is_empty() {
        out.warnings.push(format!("completed an interrupted renewal of {} files first", completed.len()));
        out.changed = true;
    }
    Ok(Some(lock))
}
