//! The decision: does a running component use the certificates on disk? Each finding carries its reason,
//! as `api::policy` gives one per refusal.
//!
//! A file the component serves is judged by what it serves (a handshake's serial against the file's): it
//! reloads those by itself. A file it reads only at start is judged by start time: a process that started
//! before the file was last written still has the old one. A file it reloads but does not serve (the
//! apiserver's front-proxy client certificate) needs no restart.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::probe;
use super::proc::{self, Process};
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

/// One file of the inventory as a component reads it: a certificate (or kubeconfig), or a CA certificate.
struct Read {
    name: &'static str,
    /// The component reads it again while running.
    reloads: bool,
    /// Where it serves it, if it does.
    served_on: Option<Listener>,
}

/// The inventory's files `component` reads (certificates, kubeconfigs, CA certificates), with the path on
/// disk, those its command line names only (an apiserver without etcd TLS names no etcd client certificate).
fn files_of(layout: &Layout, p: &Process) -> Vec<(Read, std::path::PathBuf)> {
    let c = p.component;
    let certificates = CERTIFICATES.iter().filter(|s| s.used_by.contains(&c)).map(|s| {
        let read = Read { name: s.name, reloads: s.reloaded_by.contains(&c), served_on: s.served_on };
        (read, layout.location(s).path().to_path_buf())
    });
    let cas = CAS.iter().filter(|s| s.used_by.contains(&c)).map(|s| {
        let read = Read { name: s.name, reloads: s.reloaded_by.contains(&c), served_on: None };
        (read, layout.ca_paths(s).0)
    });
    certificates.chain(cas).filter(|(_, ours)| p.path_for(ours).is_some()).collect()
}

/// Milliseconds: a restart and a renewal can fall in the same second.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn modified(path: &Path) -> Option<DateTime<Utc>> {
    std::fs::metadata(path).ok()?.modified().ok().map(DateTime::<Utc>::from)
}

/// Why `p` does not use what is on disk, one sentence per file; empty when it does.
fn why_stale(layout: &Layout, p: &Process) -> Vec<String> {
    let mut why = Vec::new();
    for (spec, path) in files_of(layout, p) {
        let reloads = spec.reloads;
        if let Some(ep) = spec.served_on.and_then(|l| probe::endpoint(p, l)) {
            let served = probe::served_certificate(&ep)
                .and_then(|der| Certificate::from_der(&path, &der).map(|c| c.serial_hex).map_err(|e| e.to_string()));
            let on_disk = Certificate::read(&path).map(|c| c.serial_hex);
            match (served, on_disk) {
                (Ok(s), Ok(d)) if s == d => continue,
                (Ok(s), Ok(d)) => {
                    why.push(format!("serves {} serial {s} on {ep}, {} has serial {d}", spec.name, path.display()));
                    continue;
                }
                // not reachable or not readable: start time is all there is to go on
                _ => {}
            }
        } else if reloads {
            continue;
        }
        if let Some(written) = modified(&path).filter(|w| *w > p.started) {
            why.push(format!(
                "started {} before {} was written {}",
                rfc3339(p.started),
                path.display(),
                rfc3339(written)
            ));
        }
    }
    why
}

/// Whether `p` runs on this PKI: its command line names one of the files the inventory says it reads.
pub fn uses(layout: &Layout, p: &Process) -> bool {
    !files_of(layout, p).is_empty()
}

/// Every component, each running process of it on this PKI judged (several are listed one by one).
pub fn look(layout: &Layout) -> Vec<Finding> {
    let mut out = Vec::new();
    let all: Vec<Process> = proc::find_all().into_iter().filter(|p| uses(layout, p)).collect();
    for component in Component::ALL {
        let running: Vec<Process> = all.iter().filter(|p| p.component == component).cloned().collect();
        if running.is_empty() {
            out.push(Finding { component, process: None, stale: false, reason: "not running on this PKI".into() });
        }
        for p in running {
            out.push(judge(layout, p));
        }
    }
    out
}

pub fn judge(layout: &Layout, p: Process) -> Finding {
    let why = why_stale(layout, &p);
    let (stale, reason) =
        if why.is_empty() { (false, "uses the certificates on disk".to_string()) } else { (true, why.join("; ")) };
    Finding { component: p.component, process: Some(p), stale, reason }
}

/// Whether anything of this PKI runs here; when nothing does, reports leave the components out.
pub fn any_running(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.process.is_some())
}
