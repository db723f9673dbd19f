//! Shared by the integration tests: the binary, PKIs made by real kubeadm (scripts/mkpki.sh) and by
//! OpenSSL (tests/fixtures/synthetic-pki.sh), and byte-for-byte snapshots of a PKI.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

pub mod cluster;
pub mod leaks;

#[allow(unused_imports)]
pub use cluster::Cluster;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("kubeadm-certs").expect("the binary is built by cargo test")
}

pub fn bin_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("kubeadm-certs")
}

/// The folder with kubeadm, kube-apiserver, kube-controller-manager v1.20.2 (built once by
/// scripts/k8s-bin.sh, which also installs etcd, kubectl and openssl).
pub fn k8s_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new(repo().join("scripts/k8s-bin.sh")).output().expect("scripts/k8s-bin.sh runs");
        assert!(out.status.success(), "scripts/k8s-bin.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

pub fn kubeadm() -> PathBuf {
    k8s_bin().join("kubeadm")
}

/// A node root: `ROOT/etc/kubernetes/{pki,*.conf}`.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn kube(&self) -> PathBuf {
        self.root().join("etc/kubernetes")
    }
    pub fn certs(&self) -> PathBuf {
        self.kube().join("pki")
    }
    /// `--cert-dir … --kubeconfig-dir …`
    pub fn dirs(&self) -> Vec<String> {
        vec![
            "--cert-dir".into(),
            self.certs().display().to_string(),
            "--kubeconfig-dir".into(),
            self.kube().display().to_string(),
        ]
    }
    /// Where this root's kubelet would keep its files (absent unless a test makes it): `check` is pointed
    /// here, never at the machine's own /var/lib/kubelet.
    pub fn kubelet(&self) -> PathBuf {
        self.root().join("var/lib/kubelet")
    }
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.kube())
    }
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.kube().join(rel)).unwrap()
    }
}

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(to).status().unwrap();
    assert!(st.success());
}

/// A PKI made by real kubeadm 1.20.2, copied from one golden made per (variant, node, ip) per test binary.
pub fn kubeadm_pki(variant: &str, node: &str, ip: &str) -> Pki {
    static GOLDEN: OnceLock<Mutex<BTreeMap<String, tempfile::TempDir>>> = OnceLock::new();
    let key = format!("{variant}/{node}/{ip}");
    let mut goldens = GOLDEN.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    let golden = goldens.entry(key).or_insert_with(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(repo().join("scripts/mkpki.sh"))
            .arg(dir.path())
            .args([variant, node, ip])
            .env("K8S_BIN", k8s_bin())
            .output()
            .unwrap();
        assert!(out.status.success(), "mkpki.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        dir
    });
    let pki = Pki { dir: tempfile::tempdir().unwrap() };
    copy_tree(golden.path(), pki.root());
    pki
}

pub fn std_pki() -> Pki {
    kubeadm_pki("std", "cp1", "127.0.0.11")
}

/// An OpenSSL-made kubeadm-shaped PKI with keys of `alg` (rsa-2048 … ecdsa-p384).
pub fn synthetic_pki(alg: &str) -> Pki {
    let pki = Pki { dir: tempfile::tempdir().unwrap() };
    let out = Command::new(repo().join("tests/fixtures/synthetic-pki.sh")).arg(pki.root()).arg(alg).output().unwrap();
    assert!(out.status.success(), "synthetic-pki.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    pki
}

/// Every file under a directory: bytes and mode.
#[derive(PartialEq, Eq, Clone)]
pub struct Snapshot(pub BTreeMap<PathBuf, (Vec<u8>, u32)>);

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<String> =
            self.0.iter().map(|(p, (b, m))| format!("{} ({} bytes, {m:o})", p.display(), b.len())).collect();
        f.debug_list().entries(files).finish()
    }
}

/// Asserts nothing changed, naming what did.
#[track_caller]
pub fn assert_unchanged(before: &Snapshot, after: &Snapshot, context: &str) {
    let changed = before.changed(after);
    assert!(changed.is_empty(), "{context}: changed {changed:?}");
}

impl Snapshot {
    pub fn of(dir: &Path) -> Snapshot {
        let mut map = BTreeMap::new();
        walk(dir, dir, &mut map);
        Snapshot(map)
    }
    /// Paths whose bytes or mode differ, or that exist on one side only.
    pub fn changed(&self, other: &Snapshot) -> Vec<PathBuf> {
        let mut keys: Vec<&PathBuf> = self.0.keys().chain(other.0.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter().filter(|k| self.0.get(*k) != other.0.get(*k)).cloned().collect()
    }
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        if meta.is_dir() {
            walk(base, &e.path(), out);
        } else {
            let bytes = if meta.is_file() { std::fs::read(e.path()).unwrap_or_default() } else { Vec::new() };
            out.insert(e.path().strip_prefix(base).unwrap().to_path_buf(), (bytes, meta.permissions().mode() & 0o7777));
        }
    }
}

/// Runs the binary; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ARGS...` followed by the PKI's directory flags (and, for `check`, the root's kubelet directory).
pub fn run_on(pki: &Pki, args: &[&str]) -> (i32, String, String) {
    let mut dirs = pki.dirs();
    if args.first() == Some(&"check") {
        dirs.extend(["--kubelet-dir".to_string(), pki.kubelet().display().to_string()]);
    }
    let mut all: Vec<&str> = args.to_vec();
    all.extend(dirs.iter().map(String::as_str));
    run(&all)
}

/// The Ansible way: one argument, the path of a JSON args file. Returns the one JSON object printed.
pub fn module(args: serde_json::Value) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("args");
    std::fs::write(&file, args.to_string()).unwrap();
    let out = bin().arg(&file).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("module output is not one JSON object ({e}):\n{stdout}"));
    assert!(v.is_object(), "{stdout}");
    v
}

pub fn module_on(pki: &Pki, mut args: serde_json::Value) -> serde_json::Value {
    args["cert_dir"] = pki.certs().display().to_string().into();
    args["kubeconfig_dir"] = pki.kube().display().to_string().into();
    if matches!(args.get("state").and_then(|s| s.as_str()), None | Some("check")) && args.get("kubelet_dir").is_none() {
        args["kubelet_dir"] = pki.kubelet().display().to_string().into();
    }
    module(args)
}

/// `openssl ARGS`, asserting success; returns stdout.
pub fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Parsed certificate of a PEM file or a kubeconfig entry, with the library the tool uses for nothing
/// but tests here: x509-parser, independent of how the tool builds certificates.
pub fn cert_der(pki: &Pki, name: &str) -> Vec<u8> {
    let pem_bytes = if name.ends_with(".conf") {
        let kc: serde_norway::Value = serde_norway::from_slice(&pki.read(name)).unwrap();
        let data = kc["users"][0]["user"]["client-certificate-data"].as_str().unwrap().to_string();
        base64_decode(&data)
    } else {
        pki.read(&format!("pki/{}.crt", base_of(name)))
    };
    ::pem::parse(pem_bytes).unwrap().contents().to_vec()
}

pub fn base_of(name: &str) -> &str {
    match name {
        "etcd-server" => "etcd/server",
        "etcd-peer" => "etcd/peer",
        "etcd-healthcheck-client" => "etcd/healthcheck-client",
        other => other,
    }
}

pub fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The tests run as root (the owner and mode cases need it).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s.trim()).unwrap()
}

pub const ALL_CERTS: &[&str] = &[
    "admin.conf",
    "apiserver",
    "apiserver-etcd-client",
    "apiserver-kubelet-client",
    "controller-manager.conf",
    "etcd-healthcheck-client",
    "etcd-peer",
    "etcd-server",
    "front-proxy-client",
    "scheduler.conf",
];
