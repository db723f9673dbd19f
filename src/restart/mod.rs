//! One restart engine for the CLI (`kubeadm-certs restart`), the module (`state: restart`), the roles and
//! the timer: restart the components asked for (or every stale one) by one method, then gate on each:
//! running again, healthy (`inuse::probe::health_of`), and using the certificates on disk
//! (`inuse::stale::judge`). docs/in-use.md has the whole story.

pub mod annotate;
pub mod cluster;
pub mod cluster_gate;
pub mod held;
pub mod lease;
pub mod method;
pub mod static_pod;
pub mod wait;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{Error, Result};
use crate::inuse::Scope;
use crate::inuse::proc::Process;
use crate::inuse::stale::{self, Finding};
use crate::inventory::Component;
use crate::report::{ClusterReport, LeaseReport, Outcome, RestartReport};
use crate::request::{RestartMethod, RestartRequest};

/// How long a run that finds a manifest held waits for the component's old process to be gone before it puts
/// the manifest back: the kubelet's grace period (30 s) and then some.
const HELD_GONE_TIMEOUT: Duration = Duration::from_secs(90);

/// A manifest an interrupted restart had held, put back by this run, and when.
#[derive(Clone, Copy, Debug)]
pub struct PutBack {
    pub component: Component,
    pub at: DateTime<Utc>,
}

/// Puts back what an interrupted restart left held (every run of every state does this first); in
/// check mode only says so. Returns the components whose manifests went back: `restart` waits for them.
/// What the holding dir holds that is not a component's manifest from a dir only root wrote is named and
/// left where it is (`held::left_held`).
///
/// The interrupted run was killed between two steps of the static pod restart (hold, wait until the process is
/// gone, put back changed): this run does the rest, the wait included. A manifest put back while the kubelet
/// still stops the old pod is an update of a pod being killed (kubelet 1.20 may leave the new one unstarted
/// for minutes), and the wait for the component afterwards would find the old process, not the new one.
pub fn recover_held(
    manifests_dir: &Path,
    layout: &crate::pki::Layout,
    check_mode: bool,
    now: DateTime<Utc>,
    out: &mut Outcome,
) -> Result<Vec<PutBack>> {
    if check_mode {
        let held = held::left_held(manifests_dir);
        for h in held.manifests {
            out.warnings.push(format!(
                "{} was left held by an interrupted restart (its component is down); a real run puts it back",
                h.display()
            ));
        }
        out.warnings.extend(held.ignored);
        return Ok(Vec::new());
    }
    let scope = Scope::new(layout, manifests_dir);
    let done = held::recover(manifests_dir, now, |manifest| old_process_gone(manifest, &scope, out))?;
    let mut put_back = Vec::new();
    for (b, at) in &done.back {
        out.warnings.push(format!("put back {}, left held by an interrupted restart", b.display()));
        out.changed = true;
        let stem = b.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        put_back.extend(Component::parse(&stem).map(|component| PutBack { component, at: *at }));
    }
    for c in done.conflicting {
        out.warnings.push(format!(
            "{} is held, and its name is in {} again: kept the one there, remove the held copy when done",
            c.display(),
            manifests_dir.display()
        ));
    }
    out.warnings.extend(done.ignored);
    Ok(put_back)
}

/// Until every process of the component the kubelet stops for a held manifest (`manifest`: where it goes back)
/// is gone; a warning when one still runs after [`HELD_GONE_TIMEOUT`].
fn old_process_gone(manifest: &Path, scope: &Scope<'_>, out: &mut Outcome) {
    let stem = manifest.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let Some(component) = Component::parse(&stem) else { return };
    if let Err(still) = wait::all_gone(scope, component, HELD_GONE_TIMEOUT) {
        out.warnings.push(format!(
            "{}: {still} after its manifest was held; putting the manifest back all the same (is the kubelet \
             running? `systemctl status kubelet`)",
            component.name()
        ));
    }
}

/// Waits until each component whose manifest this run put back runs again (a process started after it went
/// back) and is healthy: the restart an interrupted run began ends here, before anything else restarts.
fn await_put_back(req: &RestartRequest, scope: &Scope<'_>, put_back: &[PutBack], out: &mut Outcome) -> Result<()> {
    let timeout = Duration::from_secs(req.timeout.seconds().max(1) as u64);
    for b in put_back {
        let name = b.component.name();
        let failed = |why: String| {
            Error::Restart(format!(
                "{name}: its manifest was put back (an interrupted run had held it), but {why} (see `journalctl -u \
                 kubelet`); nothing else was restarted"
            ))
        };
        let expect = wait::Expect::started_after(b.component, b.at);
        let first = wait::running(scope, &expect, timeout)
            .map_err(|waited| failed(format!("it is not running {waited} later")))?;
        let settled =
            wait::healthy(&first, scope, &expect, timeout).map_err(|e| failed(format!("pid {} {e}", first.pid)))?;
        note_exits(name, &settled, &mut out.warnings);
        let new = settled.process;
        out.restarts.push(RestartReport {
            name,
            action: "put_back",
            method: RestartMethod::StaticPod.name(),
            pid_before: None,
            pid_after: Some(new.pid),
            reason: "its manifest was held by an interrupted run: put back as a new pod, running and healthy".into(),
        });
    }
    Ok(())
}

/// What a method needs, found before anything restarts.
enum Tool {
    None,
    Path(PathBuf),
}

fn tool_for(req: &RestartRequest, targets: &[&Finding]) -> Result<Tool> {
    let running: Vec<&Process> = targets.iter().filter_map(|f| f.process.as_ref()).collect();
    if running.is_empty() {
        return Ok(Tool::None);
    }
    match req.method {
        RestartMethod::None => Ok(Tool::None),
        RestartMethod::StaticPod => {
            // every manifest present and a static pod before the first one moves
            for p in running {
                let path = static_pod::manifest_path(&req.manifests_dir, p.component.name());
                let bytes = std::fs::read(&path).map_err(|e| {
                    Error::Restart(format!(
                        "{}: cannot read its static pod manifest {}: {e}; is it a static pod here? (--manifests-dir, \
                         or another --method); nothing was restarted",
                        p.component.name(),
                        path.display()
                    ))
                })?;
                static_pod::annotated(&path, &bytes, Utc::now())?;
            }
            Ok(Tool::None)
        }
        RestartMethod::Crictl => {
            method::require("crictl", "crictl", "install cri-tools, or choose --method static_pod").map(Tool::Path)
        }
        RestartMethod::Systemd => {
            method::require("systemctl", "systemd", "choose --method static_pod or command").map(Tool::Path)
        }
        RestartMethod::Command => {
            if req.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
                return Err(Error::Usage("method command needs the command to run (--restart-command)".into()));
            }
            method::require("sh", "command", "the command runs with sh -c").map(Tool::Path)
        }
    }
}

/// The findings to act on, in the order kubeadm restarts them (etcd first).
fn targets<'a>(req: &RestartRequest, findings: &'a [Finding]) -> Vec<&'a Finding> {
    let mut out: Vec<&Finding> = Vec::new();
    for f in findings {
        let wanted = match &req.components {
            None => f.stale,
            Some(list) => list.contains(&f.component),
        };
        // one per component: a static pod has one manifest, a unit one name
        if wanted && !out.iter().any(|o| o.component == f.component) {
            out.push(f);
        }
    }
    out
}

/// Says which processes exited before one of them answered healthy (crash restarts while the cluster settled).
fn note_exits(name: &str, settled: &wait::Settled, warnings: &mut Vec<String>) {
    if !settled.exited.is_empty() {
        let pids: Vec<String> = settled.exited.iter().map(u32::to_string).collect();
        warnings.push(format!(
            "{name}: pid {} exited before it was healthy; its successor pid {} is (crash restarts while the cluster \
             settled)",
            pids.join(", "),
            settled.process.pid
        ));
    }
}

/// Restarts one running component by the method and gates on it; returns the pid of the process it replaced
/// (`p`, or the old pod's crash restart of it that ran when the restart began) and the new process.
fn restart_one(
    req: &RestartRequest,
    scope: &Scope<'_>,
    tool: &Tool,
    p: &Process,
    now: DateTime<Utc>,
) -> Result<(u32, wait::Settled)> {
    let name = p.component.name();
    let timeout = Duration::from_secs(req.timeout.seconds().max(1) as u64);
    let path = |t: &Tool| match t {
        Tool::Path(p) => p.clone(),
        Tool::None => PathBuf::new(),
    };
    // what runs now: `p`, or what the kubelet started after it crashed (the same pod)
    let replaced: Vec<Process> = match stale::running(scope, p.component) {
        now_running if now_running.is_empty() => vec![p.clone()],
        now_running => now_running,
    };
    let pid_before = replaced.last().map_or(p.pid, |r| r.pid);
    let method_ran = Utc::now();
    let expect = match req.method {
        RestartMethod::StaticPod => {
            let manifest = static_pod::manifest_path(&req.manifests_dir, name);
            let back = static_pod::restart(&manifest, scope, p.component, timeout, now)?;
            wait::Expect::new_pod(p.component, back, &replaced)
        }
        RestartMethod::Crictl => {
            method::crictl(&path(tool), p)?;
            wait::Expect::started_after(p.component, method_ran)
        }
        RestartMethod::Systemd => {
            method::systemd(&path(tool), p)?;
            wait::Expect::started_after(p.component, method_ran)
        }
        RestartMethod::Command => {
            method::command(req.command.as_deref().unwrap_or_default(), p)?;
            wait::Expect::started_after(p.component, method_ran)
        }
        RestartMethod::None => return Ok((p.pid, wait::Settled { process: p.clone(), exited: vec![] })),
    };
    // the method did its part (a static pod's manifest is back in place): what follows is the component's
    let hint = match req.method {
        RestartMethod::StaticPod | RestartMethod::Crictl => {
            " (its manifest is in place; see `journalctl -u kubelet` and `crictl ps -a`)"
        }
        RestartMethod::Systemd => " (see `systemctl status` and `journalctl -u` of the unit)",
        _ => "",
    };
    let failed = |why: String| Error::Restart(format!("{name}: {why}{hint}"));
    let first = wait::running(scope, &expect, timeout).map_err(|waited| {
        let what = if expect.in_pod { "no process of a new pod runs" } else { "not running again" };
        failed(format!("{what} {waited} after the restart"))
    })?;
    healthy_and_fresh(scope, &first, &expect, timeout, "restarted as ", failed).map(|s| (pid_before, s))
}

/// The gates after a component runs again: healthy (followed through crash restarts of the same new pod), then
/// using the certificates on disk. `said` starts the messages ("restarted as " pid ...).
fn healthy_and_fresh(
    scope: &Scope<'_>,
    first: &Process,
    expect: &wait::Expect,
    timeout: Duration,
    said: &str,
    failed: impl Fn(String) -> Error,
) -> Result<wait::Settled> {
    let settled = wait::healthy(first, scope, expect, timeout)
        .map_err(|e| failed(format!("{said}pid {}, but {e}", first.pid)))?;
    let judged = stale::judge(scope.layout, settled.process.clone());
    if judged.stale {
        let pid = settled.process.pid;
        return Err(failed(format!("{said}pid {pid} and healthy, but still stale: {}", judged.reason)));
    }
    Ok(settled)
}

/// A component asked for that is not running, restarted through its manifest (`static_pod::restart_not_running`),
/// then gated as a restart is: running (a process started after the rewrite), healthy, on the certificates on
/// disk.
fn start_not_running(
    req: &RestartRequest,
    scope: &Scope<'_>,
    c: Component,
    manifest: &Path,
    now: DateTime<Utc>,
) -> Result<wait::Settled> {
    let name = c.name();
    let timeout = Duration::from_secs(req.timeout.seconds().max(1) as u64);
    let at = static_pod::restart_not_running(manifest, now)?;
    let failed = |why: String| {
        Error::Restart(format!(
            "{name}: not running, its manifest rewritten to start a new pod, but {why} (see `journalctl -u kubelet` \
             and `crictl ps -a`)"
        ))
    };
    let expect = wait::Expect::started_after(c, at);
    let first =
        wait::running(scope, &expect, timeout).map_err(|waited| failed(format!("it is not running {waited} later")))?;
    healthy_and_fresh(scope, &first, &expect, timeout, "started as ", failed)
}

fn report(
    f: &Finding,
    action: &'static str,
    method: RestartMethod,
    after: Option<u32>,
    reason: String,
) -> RestartReport {
    RestartReport {
        name: f.component.name(),
        action,
        method: method.name(),
        pid_before: f.process.as_ref().map(|p| p.pid),
        pid_after: after,
        reason,
    }
}

pub fn restart(req: &RestartRequest, now: DateTime<Utc>, put_back: &[PutBack]) -> Result<Outcome> {
    // under the lock, a pending journal settled, held manifests put back (`engine::run`)
    let mut out = Outcome::default();
    let scope = Scope::new(&req.layout, &req.manifests_dir);
    if !req.check_mode {
        await_put_back(req, &scope, put_back, &mut out)?;
    }
    let findings = stale::look(&scope);
    let targets = targets(req, &findings);
    let tool = tool_for(req, &targets)?;

    // the cluster is asked only when something would restart; check mode gates but takes no lease
    let restarting: Vec<Component> = targets.iter().filter(|f| f.process.is_some()).map(|f| f.component).collect();
    let would_restart = req.method != RestartMethod::None && !restarting.is_empty();
    let client = match would_restart && req.cluster.wanted() {
        true => Some(api_client(&req.cluster.kubeconfig)?),
        false => None,
    };
    // the lease first: the gate then sees the cluster after the node before us is healthy again
    let held = match (&client, &req.cluster.lease) {
        (Some(c), Some(opts)) if !req.check_mode => Some(lease::take(c, opts)?),
        _ => None,
    };
    let gated = match &client {
        Some(c) if req.cluster.gate => gate(req, c, &findings, &restarting, &mut out),
        _ => Ok(()),
    };
    let done = gated.and_then(|()| restart_targets(req, &scope, &tool, &targets, now, &mut out));
    if let Some(h) = held {
        let (acquired, waited, from) = (h.acquired, h.waited, h.took_over_from.clone());
        let (released, warnings) = h.release();
        out.warnings.extend(warnings);
        out.lease = req.cluster.lease.as_ref().map(|o| LeaseReport {
            name: format!("{}/{}", lease::NAMESPACE, o.name),
            holder: o.identity.clone(),
            acquired_at: acquired.to_rfc3339_opts(SecondsFormat::Micros, true),
            released_at: Some(released.to_rfc3339_opts(SecondsFormat::Micros, true)),
            waited_seconds: waited.as_secs(),
            took_over_from: from,
        });
    }
    let done = done?;

    let after = stale::look(&scope);
    out.components = crate::inuse::reports(&after);
    out.stale = after.iter().filter(|f| f.stale).map(Finding::report).collect();
    out.restart = out.stale.iter().map(|r| r.name).collect();
    out.changed |= !done.is_empty();
    out.msg = summary(req, &out, &done);
    Ok(out)
}

fn api_client(kubeconfig: &Path) -> Result<crate::kube::client::Client> {
    let creds = crate::kube::credentials::Credentials::read(kubeconfig)?;
    crate::kube::client::Client::new(&creds)
}

/// Every etcd member and apiserver healthy, or a refusal naming each that is not; changes nothing.
fn gate(
    req: &RestartRequest,
    client: &crate::kube::client::Client,
    findings: &[Finding],
    restarting: &[Component],
    out: &mut Outcome,
) -> Result<()> {
    let seen = cluster::observe(&req.layout, client, findings, restarting, &mut out.warnings);
    let refusals = cluster_gate::decide(&seen);
    if !refusals.is_empty() {
        let each: Vec<String> = refusals.iter().map(ToString::to_string).collect();
        return Err(Error::Restart(format!(
            "cluster gate: not restarting anything while {}; nothing was restarted (see `kubectl get --raw \
             /readyz?verbose` and etcd's /health; run again when healthy)",
            each.join("; ")
        )));
    }
    out.cluster = Some(ClusterReport {
        etcd_members: match seen.etcd {
            Some(Ok(members)) => members.into_iter().map(|m| m.name).collect(),
            _ => vec![],
        },
        apiservers: seen.apiservers.into_iter().map(|a| a.address).collect(),
    });
    Ok(())
}

/// Restarts each target in turn; the names restarted.
fn restart_targets(
    req: &RestartRequest,
    scope: &Scope<'_>,
    tool: &Tool,
    targets: &[&Finding],
    now: DateTime<Utc>,
    out: &mut Outcome,
) -> Result<Vec<&'static str>> {
    let mut done: Vec<&'static str> = Vec::new();
    for f in targets {
        let manifest = static_pod::manifest_path(&req.manifests_dir, f.component.name());
        // asked for by name, not running, a static pod here: a new pod now rather than after the crash backoff
        let start_anew = f.process.is_none()
            && req.method == RestartMethod::StaticPod
            && req.components.as_ref().is_some_and(|c| c.contains(&f.component))
            && manifest.is_file();
        let entry = match &f.process {
            None if start_anew && req.check_mode => report(
                f,
                "would_restart",
                req.method,
                None,
                "not running now: its manifest would be rewritten (a new pod, no crash backoff)".into(),
            ),
            None if start_anew => {
                let settled =
                    start_not_running(req, scope, f.component, &manifest, now).map_err(|e| after(&done, e))?;
                note_exits(f.component.name(), &settled, &mut out.warnings);
                let new = settled.process;
                done.push(f.component.name());
                let why = "was not running (between crash restarts?): started anew from its manifest; healthy and \
                           using the certificates on disk";
                report(f, "restarted", req.method, Some(new.pid), why.into())
            }
            None => report(f, "not_running", req.method, None, f.reason.clone()),
            Some(_) if req.check_mode => report(f, "would_restart", req.method, None, f.reason.clone()),
            Some(_) if req.method == RestartMethod::None => {
                report(f, "not_restarted", req.method, None, f.reason.clone())
            }
            Some(p) => {
                let (pid_before, settled) = restart_one(req, scope, tool, p, now).map_err(|e| after(&done, e))?;
                note_exits(f.component.name(), &settled, &mut out.warnings);
                let new = settled.process;
                done.push(f.component.name());
                let why = format!("was stale or asked for: {}; healthy and using the certificates on disk", f.reason);
                RestartReport { pid_before: Some(pid_before), ..report(f, "restarted", req.method, Some(new.pid), why) }
            }
        };
        out.restarts.push(entry);
    }
    Ok(done)
}

/// A failure after some components restarted says which: the node is part way through.
fn after(done: &[&str], e: Error) -> Error {
    match e {
        Error::Restart(m) if !done.is_empty() => {
            Error::Restart(format!("restarted {} first; then {m}", done.join(", ")))
        }
        e => e,
    }
}

fn summary(req: &RestartRequest, out: &Outcome, done: &[&str]) -> String {
    let named =
        |action: &str| -> Vec<&str> { out.restarts.iter().filter(|r| r.action == action).map(|r| r.name).collect() };
    let mut parts = Vec::new();
    if out.restarts.iter().all(|r| r.action == "put_back") {
        parts.push("nothing stale".to_string());
    }
    if !done.is_empty() {
        parts.push(format!(
            "restarted {} ({}): healthy, using the certificates on disk",
            done.join(", "),
            req.method.name()
        ));
    }
    for (action, say) in [
        ("put_back", "put back the manifest an interrupted run held, running and healthy again"),
        ("would_restart", "would restart"),
        ("not_restarted", "method none: not restarted"),
        ("not_running", "not running"),
    ] {
        let n = named(action);
        if !n.is_empty() {
            parts.push(format!("{say}: {}", n.join(", ")));
        }
    }
    if !out.restart.is_empty() {
        parts.push(format!("stale: {}", out.restart.join(", ")));
    }
    if let Some(c) = &out.cluster {
        let etcd = if c.etcd_members.is_empty() { "not gated".to_string() } else { c.etcd_members.join(", ") };
        parts.push(format!("cluster healthy first (etcd: {etcd}; kube-apiserver: {})", c.apiservers.join(", ")));
    }
    if let Some(l) = &out.lease {
        parts.push(format!("held lease {} as {} (waited {}s)", l.name, l.holder, l.waited_seconds));
    }
    parts.join("; ")
}
