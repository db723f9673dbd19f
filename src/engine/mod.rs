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

use chrono::{DateTime, Utc};

use crate::error::Result;
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
