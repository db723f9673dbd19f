//! Secrets: temp files are created 0600 with O_EXCL (seen in the system calls, and on disk at a fault
//! point), keys are 0600 and owned like the files they replace, backups 0600, the journal holds paths
//! only, and no key material reaches stdout, stderr, diffs, return values or Ansible's output and log
//! (with and without `no_log`), on success and on failure.

mod common;
use common::*;
#[path = "crash/support.rs"]
mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

/// Every file a run created, from `strace`: (path, flags, mode).
fn created_files(pki: &Pki, args: &[&str]) -> Vec<(String, String, String)> {
    let log = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2,creat", "-o"])
        .arg(log.path())
        .arg(bin_path())
        .args(args)
        .args(pki.dirs())
        .output()
        .expect("strace is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(log.path()).unwrap();
    let root = pki.root().display().to_string();
    text.lines()
        .filter(|l| l.contains(&root) && (l.contains("O_CREAT") || l.contains("creat(")))
        .map(|l| {
            let path = l.split('"').nth(1).unwrap().to_string();
            let rest = l.split('"').nth(2).unwrap();
            let mut parts = rest.trim_start_matches(", ").split(", ");
            let flags = parts.next().unwrap_or_default().to_string();
            let mode = parts.next().unwrap_or_default().split(')').next().unwrap_or_default().to_string();
            (path, flags, mode)
        })
        .collect()
}

/// Splits off the lock file (`CERT_DIR/.kubeadm-certs.lock`), which is opened, not made exclusively: a run
/// that finds one left by a killed run takes it over. It is never written, and never through a link.
fn without_lock_file(created: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    let (lock, rest): (Vec<_>, Vec<_>) = created.into_iter().partition(|(p, _, _)| p.ends_with("/.kubeadm-certs.lock"));
    assert_eq!(lock.len(), 1, "the lock file is opened once: {lock:#?}");
    let (path, flags, mode) = &lock[0];
    assert!(flags.contains("O_CREAT") && flags.contains("O_NOFOLLOW") && !flags.contains("O_TRUNC"), "{path}: {flags}");
    assert_eq!(mode, "0600", "{path}");
    rest
}

#[test]
fn every_file_is_created_0600_with_o_excl_and_nothing_is_written_in_place() {
    let pki = std_pki();
    let created = without_lock_file(created_files(&pki, &["renew", "all", "--force", "--backup"]));
    // 17 temp files, 17 backups (staged as temps too), the journal's temp
    assert_eq!(created.len(), 35, "{created:#?}");
    for (path, flags, mode) in &created {
        assert!(flags.contains("O_CREAT") && flags.contains("O_EXCL"), "{path}: {flags}");
        assert!(!flags.contains("O_TRUNC"), "{path}: {flags}");
        assert_eq!(mode, "0600", "{path}");
        let name = Path::new(path).file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with('.') && name.ends_with(".kubeadm-certs-tmp"), "{path}: not a temp name");
    }
    // the csr command's files too
    let csr_dir = pki.root().join("csr");
    let created = without_lock_file(created_files(&pki, &["csr", "all", "--csr-dir", csr_dir.to_str().unwrap()]));
    assert_eq!(created.len(), 20 + 1, "{created:#?}");
    for (path, flags, mode) in &created {
        assert!(flags.contains("O_EXCL") && mode == "0600", "{path}: {flags} {mode}");
    }
}

/// The temp file staged for `target` (`.NAME.PID.INDEX.kubeadm-certs-tmp`).
fn temp_for(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    let dir = target.parent().unwrap();
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&format!(".{name}.")) && n.ends_with(".kubeadm-certs-tmp") && !n.contains(".backup.")
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn a_staged_key_is_0600_and_owned_like_the_key_it_replaces() {
    let pki = std_pki();
    let key = pki.certs().join("apiserver.key");
    let crt = pki.certs().join("apiserver.crt");
    std::os::unix::fs::chown(&key, Some(4242), Some(4243)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&crt, Some(4242), Some(4243)).unwrap();
    let old_key = std::fs::read(&key).unwrap();
    // the writes are admin.conf (0), apiserver.key (1), apiserver.crt (2), ...: stop right after the
    // certificate is staged and look at both temp files
    support::killed_at("staged-2", &["renew", "all", "--force"], &pki.dirs());
    let tk = temp_for(&key);
    let m = std::fs::metadata(&tk).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (4242, 4243, 0o600), "{}", tk.display());
    let staged = std::fs::read(&tk).unwrap();
    assert_ne!(staged, old_key);
    assert!(String::from_utf8_lossy(&staged).starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let tc = temp_for(&crt);
    let m = std::fs::metadata(&tc).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (4242, 4243, 0o644), "{}", tc.display());
    // the next run removes them and renews; the key keeps its owner, at 0600
    let (code, _, err) = run_on(&pki, &["renew", "all", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(!tk.exists() && !tc.exists());
    let m = std::fs::metadata(&key).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (4242, 4243, 0o600));
}

#[test]
fn the_journal_holds_paths_only() {
    let pki = std_pki();
    support::killed_at("journal", &["renew", "all", "--force", "--backup"], &pki.dirs());
    let journal = pki.certs().join(".kubeadm-certs.journal");
    let m = std::fs::metadata(&journal).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&journal).unwrap();
    // hex-encoded paths: target, temp, rollback link (or -)
    for line in text.lines() {
        for field in line.split(' ') {
            assert!(field == "-" || field.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
        }
    }
    assert_eq!(text.lines().count(), 34, "17 files and 17 backups");
}

/// Recognisers for the key material of a PKI as it is now: every base64 line of every PEM private key,
/// and 40-character pieces of every kubeconfig's client-key-data (a leak of 80 or more characters of
/// either is caught).
fn key_markers(pki: &Pki, extra_dirs: &[&Path]) -> Vec<String> {
    let mut markers = Vec::new();
    let mut dirs = vec![pki.certs(), pki.certs().join("etcd"), pki.kube()];
    dirs.extend(extra_dirs.iter().map(|d| d.to_path_buf()));
    for dir in dirs {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let Ok(text) = std::fs::read_to_string(&p) else { continue };
            if text.contains("PRIVATE KEY-----") {
                markers.extend(text.lines().filter(|l| l.len() >= 40 && !l.starts_with("-----")).map(String::from));
            }
            for line in text.lines().filter(|l| l.contains("client-key-data:")) {
                let data = line.split_whitespace().last().unwrap();
                markers.extend(
                    data.as_bytes()
                        .chunks(40)
                        .filter(|c| c.len() == 40)
                        .map(|c| String::from_utf8_lossy(c).into_owned()),
                );
                // the PEM inside, too
                let pem = String::from_utf8(base64_decode(data)).unwrap();
                markers.extend(pem.lines().filter(|l| l.len() >= 40 && !l.starts_with("-----")).map(String::from));
            }
        }
    }
    assert!(markers.len() > 100, "too few markers: {}", markers.len());
    markers
}

#[track_caller]
fn assert_no_key_material(what: &str, text: &str, markers: &[String]) {
    assert!(!text.contains("-----BEGIN"), "{what}: a PEM block in the output");
    for m in markers {
        assert!(!text.contains(m.as_str()), "{what}: key material in the output");
    }
}

#[test]
fn no_key_material_in_any_output_on_success_or_failure() {
    let pki = std_pki();
    let csr_dir = tempfile::tempdir().unwrap();
    let csr = csr_dir.path().to_str().unwrap();
    let mut outputs: Vec<(String, String)> = Vec::new();
    let cli = |pki: &Pki, args: &[&str], outputs: &mut Vec<(String, String)>| {
        let (_, out, err) = run_on(pki, args);
        outputs.push((format!("{args:?}"), out + &err));
    };
    let old = key_markers(&pki, &[]);
    cli(&pki, &["check"], &mut outputs);
    cli(&pki, &["check", "-o", "json"], &mut outputs);
    cli(&pki, &["check", "-o", "yaml"], &mut outputs);
    cli(&pki, &["renew", "all", "--force", "--check", "--diff"], &mut outputs);
    cli(&pki, &["renew", "all", "--force", "--diff", "--backup"], &mut outputs);
    cli(&pki, &["renew", "all", "--force", "--diff", "-o", "json", "--key-algorithm", "ecdsa-p384"], &mut outputs);
    cli(&pki, &["csr", "all", "--csr-dir", csr, "-o", "json"], &mut outputs);
    cli(&pki, &["csr", "all", "--csr-dir", csr], &mut outputs);
    for (args, name) in [
        (json!({"state": "check"}), "module check"),
        (
            json!({"state": "renew", "force": true, "_ansible_diff": true, "_ansible_check_mode": true}),
            "module check mode",
        ),
        (json!({"state": "renew", "force": true, "backup": true, "_ansible_diff": true}), "module renew"),
        (json!({"state": "csr", "csr_dir": csr, "force": true}), "module csr"),
        (json!({"state": "install", "csr_dir": csr, "_ansible_diff": true}), "module install (nothing signed)"),
    ] {
        outputs.push((name.into(), module_on(&pki, args).to_string()));
    }
    // failures that involve keys: a mismatched key, a corrupt one, one of the wrong kind, a link
    let failures = |f: &dyn Fn(&Pki), what: &str, outputs: &mut Vec<(String, String)>| {
        let pki = std_pki();
        f(&pki);
        let (code, out, err) = run_on(&pki, &["renew", "all", "--force", "--diff"]);
        assert_eq!(code, 1, "{what}: {out}{err}");
        outputs.push((what.into(), out + &err));
        let v = module_on(&pki, json!({"state": "renew", "force": true, "_ansible_diff": true}));
        assert_eq!(v["failed"], true, "{what}: {v}");
        outputs.push((format!("module: {what}"), v.to_string()));
        pki
    };
    let kept = vec![
        failures(
            &|p| std::fs::write(p.certs().join("apiserver.key"), p.read("pki/front-proxy-client.key")).unwrap(),
            "mismatched key",
            &mut outputs,
        ),
        failures(
            &|p| {
                let k = String::from_utf8(p.read("pki/apiserver.key")).unwrap();
                let lines: Vec<&str> = k.lines().collect();
                let cut = lines[..lines.len() / 2].join("\n") + "\n" + lines[lines.len() - 1] + "\n";
                std::fs::write(p.certs().join("apiserver.key"), cut).unwrap()
            },
            "truncated key",
            &mut outputs,
        ),
        failures(
            &|p| {
                let k = String::from_utf8(p.read("pki/apiserver.key")).unwrap();
                std::fs::write(p.certs().join("apiserver.key"), k.replace("RSA PRIVATE KEY", "CERTIFICATE")).unwrap()
            },
            "key in a CERTIFICATE block",
            &mut outputs,
        ),
        failures(
            &|p| {
                let k = String::from_utf8(p.read("pki/apiserver.key")).unwrap();
                std::fs::write(p.certs().join("apiserver.key"), k.replace("RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY"))
                    .unwrap()
            },
            "a key labelled encrypted",
            &mut outputs,
        ),
        failures(
            &|p| {
                // base64 that decodes, DER that does not
                let k = String::from_utf8(p.read("pki/apiserver.key")).unwrap();
                let mut lines: Vec<String> = k.lines().map(String::from).collect();
                lines[3] = lines[3].chars().rev().collect();
                std::fs::write(p.certs().join("apiserver.key"), lines.join("\n") + "\n").unwrap()
            },
            "a key with scrambled DER",
            &mut outputs,
        ),
        failures(
            &|p| {
                let t = String::from_utf8(p.read("admin.conf")).unwrap();
                let s = String::from_utf8(p.read("scheduler.conf")).unwrap();
                let key_line = |x: &str| x.lines().find(|l| l.contains("client-key-data")).unwrap().to_string();
                std::fs::write(p.kube().join("admin.conf"), t.replace(&key_line(&t), &key_line(&s))).unwrap()
            },
            "kubeconfig with another's key",
            &mut outputs,
        ),
    ];
    let mut markers = old;
    markers.extend(key_markers(&pki, &[csr_dir.path()]));
    for p in &kept {
        markers.extend(key_markers(p, &[]));
    }
    for (what, text) in &outputs {
        assert_no_key_material(what, text, &markers);
    }
}

#[test]
fn ansible_output_and_log_hold_no_key_material_and_no_log_hides_the_result() {
    let pki = std_pki();
    let work = tempfile::tempdir().unwrap();
    let library = work.path().join("library");
    std::fs::create_dir(&library).unwrap();
    std::os::unix::fs::symlink(bin_path(), library.join("kcerts")).unwrap();
    let log = work.path().join("ansible.log");
    let playbook = work.path().join("play.yml");
    std::fs::write(
        &playbook,
        format!(
            r#"- hosts: localhost
  gather_facts: false
  tasks:
    - name: renew in check mode with a diff
      kcerts: {{state: renew, force: true, cert_dir: "{certs}", kubeconfig_dir: "{kube}"}}
      check_mode: true
      diff: true
    - name: renew with a diff and backups
      kcerts: {{state: renew, force: true, backup: true, cert_dir: "{certs}", kubeconfig_dir: "{kube}"}}
      diff: true
      register: renewed
    - name: renew again, no_log
      kcerts: {{state: renew, force: true, cert_dir: "{certs}", kubeconfig_dir: "{kube}"}}
      diff: true
      no_log: true
      register: hidden
    - name: a failing task, no_log
      kcerts: {{state: renew, force: true, cert_dir: "{certs}/nonexistent", kubeconfig_dir: "{kube}"}}
      no_log: true
      ignore_errors: true
    - name: what no_log registered
      debug: {{var: hidden}}
"#,
            certs = pki.certs().display(),
            kube = pki.kube().display()
        ),
    )
    .unwrap();
    let old = key_markers(&pki, &[]);
    let out = Command::new("ansible-playbook")
        .args(["-vvv", "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=/usr/bin/python3"])
        .arg(&playbook)
        .env("ANSIBLE_LIBRARY", &library)
        .env("ANSIBLE_LOG_PATH", &log)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOME", work.path().join("home"))
        .env("ANSIBLE_LOCAL_TEMP", work.path().join("tmp"))
        .output()
        .expect("ansible-playbook is installed");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let log_text = std::fs::read_to_string(&log).unwrap();
    // the diff is shown (serials, validity, subject, SANs), and where no_log is set the result is censored
    assert!(stdout.contains("before_header") || stdout.contains("---"), "{stdout}");
    assert!(stdout.contains("serial"), "no diff shown:\n{stdout}");
    assert!(stdout.contains("the output has been hidden due to the fact that 'no_log: true'"), "{stdout}");
    let mut markers = old;
    markers.extend(key_markers(&pki, &[]));
    for (what, text) in [("stdout", &stdout), ("stderr", &stderr), ("log", &log_text)] {
        assert_no_key_material(what, text, &markers);
    }
}
