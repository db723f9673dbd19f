//! Concurrent runs on one PKI (two Ansible runs, a timer and a human): they take turns on the lock (`flock`
//! on `CERT_DIR/.kubeadm-certs.lock`, a 0600 file of the user running the tool), a run that cannot get it within `--lock-timeout` / `lock_timeout` fails clearly and
//! changes nothing, and however the runs interleave the PKI ends up whole.

mod common;
use common::*;
#[path = "crash/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The PKI's lock file (`commit::LOCK`).
fn lock_file(pki: &Pki) -> std::path::PathBuf {
    pki.certs().join(".kubeadm-certs.lock")
}

/// Holds the PKI's lock from outside as another run would (util-linux `flock` on the tool's lock file) until
/// its stdin is closed; returns once the lock is held.
fn hold_lock(pki: &Pki) -> Child {
    // made as the tool makes it (util-linux flock would make it 0644)
    std::fs::OpenOptions::new().create_new(true).write(true).mode(0o600).open(lock_file(pki)).unwrap();
    let child = Command::new("flock").arg(lock_file(pki)).arg("cat").stdin(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while Command::new("flock").args(["-n"]).arg(lock_file(pki)).arg("true").status().unwrap().success() {
        assert!(start.elapsed() < Duration::from_secs(30), "flock never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn release(mut holder: Child) {
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
}

#[test]
fn a_run_that_cannot_get_the_lock_waits_then_fails_clearly() {
    let pki = std_pki();
    let holder = hold_lock(&pki);
    let before = pki.snapshot();
    let lock = lock_file(&pki).display().to_string();
    for args in [
        &["renew", "all", "--force", "--lock-timeout", "1s"][..],
        &["csr", "all", "--csr-dir", "/nonexistent", "--lock-timeout", "1s"][..],
        &["install", "all", "--csr-dir", "/nonexistent", "--lock-timeout", "1s"][..],
    ] {
        let start = Instant::now();
        let (code, out, err) = run_on(&pki, args);
        let took = start.elapsed();
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(
            err.contains(&format!("waiting for the lock {lock} (another run holds it), up to 1s")),
            "{args:?}: {err}"
        );
        assert!(
            err.contains(&format!("{lock}: another kubeadm-certs run holds the lock (waited 1s)")),
            "{args:?}: {err}"
        );
        // the upper bound only catches a run that waits without end
        assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(20), "{args:?}: took {took:?}");
    }
    // the module: lock_timeout, the same message
    let v = module_on(&pki, json!({"state": "renew", "force": true, "lock_timeout": "1s"}));
    assert_eq!(v["failed"], true, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("holds the lock"), "{v}");
    // reading takes no lock: check and --check answer while it is held
    for args in [&["check"][..], &["renew", "all", "--force", "--check"][..]] {
        let (code, _, err) = run_on(&pki, args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    assert_unchanged(&before, &pki.snapshot(), "runs that did not get the lock");

    // a run that may wait long enough proceeds once the holder is done: released only once it is seen waiting
    let mut waiter = Command::new(bin_path())
        .args(["renew", "all", "--force", "--key-algorithm", "ecdsa-p256", "-o", "json"])
        .args(pki.dirs())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = waiter.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let line = line.unwrap();
            if line.contains("waiting for the lock") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    // a safety net, not a decision: the waiter says it waits right after its first try
    rx.recv_timeout(Duration::from_secs(120)).expect("the second run never said it was waiting for the lock");
    assert!(waiter.try_wait().unwrap().is_none(), "the waiter gave up while the lock was held");
    assert_unchanged(&before, &pki.snapshot(), "a run waiting for the lock");
    release(holder);
    let out = waiter.wait_with_output().unwrap();
    let err = reader.join().unwrap();
    assert!(out.status.success(), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(serials(&v).len(), 10, "{v}");
    assert!(!lock_file(&pki).exists(), "the run left its lock file");
}

#[test]
fn a_killed_holder_releases_the_lock_at_once() {
    // the lock is flock: the kernel drops it with the process; the lock file it leaves is the next run's
    let pki = std_pki();
    support::killed_at("journal", &["renew", "all", "--force", "--key-algorithm", "ecdsa-p256"], &pki.dirs());
    assert!(lock_file(&pki).exists(), "the killed run took no lock");
    let start = Instant::now();
    let (code, out, err) = run_on(&pki, &["renew", "all", "-o", "json", "--lock-timeout", "60s"]);
    assert_eq!(code, 0, "{err}");
    assert!(start.elapsed() < Duration::from_secs(10), "waited {:?}", start.elapsed());
    assert!(out.contains("completed an interrupted renewal"), "{out}");
    assert!(!lock_file(&pki).exists(), "the lock file the killed run left was not taken over and removed");
}

#[test]
fn every_writing_command_settles_a_pending_journal_first() {
    // renew, csr and install share one beginning: a check run warns about the journal, a real run completes
    // it before reading, and says so
    let pki = std_pki();
    support::killed_at("journal", &["renew", "all", "--force", "--key-algorithm", "ecdsa-p256"], &pki.dirs());
    let journal = pki.certs().join(".kubeadm-certs.journal");
    assert!(journal.exists(), "the kill left no journal");
    let csr_dir = tempfile::tempdir().unwrap();
    let csr_dir = csr_dir.path().to_str().unwrap();

    let (code, out, err) = run_on(&pki, &["csr", "apiserver", "--csr-dir", csr_dir, "--check", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("an interrupted renewal left a journal; a real run completes it first"), "{out}");
    assert!(journal.exists(), "a check run completed the journal");

    let (code, out, err) = run_on(&pki, &["csr", "apiserver", "--csr-dir", csr_dir, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["warnings"].to_string().contains("completed an interrupted renewal of"), "{out}");
    assert_eq!(v["changed"], true, "{out}");
    assert!(!journal.exists(), "csr left the journal pending");
    let (code, out, err) = run_on(&pki, &["renew", "all", "--check", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("interrupted"), "{out}");
}

#[test]
fn a_run_that_completes_a_journal_then_fails_says_the_pki_changed() {
    // the journal completed, then the run fails (no API credentials): that is not "nothing changed"
    let pki = std_pki();
    let journal = pki.certs().join(".kubeadm-certs.journal");
    let args = ["renew", "all", "--force", "--key-algorithm", "ecdsa-p256"];
    support::killed_at("journal", &args, &pki.dirs());
    assert!(journal.exists(), "the kill left no journal");
    let (code, out, err) = run_on(&pki, &["renew", "all", "--force", "--use-api", "--api-kubeconfig", "/nonexistent"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("/nonexistent"), "the failure itself: {err}");
    assert!(err.contains("completed an interrupted renewal of 17 files first"), "{err}");
    assert!(err.contains("the PKI on disk changed"), "{err}");
    assert!(!journal.exists());

    // the module: failed, and changed, with the warning
    support::killed_at("journal", &args, &pki.dirs());
    let v =
        module_on(&pki, json!({"state": "renew", "signer": "api", "api_kubeconfig": "/nonexistent", "force": true}));
    assert_eq!(v["failed"], true, "{v}");
    assert_eq!(v["changed"], true, "{v}");
    assert!(v["warnings"][0].as_str().unwrap().contains("completed an interrupted renewal of 17 files first"), "{v}");
    assert!(v["msg"].as_str().unwrap().contains("/nonexistent"), "{v}");
    assert!(!journal.exists());
}

/// The serial of every renewed entry in one run's JSON outcome.
fn serials(v: &Value) -> Vec<(String, String)> {
    v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "renewed")
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["serial"].as_str().unwrap().to_string()))
        .collect()
}

/// The serials on disk now.
fn serials_on_disk(pki: &Pki) -> Vec<(String, String)> {
    let (code, out, err) = run_on(pki, &["renew", "all", "--check", "--renew-before", "0s", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut s: Vec<(String, String)> = v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["missing"] == false)
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["serial"].as_str().unwrap().to_string()))
        .collect();
    s.sort();
    s
}

fn leftovers(kube: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for dir in [kube.to_path_buf(), kube.join("pki"), kube.join("pki/etcd")] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.contains("kubeadm-certs") {
                v.push(n);
            }
        }
    }
    v
}

#[test]
fn concurrent_renewals_take_turns_and_leave_one_whole_pki() {
    let pki = std_pki();
    let args_dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    // three humans or timers on the command line, three Ansible tasks (the module protocol), at once
    for i in 0..6 {
        let mut cmd = Command::new(bin_path());
        if i % 2 == 0 {
            cmd.args(["renew", "all", "--force", "--key-algorithm", "ecdsa-p256", "-o", "json"]).args(pki.dirs());
        } else {
            let file = args_dir.path().join(format!("args{i}"));
            let args = json!({
                "state": "renew", "force": true, "key_algorithm": "ecdsa-p256",
                "cert_dir": pki.certs(), "kubeconfig_dir": pki.kube(),
            });
            std::fs::write(&file, args.to_string()).unwrap();
            cmd.arg(file);
        }
        children.push(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    }
    // and someone reading all along: never blocked, never an error
    let mut reads = 0;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        let (code, _, err) = run_on(&pki, &["check"]);
        assert_eq!(code, 0, "check during the renewals: {err}");
        reads += 1;
    }
    let mut runs = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["failed"], Value::Null, "{v}");
        let mut s = serials(&v);
        assert_eq!(s.len(), 10, "every run renewed every entry: {v}");
        s.sort();
        runs.push(s);
    }
    // the runs took turns: what is on disk is one run's renewal, entirely (interleaved writers would leave
    // entries of different runs, or fail validating a half-replaced pair)
    let disk = serials_on_disk(&pki);
    let whose: Vec<usize> = (0..runs.len()).filter(|&i| runs[i] == disk).collect();
    assert_eq!(whose.len(), 1, "the PKI on disk is not one run's: {disk:?}");
    let all: BTreeSet<&String> = runs.iter().flatten().map(|(_, s)| s).collect();
    assert_eq!(all.len(), 60, "six runs, ten certificates each, all different");
    assert!(leftovers(&pki.kube()).is_empty(), "{:?}", leftovers(&pki.kube()));
    let consumer = Command::new(support::consumer_bin()).arg(pki.kube()).output().unwrap();
    let v: Value = serde_json::from_slice(&consumer.stdout).unwrap();
    assert!(v.as_array().unwrap().iter().all(|r| r["ok"] == true), "{v}");
    eprintln!("six concurrent renewals, {reads} checks meanwhile");
}

/// Holds a `flock` on `path` as uid/gid 65534 (nobody) until the returned child's stdin is closed; returns
/// once it is held (root's `flock -n` on the same path fails).
fn hold_as_nobody(path: &Path) -> Child {
    let child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "flock"])
        .arg(path)
        .arg("cat")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while Command::new("flock").args(["-n"]).arg(path).arg("true").status().unwrap().success() {
        assert!(start.elapsed() < Duration::from_secs(30), "nobody never took the flock on {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn another_user_holding_a_flock_on_the_cert_dir_does_not_block_renewals() {
    // every local user may open /etc/kubernetes/pki (0755) and flock it: that must not stop the timer
    let pki = synthetic_pki("ecdsa-p256");
    std::fs::set_permissions(pki.root(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut squatter = hold_as_nobody(&pki.certs());
    let (code, out, err) = run_on(&pki, &["renew", "all", "--force", "--lock-timeout", "2s", "-o", "json"]);
    drop(squatter.stdin.take());
    squatter.wait().unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"renewed\""), "{out}");
    // the lock file is removed by the run that made it: nothing is left beside the PKI
    assert!(leftovers(&pki.kube()).is_empty(), "{:?}", leftovers(&pki.kube()));
}

#[test]
fn a_planted_lock_file_is_refused_and_nothing_changes() {
    let elsewhere = tempfile::tempdir().unwrap();
    let owned_by_root = elsewhere.path().join("root-file");
    std::fs::write(&owned_by_root, b"precious").unwrap();
    type Plant<'a> = &'a dyn Fn(&Path);
    let plant: [(&str, Plant); 4] = [
        ("symbolic link", &|lock| {
            std::os::unix::fs::symlink(elsewhere.path().join("created-through-the-link"), lock).unwrap()
        }),
        ("symbolic link", &|lock| std::os::unix::fs::symlink(&owned_by_root, lock).unwrap()),
        ("belongs to uid 65534", &|lock| {
            std::fs::write(lock, b"").unwrap();
            std::os::unix::fs::chown(lock, Some(65534), Some(65534)).unwrap();
        }),
        ("hard links", &|lock| std::fs::hard_link(&owned_by_root, lock).unwrap()),
    ];
    for (why, plant) in plant {
        let pki = synthetic_pki("ecdsa-p256");
        let lock = pki.certs().join(".kubeadm-certs.lock");
        plant(&lock);
        let before = pki.snapshot();
        let (code, out, err) = run_on(&pki, &["renew", "all", "--force", "--lock-timeout", "2s"]);
        assert_eq!(code, 1, "{why}: {out}{err}");
        assert!(err.contains(&lock.display().to_string()) && err.contains(why), "{why}: {err}");
        assert!(err.contains("remove it"), "{why}: says what to do: {err}");
        assert_unchanged(&before, &pki.snapshot(), why);
        assert!(!elsewhere.path().join("created-through-the-link").exists(), "{why}: followed the link");
        let meta = std::fs::metadata(&owned_by_root).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o644,
            "{why}: chmod through a link"
        );
        assert_eq!(std::fs::read(&owned_by_root).unwrap(), b"precious");
    }
}
