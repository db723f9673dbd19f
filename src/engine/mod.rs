//! The engine: check, renew, csr and install, knowing nothing of Ansible or clap. Each operation reads
//! the PKI (`pki`), decides (`plan`), builds new certificates (`sign`), checks them (`issued`) and hands
//! the files to `commit`, which writes all or nothing.

pub mod check;
pub mod csr;
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

/// Runs one request as of `now`. Every run first puts back a static pod manifest an interrupted restart
/// left held (its component is down until then); check mode only warns.
pub fn run(request: &Request, now: DateTime<Utc>) -> Result<Outcome> {
    let mut recovered = Outcome::default();
    let (manifests_dir, check_mode) = held_manifests(request);
    crate::restart::recover_held(&manifests_dir, check_mode, &mut recovered)?;
    let mut out = match request {
        Request::Check(r) => check::check(r, now),
        Request::Renew(r) => renew::renew(r, now),
        Request::Csr(r) => csr::csr(r, now),
        Request::Install(r) => install::install(r, now),
        Request::Restart(r) => crate::restart::restart(r, now),
    }?;
    out.changed |= recovered.changed;
    recovered.warnings.append(&mut out.warnings);
    out.warnings = recovered.warnings;
    Ok(out)
}

/// Where a request's static pod manifests are, and whether it may change anything.
fn held_manifests(request: &Request) -> (std::path::PathBuf, bool) {
    let default = |layout: &Layout| crate::request::default_manifests_dir(&layout.kubeconfig_dir);
    match request {
        Request::Check(r) => (default(&r.layout), false),
        Request::Renew(r) => (default(&r.layout), r.check_mode),
        Request::Csr(r) => (default(&r.layout), r.check_mode),
        Request::Install(r) => (default(&r.layout), r.check_mode),
        Request::Restart(r) => (r.manifests_dir.clone(), r.check_mode),
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
