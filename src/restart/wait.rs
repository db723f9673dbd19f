//! Waiting with a deadline: polls every 200 ms, gives up with what it last saw. Nothing here sleeps a
//! fixed time to decide anything.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::inuse::Scope;
use crate::inuse::probe;
use crate::inuse::proc::Process;
use crate::inuse::stale;
use crate::inventory::Component;

const POLL: Duration = Duration::from_millis(200);

/// What a start time read from `/proc` may be off by: clock ticks are 10 ms, and the boot time it counts from is
/// read from `/proc/uptime` in hundredths.
const CLOCK_SLACK: chrono::Duration = chrono::Duration::milliseconds(100);

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

/// Until no process of `component` runs on this PKI: the kubelet stops a pod whose manifest is held, and a crash
/// restart of the old pod's container while it does (kube-controller-manager and kube-scheduler exit when the
/// apiserver goes away) is part of that pod, not the restart. `Err` naming what still runs at the deadline.
pub fn all_gone(scope: &Scope<'_>, component: Component, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let left = stale::running(scope, component);
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            let pids: Vec<String> = left.iter().map(|p| p.pid.to_string()).collect();
            return Err(format!("pid {} still runs {}", pids.join(", "), secs(start.elapsed())));
        }
        std::thread::sleep(POLL);
    }
}

/// What a new process of a restarted component must be. Not the process it replaces: one that started after
/// the restart's last step (a manifest written back, a method run), and, where the replaced one ran in a static
/// pod, one of another pod (a manifest put back changed is a new pod, with a new UID in its cgroup). A crash
/// restart of the old pod's container while the manifest came back is not the restart.
#[derive(Clone, Debug)]
pub struct Expect {
    pub component: Component,
    pub since: DateTime<Utc>,
    /// Pods the new process must not run in: the replaced processes' own.
    pub not_in: Vec<String>,
    /// It must run in a pod (the kubelet starts it from a manifest).
    pub in_pod: bool,
}

impl Expect {
    /// A process of `component` started after `since`, anywhere.
    pub fn started_after(component: Component, since: DateTime<Utc>) -> Expect {
        Expect { component, since, not_in: Vec::new(), in_pod: false }
    }

    /// A process of a new static pod: started after `since` in a pod none of `replaced` ran in.
    pub fn new_pod(component: Component, since: DateTime<Utc>, replaced: &[Process]) -> Expect {
        let not_in: Vec<String> = replaced.iter().filter_map(|p| p.pod.clone()).collect();
        Expect { component, since, in_pod: !not_in.is_empty(), not_in }
    }

    pub fn admits(&self, p: &Process) -> bool {
        let in_new_pod = match &p.pod {
            Some(pod) => !self.not_in.contains(pod),
            None => !self.in_pod,
        };
        p.component == self.component && p.started >= self.since - CLOCK_SLACK && in_new_pod
    }
}

/// The newest process on this PKI that `expect` admits.
fn newest(scope: &Scope<'_>, expect: &Expect) -> Option<Process> {
    stale::running(scope, expect.component).into_iter().rfind(|p| expect.admits(p))
}

/// Until a process that `expect` admits runs on this PKI; returns it. `Err(waited)` at the deadline.
pub fn running(scope: &Scope<'_>, expect: &Expect, timeout: Duration) -> Result<Process, String> {
    let start = Instant::now();
    loop {
        if let Some(p) = newest(scope, expect) {
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
/// first is followed to its successor in the same new pod (or, outside pods, to one `expect` admits): a
/// component the kubelet (or systemd) starts again after a crash while the cluster settles (kube-scheduler and
/// kube-controller-manager exit when the apiserver is briefly unreachable) is healthy once its successor is,
/// within the same deadline.
pub fn healthy(process: &Process, scope: &Scope<'_>, expect: &Expect, timeout: Duration) -> Result<Settled, String> {
    let start = Instant::now();
    let mut current = process.clone();
    let mut exited = Vec::new();
    let successor = |p: &Process| expect.admits(p) && (process.pod.is_none() || p.pod == process.pod);
    loop {
        let last = match probe::health_of(&current, &scope.layout.cert_dir) {
            Ok(()) => return Ok(Settled { process: current, exited }),
            Err(e) => e,
        };
        if !current.alive() {
            if !exited.contains(&current.pid) {
                exited.push(current.pid);
            }
            let next =
                stale::running(scope, current.component).into_iter().rfind(|p| !p.same_as(&current) && successor(p));
            if let Some(p) = next {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_is_confirmed_only_on_a_new_pods_process_started_after_the_manifest_went_back() {
        let c = Component::KubeControllerManager;
        let back = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z").unwrap().with_timezone(&Utc);
        let at = |ms: i64| back + chrono::Duration::milliseconds(ms);
        let old = Process::example(c, 10, at(-60_000), Some("aaaa0000aaaa0000aaaa0000aaaa0000"));
        // the old pod's container crash-restarted while the manifest was held (same pod, a later start)
        let crash_restart = Process::example(c, 11, at(-2_000), Some("aaaa0000aaaa0000aaaa0000aaaa0000"));
        let expect = Expect::new_pod(c, back, &[old.clone(), crash_restart.clone()]);
        assert!(!expect.admits(&old));
        assert!(!expect.admits(&crash_restart));
        // even one of the old pod that the kubelet started after the manifest went back is not the restart
        assert!(!expect.admits(&Process::example(c, 12, at(500), Some("aaaa0000aaaa0000aaaa0000aaaa0000"))));
        // the new pod's process
        assert!(expect.admits(&Process::example(c, 13, at(800), Some("bbbb0000bbbb0000bbbb0000bbbb0000"))));
        // within the clock's slack of the write, not before
        assert!(expect.admits(&Process::example(c, 14, at(-50), Some("bbbb0000bbbb0000bbbb0000bbbb0000"))));
        assert!(!expect.admits(&Process::example(c, 15, at(-1_000), Some("bbbb0000bbbb0000bbbb0000bbbb0000"))));
        // a static pod's successor runs in a pod; a process outside any pod is not it
        assert!(!expect.admits(&Process::example(c, 16, at(800), None)));
        // another component is not it
        assert!(!expect.admits(&Process::example(
            Component::KubeScheduler,
            17,
            at(800),
            Some("cccc0000cccc0000cccc0000cccc0000")
        )));

        // a restart by systemd or a command: a process started after the method ran, whatever its pod
        let by_method = Expect::started_after(c, back);
        assert!(by_method.admits(&Process::example(c, 18, at(300), None)));
        assert!(!by_method.admits(&old));
    }
}
