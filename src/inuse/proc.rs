//! The control-plane processes of this node, read from `/proc` alone (no container tooling): which
//! process is which component, what its command line names, and when it started.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::inventory::Component;

const PROC: &str = "/proc";

/// `/proc` reports start times in clock ticks of USER_HZ, which is 100 on every architecture this
/// binary is built for (x86_64, aarch64); `getconf CLK_TCK` says the same.
const USER_HZ: f64 = 100.0;

/// One running process of a control-plane component.
#[derive(Clone, Debug)]
pub struct Process {
    pub component: Component,
    pub pid: u32,
    pub argv: Vec<String>,
    pub started: DateTime<Utc>,
    /// Clock ticks from boot to the start: exact, so a reused pid is told apart.
    start_ticks: u64,
}

impl Process {
    /// The value of `--name=value` or `--name value` (the last one wins, as with Go's flag package).
    pub fn flag(&self, name: &str) -> Option<&str> {
        flag(&self.argv, name)
    }

    /// Every absolute path the command line names, as flag values (`--kubeconfig=/etc/kubernetes/x.conf`
    /// or `--cert-file /etc/kubernetes/pki/etcd/server.crt`).
    pub fn named_paths(&self) -> Vec<&str> {
        self.argv
            .iter()
            .skip(1)
            .map(|a| a.split_once('=').map_or(a.as_str(), |(_, v)| v))
            .filter(|v| v.starts_with('/'))
            .collect()
    }

    /// Whether `named` (a path on this process's command line, in its mount namespace) is the same file
    /// as `ours` (a path in ours). Through `/proc/PID/root` where we may look, as the process sees it.
    pub fn names_file(&self, named: &str, ours: &Path) -> bool {
        let Ok(want) = fs::metadata(ours) else { return false };
        let theirs = Path::new(PROC).join(self.pid.to_string()).join("root").join(named.trim_start_matches('/'));
        let got = fs::metadata(&theirs).or_else(|_| fs::metadata(named));
        got.is_ok_and(|m| m.dev() == want.dev() && m.ino() == want.ino())
    }

    /// The path on the command line that names `ours`, if any.
    pub fn path_for(&self, ours: &Path) -> Option<PathBuf> {
        self.named_paths().into_iter().find(|n| self.names_file(n, ours)).map(PathBuf::from)
    }

    /// The same process (a pid can be reused; its start cannot).
    pub fn same_as(&self, other: &Process) -> bool {
        self.pid == other.pid && self.start_ticks == other.start_ticks
    }

    /// Whether the process is still there and still the same one (a reused pid starts at another time).
    pub fn alive(&self) -> bool {
        // a zombie (killed, not yet reaped by its parent) has let go of everything: gone
        stat_fields(self.pid).is_some_and(|(state, ticks)| ticks == self.start_ticks && !matches!(state, 'Z' | 'X'))
    }
}

pub fn flag<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    let mut found = None;
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        let Some(rest) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else { continue };
        match rest.split_once('=') {
            Some((n, v)) if n == name => found = Some(v),
            None if rest == name => found = args.next().map(String::as_str),
            _ => {}
        }
    }
    found
}

/// The component a command line runs, by the basename of its program.
fn component_of(argv: &[String]) -> Option<Component> {
    let prog = argv.first()?;
    let base = prog.rsplit('/').next().unwrap_or(prog);
    Component::ALL.into_iter().find(|c| c.name() == base)
}

fn read_argv(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(Path::new(PROC).join(pid.to_string()).join("cmdline")).ok()?;
    let argv: Vec<String> =
        raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    (!argv.is_empty()).then_some(argv)
}

/// Every process running `component`, oldest first.
pub fn find(component: Component) -> Vec<Process> {
    find_all().into_iter().filter(|p| p.component == component).collect()
}

/// Every process of any control-plane component, oldest first: one pass over `/proc`.
pub fn find_all() -> Vec<Process> {
    let Ok(entries) = fs::read_dir(PROC) else { return Vec::new() };
    let mut found: Vec<Process> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let argv = read_argv(pid)?;
            let component = component_of(&argv)?;
            let start_ticks = start_ticks(pid)?;
            Some(Process { component, pid, started: ticks_to_time(start_ticks)?, start_ticks, argv })
        })
        .collect();
    found.sort_by_key(|p| (p.started, p.pid));
    found
}

/// When a process started, to the clock tick: boot time (now less `/proc/uptime`) plus field 22 of
/// `/proc/PID/stat`. Both count from the same boot clock, also inside a container.
pub fn start_time(pid: u32) -> Option<DateTime<Utc>> {
    ticks_to_time(start_ticks(pid)?)
}

fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid).map(|(_, ticks)| ticks)
}

/// State (field 3) and start time in ticks (field 22) of `/proc/PID/stat`.
fn stat_fields(pid: u32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(Path::new(PROC).join(pid.to_string()).join("stat")).ok()?;
    // the command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'
    let mut after = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = after.next()?.chars().next()?;
    Some((state, after.nth(18)?.parse().ok()?))
}

fn ticks_to_time(ticks: u64) -> Option<DateTime<Utc>> {
    let boot = boot_time()?;
    Some(DateTime::<Utc>::from(boot + Duration::from_secs_f64(ticks as f64 / USER_HZ)))
}

fn boot_time() -> Option<SystemTime> {
    let uptime = fs::read_to_string(Path::new(PROC).join("uptime")).ok()?;
    let secs: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    SystemTime::now().checked_sub(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn flags_are_read_in_both_spellings_and_the_last_wins() {
        let a = argv("etcd --cert-file /a.crt --key-file=/a.key --name x --cert-file=/b.crt");
        assert_eq!(flag(&a, "cert-file"), Some("/b.crt"));
        assert_eq!(flag(&a, "key-file"), Some("/a.key"));
        assert_eq!(flag(&a, "name"), Some("x"));
        assert_eq!(flag(&a, "peer-cert-file"), None);
    }

    #[test]
    fn the_program_name_says_which_component() {
        assert_eq!(component_of(&argv("/usr/local/bin/kube-apiserver --x")), Some(Component::KubeApiserver));
        assert_eq!(component_of(&argv("etcd --name a")), Some(Component::Etcd));
        assert_eq!(component_of(&argv("/bin/sh -c kube-apiserver")), None);
    }

    #[test]
    fn this_test_process_started_before_now_and_after_boot() {
        let me = start_time(std::process::id()).expect("our own /proc/self/stat");
        let now = Utc::now();
        assert!(me <= now + chrono::Duration::milliseconds(50), "{me} > {now}");
        assert!(me > now - chrono::Duration::hours(6), "{me} is long before this test run");
    }
}
