//! What the running control plane has loaded, as opposed to what is on disk: the processes of etcd,
//! kube-apiserver, kube-controller-manager and kube-scheduler found in `/proc` ([`proc`]), what they serve
//! ([`probe`]), and whether each is stale ([`stale`]). docs/in-use.md says which file each component
//! reloads by itself and which it reads only at start.

pub mod probe;
pub mod proc;
pub mod stale;

use std::collections::BTreeSet;
use std::path::Path;

use crate::inventory::Component;
use crate::pki::Layout;
use crate::report::rfc3339;
use crate::report::{ComponentReport, Outcome, Settle};
pub use stale::Finding;

/// What a look at the running components covers: this PKI, and who may run each component (root, or the user
/// a static pod manifest in the manifests dir names: `proc::Owners`).
pub struct Scope<'a> {
    pub layout: &'a Layout,
    pub owners: proc::Owners,
}

impl<'a> Scope<'a> {
    pub fn new(layout: &'a Layout, manifests_dir: &Path) -> Scope<'a> {
        Scope { layout, owners: proc::Owners::from_manifests(manifests_dir) }
    }

    /// kubeadm's manifests dir beside the kubeconfigs (`KUBECONFIG_DIR/manifests`).
    pub fn kubeadm(layout: &'a Layout) -> Scope<'a> {
        Scope::new(layout, &crate::request::default_manifests_dir(&layout.kubeconfig_dir))
    }
}

impl Finding {
    pub fn report(&self) -> ComponentReport {
        ComponentReport {
            name: self.component.name(),
            pid: self.process.as_ref().map(|p| p.pid),
            started_at: self.process.as_ref().map(|p| rfc3339(p.started)),
            stale: self.stale,
            reason: self.reason.clone(),
        }
    }
}

/// The components of this PKI as a report (of what `stale::look` found): empty when none of them runs here (a
/// copy of a PKI, a backup, a node being prepared), so that output on such a PKI stays kubeadm's.
pub fn reports(findings: &[Finding]) -> Vec<ComponentReport> {
    if !stale::any_running(findings) {
        return Vec::new();
    }
    findings.iter().map(Finding::report).collect()
}

/// What a run that renewed (or would renew) certificates leaves to restart. `used`: the components that
/// read what it renewed; `at_start`: those of them that read it only at start. The answer: every stale
/// component; every `used` one not seen running (that it uses the new files cannot be shown; restarting
/// what is not running is harmless); in check mode, every running `at_start` one (it would be stale).
pub fn restart_after(
    findings: &[Finding],
    used: &BTreeSet<Component>,
    at_start: &BTreeSet<Component>,
    check_mode: bool,
) -> Vec<ComponentReport> {
    let mut out: Vec<ComponentReport> = Vec::new();
    for f in findings {
        let reason = match (&f.process, f.stale) {
            (_, true) => Some(f.reason.clone()),
            (None, false) if used.contains(&f.component) => {
                Some("reads renewed certificates; not seen running on this PKI".to_string())
            }
            (Some(_), false) if check_mode && at_start.contains(&f.component) => {
                Some("reads at start certificates this run would renew".to_string())
            }
            _ => None,
        };
        if let Some(reason) = reason
            && !out.iter().any(|r| r.name == f.component.name())
        {
            out.push(ComponentReport { reason, stale: true, ..f.report() });
        }
    }
    out
}

/// Fills in what a writing run reports about the components after it: `components` (as `check` shows
/// them) and `restart` (see [`restart_after`]), for the certificates and CA certificates it changed (or, in check
/// mode, would: `what`); with `what.name_restarts`, `msg` goes on to say what to restart, and what is stale with its
/// evidence.
pub fn settle(out: &mut Outcome, layout: &Layout, what: &Settle) {
    let readers = what
        .changed
        .iter()
        .map(|s| (s.used_by, s.reloaded_by))
        .chain(what.cas.iter().map(|c| (c.spec().used_by, c.spec().reloaded_by)));
    let mut used = BTreeSet::new();
    let mut at_start = BTreeSet::new();
    for (used_by, reloaded_by) in readers {
        used.extend(used_by.iter().copied());
        at_start.extend(used_by.iter().copied().filter(|c| !reloaded_by.contains(c)));
    }
    let check_mode = what.check_mode;
    let findings = stale::look(&Scope::kubeadm(layout));
    let restart = restart_after(&findings, &used, &at_start, check_mode);
    out.restart = restart.iter().map(|r| r.name).collect();
    out.components = reports(&findings);
    out.stale = restart;
    if what.name_restarts {
        if !out.restart.is_empty() {
            out.msg.push_str(&format!("; restart {} to use the new certificates", out.restart.join(", ")));
        }
        // a restart that an earlier run left undone, named with its evidence
        for s in out.stale.iter().filter(|s| s.pid.is_some()) {
            out.msg.push_str(&format!("; {} (pid {}) is stale: {}", s.name, s.pid.unwrap_or_default(), s.reason));
        }
        if let Some(note) = what.restart_note.as_ref().filter(|_| !out.restart.is_empty()) {
            out.msg.push_str(&format!("; {note}"));
        }
    }
}
