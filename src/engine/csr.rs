//! `csr`: kubeadm's `certs renew --csr-only`: a new key and a CSR per certificate, with the subject and
//! SANs of the existing certificate, for a CA that lives elsewhere. `NAME.csr` + `NAME.key` in the CSR
//! dir, both 0600. Idempotent: a CSR that still matches its key and the certificate is kept.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::describe::cert_row;
use super::key_dir::{self, KeyDir};
use super::plan::{self, Desired, Policy};
use super::{finish, sign};
use crate::commit::{FileWrite, MODE_SECRET};
use crate::duration::Span;
use crate::error::{Error, Result};
use crate::inventory::{CertSpec, Usage};
use crate::pki::cert::NameAttr;
use crate::pki::key::{KeyAlgorithm, PrivateKey};
use crate::pki::{self, Keys, Pki};
use crate::report::{Action, CsrReport, Outcome};
use crate::request::CsrRequest;

pub fn csr_paths(dir: &Path, spec: &CertSpec) -> (PathBuf, PathBuf) {
    (dir.join(format!("{}.csr", spec.name)), dir.join(format!("{}.key", spec.name)))
}

pub fn usage_names(spec: &CertSpec) -> Vec<&'static str> {
    spec.usages
        .iter()
        .map(|u| match u {
            Usage::ServerAuth => "serverAuth",
            Usage::ClientAuth => "clientAuth",
        })
        .collect()
}

/// The CSR on disk still asks for `desired` with `key`: same public key, subject and SANs.
fn still_matches(csr_path: &Path, key: &PrivateKey, desired: &Desired) -> bool {
    let Ok(bytes) = pki::read_file(csr_path, pki::Links::Follow) else { return false };
    let Ok(csr) = pki::csr::parse(&bytes) else { return false };
    let want: Vec<(String, String)> =
        desired.subject.0.iter().map(|a: &NameAttr| (a.oid.clone(), a.value.clone())).collect();
    csr.public_key_raw == key.public_key_raw()
        && csr.subject == want
        && csr.other_names == 0
        && csr.dns_names == desired.dns_names
        && csr.ip_addresses == desired.ip_addresses
}

/// Writes what is not up to date: 1. check the CSR dir and read the PKI, 2. decide which CSRs to write,
/// 3. write their keys and CSRs in one transaction, 4. report. Check mode stops after 2.
pub fn csr(req: &CsrRequest, now: DateTime<Utc>) -> Result<Outcome> {
    // under the lock, a pending journal settled (`super::run`)
    let mut out = Outcome::default();
    let dir = key_dir::check(&req.layout, &req.csr_dir, &KeyDir::CSR)?;
    let pki = Pki::read(&req.layout, &req.selection.specs, req.selection.explicit, Keys::Skip)?;
    pki.validate()?;
    let todo = decide(req, &pki, now)?;
    let writing: Vec<&Todo> = todo.iter().filter(|t| t.write).collect();
    if !req.check_mode && !writing.is_empty() {
        if !dir.exists {
            key_dir::create(&req.csr_dir, &KeyDir::CSR)?;
        }
        let writes = build(req, &pki, &writing)?;
        drop_foreign(&writes)?;
        finish::commit(&req.layout, &writes, false, now)?;
    }
    report(req, &pki, &todo, now, &mut out);
    // a CSR changes nothing a component reads: restart is what is stale already
    finish::close(&mut out, &pki, &[], req.check_mode, now);
    out.changed |= !out.csr_files.is_empty();
    out.msg = match (out.csr_files.len(), req.check_mode) {
        (0, _) => "CSRs up to date".into(),
        (n, true) => format!("would write {n} CSRs to {}", req.csr_dir.display()),
        (n, false) => format!("wrote {n} CSRs to {}", req.csr_dir.display()),
    };
    Ok(out)
}

/// A certificate of the PKI (entry `index`), what its CSR asks for, and whether the CSR is to be written.
struct Todo {
    index: usize,
    desired: Desired,
    write: bool,
}

/// What a CSR asks for is what `kubeadm certs renew --csr-only` asks: the subject and SANs of the
/// certificate on disk, and a new key (`key_algorithm`, or the old key's kind). Usages, validity and the
/// CA's expiry are the external CA's to decide: they are not in the CSR, so nothing here limits them.
fn csr_policy(key_algorithm: Option<KeyAlgorithm>) -> Policy<'static> {
    Policy { renew_before: Span(0), force: true, extra_sans: &[], key_algorithm, validity: Span::days(365) }
}

/// Step 2: every certificate present gets a CSR, written unless the one in the CSR dir (with its key, both
/// ours) still asks for the same thing (`--force` writes anew).
fn decide(req: &CsrRequest, pki: &Pki, now: DateTime<Utc>) -> Result<Vec<Todo>> {
    let policy = csr_policy(req.key_algorithm);
    let mut todo = Vec::new();
    for (index, entry) in pki.entries.iter().enumerate() {
        let Some(loaded) = &entry.loaded else { continue };
        // the CA is elsewhere: its expiry does not limit what is asked
        let desired = plan::desired(entry.spec, &loaded.cert, DateTime::<Utc>::MAX_UTC, &policy, now)
            .map_err(|why| Error::cannot_renew(entry.spec.name, entry.location.path(), why))?;
        let (csr_path, key_path) = csr_paths(&req.csr_dir, entry.spec);
        let keep = !req.force
            && ours(&csr_path)?
            && ours(&key_path)?
            && PrivateKey::read(&key_path).is_ok_and(|k| {
                still_matches(&csr_path, &k, &desired) && (req.key_algorithm.is_none_or(|a| Some(a) == k.algorithm()))
            });
        todo.push(Todo { index, desired, write: !keep });
    }
    Ok(todo)
}

/// Step 3's files: a new key and its CSR for each certificate in `writing`, both 0600.
fn build(req: &CsrRequest, pki: &Pki, writing: &[&Todo]) -> Result<Vec<FileWrite>> {
    let keys = PrivateKey::generate_many(&writing.iter().map(|t| t.desired.key_algorithm).collect::<Vec<_>>())?;
    let mut writes = Vec::new();
    for (t, key) in writing.iter().zip(&keys) {
        let entry = &pki.entries[t.index];
        let d = &t.desired;
        let request = sign::request_pem(&d.subject, &d.dns_names, &d.ip_addresses, key)
            .map_err(|e| Error::Crypto(format!("{}: cannot build the CSR: {e}", entry.spec.name)))?;
        let (csr_path, key_path) = csr_paths(&req.csr_dir, entry.spec);
        writes.push(FileWrite { path: key_path, contents: key.pem().as_bytes().to_vec(), mode: MODE_SECRET });
        writes.push(FileWrite { path: csr_path, contents: request.into_bytes(), mode: MODE_SECRET });
    }
    Ok(writes)
}

/// Step 4: a row per certificate, and for each CSR what it asks the external CA for.
fn report(req: &CsrRequest, pki: &Pki, todo: &[Todo], now: DateTime<Utc>, out: &mut Outcome) {
    for (index, entry) in pki.entries.iter().enumerate() {
        let t = todo.iter().find(|t| t.index == index);
        let action = match t {
            Some(t) if t.write && req.check_mode => Action::WouldWriteCsr,
            Some(t) if t.write => Action::CsrWritten,
            _ => Action::None,
        };
        out.certificates.push(cert_row(pki, entry, entry.loaded.as_ref().map(|l| &l.cert), now, action));
        let Some(t) = t else { continue };
        let (csr_path, key_path) = csr_paths(&req.csr_dir, entry.spec);
        if t.write {
            out.csr_files.push(csr_path.display().to_string());
        }
        out.csrs.push(CsrReport {
            name: entry.spec.name.into(),
            csr_path: csr_path.display().to_string(),
            key_path: key_path.display().to_string(),
            ca: entry.spec.ca.name(),
            subject: t.desired.subject.to_string(),
            sans: t.desired.sans(),
            key_usage: t.desired.key_usage_names(),
            extended_key_usage: usage_names(entry.spec),
            changed: t.write,
        });
    }
}

/// The file is there and belongs to the user running the tool. A CSR or key someone else left in the CSR
/// dir is never kept: a key another user could have chosen (or can still read) is no key to certify.
pub(super) fn ours(path: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(m.is_file() && m.uid() == key_dir::euid()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::read(path, e)),
    }
}

/// Removes the targets another user owns before they are written: `commit` keeps a replaced file's owner
/// (right for the PKI, where root:root or a service user owns the keys), and a new key must belong to the
/// user running the tool, never to whoever planted a file of that name. The CSR dir is ours and nobody
/// else can write it (`key_dir::check`), so nothing can put the file back before the commit.
pub(super) fn drop_foreign(writes: &[FileWrite]) -> Result<()> {
    for w in writes {
        match std::fs::symlink_metadata(&w.path) {
            Ok(m) if m.is_file() && m.uid() != key_dir::euid() => {
                std::fs::remove_file(&w.path).map_err(|e| Error::write(&w.path, e))?;
            }
            _ => {}
        }
    }
    Ok(())
}
