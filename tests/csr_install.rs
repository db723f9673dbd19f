//! The external-CA workflow: `csr` writes kubeadm's `--csr-only` layout (compared with real kubeadm
//! 1.20.2), idempotently; an external CA (OpenSSL here) signs; `install` checks each certificate before
//! anything is replaced. And `renew` on a PKI whose CA key is elsewhere skips exactly those entries.

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn req_text(path: &Path) -> (String, String) {
    let p = path.to_str().unwrap();
    let subject = openssl(&["req", "-noout", "-subject", "-nameopt", "RFC2253", "-in", p]);
    let text = openssl(&["req", "-noout", "-text", "-in", p]);
    let sans =
        text.lines().skip_while(|l| !l.contains("Subject Alternative Name")).nth(1).unwrap_or("").trim().to_string();
    (subject.trim().to_string(), sans)
}

#[test]
fn csr_layout_and_content_match_kubeadm_csr_only() {
    let theirs = std_pki();
    let ours = std_pki();
    let out = Command::new(kubeadm())
        .args([
            "certs",
            "renew",
            "all",
            "--csr-only",
            "--csr-dir",
            "/csrs",
            "--config",
            "/kubeadm-config.yaml",
            "--rootfs",
        ])
        .arg(theirs.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csr_dir = tempfile::tempdir().unwrap();
    let before = ours.snapshot();
    let (code, json, err) = run_on(&ours, &["csr", "--csr-dir", csr_dir.path().to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_unchanged(&before, &ours.snapshot(), "csr writes only into the CSR dir");
    let mut theirs_files: Vec<String> = std::fs::read_dir(theirs.root().join("csrs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut ours_files: Vec<String> =
        std::fs::read_dir(csr_dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    theirs_files.sort();
    ours_files.sort();
    assert_eq!(ours_files, theirs_files, "kubeadm's flat NAME.csr / NAME.key layout");
    for f in &ours_files {
        let meta = std::fs::metadata(csr_dir.path().join(f)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{f}");
        if let Some(name) = f.strip_suffix(".csr") {
            assert_eq!(
                req_text(&csr_dir.path().join(f)),
                req_text(&theirs.root().join("csrs").join(f)),
                "{name}: subject and SANs"
            );
            openssl(&["req", "-noout", "-verify", "-in", csr_dir.path().join(f).to_str().unwrap()]);
        }
    }
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let api = v["csrs"].as_array().unwrap().iter().find(|c| c["name"] == "apiserver").unwrap().clone();
    assert_eq!(api["extended_key_usage"], serde_json::json!(["serverAuth"]));
    assert_eq!(api["key_usage"], serde_json::json!(["digitalSignature", "keyEncipherment"]));
    assert_eq!(api["ca"], "ca");
    let peer = v["csrs"].as_array().unwrap().iter().find(|c| c["name"] == "etcd-peer").unwrap().clone();
    assert_eq!(peer["extended_key_usage"], serde_json::json!(["serverAuth", "clientAuth"]));

    // idempotent: a second run keeps every CSR and key; --force rewrites them
    let snap = Snapshot::of(csr_dir.path());
    let (code, json, _) = run_on(&ours, &["csr", "--csr-dir", csr_dir.path().to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap()["changed"], false);
    assert_unchanged(&snap, &Snapshot::of(csr_dir.path()), "csr twice");
    let (code, _, _) = run_on(&ours, &["csr", "apiserver", "--force", "--csr-dir", csr_dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    let changed = snap.changed(&Snapshot::of(csr_dir.path()));
    assert_eq!(changed, [Path::new("apiserver.csr"), Path::new("apiserver.key")]);
}

/// Signs every CSR in `dir` with the CA (OpenSSL as the external CA), using what `csr` said each needs.
fn sign_all(csrs: &serde_json::Value, ca_dir: &Path, dir: &Path, days: u32, drop_san: Option<&str>) {
    for c in csrs.as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let ca = match c["ca"].as_str().unwrap() {
            "ca" => "ca",
            "etcd-ca" => "etcd/ca",
            _ => "front-proxy-ca",
        };
        let mut ext = format!(
            "keyUsage=critical,{}\nextendedKeyUsage={}\nbasicConstraints=critical,CA:FALSE\n",
            c["key_usage"].as_array().unwrap().iter().map(|u| u.as_str().unwrap()).collect::<Vec<_>>().join(","),
            c["extended_key_usage"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(",")
        );
        let sans: Vec<&str> = c["sans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .filter(|s| Some(*s) != drop_san)
            .collect();
        if !sans.is_empty() {
            ext.push_str(&format!("subjectAltName={}\n", sans.join(",")));
        }
        let extfile = dir.join(format!("{name}.ext"));
        std::fs::write(&extfile, ext).unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            dir.join(format!("{name}.csr")).to_str().unwrap(),
            "-CA",
            ca_dir.join(format!("{ca}.crt")).to_str().unwrap(),
            "-CAkey",
            ca_dir.join(format!("{ca}.key")).to_str().unwrap(),
            "-CAcreateserial",
            "-days",
            &days.to_string(),
            "-sha256",
            "-extfile",
            extfile.to_str().unwrap(),
            "-out",
            dir.join(format!("{name}.crt")).to_str().unwrap(),
        ]);
    }
}

#[test]
fn external_ca_signs_and_install_checks_then_installs_all() {
    // the node has no ca.key; the CA's owner keeps it elsewhere (here: a copy of the kubeadm PKI)
    let ca_home = std_pki();
    let node = std_pki();
    std::fs::remove_file(node.certs().join("ca.key")).unwrap();
    let csr_dir = tempfile::tempdir().unwrap();
    let d = csr_dir.path().to_str().unwrap();
    let (code, json, err) = run_on(&node, &["csr", "--csr-dir", d, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let csrs = serde_json::from_str::<serde_json::Value>(&json).unwrap()["csrs"].clone();

    // a certificate that lost a SAN is refused; nothing is installed, not even the good ones
    sign_all(&csrs, &ca_home.certs(), csr_dir.path(), 365, Some("DNS:kubernetes.default"));
    let before = node.snapshot();
    let (code, _, err) = run_on(&node, &["install", "--csr-dir", d]);
    assert_eq!(code, 1);
    assert!(err.contains("apiserver.crt") && err.contains("lacks the SAN DNS:kubernetes.default"), "{err}");
    assert_unchanged(&before, &node.snapshot(), "a refused install");

    // signed by a CA that is not the node's: refused
    let stranger = kubeadm_pki("std", "cp9", "127.0.0.19");
    sign_all(&csrs, &stranger.certs(), csr_dir.path(), 365, None);
    let (code, _, err) = run_on(&node, &["install", "--csr-dir", d]);
    assert_eq!(code, 1);
    assert!(err.contains("not issued by") || err.contains("does not verify"), "{err}");
    assert_unchanged(&before, &node.snapshot(), "a refused install");

    // signed right: check mode reports, then everything is installed at once
    sign_all(&csrs, &ca_home.certs(), csr_dir.path(), 365, None);
    let (code, out, err) = run_on(&node, &["install", "--csr-dir", d, "--check"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("would_install"), "{out}");
    let v = module_on(
        &node,
        serde_json::json!({"state": "install", "csr_dir": d, "_ansible_check_mode": true, "_ansible_diff": true}),
    );
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["diff"].as_array().unwrap().len(), 10, "{v}");
    assert!(v["diff"][0]["after"].as_str().unwrap().contains("serial: "), "{v}");
    assert_unchanged(&before, &node.snapshot(), "check mode");
    let (code, json, err) = run_on(&node, &["install", "--csr-dir", d, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["renewed"].as_array().unwrap().len(), 10, "{v}");
    assert_eq!(
        v["restart"],
        serde_json::json!(["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"])
    );
    let p = node.certs();
    openssl(&["verify", "-CAfile", p.join("ca.crt").to_str().unwrap(), p.join("apiserver.crt").to_str().unwrap()]);
    openssl(&[
        "verify",
        "-CAfile",
        p.join("etcd/ca.crt").to_str().unwrap(),
        p.join("etcd/server.crt").to_str().unwrap(),
    ]);
    assert_eq!(node.read("pki/apiserver.key"), std::fs::read(csr_dir.path().join("apiserver.key")).unwrap());
    assert_eq!(std::fs::metadata(p.join("apiserver.key")).unwrap().permissions().mode() & 0o777, 0o600);
    // the kubeconfig now embeds the signed certificate and its key
    let installed = cert_der(&node, "admin.conf");
    let signed =
        ::pem::parse(std::fs::read(csr_dir.path().join("admin.conf.crt")).unwrap()).unwrap().contents().to_vec();
    assert_eq!(installed, signed);
    let (code, _, err) = run_on(&node, &["check"]);
    assert_eq!(code, 0, "{err}");
    // installing again changes nothing
    let snap = node.snapshot();
    let (code, json, _) = run_on(&node, &["install", "--csr-dir", d, "-o", "json"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap()["changed"], false);
    assert_unchanged(&snap, &node.snapshot(), "install twice");
}

#[test]
fn renew_skips_what_an_external_ca_signs() {
    let pki = kubeadm_pki("extca", "cp1", "127.0.0.11");
    let (code, json, err) = run_on(&pki, &["renew", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let action =
        |n: &str| v["certificates"].as_array().unwrap().iter().find(|c| c["name"] == n).unwrap()["action"].clone();
    for n in ["apiserver", "apiserver-kubelet-client", "admin.conf", "controller-manager.conf", "scheduler.conf"] {
        assert_eq!(action(n), "skipped_externally_managed", "{n}");
    }
    for n in ["front-proxy-client", "etcd-server", "etcd-peer", "apiserver-etcd-client", "etcd-healthcheck-client"] {
        assert_eq!(action(n), "renewed", "{n}");
    }
    assert!(v["msg"].as_str().unwrap().contains("externally managed"), "{v}");
}

// ---------------------------------------------------------------- the CSR directory (issue 9)

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn uid_of(path: &Path) -> u32 {
    std::os::unix::fs::MetadataExt::uid(&std::fs::symlink_metadata(path).unwrap())
}

#[test]
fn csr_and_install_without_a_csr_dir_are_refused_and_touch_nothing() {
    // kubeadm 1.20 wrote NAME.key into the cert dir by default: for apiserver that is the live key
    let pki = std_pki();
    let before = pki.snapshot();
    for args in [&["csr"][..], &["csr", "apiserver", "--force"], &["install"]] {
        let (code, out, err) = run_on(&pki, args);
        assert_eq!(code, 2, "{args:?} is a usage error: {out}{err}");
        assert!(err.contains("--csr-dir"), "{args:?}: the message names the flag: {err}");
    }
    for state in ["csr", "install"] {
        let v = module_on(&pki, serde_json::json!({"state": state}));
        assert_eq!(v["failed"], true, "{state}: {v}");
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.contains("csr_dir") && msg.contains(state), "{state}: {msg}");
    }
    assert_unchanged(&before, &pki.snapshot(), "CSR runs without a CSR dir");
}

#[test]
fn a_csr_dir_that_is_a_directory_of_the_pki_is_refused() {
    let pki = std_pki();
    // a PKI file that is a link: the directory it points into holds the PKI too
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::rename(pki.certs().join("front-proxy-client.crt"), elsewhere.path().join("front-proxy-client.crt"))
        .unwrap();
    std::os::unix::fs::symlink(
        elsewhere.path().join("front-proxy-client.crt"),
        pki.certs().join("front-proxy-client.crt"),
    )
    .unwrap();
    let links = tempfile::tempdir().unwrap();
    let link_to_certs = links.path().join("pki-link");
    std::os::unix::fs::symlink(pki.certs(), &link_to_certs).unwrap();
    let before = (pki.snapshot(), Snapshot::of(elsewhere.path()));
    let cases = [
        (pki.certs(), "is the cert dir"),
        (pki.kube(), "is the kubeconfig dir"),
        (pki.certs().join("etcd"), "is the etcd cert dir"),
        (link_to_certs.clone(), "is the cert dir"),
        (pki.certs().join("etcd/.."), "is the cert dir"),
        (elsewhere.path().to_path_buf(), "front-proxy-client.crt really is"),
    ];
    for (dir, what) in &cases {
        let d = dir.to_str().unwrap();
        let (code, out, err) = run_on(&pki, &["csr", "--force", "--csr-dir", d]);
        assert_eq!(code, 1, "{d}: {out}{err}");
        assert!(err.contains(d) && err.contains(what), "{d}: says which directory and why: {err}");
        assert!(err.contains("would replace a key the control plane uses"), "{err}");
        for state in ["csr", "install"] {
            let v = module_on(&pki, serde_json::json!({"state": state, "csr_dir": d}));
            assert_eq!(v["failed"], true, "{state} {d}: {v}");
            assert!(v["msg"].as_str().unwrap().contains(what), "{state} {d}: {v}");
        }
    }
    assert!(before == (pki.snapshot(), Snapshot::of(elsewhere.path())), "a refused CSR dir changed the PKI");
    // the check is the CSR dir's, not a name's: a directory of its own beside the cert dir is fine
    let own = pki.root().join("csr");
    let (code, _, err) = run_on(&pki, &["csr", "apiserver", "--csr-dir", own.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_missing_csr_dir_is_created_0700_with_its_parents() {
    let pki = std_pki();
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("a/b/csr");
    let d = dir.to_str().unwrap();
    // check mode writes nothing, not even the directory
    let (code, out, err) = run_on(&pki, &["csr", "apiserver", "--csr-dir", d, "--check"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("would_write_csr"), "{out}");
    assert!(!base.path().join("a").exists(), "check mode created the CSR dir");
    let (code, _, err) = run_on(&pki, &["csr", "apiserver", "--csr-dir", d]);
    assert_eq!(code, 0, "{err}");
    for made in [base.path().join("a"), base.path().join("a/b"), dir.clone()] {
        assert_eq!(mode_of(&made), 0o700, "{}: holds private keys", made.display());
    }
    assert_eq!(mode_of(&dir.join("apiserver.key")), 0o600);
    assert!(dir.join("apiserver.csr").is_file());
}

#[test]
fn a_csr_dir_another_user_could_write_is_refused() {
    assert!(is_root(), "this test changes owners: run the tests as root");
    let pki = std_pki();
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("csr");
    let d = dir.to_str().unwrap();
    std::fs::create_dir(&dir).unwrap();
    let refused = |needles: &[&str]| {
        let before = Snapshot::of(base.path());
        let (code, out, err) = run_on(&pki, &["csr", "--csr-dir", d]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(err.contains("another user could write"), "{err}");
        for n in needles {
            assert!(err.contains(n), "does not say {n:?}: {err}");
        }
        let v = module_on(&pki, serde_json::json!({"state": "csr", "csr_dir": d}));
        assert_eq!(v["failed"], true, "{v}");
        assert_unchanged(&before, &Snapshot::of(base.path()), "a refused CSR dir");
    };
    for (mode, who) in [(0o777, "other users"), (0o770, "its group"), (0o1777, "other users")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        refused(&[who, &format!("mode {mode:o}")]);
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(4242), Some(4242)).unwrap();
    refused(&["owned by uid 4242"]);
    // a directory above it that others can write (no sticky bit, unlike /tmp) lets them swap it
    std::os::unix::fs::chown(&dir, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(&[base.path().to_str().unwrap(), "mode 777"]);
    // ... also for a CSR dir still to be created there
    std::fs::remove_dir(&dir).unwrap();
    refused(&["mode 777"]);
    assert!(!dir.exists());
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let (code, _, err) = run_on(&pki, &["csr", "--csr-dir", d]);
    assert_eq!(code, 0, "{err}");
    // a link to a good CSR dir, in a directory another user owns: they could point it elsewhere
    let theirs = base.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::symlink(&dir, theirs.join("csr")).unwrap();
    std::os::unix::fs::chown(&theirs, Some(4242), Some(4242)).unwrap();
    let via = theirs.join("csr");
    let (code, _, err) = run_on(&pki, &["csr", "--csr-dir", via.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("another user could write or swap") && err.contains("owned by uid 4242"), "{err}");
}

#[test]
fn a_key_another_user_owns_in_the_csr_dir_is_never_reused_and_new_keys_are_ours() {
    assert!(is_root(), "this test changes owners: run the tests as root");
    let pki = std_pki();
    let base = tempfile::tempdir().unwrap();
    let d = base.path().to_str().unwrap();
    let (key, csr) = (base.path().join("apiserver.key"), base.path().join("apiserver.csr"));
    let (code, _, err) = run_on(&pki, &["csr", "apiserver", "--csr-dir", d]);
    assert_eq!(code, 0, "{err}");
    for force in [false, true] {
        // a CSR and key that match (left by a run, planted, or copied by another account), owned by uid 4242
        for f in [&key, &csr] {
            std::os::unix::fs::chown(f, Some(4242), Some(4242)).unwrap();
        }
        let planted = std::fs::read(&key).unwrap();
        let mut args = vec!["csr", "apiserver", "--csr-dir", d, "-o", "json"];
        if force {
            args.push("--force");
        }
        let (code, out, err) = run_on(&pki, &args);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["changed"], true, "force={force}: a key another user owns was kept: {out}");
        assert_ne!(std::fs::read(&key).unwrap(), planted, "force={force}: the planted key was reused");
        for f in [&key, &csr] {
            assert_eq!(uid_of(f), 0, "force={force}: {} belongs to the user running the tool", f.display());
            assert_eq!(mode_of(f), 0o600, "{}", f.display());
        }
    }
    // install never takes a key another user owns either
    sign_all(
        &serde_json::json!([{"name": "apiserver", "ca": "ca", "key_usage": ["digitalSignature", "keyEncipherment"],
        "extended_key_usage": ["serverAuth"], "sans": csr_sans(&pki, &csr)}]),
        &pki.certs(),
        base.path(),
        365,
        None,
    );
    std::os::unix::fs::chown(&key, Some(4242), Some(4242)).unwrap();
    let before = pki.snapshot();
    let (code, _, err) = run_on(&pki, &["install", "apiserver", "--csr-dir", d]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("apiserver.key") && err.contains("owned by uid 4242"), "{err}");
    assert_unchanged(&before, &pki.snapshot(), "install of a key another user owns");
}

/// The SANs `csr` reported for apiserver, read back from its CSR as `DNS:x` / `IP:y`.
fn csr_sans(_pki: &Pki, csr: &Path) -> Vec<String> {
    let (_, sans) = req_text(csr);
    sans.split(", ").map(|s| s.replace("IP Address:", "IP:")).filter(|s| !s.is_empty()).collect()
}
