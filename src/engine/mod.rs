//! The engine: check, renew, csr, install and the kubelet's client and serving certificates, knowing nothing of Ansible
//! or clap (nor of the certificates API: its signer and `approve` are handed in by `crate::run`). Each operation reads
//! the PKI (`pki`), decides (`plan`), builds new certificates (`sign`), checks them (`issued`) and hands
//! the files to `commit`, which writes all or nothing.

pub mod ca_renew;
pub mod ca_rotate;
pub mod check;
pub mod cluster_info;
pub mod consistency;
pub mod copies;
pub mod csr;
pub mod describe;
pub mod diff;
pub mod files;
mod finish;
pub mod install;
pub mod issued;
pub mod key_dir;
pub mod kubelet;
pub mod kubelet_client;
pub mod kubelet_csr;
mod kubelet_restart;
pub mod kubelet_serving;
pub mod kubelet_sign;
pub mod plan;
pub mod renew;
pub mod sign;
pub mod signer;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::commit;
use crate::duration::Span;
use crate::error::{Error, Result};
use crate::lock::{self, Lock};
use crate::pki::Layout;
use crate::report::Outcome;
use crate::request::Request;

/// `approve kubelet-serving` (`api::kubelet_serving::approve`): the certificates API's, given by whoever runs the
/// engine (`crate::run`), as the API signer is: `api` depends on the engine, never the other way.
pub type Approver = fn(&crate::request::ApproveRequest, DateTime<Utc>) -> Result<Outcome>;

/// Runs one request as of `now`. Every run first puts back a static pod manifest an interrupted restart
/// left held (its component is down until then); check mode only warns. That happens under the PKI lock: a
/// run that holds the lock may be restarting that very component, and the manifest it holds is its own (a
/// run that put it back would start the component under the restart, and the restart would then fail to
/// find its manifest). A writing request (renew, csr, install, restart) runs under the lock, after a journal
/// an interrupted run left is settled (`lock_and_settle`); `check` takes it without waiting, only when a manifest is held.
pub fn run(
    request: &Request,
    now: DateTime<Utc>,
    api_signer: signer::ApiSigner,
    approver: Approver,
) -> Result<Outcome> {
    let mut recovered = Outcome::default();
    let manifests_dir = held_manifests(request);
    let Some(w) = Writing::of(request) else {
        // check and approve write nothing of the PKI: no lock to wait for
        let result = match request {
            Request::Check(r) => {
                recover_unless_busy(&r.layout, &manifests_dir, now, &mut recovered).and_then(|_| check::check(r, now))
            }
            Request::Approve(r) => {
                recover_unless_busy(&r.layout, &manifests_dir, now, &mut recovered).and_then(|_| approver(r, now))
            }
            _ => unreachable!("every other request writes"),
        };
        return result.map(|out| with_recovered(recovered, out));
    };
    if let Request::Renew(r) = request
        && r.at.is_some()
        && !r.check_mode
    {
        // planning a window: a certificate issued now with a clock set ahead would not be valid yet
        return Err(Error::Usage("renewing as of another time (--at) only works with --check".into()));
    }
    let extra_dirs: Vec<&Path> = w.extra_dirs.iter().map(PathBuf::as_path).collect();
    let begun = lock_and_settle(w.layout, &extra_dirs, w.check_mode, w.lock_timeout)?;
    let result = crate::restart::recover_held(&manifests_dir, w.layout, w.check_mode, now, &mut recovered)
        .and_then(|put_back| run_request(request, now, &put_back, api_signer));
    // the lock is released here: what runs on the PKI is looked at after, as `check` looks, without it
    begun.finish(result).map(|out| in_use_after(w.layout, with_recovered(recovered, out)))
}

/// The components after a writing run (`inuse::settle`), looked at once the PKI lock is released: their probes
/// (TLS handshakes, each with a deadline) never hold up another run waiting for the lock.
fn in_use_after(layout: &Layout, mut out: Outcome) -> Outcome {
    if let Some(s) = out.settle.take() {
        crate::inuse::settle(&mut out, layout, &s);
    }
    out
}

/// `out` with what putting back held manifests did first: its warnings first, `changed`.
fn with_recovered(mut recovered: Outcome, mut out: Outcome) -> Outcome {
    out.changed |= recovered.changed;
    recovered.warnings.append(&mut out.warnings);
    out.warnings = recovered.warnings;
    out
}

/// `check` writes nothing of the PKI, but puts back what an interrupted restart left held, taking the lock
/// without waiting; when another run holds it (a restart in progress) or it cannot be taken (not root), the
/// held manifests are only reported.
fn recover_unless_busy(layout: &Layout, manifests_dir: &Path, now: DateTime<Utc>, out: &mut Outcome) -> Result<()> {
    let held = crate::restart::held::left_held(manifests_dir);
    if held.manifests.is_empty() {
        out.warnings.extend(held.ignored);
        return Ok(());
    }
    match lock::lock(&layout.cert_dir, Span(0)) {
        Ok(_lock) => crate::restart::recover_held(manifests_dir, layout, false, now, out).map(drop),
        Err(Error::Locked { path, .. }) => {
            for h in held.manifests {
                out.warnings.push(format!(
                    "{} is held by a kubeadm-certs run in progress (it holds {}): left to it",
                    h.display(),
                    path.display()
                ));
            }
            Ok(())
        }
        Err(_) => crate::restart::recover_held(manifests_dir, layout, true, now, out).map(drop),
    }
}

fn run_request(
    request: &Request,
    now: DateTime<Utc>,
    put_back: &[crate::restart::PutBack],
    api_signer: signer::ApiSigner,
) -> Result<Outcome> {
    match request {
        Request::Renew(r) => renew::renew(r, now, api_signer),
        Request::Rotate(r) => ca_rotate::rotate(r, now, api_signer),
        Request::Csr(r) => csr::csr(r, now),
        Request::Install(r) => install::install(r, now),
        Request::Restart(r) => crate::restart::restart(r, now, put_back),
        Request::KubeletClient(r) => kubelet_client::renew(r, now),
        Request::KubeletSign(r) => kubelet_sign::sign(r, now),
        Request::KubeletServing(r) => kubelet_serving::renew(r, now),
        Request::Check(_) | Request::Approve(_) => unreachable!("check and approve do not write"),
    }
}

/// Where a request's static pod manifests are: a restart's own, else kubeadm's beside the kubeconfigs.
fn held_manifests(request: &Request) -> std::path::PathBuf {
    let layout = match request {
        Request::Restart(r) => return r.manifests_dir.clone(),
        Request::Check(r) => &r.layout,
        Request::Renew(r) => &r.layout,
        Request::Rotate(r) => &r.layout,
        Request::Csr(r) => &r.layout,
        Request::Install(r) => &r.layout,
        Request::KubeletClient(r) => &r.layout,
        Request::KubeletSign(r) => &r.layout,
        Request::KubeletServing(r) => &r.layout,
        Request::Approve(r) => &r.layout,
    };
    crate::request::default_manifests_dir(&layout.kubeconfig_dir)
}

/// What [`lock_and_settle`] needs of a writing request.
struct Writing<'a> {
    layout: &'a Layout,
    /// Directories besides the PKI's that the run writes through the journal.
    extra_dirs: Vec<PathBuf>,
    check_mode: bool,
    lock_timeout: Span,
}

impl<'a> Writing<'a> {
    fn new(layout: &'a Layout, extra_dirs: Vec<&Path>, check_mode: bool, lock_timeout: Span) -> Writing<'a> {
        Writing {
            layout,
            extra_dirs: extra_dirs.into_iter().map(Path::to_path_buf).collect(),
            check_mode,
            lock_timeout,
        }
    }

    fn of(request: &'a Request) -> Option<Writing<'a>> {
        Some(match request {
            Request::Check(_) | Request::Approve(_) => return None,
            Request::Renew(r) => Writing::new(&r.layout, vec![], r.check_mode, r.lock_timeout),
            // the kubelet's client certificate (ca, phase reissue) is written through the journal as renew kubelet-client does
            Request::Rotate(r) => Writing::new(&r.layout, vec![], r.check_mode, r.lock_timeout),
            // a journal of an interrupted csr run lists its CSR dir
            Request::Csr(r) => Writing::new(&r.layout, vec![&r.csr_dir], r.check_mode, r.lock_timeout),
            Request::Install(r) => Writing::new(&r.layout, vec![], r.check_mode, r.lock_timeout),
            // the CA key is read, kubelet.conf written: under the PKI lock like every renewal; a worker's CSR
            // step writes its CSR dir through the journal, as `csr` does
            Request::KubeletClient(r) => Writing::new(
                &r.layout,
                match &r.step {
                    crate::request::KubeletClientStep::Csr { csr_dir } => vec![csr_dir.as_path()],
                    _ => vec![],
                },
                r.check_mode,
                r.lock_timeout,
            ),
            // the CA key is read, the certificate written to the CSR dir through the journal
            Request::KubeletSign(r) => Writing::new(&r.layout, vec![&r.csr_dir], r.check_mode, r.lock_timeout),
            // the kubelet's self-signed pair is written through the journal beside the PKI's, in its certificate dir
            Request::KubeletServing(r) => {
                Writing::new(&r.layout, vec![&r.kubelet_dir.join("pki")], r.check_mode, r.lock_timeout)
            }
            // a restart reads the PKI to judge what is stale: no renewal may change it meanwhile
            Request::Restart(r) => Writing::new(&r.layout, vec![], r.check_mode, r.lock_timeout),
        })
    }
}

/// The beginning of a writing run: the lock (none in check mode), and what settling a journal did.
struct Begun {
    _lock: Option<Lock>,
    warning: Option<String>,
    /// Settling the journal changed files: the run changed the PKI whatever happens next.
    changed: bool,
}

impl Begun {
    /// The run's result, with what the beginning did: its warning first, `changed`; and on failure an error
    /// that says the PKI changed all the same. The lock is released after.
    fn finish(self, result: Result<Outcome>) -> Result<Outcome> {
        match (result, self.warning) {
            (Ok(mut out), Some(w)) => {
                out.warnings.insert(0, w);
                out.changed |= self.changed;
                Ok(out)
            }
            (Err(e), Some(w)) if self.changed => Err(Error::AfterRecovery { done: w, source: Box::new(e) }),
            (result, _) => result,
        }
    }
}

/// What a writing run (renew, csr, install) starts with: the PKI lock, held until the run is over, and a
/// journal an interrupted run left settled first, so that the run reads a whole PKI. A real run settles the
/// journal and says so (`changed`, a warning, also when the run then fails); a check run takes no lock,
/// changes nothing and only warns.
fn lock_and_settle(layout: &Layout, extra_dirs: &[&Path], check_mode: bool, lock_timeout: Span) -> Result<Begun> {
    if check_mode {
        let warning = commit::journal_pending(layout)
            .then(|| "an interrupted renewal left a journal; a real run completes it first".to_string());
        return Ok(Begun { _lock: None, warning, changed: false });
    }
    let lock = lock::lock(&layout.cert_dir, lock_timeout)?;
    let done = commit::recover(layout, extra_dirs)?;
    Ok(Begun { _lock: Some(lock), changed: done.is_some(), warning: done })
}
