//! Hostile and odd input, each with the behaviour docs/safety.md documents, a clear message and nothing
//! lost: symbolic links in the PKI, files owned by another user, a read-only filesystem, a full disk, huge
//! files and files that are not files, non-UTF-8 paths, a kubeconfig with several users and contexts, CRLF
//! line endings, certificate files with a chain or with text before the PEM block.
//!
//! The mount tests need root (tmpfs mounts); they fail, never skip, without it.

mod common;
use common::*;
#[path = "crash/support.rs"]
mod support;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RENEW_ALL: &[&str] = &["renew", "all", "--force"];

fn sh(cmd: &str, args: &[&OsStr]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs the binary; asserts the exit code and that stderr holds every needle; returns stderr.
#[track_caller]
fn expect(pki: &Pki, args: &[&str], code: i32, needles: &[&str]) -> String {
    let (got, out, err) = run_on(pki, args);
    assert_eq!(got, code, "{args:?}: exit {got}\nstdout: {out}\nstderr: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: stderr does not say {n:?}:\n{err}");
    }
    err
}

/// Every usable entry, judged by the Go consumer (crypto/tls, client-go's kubeconfig loader).
#[track_caller]
fn assert_usable(kube: &Path) {
    let out = Command::new(support::consumer_bin()).arg(kube).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in v.as_array().unwrap() {
        assert_eq!(r["ok"], true, "{r}");
    }
}

fn pem_blocks(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    ::pem::parse_many(bytes).unwrap().into_iter().map(|p| (p.tag().to_string(), p.contents().to_vec())).collect()
}

// ---------------------------------------------------------------- symbolic links

#[test]
fn a_key_that_is_a_symlink_is_refused_for_reading_and_writing() {
    let pki = std_pki();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("apiserver.key");
    std::fs::rename(pki.certs().join("apiserver.key"), &target).unwrap();
    std::os::unix::fs::symlink(&target, pki.certs().join("apiserver.key")).unwrap();
    let key_before = std::fs::read(&target).unwrap();
    let before = pki.snapshot();
    for args in [RENEW_ALL, &["renew", "apiserver", "--force"][..]] {
        expect(&pki, args, 1, &["pki/apiserver.key", "is a symbolic link", &target.display().to_string()]);
    }
    // check never opens a key: it reports the entry as usual
    expect(&pki, &["check", "apiserver"], 0, &[]);
    // csr reads the existing certificate only and writes its own key into the CSR dir: unaffected
    assert_unchanged(&before, &pki.snapshot(), "a symlinked key");
    assert_eq!(std::fs::read(&target).unwrap(), key_before, "the link's target was touched");
    // a dangling link is refused as clearly
    std::fs::remove_file(&target).unwrap();
    expect(&pki, RENEW_ALL, 1, &["pki/apiserver.key", "is a symbolic link"]);
    // the CA key too: signing never loads a key through a link
    let pki = std_pki();
    let ca_key = elsewhere.path().join("ca.key");
    std::fs::rename(pki.certs().join("ca.key"), &ca_key).unwrap();
    std::os::unix::fs::symlink(&ca_key, pki.certs().join("ca.key")).unwrap();
    let before = pki.snapshot();
    expect(&pki, &["renew", "apiserver", "--force"], 1, &["pki/ca.key", "is a symbolic link"]);
    assert_unchanged(&before, &pki.snapshot(), "a symlinked CA key");
}

#[test]
fn a_certificate_or_kubeconfig_that_is_a_symlink_is_read_but_never_replaced() {
    let pki = std_pki();
    let elsewhere = tempfile::tempdir().unwrap();
    for (rel, name) in [("pki/front-proxy-client.crt", "front-proxy-client.crt"), ("admin.conf", "admin.conf")] {
        let target = elsewhere.path().join(name);
        std::fs::rename(pki.kube().join(rel), &target).unwrap();
        std::os::unix::fs::symlink(&target, pki.kube().join(rel)).unwrap();
    }
    let targets = Snapshot::of(elsewhere.path());
    // reporting reads through the links
    let (code, out, err) = run_on(&pki, &["check", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"front-proxy-client\"") && out.contains("\"admin.conf\""), "{out}");
    // renewing them is refused before anything is written
    let before = pki.snapshot();
    expect(&pki, &["renew", "front-proxy-client", "--force"], 1, &["pki/front-proxy-client.crt", "symbolic link"]);
    expect(&pki, &["renew", "admin.conf", "--force"], 1, &["admin.conf", "symbolic link"]);
    expect(&pki, RENEW_ALL, 1, &["symbolic link"]);
    assert_unchanged(&before, &pki.snapshot(), "symlinked entries");
    assert_unchanged(&targets, &Snapshot::of(elsewhere.path()), "the links' targets");
    // the other entries renew; the links stay links to untouched files
    let (code, _, err) = run_on(&pki, &["renew", "apiserver", "scheduler.conf", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(pki.kube().join("admin.conf")).unwrap().file_type().is_symlink());
    assert_unchanged(&targets, &Snapshot::of(elsewhere.path()), "the links' targets after renewing others");
}

#[test]
fn symlinked_directories_are_followed() {
    // /etc/kubernetes/pki -> /data/pki and pki/etcd -> elsewhere are layouts operators choose
    let pki = std_pki();
    let elsewhere = tempfile::tempdir().unwrap();
    let etcd = elsewhere.path().join("etcd");
    std::fs::rename(pki.certs().join("etcd"), &etcd).unwrap();
    std::os::unix::fs::symlink(&etcd, pki.certs().join("etcd")).unwrap();
    let link = elsewhere.path().join("pki-link");
    std::os::unix::fs::symlink(pki.certs(), &link).unwrap();
    let old_peer = std::fs::read(etcd.join("peer.crt")).unwrap();
    let (code, _, err) = run(&[
        "renew",
        "all",
        "--force",
        "--cert-dir",
        link.to_str().unwrap(),
        "--kubeconfig-dir",
        pki.kube().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(pki.certs().join("etcd")).unwrap().file_type().is_symlink());
    assert_ne!(std::fs::read(etcd.join("peer.crt")).unwrap(), old_peer, "etcd-peer renewed where the link points");
    assert_usable(&pki.kube());
}

// ---------------------------------------------------------------- not files, huge files

/// Runs `args`, failing the test if it takes longer than `limit` (a FIFO must not block a run).
fn run_within(pki: &Pki, args: &[&str], limit: Duration) -> (i32, String) {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(pki.dirs());
    let mut child = Command::new(bin_path()).args(&all).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("{args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn fifos_and_devices_are_not_read() {
    let pki = std_pki();
    let crt = pki.certs().join("apiserver.crt");
    std::fs::remove_file(&crt).unwrap();
    sh("mkfifo", &[crt.as_os_str()]);
    let (code, err) = run_within(&pki, &["check"], Duration::from_secs(20));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pki/apiserver.crt") && err.contains("not a regular file"), "{err}");
    // a link to an endless device
    std::fs::remove_file(&crt).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &crt).unwrap();
    let (code, err) = run_within(&pki, &["check"], Duration::from_secs(20));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pki/apiserver.crt") && err.contains("not a regular file"), "{err}");
}

#[test]
fn huge_files_are_refused_without_being_read() {
    for (rel, args) in [
        ("pki/apiserver.crt", &["check"][..]),
        ("pki/etcd/peer.key", RENEW_ALL),
        ("admin.conf", &["check"][..]),
        ("scheduler.conf", RENEW_ALL),
    ] {
        let pki = std_pki();
        // 5 GiB, sparse: reading it would take minutes and all the memory
        let f = std::fs::OpenOptions::new().write(true).open(pki.kube().join(rel)).unwrap();
        f.set_len(5 << 30).unwrap();
        drop(f);
        let before = pki.snapshot_meta();
        let start = Instant::now();
        let (code, err) = run_within(&pki, args, Duration::from_secs(60));
        assert_eq!(code, 1, "{rel}: {err}");
        assert!(err.contains(rel) && err.contains("5368709120 bytes") && err.contains("refusing"), "{rel}: {err}");
        assert!(start.elapsed() < Duration::from_secs(30), "{rel}: took {:?}", start.elapsed());
        assert_eq!(before, pki.snapshot_meta(), "{rel}: something changed");
    }
    // the cap is generous: a 1 MiB certificate file (the certificate and a long chain) is read
    let pki = std_pki();
    let mut bytes = pki.read("pki/apiserver.crt");
    let ca = pki.read("pki/front-proxy-ca.crt");
    while bytes.len() < 1 << 20 {
        bytes.extend_from_slice(&ca);
    }
    std::fs::write(pki.certs().join("apiserver.crt"), &bytes).unwrap();
    expect(&pki, &["check", "apiserver"], 0, &[]);
}

/// Sizes and modes only (the huge files are never read by the snapshot either).
trait SnapshotMeta {
    fn snapshot_meta(&self) -> Vec<(PathBuf, u64, u32)>;
}

impl SnapshotMeta for Pki {
    fn snapshot_meta(&self) -> Vec<(PathBuf, u64, u32)> {
        let mut v = Vec::new();
        for dir in [self.kube(), self.certs(), self.certs().join("etcd")] {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                if m.is_file() {
                    v.push((e.path(), m.len(), m.mode()));
                }
            }
        }
        v.sort();
        v
    }
}

// ---------------------------------------------------------------- ownership

fn owner(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(path).unwrap();
    (m.uid(), m.gid(), m.permissions().mode() & 0o7777)
}

#[test]
fn files_owned_by_another_user_keep_their_owner() {
    let pki = std_pki();
    let chown = |rel: &str, uid: u32, gid: u32, mode: u32| {
        let p = pki.kube().join(rel);
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    chown("pki/apiserver.key", 4242, 4243, 0o640); // a key someone made group-readable
    chown("pki/apiserver.crt", 4242, 4243, 0o644);
    chown("pki/etcd/server.key", 4244, 4244, 0o600); // etcd running as its own user
    chown("pki/etcd/server.crt", 4244, 4244, 0o600); // a certificate someone narrowed
    chown("admin.conf", 4245, 4246, 0o640);
    let (code, out, err) = run_on(&pki, &["renew", "all", "--force", "--backup", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    // keys: 0600 always, owner kept
    assert_eq!(owner(&pki.certs().join("apiserver.key")), (4242, 4243, 0o600));
    assert_eq!(owner(&pki.certs().join("etcd/server.key")), (4244, 4244, 0o600));
    // certificates: owner kept, a mode never widened
    assert_eq!(owner(&pki.certs().join("apiserver.crt")), (4242, 4243, 0o644));
    assert_eq!(owner(&pki.certs().join("etcd/server.crt")), (4244, 4244, 0o600));
    // kubeconfigs hold a key: 0600, owner kept
    assert_eq!(owner(&pki.kube().join("admin.conf")), (4245, 4246, 0o600));
    // backups: 0600, owned by the user running the renewal (root), whoever owned the original
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let backups = v["backup_files"].as_array().unwrap();
    assert_eq!(backups.len(), 17, "{out}");
    for b in backups {
        assert_eq!(owner(Path::new(b.as_str().unwrap())), (0, 0, 0o600), "{b}");
    }
    assert_usable(&pki.kube());
}

/// Runs the binary as uid/gid 65534 (nobody).
fn run_as_nobody(pki: &Pki, args: &[&str]) -> (i32, String) {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(pki.dirs());
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin_path())
        .args(&all)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_user_who_may_not_write_changes_nothing() {
    let pki = std_pki();
    std::fs::set_permissions(pki.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = pki.snapshot();
    // root's PKI directory: the lock file cannot be made, said before anything is read or generated
    let (code, err) = run_as_nobody(&pki, RENEW_ALL);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("pki/.kubeadm-certs.lock: cannot write: Permission denied")
            && err.contains("creating the lock file"),
        "{err}"
    );
    assert_unchanged(&before, &pki.snapshot(), "renew as nobody");
    // the cert dir writable (the lock is taken), root's keys (0600) unreadable: said before anything is generated
    for dir in [pki.certs(), pki.certs().join("etcd")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let (code, err) = run_as_nobody(&pki, RENEW_ALL);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot read") && err.contains("Permission denied"), "{err}");
    assert_unchanged(&before, &pki.snapshot(), "renew as nobody, keys unreadable");
    // keys readable but the kubeconfig dir not writable: staging fails, nothing is left behind
    for dir in [pki.certs(), pki.certs().join("etcd")] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_file() {
                std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
    }
    for f in ["admin.conf", "controller-manager.conf", "scheduler.conf"] {
        std::fs::set_permissions(pki.kube().join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let before = pki.snapshot();
    let (code, err) = run_as_nobody(&pki, RENEW_ALL);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot write") && err.contains("Permission denied"), "{err}");
    assert_unchanged(&before, &pki.snapshot(), "renew as nobody");
}

// ---------------------------------------------------------------- read-only and full filesystems

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -t tmpfs (these tests need root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn remount(&self, how: &str) {
        sh("mount", &[OsStr::new("-o"), OsStr::new(&format!("remount,{how}")), self.path().as_os_str()]);
    }
    /// A copy of a kubeadm PKI on this filesystem.
    fn pki(&self) -> Pki {
        let src = std_pki();
        let dir = tempfile::tempdir_in(self.path()).unwrap();
        sh("cp", &[OsStr::new("-a"), src.root().join(".").as_os_str(), dir.path().as_os_str()]);
        Pki { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("mount").args(["-o", "remount,rw"]).arg(self.path()).status();
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

#[test]
fn a_read_only_filesystem_changes_nothing_and_says_so() {
    let fs = Tmpfs::new("16m");
    let pki = fs.pki();
    // a renewal interrupted after its journal: a read-only filesystem cannot complete it either
    let pending = fs.pki();
    support::killed_at("renamed-4", RENEW_ALL, &pending.dirs());
    fs.remount("ro");
    let before = pki.snapshot();
    expect(&pki, RENEW_ALL, 1, &["Read-only file system"]);
    let csr_dir = pki.root().join("csr");
    expect(&pki, &["csr", "all", "--force", "--csr-dir", csr_dir.to_str().unwrap()], 1, &["Read-only file system"]);
    let v = module_on(&pki, serde_json::json!({"state": "renew", "force": true}));
    assert_eq!(v["failed"], true, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("Read-only file system"), "{v}");
    // reading still works
    expect(&pki, &["check"], 0, &[]);
    assert_unchanged(&before, &pki.snapshot(), "read-only");
    let pending_before = pending.snapshot();
    expect(&pending, RENEW_ALL, 1, &["Read-only file system"]);
    let (code, out, _) = run_on(&pending, &["renew", "all", "--check", "-o", "json"]);
    assert_eq!(code, 0);
    assert!(out.contains("an interrupted renewal left a journal"), "{out}");
    assert_unchanged(&pending_before, &pending.snapshot(), "read-only with a journal");
    // writable again: the journal is completed, then the renewal runs
    fs.remount("rw");
    let (code, out, err) = run_on(&pending, &["renew", "all", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("completed an interrupted renewal"), "{out}");
    assert_usable(&pending.kube());
}

/// Bytes free on the filesystem holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df").args(["--output=avail", "-B1"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn a_full_disk_fails_cleanly_at_any_point_of_staging() {
    let fs = Tmpfs::new("2m");
    let mut failed = 0;
    let mut succeeded = 0;
    // from no room at all to enough room for every temp file, backup and the journal
    for leave in [0u64, 4, 8, 16, 24, 40, 64, 96, 1024] {
        let pki = fs.pki();
        let filler = fs.path().join("filler");
        let free = free_bytes(fs.path());
        let fill = free.saturating_sub(leave * 1024);
        let f = std::fs::File::create(&filler).unwrap();
        // written, not sparse: tmpfs counts pages actually used
        let mut w = std::io::BufWriter::new(f);
        let chunk = vec![0u8; 64 * 1024];
        let mut left = fill;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if std::io::Write::write_all(&mut w, &chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = std::io::Write::flush(&mut w);
        drop(w);
        let before = pki.snapshot();
        let (code, out, err) = run_on(&pki, &["renew", "all", "--force", "--backup"]);
        match code {
            0 => {
                succeeded += 1;
                assert_usable(&pki.kube());
            }
            1 => {
                failed += 1;
                assert!(err.contains("No space left on device"), "{leave} KiB free: {err}");
                assert_unchanged(&before, &pki.snapshot(), &format!("{leave} KiB free"));
            }
            _ => panic!("{leave} KiB free: exit {code}\n{out}\n{err}"),
        }
        std::fs::remove_file(&filler).unwrap();
        // with room again, the same PKI renews: nothing was left that a run would trip over
        let (code, _, err) = run_on(&pki, RENEW_ALL);
        assert_eq!(code, 0, "{leave} KiB free, then room: {err}");
        drop(pki);
    }
    assert!(failed >= 5 && succeeded >= 1, "failed {failed}, succeeded {succeeded}");
}

// ---------------------------------------------------------------- paths and encodings

#[test]
fn non_utf8_paths() {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join(OsStr::from_bytes(b"node-\xff\xfe-\x80"));
    std::fs::create_dir(&root).unwrap();
    let src = std_pki();
    sh("cp", &[OsStr::new("-a"), src.root().join(".").as_os_str(), root.as_os_str()]);
    let kube = root.join("etc/kubernetes");
    let dirs: Vec<OsString> = vec![
        "--cert-dir".into(),
        kube.join("pki").into_os_string(),
        "--kubeconfig-dir".into(),
        kube.clone().into_os_string(),
    ];
    let out = bin().args(["check", "-o", "json"]).args(&dirs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bin().args(["renew", "all", "--force", "-o", "json"]).args(&dirs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // paths in reports are shown lossily (JSON is Unicode); the files are where they belong
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["certificates"][1]["path"].as_str().unwrap().contains("node-\u{fffd}\u{fffd}-\u{fffd}"), "{v}");
    assert_usable(&kube);
    // an error names the path lossily too
    std::fs::write(kube.join("pki/apiserver.crt"), b"junk").unwrap();
    let out = bin().args(["check"]).args(&dirs).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("node-\u{fffd}\u{fffd}-\u{fffd}/etc/kubernetes/pki/apiserver.crt")
    );
    // a crash in such a directory is completed by the next run (the journal holds paths as bytes)
    let root2 = base.path().join(OsStr::from_bytes(b"node2-\xff"));
    std::fs::create_dir(&root2).unwrap();
    sh("cp", &[OsStr::new("-a"), src.root().join(".").as_os_str(), root2.as_os_str()]);
    let kube2 = root2.join("etc/kubernetes");
    let dirs2: Vec<OsString> =
        vec!["--cert-dir".into(), kube2.join("pki").into(), "--kubeconfig-dir".into(), kube2.clone().into()];
    support::killed_at("renamed-1", RENEW_ALL, &dirs2);
    let out = bin().args(["renew", "all", "-o", "json"]).args(&dirs2).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("completed an interrupted renewal"));
    assert_usable(&kube2);
}

#[test]
fn crlf_line_endings_are_read_and_rewritten_as_lf() {
    let pki = std_pki();
    for rel in ["pki/apiserver.crt", "pki/apiserver.key", "pki/ca.crt", "admin.conf"] {
        let text = String::from_utf8(pki.read(rel)).unwrap();
        std::fs::write(pki.kube().join(rel), text.replace('\n', "\r\n")).unwrap();
    }
    let (code, out, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("apiserver ") && out.contains("admin.conf"), "{out}");
    let (code, _, err) = run_on(&pki, &["renew", "apiserver", "admin.conf", "--force"]);
    assert_eq!(code, 0, "{err}");
    // rewritten in kubeadm's encoding: LF (the CA, never rewritten, keeps its CRLF)
    for rel in ["pki/apiserver.crt", "pki/apiserver.key", "admin.conf"] {
        assert!(!pki.read(rel).contains(&b'\r'), "{rel} still has CR");
    }
    assert!(pki.read("pki/ca.crt").contains(&b'\r'));
    assert_usable(&pki.kube());
}

#[test]
fn text_before_the_pem_block_is_skipped_like_kubeadm_does() {
    // `openssl x509 -text`, `openssl pkcs12 -nokeys` write such files; kubeadm (Go's pem.Decode) reads them
    let pki = std_pki();
    let mut crt = b"subject=CN = kube-apiserver\nissuer=CN = kubernetes\n\n".to_vec();
    crt.extend(pki.read("pki/apiserver.crt"));
    std::fs::write(pki.certs().join("apiserver.crt"), &crt).unwrap();
    let mut key = b"Bag Attributes\n    localKeyID: 01 00 00 00\nKey Attributes: <No Attributes>\n".to_vec();
    key.extend(pki.read("pki/apiserver.key"));
    std::fs::write(pki.certs().join("apiserver.key"), &key).unwrap();
    let kubeadm =
        Command::new(kubeadm()).args(["certs", "check-expiration", "--cert-dir"]).arg(pki.certs()).output().unwrap();
    let kubeadm_out = String::from_utf8_lossy(&kubeadm.stdout);
    assert!(kubeadm_out.lines().any(|l| l.starts_with("apiserver ")), "kubeadm reads it: {kubeadm_out}");
    expect(&pki, &["check", "apiserver"], 0, &[]);
    let (code, _, err) = run_on(&pki, &["renew", "apiserver", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(pki.read("pki/apiserver.crt").starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert_usable(&pki.kube());
}

// ---------------------------------------------------------------- kubeconfig and PEM shapes

#[test]
fn a_kubeconfig_with_several_users_and_contexts() {
    use serde_norway::Value;
    let pki = std_pki();
    let mut doc: Value = serde_norway::from_slice(&pki.read("admin.conf")).unwrap();
    let sched: Value = serde_norway::from_slice(&pki.read("scheduler.conf")).unwrap();
    // another cluster, another user (listed before the current one), another context; and a context and
    // user entry the current one does not use
    let other_user: Value = serde_norway::from_str(&format!(
        "name: other-admin\nuser:\n  client-certificate-data: {}\n  client-key-data: {}\n",
        sched["users"][0]["user"]["client-certificate-data"].as_str().unwrap(),
        sched["users"][0]["user"]["client-key-data"].as_str().unwrap()
    ))
    .unwrap();
    let other_cluster: Value = serde_norway::from_str(&format!(
        "name: other\ncluster:\n  server: https://10.0.0.1:6443\n  certificate-authority-data: {}\n",
        base64_encode(&pki.read("pki/front-proxy-ca.crt"))
    ))
    .unwrap();
    let other_ctx: Value = serde_norway::from_str(
        "name: other-admin@other\ncontext:\n  cluster: other\n  user: other-admin\n  namespace: kube-system\n",
    )
    .unwrap();
    doc["users"].as_sequence_mut().unwrap().insert(0, other_user.clone());
    doc["clusters"].as_sequence_mut().unwrap().push(other_cluster.clone());
    doc["contexts"].as_sequence_mut().unwrap().insert(0, other_ctx.clone());
    std::fs::write(pki.kube().join("admin.conf"), serde_norway::to_string(&doc).unwrap()).unwrap();
    let current_user = doc["users"][1].clone();
    let (code, out, err) = run_on(&pki, &["check", "admin.conf", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"admin.conf\""), "{out}");
    let (code, _, err) = run_on(&pki, &["renew", "admin.conf", "--force"]);
    assert_eq!(code, 0, "{err}");
    let after: Value = serde_norway::from_slice(&pki.read("admin.conf")).unwrap();
    // only the current context's user changed; the rest is as it was, in the same order
    assert_eq!(after["users"][0], other_user);
    assert_ne!(after["users"][1], current_user);
    assert_eq!(after["users"][1]["name"], current_user["name"]);
    assert_eq!(after["clusters"][1], other_cluster);
    assert_eq!(after["contexts"], doc["contexts"]);
    assert_eq!(after["current-context"], doc["current-context"]);
    assert_usable(&pki.kube());
    // and client-go still reads the other context
    let out = Command::new("kubectl")
        .args(["config", "view", "--raw", "--minify", "--context", "other-admin@other", "-o", "json", "--kubeconfig"])
        .arg(pki.kube().join("admin.conf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_certificate_chain_in_the_pem_file_is_kept() {
    let pki = std_pki();
    // an intermediate after the certificate, as some external CAs deliver it
    let intermediate = pki.read("pki/front-proxy-ca.crt");
    let mut crt = pki.read("pki/apiserver.crt");
    crt.extend_from_slice(&intermediate);
    std::fs::write(pki.certs().join("apiserver.crt"), &crt).unwrap();
    // and in a kubeconfig's client-certificate-data
    let text = String::from_utf8(pki.read("admin.conf")).unwrap();
    let line = text.lines().find(|l| l.contains("client-certificate-data")).unwrap();
    let data = line.split_whitespace().last().unwrap();
    let mut chained = base64_decode(data);
    chained.extend_from_slice(&intermediate);
    std::fs::write(pki.kube().join("admin.conf"), text.replace(data, &base64_encode(&chained))).unwrap();

    let (code, _, err) = run_on(&pki, &["renew", "apiserver", "admin.conf", "--force"]);
    assert_eq!(code, 0, "{err}");
    let inter_der = pem_blocks(&intermediate).remove(0).1;
    let blocks = pem_blocks(&pki.read("pki/apiserver.crt"));
    assert_eq!(blocks.len(), 2);
    assert_ne!(blocks[0].1, pem_blocks(&crt)[0].1, "the certificate was renewed");
    assert_eq!(blocks[1].1, inter_der, "the chain is kept");
    let after = String::from_utf8(pki.read("admin.conf")).unwrap();
    let data =
        after.lines().find(|l| l.contains("client-certificate-data")).unwrap().split_whitespace().last().unwrap();
    let blocks = pem_blocks(&base64_decode(data));
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[1].1, inter_der);
    assert_usable(&pki.kube());
    // a chain member that is not a certificate is refused, naming the file
    let pki = std_pki();
    let mut crt = pki.read("pki/apiserver.crt");
    crt.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    std::fs::write(pki.certs().join("apiserver.crt"), &crt).unwrap();
    let before = pki.snapshot();
    expect(&pki, RENEW_ALL, 1, &["pki/apiserver.crt", "not a valid X.509 certificate"]);
    assert_unchanged(&before, &pki.snapshot(), "bad chain member");
}

#[test]
fn a_key_whose_pem_label_does_not_match_its_encoding_is_read_as_go_tls_reads_it() {
    // An RSA key under an EC PRIVATE KEY label: Go's crypto/tls (how kube-apiserver and etcd load their
    // pairs) ignores the label and tries PKCS#1, PKCS#8 and SEC1 in turn, so the PKI works; kubeadm-certs
    // reads it the same way, and the renewal writes the new key under its right label.
    let pki = std_pki();
    let key = String::from_utf8(pki.read("pki/apiserver.key")).unwrap();
    std::fs::write(pki.certs().join("apiserver.key"), key.replace("RSA PRIVATE KEY", "EC PRIVATE KEY")).unwrap();
    assert_usable(&pki.kube());
    let (code, _, err) = run_on(&pki, &["renew", "apiserver", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(pki.read("pki/apiserver.key").starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
    assert_usable(&pki.kube());
    // PKCS#8 under its own label too
    let tmp = tempfile::tempdir().unwrap();
    let (orig, pkcs8) = (tmp.path().join("orig.key"), pki.certs().join("apiserver.key"));
    std::fs::write(&orig, pki.read("pki/apiserver.key")).unwrap();
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", orig.to_str().unwrap(), "-out", pkcs8.to_str().unwrap()]);
    assert!(pki.read("pki/apiserver.key").starts_with(b"-----BEGIN PRIVATE KEY-----"));
    let (code, _, err) = run_on(&pki, &["renew", "apiserver", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(pki.read("pki/apiserver.key").starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
}

// ---------------------------------------------------------------- the journal

fn hex(p: &Path) -> String {
    p.as_os_str().as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// A journal line as `commit` writes it: target, temp, rollback link (or `-`).
fn journal_line(target: &Path, tmp: &Path, orig: Option<&Path>) -> String {
    format!("{} {} {}\n", hex(target), hex(tmp), orig.map(hex).unwrap_or_else(|| "-".into()))
}

#[test]
fn a_journal_that_is_not_the_tools_own_is_refused_and_nothing_changes() {
    let pki = synthetic_pki("ecdsa-p256");
    let journal = pki.certs().join(".kubeadm-certs.journal");
    let outside = pki.root().join("outside");
    std::fs::write(&outside, b"not the PKI's").unwrap();
    // a temp file as the tool names them, holding what a hostile journal would put in place
    let tmp_beside = |target: &Path| {
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = target.parent().unwrap().join(format!(".{name}.4242.0.kubeadm-certs-tmp"));
        std::fs::write(&tmp, b"planted").unwrap();
        tmp
    };
    let escape = pki.certs().join("../../../outside");
    let ca_key = pki.certs().join("ca.key");
    let apiserver = pki.certs().join("apiserver.crt");
    let linked_tmp = pki.certs().join(".apiserver.key.4242.1.kubeadm-certs-tmp");
    std::os::unix::fs::symlink(&outside, &linked_tmp).unwrap();
    let good = journal_line(&apiserver, &tmp_beside(&apiserver), None);
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "../ out of the cert dir",
            format!("{good}{}", journal_line(&escape, &tmp_beside(&outside), None)).into_bytes(),
            &["line 2", "outside", "not a file kubeadm-certs writes"],
        ),
        (
            "a file the tool never writes",
            journal_line(&ca_key, &tmp_beside(&ca_key), None).into_bytes(),
            &["line 1", "pki/ca.key", "not a file kubeadm-certs writes"],
        ),
        (
            "a temp not named like the tool's",
            journal_line(&apiserver, &outside, None).into_bytes(),
            &["line 1", "not the temp file kubeadm-certs"],
        ),
        (
            "a temp that is a link",
            journal_line(&pki.certs().join("apiserver.key"), &linked_tmp, None).into_bytes(),
            &["line 1", "not a regular file"],
        ),
        ("not ASCII", format!("{good}é{good}").into_bytes(), &["line 2", "not a journal line"]),
        ("binary", b"\xff\xfe\x00garbage\n".to_vec(), &["line 1", "not a journal line"]),
        ("huge", vec![b'a'; 5 << 20], &["5242880 bytes", "refusing"]),
    ];
    for (what, text, needles) in cases {
        std::fs::write(&journal, &text).unwrap();
        let before = pki.snapshot();
        let outside_before = std::fs::read(&outside).unwrap();
        for args in [RENEW_ALL, &["csr", "all", "--csr-dir", "/nonexistent"][..]] {
            let (code, out, err) = run_on(&pki, args);
            assert_eq!(code, 1, "{what}: {args:?}: {out}{err}");
            assert!(err.contains(&format!("{}: ", journal.display())), "{what}: names the journal: {err}");
            for n in needles.iter().chain(&["nothing was changed", "kubeadm-certs check"]) {
                assert!(err.contains(n), "{what}: does not say {n:?}: {err}");
            }
            assert_unchanged(&before, &pki.snapshot(), what);
            assert_eq!(std::fs::read(&outside).unwrap(), outside_before, "{what}: changed a file outside the PKI");
        }
    }
}

#[test]
fn a_journal_is_completed_through_another_path_to_the_same_directories() {
    // the journal holds the paths the killed run was given; the next run may name the dirs differently
    let pki = std_pki();
    support::killed_at("renamed-2", RENEW_ALL, &pki.dirs());
    let alias = tempfile::tempdir().unwrap();
    let link = alias.path().join("kube");
    std::os::unix::fs::symlink(pki.kube(), &link).unwrap();
    let dirs = [
        "--cert-dir".to_string(),
        format!("{}/pki/", link.display()),
        "--kubeconfig-dir".into(),
        format!("{}/", link.display()),
    ];
    let out = bin().args(["renew", "all", "-o", "json"]).args(&dirs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("completed an interrupted renewal"));
    assert!(!pki.certs().join(".kubeadm-certs.journal").exists());
    assert_usable(&pki.kube());
}
