//! What the product believes about a process, read from `/proc` alone (no container tooling), in one place:
//!
//! - **is it the component**: the basename of `argv[0]`, and a process running as root (or as the user its
//!   static pod manifest's `securityContext` names, [`Owners`]): any local user can start a program called
//!   `kube-apiserver` that names our files, and the restart engine, which runs as root, must not wait on it;
//! - **which files does it see** ([`Process::sees`]): a path on its command line, looked up as the process sees
//!   it (`/proc/PID/root`), and, for a file bind-mounted into its container on its own (kubeadm mounts
//!   `controller-manager.conf` and `scheduler.conf` so), the mount's source in `/proc/PID/mountinfo`: a rename
//!   over the host's file leaves the container on the old, deleted file, whose inode no longer matches ours;
//! - **which pod is it** ([`Process::pod`]): the pod UID in its cgroup path, as the kubelet names pod cgroups;
//!   a static pod's UID is a hash of its manifest, so a manifest put back changed is a new pod;
//! - **which listener is its own** ([`Process::owns_listener`]): a listening socket in `/proc/PID/net/tcp{,6}`
//!   whose inode is among the process's file descriptors, so that a health answer is the component's and not
//!   that of whoever bound its port while it was down;
//! - when it started, to the clock tick.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Component as PathPart, Path, PathBuf};
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
    /// The user it runs as (real, effective, saved and file-system uid are all this one).
    pub uid: u32,
    /// The pod it runs in, by the UID in its cgroup path; `None` outside a kubelet's pod.
    pub pod: Option<String>,
    /// Clock ticks from boot to the start: exact, so a reused pid is told apart.
    start_ticks: u64,
}

/// How a process sees one of our files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    /// The very file (same device and inode).
    Same,
    /// The file as it was before it was replaced: a single-file bind mount of our path whose source was
    /// renamed over (`/proc/PID/mountinfo` says `//deleted`). The process reads the old contents.
    Replaced,
    /// Another file, or none.
    Other,
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

    /// How `named` (a path on this process's command line, in its mount namespace) relates to `ours` (a path
    /// in ours). First by identity, through `/proc/PID/root` where we may look (else in our own namespace);
    /// then, when that fails, through the process's mount table: a file bind-mounted on `named` whose source
    /// is `ours`, or what `ours` was before a rename replaced it.
    pub fn sees(&self, named: &str, ours: &Path) -> Sight {
        let Ok(want) = fs::metadata(ours) else { return Sight::Other };
        let theirs = proc_path(self.pid, "root").join(named.trim_start_matches('/'));
        let got = fs::metadata(&theirs).or_else(|_| fs::metadata(named));
        if got.is_ok_and(|m| m.dev() == want.dev() && m.ino() == want.ino()) {
            return Sight::Same;
        }
        match (mount_on(self.pid, named), source_of(ours)) {
            (Some(m), Some((dev, path))) if m.dev == dev && m.root == path => {
                if m.deleted {
                    Sight::Replaced
                } else {
                    Sight::Same
                }
            }
            _ => Sight::Other,
        }
    }

    /// The path on the command line that names `ours`, if any, and how the process sees it.
    pub fn path_for(&self, ours: &Path) -> Option<(PathBuf, Sight)> {
        self.named_paths().into_iter().find_map(|n| match self.sees(n, ours) {
            Sight::Other => None,
            sight => Some((PathBuf::from(n), sight)),
        })
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

    /// A process as `find_all` would report it, for tests of decisions made on processes.
    #[cfg(test)]
    pub fn example(component: Component, pid: u32, started: DateTime<Utc>, pod: Option<&str>) -> Process {
        Process {
            component,
            pid,
            argv: vec![component.name().into()],
            started,
            uid: 0,
            pod: pod.map(String::from),
            start_ticks: 0,
        }
    }

    /// Whether this process holds the socket that listens where `addr:port` is dialled: a listening TCP
    /// socket of its network namespace on that port, bound to `addr` or to every address, whose inode is one
    /// of this process's open files. `Err` when its files cannot be read (not root).
    pub fn owns_listener(&self, addr: IpAddr, port: u16) -> Result<bool, String> {
        owns_listener(self.pid, addr, port)
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

/// Who may run each component: root, or the user its static pod manifest runs it as (`runAsUser` of the
/// container's or the pod's `securityContext`; kubeadm's `RootlessControlPlane` writes one), read from a manifest
/// only root can write. Anything else that calls itself a component is some local user's process.
#[derive(Clone, Debug, Default)]
pub struct Owners {
    run_as: Vec<(Component, u32)>,
}

impl Owners {
    /// Root alone, for every component.
    pub fn root() -> Owners {
        Owners::default()
    }

    /// Root, and the users the manifests in `manifests_dir` name.
    pub fn from_manifests(manifests_dir: &Path) -> Owners {
        let run_as = Component::ALL
            .into_iter()
            .filter_map(|c| Some((c, run_as_user(&manifests_dir.join(format!("{}.yaml", c.name()))).ok()??)))
            .collect();
        Owners { run_as }
    }

    pub fn may_run(&self, component: Component, uid: u32) -> bool {
        uid == 0 || self.run_as.iter().any(|(c, u)| *c == component && *u == uid)
    }
}

/// The `runAsUser` a static pod manifest gives its (first) container, the container's own winning over the
/// pod's, as the kubelet applies them. `Ok(None)`: none. A manifest that root does not own, or that others may
/// write, is not believed.
fn run_as_user(manifest: &Path) -> Result<Option<u32>, String> {
    let meta = fs::symlink_metadata(manifest).map_err(|e| e.to_string())?;
    if !meta.is_file() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(format!("{}: not a root-owned file only root may write", manifest.display()));
    }
    let bytes = crate::pki::read_file(manifest, crate::pki::Links::Refuse).map_err(|e| e.to_string())?;
    let doc: serde_norway::Value = serde_norway::from_slice(&bytes).map_err(|e| e.to_string())?;
    let uid = |v: &serde_norway::Value| v.get("securityContext")?.get("runAsUser")?.as_u64();
    let spec = doc.get("spec").ok_or("no spec")?;
    let container = spec.get("containers").and_then(|c| c.get(0));
    Ok(container.and_then(uid).or_else(|| uid(spec)).and_then(|u| u32::try_from(u).ok()))
}

/// The component a command line runs, by the basename of its program.
fn component_of(argv: &[String]) -> Option<Component> {
    let prog = argv.first()?;
    let base = prog.rsplit('/').next().unwrap_or(prog);
    Component::ALL.into_iter().find(|c| c.name() == base)
}

fn proc_path(pid: u32, file: &str) -> PathBuf {
    Path::new(PROC).join(pid.to_string()).join(file)
}

fn read_argv(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(proc_path(pid, "cmdline")).ok()?;
    let argv: Vec<String> =
        raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    (!argv.is_empty()).then_some(argv)
}

/// The uid a process runs as, when its real, effective, saved and file-system uids agree (`Uid:` of
/// `/proc/PID/status`); `None` when they differ (a set-uid program part way), which no component is.
fn uid_of(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(proc_path(pid, "status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let ids: Vec<u32> = line.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
    (ids.len() == 4 && ids.iter().all(|u| *u == ids[0])).then(|| ids[0])
}

/// Every process running `component`, oldest first.
pub fn find(component: Component, owners: &Owners) -> Vec<Process> {
    find_all(owners).into_iter().filter(|p| p.component == component).collect()
}

/// Every process of any control-plane component that runs as a user allowed to run it, oldest first: one pass
/// over `/proc`.
pub fn find_all(owners: &Owners) -> Vec<Process> {
    let Ok(entries) = fs::read_dir(PROC) else { return Vec::new() };
    let mut found: Vec<Process> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let argv = read_argv(pid)?;
            let component = component_of(&argv)?;
            let uid = uid_of(pid).filter(|u| owners.may_run(component, *u))?;
            let start_ticks = start_ticks(pid)?;
            let started = ticks_to_time(start_ticks)?;
            Some(Process { component, pid, argv, started, uid, pod: pod_of(pid), start_ticks })
        })
        .collect();
    found.sort_by_key(|p| (p.started, p.pid));
    found
}

/// The processes whose program (basename of `argv[0]`) is `name` and that run as root, oldest first: the
/// kubelet, which is no control-plane component but is asked for its health the same way.
pub fn find_root_program(name: &str) -> Vec<(u32, DateTime<Utc>)> {
    let Ok(entries) = fs::read_dir(PROC) else { return Vec::new() };
    let mut found: Vec<(u32, DateTime<Utc>)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| read_argv(*pid).is_some_and(|a| a[0].rsplit('/').next() == Some(name)))
        .filter(|pid| uid_of(*pid) == Some(0))
        .filter_map(|pid| Some((pid, start_time(pid)?)))
        .collect();
    found.sort_by_key(|(pid, t)| (*t, *pid));
    found
}

// ---- which pod is it

/// The pod UID in a process's cgroup path, as the kubelet names pod cgroups: `…/kubepods/burstable/pod<UID>/…`
/// (cgroupfs driver) or `…/kubepods-burstable-pod<UID_with_underscores>.slice/…` (systemd driver), under any
/// cgroup root (a node in a container has its own). Static pods have 32-hex UIDs (a hash of the manifest),
/// others dashed UUIDs.
fn pod_of(pid: u32) -> Option<String> {
    pod_in_cgroups(&fs::read_to_string(proc_path(pid, "cgroup")).ok()?)
}

fn pod_in_cgroups(cgroups: &str) -> Option<String> {
    cgroups.lines().filter_map(|l| l.splitn(3, ':').nth(2)).find_map(|path| path.split('/').rev().find_map(pod_in))
}

fn pod_in(part: &str) -> Option<String> {
    let part = part.strip_suffix(".slice").unwrap_or(part);
    let uid = part.rsplit_once("pod")?.1.replace('_', "-");
    let hex = uid.chars().filter(|c| *c != '-').count();
    let ok = uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') && hex == 32 && matches!(uid.len(), 32 | 36);
    ok.then_some(uid)
}

// ---- which files does it see: mount tables

/// One line of a mount table (`/proc/PID/mountinfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    /// major:minor of the mounted file system.
    dev: (u32, u32),
    /// The path inside that file system that is mounted here (a bind mount's source).
    root: String,
    /// Where it is mounted, in that process's namespace.
    point: String,
    /// The source was unlinked or renamed over since it was mounted (the kernel's `//deleted`).
    deleted: bool,
}

/// The kernel escapes space, tab, newline and backslash in mount paths as octal (`\040`).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let (major, minor) = f.get(2)?.split_once(':')?;
            let root = unescape(f.get(3)?);
            let (root, deleted) = match root.strip_suffix("//deleted") {
                Some(r) => (r.to_string(), true),
                None => (root, false),
            };
            Some(Mount { dev: (major.parse().ok()?, minor.parse().ok()?), root, point: unescape(f.get(4)?), deleted })
        })
        .collect()
}

fn mounts(of: &str) -> Vec<Mount> {
    fs::read_to_string(Path::new(PROC).join(of).join("mountinfo")).map(|t| parse_mountinfo(&t)).unwrap_or_default()
}

/// `path` with `.` and `..` resolved lexically and no trailing slash (mount points are kept so).
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            PathPart::ParentDir => {
                out.pop();
            }
            PathPart::Normal(p) => out.push(p),
            _ => {}
        }
    }
    out
}

/// The mount whose mount point is exactly `named` in process `pid`'s namespace: a file or directory mounted
/// there on its own (the topmost, when several are stacked).
fn mount_on(pid: u32, named: &str) -> Option<Mount> {
    let named = normal(Path::new(named));
    mounts(&pid.to_string()).into_iter().rev().find(|m| Path::new(&m.point) == named)
}

/// Where `ours` lives as a mount source names it: the file system (major:minor) and the path inside it, from
/// the mount in our own namespace that holds it (the longest mount point above it; the topmost of a stack).
fn source_of(ours: &Path) -> Option<((u32, u32), String)> {
    let ours = fs::canonicalize(ours).ok()?;
    let table = mounts("self");
    let holder = table
        .iter()
        .enumerate()
        .filter(|(_, m)| ours.starts_with(&m.point))
        .max_by_key(|(i, m)| (Path::new(&m.point).components().count(), *i))?
        .1;
    let rest = ours.strip_prefix(&holder.point).ok()?;
    let inside = normal(&Path::new(&holder.root).join(rest));
    Some((holder.dev, inside.to_string_lossy().into_owned()))
}

// ---- which listener is its own

/// TCP state 0A: LISTEN.
const TCP_LISTEN: &str = "0A";

/// The inodes of the listening sockets on `port` bound to `addr` or to every address, in `pid`'s network
/// namespace (`/proc/PID/net/tcp` and `tcp6`; a `::` socket also takes IPv4, as Go's listeners do).
fn listening_inodes(pid: u32, addr: IpAddr, port: u16) -> Vec<u64> {
    let mut inodes = Vec::new();
    for table in ["net/tcp", "net/tcp6"] {
        let Ok(text) = fs::read_to_string(proc_path(pid, table)) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else { continue };
            let Some((ip, p)) = parse_socket_addr(local) else { continue };
            if *state == TCP_LISTEN && p == port && binds(ip, addr) {
                inodes.extend(inode.parse::<u64>().ok().filter(|i| *i != 0));
            }
        }
    }
    inodes
}

/// Whether a socket bound to `bound` takes connections dialled to `dialled`.
fn binds(bound: IpAddr, dialled: IpAddr) -> bool {
    let mapped = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    bound.is_unspecified() || mapped(bound) == mapped(dialled)
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6), as the kernel prints them: each 32-bit word of the
/// address in the machine's byte order, the port in hex.
fn parse_socket_addr(field: &str) -> Option<(IpAddr, u16)> {
    let (hex, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<[u8; 4]> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok().map(u32::to_ne_bytes))
        .collect::<Option<_>>()?;
    let ip = match words.as_slice() {
        [w] if hex.len() == 8 => IpAddr::V4(Ipv4Addr::from(*w)),
        [a, b, c, d] if hex.len() == 32 => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].into_iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(w);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((ip, port))
}

fn owns_listener(pid: u32, addr: IpAddr, port: u16) -> Result<bool, String> {
    let inodes = listening_inodes(pid, addr, port);
    if inodes.is_empty() {
        return Ok(false);
    }
    let fds = proc_path(pid, "fd");
    let entries = fs::read_dir(&fds).map_err(|e| format!("{}: {e}", fds.display()))?;
    Ok(entries.filter_map(|e| fs::read_link(e.ok()?.path()).ok()).any(|target| {
        let t = target.to_string_lossy();
        t.strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|i| inodes.contains(&i))
    }))
}

/// Whether a root process whose program is `program` (the kubelet) holds the listener at `addr:port`, and its
/// pid: the answer there is that program's.
pub fn listener_of_program(program: &str, addr: IpAddr, port: u16) -> Option<u32> {
    find_root_program(program)
        .into_iter()
        .rev()
        .map(|(pid, _)| pid)
        .find(|pid| owns_listener(*pid, addr, port) == Ok(true))
}

// ---- when it started

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
    let stat = fs::read_to_string(proc_path(pid, "stat")).ok()?;
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
    fn only_root_or_the_manifests_user_may_run_a_component() {
        let owners = Owners { run_as: vec![(Component::KubeScheduler, 2000)] };
        assert!(owners.may_run(Component::KubeApiserver, 0));
        assert!(!owners.may_run(Component::KubeApiserver, 65534));
        assert!(owners.may_run(Component::KubeScheduler, 2000));
        assert!(!owners.may_run(Component::KubeApiserver, 2000), "the scheduler's user is not the apiserver's");
        assert!(!Owners::root().may_run(Component::Etcd, 1000));
    }

    #[test]
    fn the_pod_is_read_from_either_cgroup_driver_under_any_root() {
        // cgroupfs driver, cgroup v1, a kind-like node whose kubelet cgroup root is /kubelet
        let v1 = "12:pids:/kubelet/kubepods/burstable/pod3f4e6a3c0b9a5d1e2f3a4b5c6d7e8f90/7d3c1a9b8e\n\
                  0::/\n";
        assert_eq!(pod_in_cgroups(v1).as_deref(), Some("3f4e6a3c0b9a5d1e2f3a4b5c6d7e8f90"));
        // systemd driver, cgroup v2, an API pod's dashed UID with underscores
        let v2 = "0::/kubepods.slice/kubepods-besteffort.slice/\
                  kubepods-besteffort-pod1b4e28ba_2fa1_11d2_883f_0016d3cca427.slice/cri-containerd-abc.scope\n";
        assert_eq!(pod_in_cgroups(v2).as_deref(), Some("1b4e28ba-2fa1-11d2-883f-0016d3cca427"));
        // guaranteed QoS: no class level
        assert_eq!(
            pod_in_cgroups("3:cpu:/kubepods/pod0123456789abcdef0123456789abcdef/x\n").as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        // no pod: a systemd unit, a shell, a container outside the kubelet
        assert_eq!(pod_in_cgroups("0::/system.slice/kubelet.service\n"), None);
        assert_eq!(pod_in_cgroups("4:memory:/process_api/11a7122de215f01970da11d8f3629211\n0::/\n"), None);
        assert_eq!(pod_in_cgroups("1:pids:/kubepods/burstable/podnothex/x\n"), None);
    }

    #[test]
    fn mount_tables_are_read_with_escapes_and_deleted_sources() {
        let table = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                     1405 1380 0:52 /etc/kubernetes/controller-manager.conf//deleted /etc/kubernetes/controller-manager.conf ro,relatime - overlay overlay rw\n\
                     1406 1380 253:1 /srv/a\\040b /mnt/x\\134y rw - ext4 /dev/vda rw\n";
        let m = parse_mountinfo(table);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[1],
            Mount {
                dev: (0, 52),
                root: "/etc/kubernetes/controller-manager.conf".into(),
                point: "/etc/kubernetes/controller-manager.conf".into(),
                deleted: true
            }
        );
        assert_eq!((m[2].root.as_str(), m[2].point.as_str(), m[2].deleted), ("/srv/a b", "/mnt/x\\y", false));
        assert_eq!(normal(Path::new("/etc/kubernetes/../kubernetes/./x.conf/")), Path::new("/etc/kubernetes/x.conf"));
    }

    #[test]
    fn socket_addresses_are_read_as_the_kernel_prints_them() {
        // little-endian words on x86_64 and aarch64
        #[cfg(target_endian = "little")]
        {
            assert_eq!(parse_socket_addr("0100007F:1F90"), Some(("127.0.0.1".parse().unwrap(), 8080)));
            assert_eq!(parse_socket_addr("00000000:2801"), Some(("0.0.0.0".parse().unwrap(), 10241)));
            assert_eq!(parse_socket_addr("00000000000000000000000000000000:18EB"), Some(("::".parse().unwrap(), 6379)));
            assert_eq!(
                parse_socket_addr("0000000000000000FFFF00000100007F:0050"),
                Some(("::ffff:127.0.0.1".parse().unwrap(), 80))
            );
            assert_eq!(parse_socket_addr("00000000000000000000000001000000:0016"), Some(("::1".parse().unwrap(), 22)));
        }
        assert_eq!(parse_socket_addr("xyz:1"), None);
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(binds(v4("0.0.0.0"), v4("10.0.0.5")));
        assert!(binds(v4("::"), v4("10.0.0.5")), "Go's wildcard listener is a dual-stack :: socket");
        assert!(binds(v4("::ffff:10.0.0.5"), v4("10.0.0.5")));
        assert!(!binds(v4("127.0.0.1"), v4("10.0.0.5")));
    }

    #[test]
    fn a_listener_of_this_process_is_its_own_and_one_of_another_is_not() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(owns_listener(me, lo, port), Ok(true));
        assert_eq!(owns_listener(me, lo, port.wrapping_add(1).max(1)), Ok(false), "nothing of ours listens there");
        // pid 1 shares the network namespace in this sandbox or not; either way it does not hold our socket
        assert_ne!(owns_listener(1, lo, port), Ok(true));
        drop(l);
        assert_eq!(owns_listener(me, lo, port), Ok(false), "closed");
    }

    #[test]
    fn this_test_process_started_before_now_and_after_boot() {
        let me = start_time(std::process::id()).expect("our own /proc/self/stat");
        let now = Utc::now();
        assert!(me <= now + chrono::Duration::milliseconds(50), "{me} > {now}");
        assert!(me > now - chrono::Duration::hours(6), "{me} is long before this test run");
    }
}
