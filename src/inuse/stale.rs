//! The decision: does a running component use the certificates on disk? Each finding carries its reason,
//! as `api::policy` gives one per refusal.
//!
//! A file the component sees as it was before it was replaced (a single-file bind mount, `proc::Sight::Replaced`)
//! is stale, whatever else. A file the component serves is judged by what it serves (a handshake's serial against
//! the file's): it reloads those by itself. A file it reads only at start is judged by start time: a process that
//! started before the file was last written still has the old one. A file it reloads but does not serve (the
//! apiserver's front-proxy client certificate) needs no restart.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::Scope;
use super::probe;
use super::proc::{self, Process, Sight};
use crate::inventory::{CAS, CERTIFICATES, Component, Listener};
use crate::pki::Layout;
use crate::pki::cert::Certificate;

/// One component as found on this node.
#[derive(Clone, Debug)]
pub struct Finding {
    pub component: Component,
    /// `None`: not running on this PKI.
    pub process: Option<Process>,
    pub stale: bool,
    pub reason: String,
}

/// One file of the inventory a process reads: a certificate (or kubeconfig), or a CA certificate.
struct Read {
    name: &'static str,
    /// The component reads it again while running.
    reloads: bool,
    /// Where it serves it, if it does.
    served_on: Option<Listener>,
    /// Our path of it.
    path: PathBuf,
    sight: Sight,
}

/// The inventory's files `p` reads (certificates, kubeconfigs, CA certificates), with the path on disk and how the
/// process sees it: only those its command line names (an apiserver without etcd TLS names no etcd client
/// certificate).
fn files_of(layout: &Layout, p: &Process) -> Vec<Read> {
    let c = p.component;
    let certificates = CERTIFICATES
        .iter()
        .filter(|s| s.used_by.contains(&c))
        .map(|s| (s.name, s.reloaded_by.contains(&c), s.served_on, layout.location(s).path().to_path_buf()));
    let cas = CAS
        .iter()
        .filter(|s| s.used_by.contains(&c))
        .map(|s| (s.name, s.reloaded_by.contains(&c), None, layout.ca_paths(s).0));
    certificates
        .chain(cas)
        .filter_map(|(name, reloads, served_on, path)| {
            p.path_for(&path).map(|(_, sight)| Read { name, reloads, served_on, path, sight })
        })
        .collect()
}

/// Milliseconds: a restart and a renewal can fall in the same second.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn modified(path: &Path) -> Option<DateTime<Utc>> {
    std::fs::metadata(path).ok()?.modified().ok().map(DateTime::<Utc>::from)
}

/// What a served file says: `Ok(None)` the file is served, `Ok(Some(why))` another certificate is, `Err(why)`
/// the endpoint could not be probed (start time then decides, and the reason says so).
fn served(p: &Process, read: &Read) -> Option<Result<Option<String>, String>> {
    let ep = read.served_on.and_then(|l| probe::endpoint(p, l))?;
    let served = probe::served_certificate(&ep)
        .and_then(|der| Certificate::from_der(&read.path, &der).map(|c| c.serial_hex).map_err(|e| e.to_string()));
    let on_disk = Certificate::read(&read.path).map(|c| c.serial_hex).map_err(|e| e.to_string());
    Some(match (served, on_disk) {
        (Ok(s), Ok(d)) if s == d => Ok(None),
        (Ok(s), Ok(d)) => {
            Ok(Some(format!("serves {} serial {s} on {ep}, {} has serial {d}", read.name, read.path.display())))
        }
        (Err(e), _) => Err(format!("cannot be probed on {ep} ({e})")),
        (_, Err(e)) => Err(e),
    })
}

/// Why `p` does not use what is on disk, one sentence per file (empty when it does), and what could not be
/// probed (said, never waited on).
fn why_stale(layout: &Layout, p: &Process) -> (Vec<String>, Vec<String>) {
    let (mut why, mut unprobed) = (Vec::new(), Vec::new());
    for read in files_of(layout, p) {
        if read.sight == Sight::Replaced {
            why.push(format!(
                "sees {} as it was before it was replaced (mounted into its pod as a single file, which keeps the old \
                 file after a rename)",
                read.path.display()
            ));
            continue;
        }
        match served(p, &read) {
            Some(Ok(None)) => continue,
            Some(Ok(Some(serves_another))) => {
                why.push(serves_another);
                continue;
            }
            Some(Err(e)) => unprobed.push(e),
            None if read.reloads => continue,
            None => {}
        }
        if let Some(written) = modified(&read.path).filter(|w| *w > p.started) {
            why.push(format!(
                "started {} before {} was written {}",
                rfc3339(p.started),
                read.path.display(),
                rfc3339(written)
            ));
        }
    }
    (why, unprobed)
}

/// Whether `p` runs on this PKI: its command line names one of the files the inventory says it reads.
pub fn uses(layout: &Layout, p: &Process) -> bool {
    !files_of(layout, p).is_empty()
}

/// Every process of `component` on this PKI, oldest first.
pub fn running(scope: &Scope<'_>, component: Component) -> Vec<Process> {
    proc::find(component, &scope.owners).into_iter().filter(|p| uses(scope.layout, p)).collect()
}

/// Every component, each running process of it on this PKI judged (several are listed one by one).
pub fn look(scope: &Scope<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let all: Vec<Process> = proc::find_all(&scope.owners).into_iter().filter(|p| uses(scope.layout, p)).collect();
    for component in Component::ALL {
        let running: Vec<Process> = all.iter().filter(|p| p.component == component).cloned().collect();
        if running.is_empty() {
            out.push(Finding { component, process: None, stale: false, reason: "not running on this PKI".into() });
        }
        for p in running {
            out.push(judge(scope.layout, p));
        }
    }
    out
}

pub fn judge(layout: &Layout, p: Process) -> Finding {
    let (why, unprobed) = why_stale(layout, &p);
    let (stale, mut reason) =
        if why.is_empty() { (false, "uses the certificates on disk".to_string()) } else { (true, why.join("; ")) };
    if !unprobed.is_empty() {
        reason.push_str(&format!(" (judged by start time: {})", unprobed.join("; ")));
    }
    Finding { component: p.component, process: Some(p), stale, reason }
}

/// Whether anything of this PKI runs here; when nothing does, reports leave the components out.
pub fn any_running(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.process.is_some())
}
