//! Shared by the safety tests (crash_safety, hostile_input, secrets, concurrency): the binary with the
//! commit's fault points, and the Go consumer that loads a PKI the way Kubernetes components do.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::common::repo;

/// The binary with the fault points compiled in, built once into its own target dir (a nested cargo in
/// the outer one's target dir would wait for its lock).
pub fn fault_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = repo().join("target/fault-injection");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(repo())
            .args(["build", "--quiet", "--features", "fault-injection", "--bin", "kubeadm-certs", "--target-dir"])
            .arg(&target)
            .output()
            .expect("cargo runs");
        assert!(out.status.success(), "building the fault-injection binary:\n{}", String::from_utf8_lossy(&out.stderr));
        target.join("debug/kubeadm-certs")
    })
    .clone()
}

/// Runs the fault-injection binary with `args` and `dirs` until it kills itself (SIGKILL) at the fault
/// point `point` (`KUBEADM_CERTS_KILL_AT`); fails the test when the run ends any other way.
pub fn killed_at<S: AsRef<OsStr>>(point: &str, args: &[&str], dirs: &[S]) {
    let out = Command::new(fault_bin()).args(args).args(dirs).env("KUBEADM_CERTS_KILL_AT", point).output().unwrap();
    assert_eq!(out.status.code(), None, "not killed at {point}: {}", String::from_utf8_lossy(&out.stderr));
}

/// tests/crash/consumer.go, built once with Go's standard library.
pub fn consumer_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("consumer");
        let out = Command::new("go")
            .args(["build", "-o"])
            .arg(&out_path)
            .arg(repo().join("tests/crash/consumer.go"))
            .output()
            .expect("go is installed (scripts/k8s-bin.sh needs it too)");
        assert!(out.status.success(), "go build consumer.go:\n{}", String::from_utf8_lossy(&out.stderr));
        out_path
    })
    .clone()
}
