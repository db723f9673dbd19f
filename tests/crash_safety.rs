//! Crash safety: `kubeadm-certs renew` killed with SIGKILL at every write step (the test-only fault points
//! of `commit`, binary built with `--features fault-injection`), also inside the rollback of a failed rename
//! (`KUBEADM_CERTS_FAIL_AT=rename-N` makes one fail), and after random delays. After each kill the
//! harness records, per certificate/key pair and kubeconfig, whether it is entirely the old one, entirely a
//! new one or mixed (one half old, the other new), and what a Kubernetes component would see: a Go program
//! (tests/crash/consumer.go) loads every pair with crypto/tls and every kubeconfig with client-go's loader
//! (kubectl) and verifies each chain. Then a rerun must complete the renewal, leave no temp file, journal or
//! stray backup behind, and a further run must find nothing to do.
//!
//! What must hold after every kill (asserted): each entry that is old or new is usable (cert matches key,
//! chains to its CA, kubeconfig parses); an entry is mixed only while the commit journal is pending, i.e.
//! in the window between the renames of a key and its certificate, which the next run rolls forward.
//! Mixed states are counted and reported, not hidden (POSIX cannot rename two files at once; see
//! docs/safety.md).
//!
//! Default `cargo test`: every fault point once plus a few random kills (`CRASH_ONLY=rolled-back` runs only
//! the fault points whose name holds it). `CRASH_RUNS=N` sets the number of
//! random-delay kills (scripts/crash-safety.sh runs the full campaign); `CRASH_SEED` makes it repeatable.
//! The summary goes to stderr (`-- --nocapture`) and to `target/crash-safety/summary-*.md`.

mod common;
use common::*;
#[path = "crash/support.rs"]
mod support;
use support::{consumer_bin, fault_bin};

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Entries of the std PKI and their files (relative to etc/kubernetes).
enum Files {
    Pair { cert: &'static str, key: &'static str },
    Kubeconfig(&'static str),
}

const ENTRIES: &[(&str, Files)] = &[
    ("admin.conf", Files::Kubeconfig("admin.conf")),
    ("apiserver", Files::Pair { cert: "pki/apiserver.crt", key: "pki/apiserver.key" }),
    (
        "apiserver-etcd-client",
        Files::Pair { cert: "pki/apiserver-etcd-client.crt", key: "pki/apiserver-etcd-client.key" },
    ),
    (
        "apiserver-kubelet-client",
        Files::Pair { cert: "pki/apiserver-kubelet-client.crt", key: "pki/apiserver-kubelet-client.key" },
    ),
    ("controller-manager.conf", Files::Kubeconfig("controller-manager.conf")),
    (
        "etcd-healthcheck-client",
        Files::Pair { cert: "pki/etcd/healthcheck-client.crt", key: "pki/etcd/healthcheck-client.key" },
    ),
    ("etcd-peer", Files::Pair { cert: "pki/etcd/peer.crt", key: "pki/etcd/peer.key" }),
    ("etcd-server", Files::Pair { cert: "pki/etcd/server.crt", key: "pki/etcd/server.key" }),
    ("front-proxy-client", Files::Pair { cert: "pki/front-proxy-client.crt", key: "pki/front-proxy-client.key" }),
    ("scheduler.conf", Files::Kubeconfig("scheduler.conf")),
];

/// The renewal every run performs: everything is due (kubeadm's certificates have < 400 days left) and
/// a completed renewal is not due again (800 days), so "the rerun completes it" is observable.
const RENEW: &[&str] = &["renew", "all", "--renew-before", "400d", "--validity", "800d", "-o", "json"];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum State {
    Old,
    New,
    Mixed,
}

/// The two halves of an entry as bytes: (certificate, key).
fn halves(kube: &Path, files: &Files) -> (Vec<u8>, Vec<u8>) {
    match files {
        Files::Pair { cert, key } => (std::fs::read(kube.join(cert)).unwrap(), std::fs::read(kube.join(key)).unwrap()),
        Files::Kubeconfig(f) => {
            let bytes = std::fs::read(kube.join(f)).unwrap();
            // a kubeconfig that does not parse is neither old nor new: the consumer reports it broken
            let Ok(doc) = serde_norway::from_slice::<serde_norway::Value>(&bytes) else {
                return (bytes.clone(), bytes);
            };
            let user = &doc["users"][0]["user"];
            let field = |k: &str| user[k].as_str().unwrap_or_default().as_bytes().to_vec();
            (field("client-certificate-data"), field("client-key-data"))
        }
    }
}

fn classify(old: &(Vec<u8>, Vec<u8>), now: &(Vec<u8>, Vec<u8>)) -> State {
    match (old.0 == now.0, old.1 == now.1) {
        (true, true) => State::Old,
        (false, false) => State::New,
        _ => State::Mixed,
    }
}

/// What the Go consumer says about each entry: name → error (None when usable).
fn consume(kube: &Path) -> BTreeMap<String, Option<String>> {
    let out = Command::new(consumer_bin()).arg(kube).output().unwrap();
    assert!(out.status.success(), "consumer: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let ok = r["ok"].as_bool().unwrap();
            (r["name"].as_str().unwrap().to_string(), (!ok).then(|| r["error"].as_str().unwrap_or("?").to_string()))
        })
        .collect()
}

/// Files a run of the tool leaves beside the PKI: temp files, rollback links, the journal, backups, and the
/// lock file (a killed run leaves it; the next run takes it over and removes it).
#[derive(Default, Debug)]
struct Leftovers {
    journal: bool,
    lock: bool,
    temps: Vec<String>,
    backups: Vec<String>,
}

fn leftovers(kube: &Path) -> Leftovers {
    let mut l = Leftovers::default();
    for dir in [kube.to_path_buf(), kube.join("pki"), kube.join("pki/etcd")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name == ".kubeadm-certs.journal" {
                l.journal = true;
            } else if name == ".kubeadm-certs.lock" {
                l.lock = true;
            } else if name.contains("kubeadm-certs") {
                l.temps.push(name);
            } else if name.ends_with('~') {
                l.backups.push(name);
            }
        }
    }
    l
}

/// One entry after one kill.
struct Seen {
    state: State,
    error: Option<String>,
}

/// Everything observed about one killed run.
struct Observation {
    entries: BTreeMap<&'static str, Seen>,
    leftovers: Leftovers,
}

fn observe(kube: &Path, old: &BTreeMap<&'static str, (Vec<u8>, Vec<u8>)>) -> Observation {
    let consumer = consume(kube);
    let mut entries = BTreeMap::new();
    for (name, files) in ENTRIES {
        let state = classify(&old[name], &halves(kube, files));
        let error = consumer.get(*name).cloned().unwrap_or_else(|| Some("not checked by the consumer".into()));
        entries.insert(*name, Seen { state, error });
    }
    Observation { entries, leftovers: leftovers(kube) }
}

/// Where the kill landed, judged from what is on disk.
fn phase(o: &Observation) -> &'static str {
    let all = |s: State| o.entries.values().all(|e| e.state == s);
    if o.leftovers.journal {
        "renaming (journal pending)"
    } else if all(State::Old) && o.leftovers.temps.is_empty() && o.leftovers.backups.is_empty() {
        "before any write"
    } else if all(State::Old) {
        "staging (temp files, no journal)"
    } else if all(State::New) {
        "after the renames (journal removed)"
    } else {
        "IMPOSSIBLE: some entries new without a journal"
    }
}

#[derive(Default)]
struct Tally {
    runs: usize,
    finished_before_kill: usize,
    phases: BTreeMap<&'static str, usize>,
    /// (entry kind, state, usable) → count
    states: BTreeMap<(&'static str, State, bool), usize>,
    runs_with_mixed: usize,
    mixed_entries: BTreeMap<&'static str, usize>,
    leftover_temps_after_kill: usize,
    stray_backups_after_kill: usize,
    reruns_completing_journal: usize,
    reruns_killed: usize,
    violations: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.runs += other.runs;
        self.finished_before_kill += other.finished_before_kill;
        for (k, v) in other.phases {
            *self.phases.entry(k).or_default() += v;
        }
        for (k, v) in other.states {
            *self.states.entry(k).or_default() += v;
        }
        self.runs_with_mixed += other.runs_with_mixed;
        for (k, v) in other.mixed_entries {
            *self.mixed_entries.entry(k).or_default() += v;
        }
        self.leftover_temps_after_kill += other.leftover_temps_after_kill;
        self.stray_backups_after_kill += other.stray_backups_after_kill;
        self.reruns_completing_journal += other.reruns_completing_journal;
        self.reruns_killed += other.reruns_killed;
        self.violations.extend(other.violations);
    }

    fn record(&mut self, label: &str, o: &Observation) {
        self.runs += 1;
        *self.phases.entry(phase(o)).or_default() += 1;
        let mut mixed = false;
        for (name, files) in ENTRIES {
            let seen = &o.entries[name];
            let kind = match files {
                Files::Pair { .. } => "pair",
                Files::Kubeconfig(_) => "kubeconfig",
            };
            *self.states.entry((kind, seen.state, seen.error.is_none())).or_default() += 1;
            match (seen.state, &seen.error) {
                (State::Mixed, _) => {
                    mixed = true;
                    *self.mixed_entries.entry(name).or_default() += 1;
                    if !o.leftovers.journal {
                        self.violations.push(format!("{label}: {name} is mixed and no journal will complete it"));
                    }
                }
                (s, Some(e)) => self.violations.push(format!("{label}: {name} is {s:?} but unusable: {e}")),
                _ => {}
            }
        }
        if phase(o).starts_with("IMPOSSIBLE") {
            self.violations.push(format!("{label}: {}", phase(o)));
        }
        self.runs_with_mixed += mixed as usize;
        self.leftover_temps_after_kill += !o.leftovers.temps.is_empty() as usize;
        let all_old = o.entries.values().all(|e| e.state == State::Old);
        if all_old && !o.leftovers.journal && !o.leftovers.backups.is_empty() {
            self.stray_backups_after_kill += 1;
            self.violations
                .push(format!("{label}: backups of a renewal that did not happen: {:?}", o.leftovers.backups));
        }
    }

    fn summary(&self, title: &str) -> String {
        let mut s = format!(
            "## {title}\n\nkills: {} (runs that finished before the kill, not counted: {})\n\n",
            self.runs, self.finished_before_kill
        );
        s.push_str("where the kill landed | runs\n---|---\n");
        for (p, n) in &self.phases {
            s.push_str(&format!("{p} | {n}\n"));
        }
        s.push_str("\nentry | state after the kill | usable by a component | count\n---|---|---|---\n");
        for ((kind, state, ok), n) in &self.states {
            s.push_str(&format!("{kind} | {state:?} | {} | {n}\n", if *ok { "yes" } else { "no" }));
        }
        s.push_str(&format!(
            "\nruns leaving a mixed pair until the next run: {} ({:?})\nruns leaving temp files until the next run: {}\n\
             runs leaving backups of a renewal that did not happen: {}\nreruns that renamed files a pending journal listed: {}\n\
             reruns themselves killed (then completed by a third run): {}\nviolations: {}\n",
            self.runs_with_mixed,
            self.mixed_entries,
            self.leftover_temps_after_kill,
            self.stray_backups_after_kill,
            self.reruns_completing_journal,
            self.reruns_killed,
            self.violations.len()
        ));
        for v in &self.violations {
            s.push_str(&format!("- {v}\n"));
        }
        s
    }

    fn report(&self, title: &str, file: &str) {
        let text = self.summary(title);
        eprintln!("{text}");
        let dir = repo().join("target/crash-safety");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), &text).unwrap();
        assert!(self.violations.is_empty(), "{text}");
    }
}

fn snapshot_halves(kube: &Path) -> BTreeMap<&'static str, (Vec<u8>, Vec<u8>)> {
    ENTRIES.iter().map(|(n, f)| (*n, halves(kube, f))).collect()
}

/// Modes and owners of every entry file.
fn modes(kube: &Path) -> BTreeMap<String, (u32, u32, u32)> {
    let mut m = BTreeMap::new();
    for (_, files) in ENTRIES {
        let paths: Vec<&str> = match files {
            Files::Pair { cert, key } => vec![cert, key],
            Files::Kubeconfig(f) => vec![f],
        };
        for p in paths {
            let md = std::fs::metadata(kube.join(p)).unwrap();
            m.insert(p.to_string(), (md.permissions().mode() & 0o7777, md.uid(), md.gid()));
        }
    }
    m
}

struct Case {
    key_algorithm: Option<&'static str>,
    backup: bool,
}

impl Case {
    fn args(&self, pki: &Pki) -> Vec<String> {
        let mut a: Vec<String> = RENEW.iter().map(|s| s.to_string()).collect();
        if let Some(alg) = self.key_algorithm {
            a.extend(["--key-algorithm".into(), alg.into()]);
        }
        if self.backup {
            a.push("--backup".into());
        }
        a.extend(pki.dirs());
        a
    }
}

/// Runs the plain binary to completion; returns its JSON outcome.
fn complete(pki: &Pki, case: &Case) -> serde_json::Value {
    let out = bin().args(case.args(pki)).output().unwrap();
    assert!(
        out.status.success(),
        "rerun failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// After a kill: observe, rerun (which must complete the renewal), check the result, check a further
/// run has nothing to do.
fn after_kill(
    tally: &mut Tally,
    label: &str,
    pki: &Pki,
    old: &BTreeMap<&'static str, (Vec<u8>, Vec<u8>)>,
    case: &Case,
    rng: Option<&mut Rng>,
) {
    let kube = pki.kube();
    let o = observe(&kube, old);
    tally.record(label, &o);
    let journal = o.leftovers.journal;

    // sometimes kill the rerun too (a crash during recovery), then let a third run finish
    if let Some(rng) = rng
        && rng.below(4) == 0
    {
        let mut c =
            Command::new(bin_path()).args(case.args(pki)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(150_000)));
        if c.try_wait().unwrap().is_none() {
            c.kill().unwrap();
            c.wait().unwrap();
            tally.reruns_killed += 1;
            let o2 = observe(&kube, old);
            tally.record(&format!("{label} (rerun killed)"), &o2);
        } else {
            c.wait().unwrap();
        }
    }

    let out = complete(pki, case);
    if journal {
        let warned = out["warnings"].as_array().is_some_and(|w| {
            w.iter().any(|w| {
                let w = w.as_str().unwrap_or_default();
                w.contains("completed an interrupted renewal")
                    || w.contains("finished rolling back an interrupted renewal")
            })
        });
        if warned {
            tally.reruns_completing_journal += 1;
        }
    }
    let after = observe(&kube, old);
    for (name, seen) in &after.entries {
        if seen.state != State::New || seen.error.is_some() {
            tally.violations.push(format!("{label}: after the rerun {name} is {:?} ({:?})", seen.state, seen.error));
        }
    }
    if after.leftovers.journal || after.leftovers.lock || !after.leftovers.temps.is_empty() {
        tally.violations.push(format!("{label}: after the rerun: {:?}", after.leftovers));
    }
    for (path, (mode, uid, gid)) in modes(&kube) {
        let want = if path.ends_with(".crt") { 0o644 } else { 0o600 };
        if mode != want || uid != 0 || gid != 0 {
            tally.violations.push(format!("{label}: {path} is {mode:o} {uid}:{gid}"));
        }
    }
    // nothing left to do
    let before = pki.snapshot();
    let again = complete(pki, case);
    if again["changed"] != serde_json::Value::Bool(false) || before != pki.snapshot() {
        tally.violations.push(format!("{label}: a further run changed something: {}", again["msg"]));
    }
}

/// xorshift64*: repeatable random delays without a dependency.
struct Rng(u64);
impl Rng {
    fn new() -> (Rng, u64) {
        let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        (Rng(seed), seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One deterministic kill: the fault point to die at, after making the rename `fail` fail (when set).
#[derive(Clone)]
struct Point {
    kill: String,
    fail: Option<usize>,
}

impl Point {
    fn label(&self) -> String {
        match self.fail {
            Some(f) => format!("{} (rename-{f} failed)", self.kill),
            None => self.kill.clone(),
        }
    }
}

/// The fault points of `commit` for a renewal of `n` files, in order: each staged temp, the journal, each
/// rename (the backups, when made, are renamed after the targets); then the rollback after a failed rename:
/// the last target's rename fails, and the run is killed after each file it puts back.
fn fault_points(n: usize, backup: bool) -> Vec<Point> {
    let plain = |kill: String| Point { kill, fail: None };
    let mut v: Vec<Point> = (0..n).map(|i| plain(format!("staged-{i}"))).collect();
    v.push(plain("journal".into()));
    v.extend((0..n * (1 + backup as usize)).map(|i| plain(format!("renamed-{i}"))));
    let failed = n - 1;
    v.push(Point { kill: "rollback-journal".into(), fail: Some(failed) });
    v.extend((0..failed).rev().map(|j| Point { kill: format!("rolled-back-{j}"), fail: Some(failed) }));
    v
}

#[test]
fn a_failed_rename_puts_back_every_file_and_leaves_nothing() {
    // the first rename, one between a key and its certificate, the last target, the first backup
    let n = files_written();
    let case = Case { key_algorithm: Some("ecdsa-p256"), backup: true };
    for failed in [0, 2, n - 1, n] {
        let pki = std_pki();
        let before = pki.snapshot();
        let out = Command::new(fault_bin())
            .args(case.args(&pki))
            .env("KUBEADM_CERTS_FAIL_AT", format!("rename-{failed}"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "rename-{failed}: {err}");
        assert!(err.contains(&format!("injected failure at rename-{failed}")), "rename-{failed}: {err}");
        assert_unchanged(&before, &pki.snapshot(), &format!("rename-{failed} failed"));
        let left = leftovers(&pki.kube());
        assert!(!left.journal && left.temps.is_empty() && left.backups.is_empty(), "rename-{failed}: {left:?}");
    }
}

/// Number of files a renewal of the std PKI writes: a key and a certificate per pair, one file per kubeconfig.
fn files_written() -> usize {
    ENTRIES.iter().map(|(_, f)| if matches!(f, Files::Pair { .. }) { 2 } else { 1 }).sum()
}

#[test]
fn every_fault_point() {
    let bin = fault_bin();
    let mut tally = Tally::default();
    // with and without backups: the backups are part of the transaction too
    let full = std::env::var("CRASH_RUNS").is_ok();
    let cases: Vec<Case> = if full {
        vec![
            Case { key_algorithm: Some("ecdsa-p256"), backup: false },
            Case { key_algorithm: Some("ecdsa-p256"), backup: true },
            Case { key_algorithm: None, backup: false },
        ]
    } else {
        vec![Case { key_algorithm: Some("ecdsa-p256"), backup: true }]
    };
    let jobs: Vec<(&Case, Point)> =
        cases.iter().flat_map(|c| fault_points(files_written(), c.backup).into_iter().map(move |p| (c, p))).collect();
    // CRASH_ONLY=rolled-back: only the points whose name holds it (while working on one step)
    let only = std::env::var("CRASH_ONLY").ok();
    let jobs: Vec<(&Case, Point)> =
        jobs.into_iter().filter(|(_, p)| only.as_deref().is_none_or(|o| p.kill.contains(o))).collect();
    let points_run = jobs.len();
    // one worker per core: each kill, rerun and consumer check is a few short processes
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(4);
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut tally = Tally::default();
                    while let Some((case, point)) = jobs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                        let pki = std_pki();
                        let old = snapshot_halves(&pki.kube());
                        let mut cmd = Command::new(&bin);
                        cmd.args(case.args(&pki)).env("KUBEADM_CERTS_KILL_AT", &point.kill);
                        if let Some(f) = point.fail {
                            cmd.env("KUBEADM_CERTS_FAIL_AT", format!("rename-{f}"));
                        }
                        let out = cmd.output().unwrap();
                        let label = format!("{} (key {:?}, backup {})", point.label(), case.key_algorithm, case.backup);
                        assert_eq!(out.status.code(), None, "{label}: not killed at the fault point: {:?}", out.status);
                        after_kill(&mut tally, &label, &pki, &old, case, None);
                    }
                    tally
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for t in tallies {
        tally.merge(t);
    }
    // the fault points span the whole write path: the first kill leaves everything old, the last all new
    if only.is_none() {
        assert!(
            tally.phases.contains_key("before any write")
                || tally.phases.contains_key("staging (temp files, no journal)")
        );
        assert!(tally.phases.contains_key("renaming (journal pending)"));
    }
    tally.report(
        &format!("Deterministic fault points ({points_run} points over {} cases)", cases.len()),
        "summary-fault-points.md",
    );
}

/// Polls until the run creates its first temp file beside a target (the start of the write path) or exits.
/// Returns whether writing started.
fn wait_for_writes(child: &mut Child, kube: &Path) -> bool {
    let dirs = [kube.to_path_buf(), kube.join("pki"), kube.join("pki/etcd")];
    loop {
        for d in &dirs {
            if std::fs::read_dir(d)
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with("kubeadm-certs-tmp"))
            {
                return true;
            }
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Durations of an uninterrupted run: (whole run, write path from the first temp file to exit).
fn calibrate(alg: Option<&'static str>) -> (Duration, Duration) {
    let mut whole = Vec::new();
    let mut writes = Vec::new();
    for _ in 0..3 {
        let pki = std_pki();
        let case = Case { key_algorithm: alg, backup: true };
        let start = Instant::now();
        let mut child = Command::new(bin_path()).args(case.args(&pki)).stdout(Stdio::null()).spawn().unwrap();
        assert!(wait_for_writes(&mut child, &pki.kube()), "the calibration run wrote nothing");
        let writing = Instant::now();
        assert!(child.wait().unwrap().success());
        whole.push(start.elapsed());
        writes.push(writing.elapsed());
    }
    whole.sort();
    writes.sort();
    (whole[1], writes[1])
}

#[test]
fn random_kills() {
    let runs: usize = std::env::var("CRASH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    let (mut rng, seed) = Rng::new();
    eprintln!("random_kills: {runs} kills, CRASH_SEED={seed}");
    let bin = bin_path();
    // keys dominate a run (RSA ~10× ECDSA), so most kills after a delay drawn over the whole run land
    // before the first write; two kills in three are drawn over the write path instead, timed from the
    // moment the run's first temp file appears
    let mut durations = BTreeMap::new();
    for alg in [Some("ecdsa-p256"), None] {
        durations.insert(alg, calibrate(alg));
    }
    let mut tally = Tally::default();
    let mut delay_modes: BTreeMap<&str, usize> = BTreeMap::new();
    while tally.runs - tally.reruns_killed < runs {
        // one run in five keeps the PKI's RSA keys, the others switch to ECDSA keys (faster; the write path
        // is the same)
        let alg = if rng.below(5) == 0 { None } else { Some("ecdsa-p256") };
        let case = Case { key_algorithm: alg, backup: rng.below(2) == 0 };
        let pki = std_pki();
        let old = snapshot_halves(&pki.kube());
        let (whole, writes) = durations[&alg];
        let in_writes = rng.below(3) != 0;
        let mut child =
            Command::new(&bin).args(case.args(&pki)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let budget = if in_writes { writes } else { whole }.as_micros() as u64;
        let delay = Duration::from_micros(rng.below(budget + budget / 5));
        if in_writes && !wait_for_writes(&mut child, &pki.kube()) {
            tally.finished_before_kill += 1;
            continue;
        }
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            tally.finished_before_kill += 1;
            continue;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let mode = if in_writes { "after the first temp file" } else { "after the start" };
        *delay_modes.entry(mode).or_default() += 1;
        let label = format!("random kill {delay:?} {mode} (key {alg:?}, backup {})", case.backup);
        after_kill(&mut tally, &label, &pki, &old, &case, Some(&mut rng));
    }
    let calibration: Vec<String> = durations
        .iter()
        .map(|(alg, (w, p))| format!("key {}: run {w:.2?}, write path {p:.2?}", alg.unwrap_or("keep (RSA-2048)")))
        .collect();
    tally.report(
        &format!(
            "Random-delay SIGKILLs (CRASH_SEED={seed})\n\nuninterrupted runs (median of 3): {}\n\ndelays drawn: {delay_modes:?}",
            calibration.join("; ")
        ),
        "summary-random.md",
    );
}
