//! Concurrent runs on one PKI (two Ansible runs, a timer and a human): they take turns on the lock (`flock`
//! on the cert dir), a run that cannot get it within `--lock-timeout` / `lock_timeout` fails clearly and
//! changes nothing, and however the runs interleave the PKI ends up whole.

mod common;
use common::*;
#[path = "crash/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Holds the PKI's lock from outside (util-linux `flock` on the cert dir, the lock the tool takes) for
/// `secs`; returns once it is held.
fn hold_lock(pki: &Pki, secs: u32) -> Child {
    let child = Command::new("flock").arg(pki.certs()).args(["sleep", &secs.to_string()]).spawn().unwrap();
    let start = Instant::now();
    while Command::new("flock").args(["-n"]).arg(pki.certs()).arg("true").status().unwrap().success() {
        assert!(start.elapsed() < Duration::from_secs(10), "flock never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn a_run_that_cannot_get_the_lock_waits_then_fails_clearly() {
    let pki = std_pki();
    let mut holder = hold_lock(&pki, 6);
    let before = pki.snapshot();
    for args in [
        &["renew", "all", "--force", "--lock-timeout", "1s"][..],
        &["csr", "all", "--lock-timeout", "1s"][..],
        &["install", "all", "--csr-dir", "/nonexistent", "--lock-timeout", "1s"][..],
    ] {
        let start = Instant::now();
        let (code, out, err) = run_on(&pki, args);
        let took = start.elapsed();
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(
            err.contains("another kubeadm-certs run holds the lock (waited 1s)") && err.contains("pki"),
            "{args:?}: {err}"
        );
        assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(4), "{args:?}: took {took:?}");
    }
    // the module: lock_timeout, the same message
    let v = module_on(&pki, json!({"state": "renew", "force": true, "lock_timeout": "1s"}));
    assert_eq!(v["failed"], true, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("holds the lock"), "{v}");
    // reading takes no lock: check and --check answer at once
    for args in [&["check"][..], &["renew", "all", "--force", "--check"][..]] {
        let start = Instant::now();
        let (code, _, err) = run_on(&pki, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(start.elapsed() < Duration::from_secs(5), "{args:?} waited for the lock");
    }
    assert_unchanged(&before, &pki.snapshot(), "runs that did not get the lock");
    // a run that may wait long enough proceeds once the holder is done
    let (code, _, err) = run_on(&pki, &["renew", "all", "--force", "--key-algorithm", "ecdsa-p256"]);
    assert_eq!(code, 0, "{err}");
    assert!(holder.try_wait().unwrap().is_some(), "renewed while the lock was held");
    holder.wait().unwrap();
}

#[test]
fn a_killed_holder_releases_the_lock_at_once() {
    // the lock is flock: the kernel drops it with the process, there is no lock file to go stale
    let pki = std_pki();
    support::killed_at("journal", &["renew", "all", "--force", "--key-algorithm", "ecdsa-p256"], &pki.dirs());
    let start = Instant::now();
    let (code, out, err) = run_on(&pki, &["renew", "all", "-o", "json", "--lock-timeout", "60s"]);
    assert_eq!(code, 0, "{err}");
    assert!(start.elapsed() < Duration::from_secs(10), "waited {:?}", start.elapsed());
    assert!(out.contains("completed an interrupted renewal"), "{out}");
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
