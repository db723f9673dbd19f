//! Waiting with a deadline: polls every 200 ms, gives up with what it last saw. Nothing here sleeps a
//! fixed time to decide anything.

use std::time::{Duration, Instant};

use crate::inuse::probe;
use crate::inuse::proc::{self, Process};
use crate::inuse::stale;
use crate::inventory::Component;
use crate::pki::Layout;

const POLL: Duration = Duration::from_millis(200);

/// "12s" for messages.
pub fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// Until `process` has exited; `Err(waited)` when it still runs at the deadline.
pub fn gone(process: &Process, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    while process.alive() {
        if start.elapsed() >= timeout {
            return Err(secs(start.elapsed()));
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// The newest process of `component` on this PKI other than `not` (the one a restart replaces).
fn newest(layout: &Layout, component: Component, not: Option<&Process>) -> Option<Process> {
    proc::find(component).into_iter().rfind(|p| not.is_none_or(|n| !p.same_as(n)) && stale::uses(layout, p))
}

/// Until a process of `old`'s component other than `old` runs on this PKI; returns it.
pub fn running_again(layout: &Layout, old: &Process, timeout: Duration) -> Result<Process, String> {
    until_running(layout, old.component, Some(old), timeout)
        .map_err(|waited| format!("not running again {waited} after the restart"))
}

/// Until a process of `component` runs on this PKI (after a manifest was put back: there is no old one).
pub fn running(layout: &Layout, component: Component, timeout: Duration) -> Result<Process, String> {
    until_running(layout, component, None, timeout).map_err(|waited| format!("it is not running {waited} later"))
}

/// `Err(waited)` at the deadline.
fn until_running(layout: &Layout, c: Component, not: Option<&Process>, timeout: Duration) -> Result<Process, String> {
    let start = Instant::now();
    loop {
        if let Some(p) = newest(layout, c, not) {
            return Ok(p);
        }
        if start.elapsed() >= timeout {
            return Err(secs(start.elapsed()));
        }
        std::thread::sleep(POLL);
    }
}

/// The process that answered healthy, and the pids of those that exited before it did.
pub struct Settled {
    pub process: Process,
    pub exited: Vec<u32>,
}

/// Until the component answers healthy; `Err` with its last answer at the deadline. A process that exits
/// first is followed to its successor: a component the kubelet (or systemd) starts again after a crash while
/// the cluster settles (kube-scheduler and kube-controller-manager exit when the apiserver is briefly
/// unreachable) is healthy once its successor is, within the same deadline.
pub fn healthy(process: &Process, layout: &Layout, timeout: Duration) -> Result<Settled, String> {
    let start = Instant::now();
    let mut current = process.clone();
    let mut exited = Vec::new();
    loop {
        let last = match probe::health_of(&current, &layout.cert_dir) {
            Ok(()) => return Ok(Settled { process: current, exited }),
            Err(e) => e,
        };
        if !current.alive() {
            if !exited.contains(&current.pid) {
                exited.push(current.pid);
            }
            if let Some(p) = newest(layout, current.component, Some(&current)) {
                current = p;
                continue;
            }
        }
        if start.elapsed() >= timeout {
            let gone = match exited.as_slice() {
                [] => String::new(),
                pids => format!(
                    " (pid {} exited before {} healthy)",
                    pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
                    if pids.len() == 1 { "it was" } else { "they were" }
                ),
            };
            return Err(format!("not healthy {} after the restart{gone}: {last}", secs(start.elapsed())));
        }
        std::thread::sleep(POLL);
    }
}
