//! Credential copies: kubeconfigs outside the kubeconfig dir that carry a client certificate of this cluster
//! (`check`), and the refresh of those that are a former admin.conf (`renew --refresh-copies`), on PKIs real
//! kubeadm 1.20.2 made, beside "homes" of their own whose users are nobody (65534), as a user's home would be.
//! Every run is pointed at those homes alone (`--no-default-copies`), never at this machine's.

mod common;
use common::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const NOBODY: u32 = 65534;

/// `ROOT/home/USER/.kube/config` for users of nobody's uid, under a directory only root may write.
struct Homes {
    dir: tempfile::TempDir,
}

impl Homes {
    fn new() -> Homes {
        assert!(is_root(), "these tests give files to another user: run them as root");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        std::fs::set_permissions(dir.path().join("home"), std::fs::Permissions::from_mode(0o755)).unwrap();
        Homes { dir }
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    /// `user`'s `~/.kube` (nobody's, 0700, its home 0755), and the path of `config` in it.
    fn kube(&self, user: &str) -> PathBuf {
        let home = self.root().join("home").join(user);
        let kube = home.join(".kube");
        std::fs::create_dir_all(&kube).unwrap();
        for (d, mode) in [(&home, 0o755), (&kube, 0o700)] {
            std::os::unix::fs::chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        kube.join("config")
    }
    /// `user`'s `~/.kube/config` holding `bytes`, nobody's, with `mode`.
    fn put(&self, user: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let path = self.kube(user);
        std::fs::write(&path, bytes).unwrap();
        std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
    fn pattern(&self) -> String {
        self.root().join("home/*/.kube/config").display().to_string()
    }
    fn snapshot(&self) -> Snapshot {
        Snapshot::of(self.root())
    }
}

/// `ARGS...` on the PKI, looking for copies in `homes` only.
fn on(pki: &Pki, homes: &Homes, args: &[&str]) -> (i32, String, String) {
    let pattern = homes.pattern();
    let mut all = args.to_vec();
    all.extend(["--no-default-copies", "--copies", &pattern]);
    run_on(pki, &all)
}

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The `copies` entry of `path` in a document or module result.
fn copy<'a>(v: &'a serde_json::Value, path: &Path) -> Option<&'a serde_json::Value> {
    v["copies"].as_array()?.iter().find(|c| c["path"] == path.display().to_string())
}

fn owner_and_mode(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

#[test]
fn check_reports_a_copy_of_admin_conf_with_its_expiry_owner_and_mode_and_whether_it_is_current() {
    let pki = std_pki();
    let homes = Homes::new();
    let alice = homes.put("alice", &pki.read("admin.conf"), 0o600);
    let (code, out, err) = on(&pki, &homes, &["check", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v = json_of(&out);
    let admin = v["certificates"].as_array().unwrap().iter().find(|c| c["name"] == "admin.conf").unwrap();
    let c = copy(&v, &alice).unwrap_or_else(|| panic!("alice's copy not reported: {v}"));
    assert_eq!(c["expirationDate"], admin["expirationDate"], "{c}");
    assert_eq!(
        (c["current"].as_bool(), c["owner"].as_str(), c["mode"].as_str()),
        (Some(true), Some("nobody"), Some("0600"))
    );
    assert_eq!(c["user"], "kubernetes-admin");
    assert!(c["subject"].as_str().unwrap().ends_with("CN=kubernetes-admin"), "{c}");
    // the table after kubeadm's two, which stay as they were
    let (_, table, _) = on(&pki, &homes, &["check"]);
    let (_, plain, _) = run_on(&pki, &["check", "--no-default-copies"]);
    assert!(table.starts_with(&plain), "kubeadm's tables changed:\n{table}");
    let row = table.lines().find(|l| l.starts_with(&alice.display().to_string())).unwrap_or_else(|| panic!("{table}"));
    assert!(table.contains("\nKUBECONFIG COPY ") && row.contains(" yes ") && row.contains(" nobody "), "{table}");

    // admin.conf renewed without the copies: the copy keeps the old certificate, and both commands say so
    let (code, out, err) = on(&pki, &homes, &["renew", "admin.conf", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("[warning] {}: a copy of admin.conf that keeps its old certificate", alice.display())),
        "{out}"
    );
    assert!(out.contains("--refresh-copies"), "{out}");
    let (_, out, _) = on(&pki, &homes, &["check", "-o", "json"]);
    assert_eq!(copy(&json_of(&out), &alice).unwrap()["current"], false);
    // --fail-within covers copies: everything else renewed for 500 days, the copy alone expires within 400
    let (code, _, err) = run_on(&pki, &["renew", "--force", "--validity", "500d", "--no-default-copies"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = on(&pki, &homes, &["check", "--fail-within", "400d"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(&format!("1 expire within 400d: {}", alice.display())), "{err}");
}

#[test]
fn what_is_not_a_credential_of_this_cluster_is_not_a_copy() {
    let pki = std_pki();
    let homes = Homes::new();
    // another cluster's admin.conf: a CA of the same name, another key
    let stranger = kubeadm_pki("std", "cp9", "127.0.0.19");
    homes.put("bob", &stranger.read("admin.conf"), 0o600);
    let notes = homes.put("carol", b"hello: [not a kubeconfig\n", 0o600);
    // a user whose certificate is a file, not embedded: nothing of this cluster in the kubeconfig itself
    let admin = String::from_utf8(pki.read("admin.conf")).unwrap();
    let named = admin
        .lines()
        .map(|l| if l.contains("client-certificate-data") { "    client-certificate: /some/file.crt" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    homes.put("dave", named.as_bytes(), 0o600);
    let (code, out, err) = on(&pki, &homes, &["check", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v = json_of(&out);
    assert!(v.get("copies").is_none(), "none of them is a copy: {v}");
    assert!(!err.contains("carol"), "a default place stays quiet about what is not a kubeconfig: {err}");
    // named explicitly, each says why it is not one; kubeadm's own file in the kubeconfig dir is never a copy
    let admin_conf = pki.kube().join("admin.conf");
    let (code, out, err) = run_on(
        &pki,
        &[
            "check",
            "-o",
            "json",
            "--no-default-copies",
            "--copies",
            notes.to_str().unwrap(),
            "--copies",
            admin_conf.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(json_of(&out).get("copies").is_none(), "{out}");
    assert!(
        err.contains(&format!("{}: not a kubeconfig with a client certificate of this cluster's CA", notes.display())),
        "{err}"
    );
    assert!(!err.contains("not a kubeconfig") || !err.contains("admin.conf:"), "{err}");
    assert!(!err.contains("hello"), "nothing of the file is quoted: {err}");
    let (code, _, err) = run_on(&pki, &["check", "--copies", "relative/config"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("relative/config is not an absolute path"), "{err}");
}

#[test]
fn a_link_a_user_places_is_never_followed_for_reading_or_writing_and_roots_own_links_are() {
    let pki = std_pki();
    let homes = Homes::new();
    let before_renewal = pki.read("admin.conf");
    // what a user would like root to read or overwrite: a root-only file that is even a former admin.conf
    let vault = homes.root().join("vault");
    std::fs::create_dir(&vault).unwrap();
    let shadow = vault.join("shadow");
    std::fs::write(&shadow, "root:$6$secret-hash:19000:0:99999:7:::\n").unwrap();
    let prize = vault.join("config");
    std::fs::write(&prize, &before_renewal).unwrap();
    for f in [&shadow, &prize] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let link = |at: &Path, to: &Path| {
        let _ = std::fs::remove_file(at);
        std::os::unix::fs::symlink(to, at).unwrap();
        std::os::unix::fs::lchown(at, Some(NOBODY), Some(NOBODY)).unwrap();
    };
    let eve = homes.kube("eve");
    link(&eve, &shadow);
    let mallory = homes.kube("mallory");
    link(&mallory, &prize);
    // a whole ~/.kube that is a link to root's directory
    let trent_kube = homes.kube("trent").parent().unwrap().to_path_buf();
    std::fs::remove_dir(&trent_kube).unwrap();
    link(&trent_kube, &vault);
    let vault_before = Snapshot::of(&vault);
    let links_before = [&eve, &mallory, &trent_kube].map(|l| (std::fs::read_link(l).unwrap(), owner_and_mode(l)));

    let (code, out, err) = on(&pki, &homes, &["check", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(json_of(&out).get("copies").is_none(), "a link was followed: {out}");
    assert!(err.contains(&format!("{}: is a symbolic link (to {})", eve.display(), shadow.display())), "{err}");
    assert!(
        err.contains(&format!("{} on its way is a symbolic link (to {})", trent_kube.display(), vault.display())),
        "{err}"
    );
    assert!(!format!("{out}{err}").contains("secret-hash"), "the target was read: {err}");
    // nor is a directory listed through a user's link for a `*`: nothing of what the link leads to is named
    let through = trent_kube.join("*");
    let (code, out, err) =
        run_on(&pki, &["check", "-o", "json", "--no-default-copies", "--copies", through.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(json_of(&out).get("copies").is_none() && !err.contains("shadow"), "listed through a link: {err}");
    // a renewal that refreshes copies writes none of them, nor through them
    let (code, out, err) = on(&pki, &homes, &["renew", "admin.conf", "--force", "--refresh-copies", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(json_of(&out).get("copies").is_none(), "{out}");
    assert_unchanged(&vault_before, &Snapshot::of(&vault), "the links' targets");
    let links_after = [&eve, &mallory, &trent_kube].map(|l| (std::fs::read_link(l).unwrap(), owner_and_mode(l)));
    assert_eq!(links_before, links_after, "the links themselves changed");
    assert!(std::fs::read_dir(&vault).unwrap().count() == 2, "something was created beside the targets");

    // a link root made, in a directory only root may write (`/home -> /srv/home`), is followed
    let homes_link = homes.root().join("users");
    std::os::unix::fs::symlink(homes.root().join("home"), &homes_link).unwrap();
    let alice = homes.put("alice", &pki.read("admin.conf"), 0o600);
    let via = homes_link.join("alice/.kube/config");
    let (code, out, err) = run_on(
        &pki,
        &[
            "check",
            "-o",
            "json",
            "--no-default-copies",
            "--copies",
            &homes_link.join("*/.kube/config").display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(copy(&json_of(&out), &via).map(|c| c["current"].clone()), Some(true.into()), "{out}");
    assert!(alice.exists());
}

#[test]
fn an_exact_former_admin_conf_is_refreshed_keeping_owner_and_mode_and_an_edited_one_is_left_alone_with_its_reason() {
    let pki = std_pki();
    let homes = Homes::new();
    let admin = pki.read("admin.conf");
    let alice = homes.put("alice", &admin, 0o640);
    let edited = String::from_utf8(admin.clone())
        .unwrap()
        .replace("    user: kubernetes-admin\n", "    namespace: dev\n    user: kubernetes-admin\n");
    let bob = homes.put("bob", edited.as_bytes(), 0o600);
    let carol = homes.put("carol", &pki.read("controller-manager.conf"), 0o600);
    let homes_before = homes.snapshot();

    // check mode: what would happen, with a diff of the certificates (never a key); nothing written
    let (code, out, err) =
        on(&pki, &homes, &["renew", "admin.conf", "--force", "--refresh-copies", "--check", "--diff", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v = json_of(&out);
    assert_eq!(copy(&v, &alice).unwrap()["action"], "would_refresh", "{v}");
    assert_eq!(copy(&v, &alice).unwrap()["reason"], "byte for byte admin.conf as it was before this run", "{v}");
    let bob_row = copy(&v, &bob).unwrap();
    assert_eq!(bob_row["action"], "none");
    assert!(
        bob_row["reason"].as_str().unwrap().starts_with("not byte for byte a former admin.conf (edited"),
        "{bob_row}"
    );
    let carol_row = copy(&v, &carol).unwrap();
    assert!(
        carol_row["reason"].as_str().unwrap().contains("CN=system:kube-controller-manager, not admin.conf's user"),
        "{carol_row}"
    );
    let diff = v["diff"].as_array().unwrap();
    let d = diff
        .iter()
        .find(|d| d["before_header"] == format!("{} (before)", alice.display()))
        .unwrap_or_else(|| panic!("{v}"));
    assert!(d["after"].as_str().unwrap().contains("(new random serial)"), "{d}");
    let key_data = |bytes: &[u8]| {
        let kc: serde_norway::Value = serde_norway::from_slice(bytes).unwrap();
        kc["users"][0]["user"]["client-key-data"].as_str().unwrap().to_string()
    };
    let key = key_data(&admin);
    assert!(
        !out.contains("PRIVATE KEY") && !out.contains(&key) && !out.contains(&key[..40]),
        "key material in the report"
    );
    assert_unchanged(&homes_before, &homes.snapshot(), "check mode");
    assert!(
        v["msg"].as_str().unwrap().ends_with(&format!("would refresh a copy of admin.conf: {}", alice.display())),
        "{v}"
    );

    // the run: alice's copy is admin.conf now, still nobody's and 0640; nothing else in her ~/.kube, not even the
    // temp file a run killed before its rename had left there
    std::fs::write(alice.with_file_name(".config.kubeadm-certs.4242.tmp"), "left by a killed run").unwrap();
    let (code, out, err) = on(&pki, &homes, &["renew", "admin.conf", "--force", "--refresh-copies", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v = json_of(&out);
    assert_eq!(copy(&v, &alice).unwrap()["action"], "refreshed", "{v}");
    assert_eq!(copy(&v, &alice).unwrap()["current"], true, "{v}");
    assert_eq!(std::fs::read(&alice).unwrap(), pki.read("admin.conf"), "the copy is not admin.conf");
    assert_ne!(std::fs::read(&alice).unwrap(), admin, "admin.conf was not renewed");
    assert_eq!(owner_and_mode(&alice), (NOBODY, NOBODY, 0o640));
    let names: Vec<_> = std::fs::read_dir(alice.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["config"], "a temp file left behind");
    assert_eq!(std::fs::read(&bob).unwrap(), edited.as_bytes(), "the edited copy changed");
    assert_eq!(std::fs::read(&carol).unwrap(), pki.read("controller-manager.conf"));
    assert!(
        v["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with(&format!("{}: carries a certificate of this cluster", bob.display()))),
        "{v}"
    );
    assert_eq!(v["changed"], true);
    // a real client would authenticate with it as with admin.conf: the same certificate and key
    let cert = |p: &Path| {
        let kc: serde_norway::Value = serde_norway::from_slice(&std::fs::read(p).unwrap()).unwrap();
        kc["users"][0]["user"]["client-certificate-data"].as_str().unwrap().to_string()
    };
    assert_eq!(cert(&alice), cert(&pki.kube().join("admin.conf")));
    // again: nothing left to do
    let (code, out, err) = on(&pki, &homes, &["renew", "--refresh-copies", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v = json_of(&out);
    assert_eq!(
        (v["changed"].as_bool(), copy(&v, &alice).unwrap()["reason"].as_str()),
        (Some(false), Some("carries admin.conf's certificate")),
        "{v}"
    );
}

#[test]
fn a_copy_left_stale_by_an_earlier_renewal_even_kubeadms_own_is_refreshed_later_and_says_so_in_the_table() {
    let pki = std_pki();
    let homes = Homes::new();
    let alice = homes.put("alice", &pki.read("admin.conf"), 0o600);
    let out = Command::new(kubeadm())
        .args(["certs", "renew", "admin.conf", "--config", "/kubeadm-config.yaml", "--rootfs"])
        .arg(pki.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "kubeadm certs renew admin.conf: {}", String::from_utf8_lossy(&out.stderr));
    let (_, doc, _) = on(&pki, &homes, &["check", "-o", "json"]);
    assert_eq!(copy(&json_of(&doc), &alice).unwrap()["current"], false);
    // nothing is due: the copy alone is refreshed, from admin.conf as kubeadm wrote it
    let (code, out, err) = on(&pki, &homes, &["renew", "--refresh-copies"]);
    assert_eq!(code, 0, "{err}");
    let row = out.lines().find(|l| l.starts_with(&alice.display().to_string())).unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains(" refreshed ")
            && row
                .contains("byte for byte admin.conf but for an older certificate and key of its user kubernetes-admin"),
        "{out}"
    );
    assert!(out.contains("\nKUBECONFIG COPY "), "{out}");
    assert_eq!(std::fs::read(&alice).unwrap(), pki.read("admin.conf"));
}

#[test]
fn a_former_admin_conf_whose_certificate_outlives_the_renewed_one_is_still_refreshed() {
    // admin.conf renewed with a longer validity (the Molecule inventory's 400d), copied, then renewed with the
    // default 365d: the copy's certificate was issued earlier but expires later, and is still a former admin.conf
    let pki = std_pki();
    let homes = Homes::new();
    let (code, _, err) = on(&pki, &homes, &["renew", "admin.conf", "--force", "--validity", "400d"]);
    assert_eq!(code, 0, "{err}");
    let alice = homes.put("alice", &pki.read("admin.conf"), 0o600);
    let (code, _, err) = on(&pki, &homes, &["renew", "admin.conf", "--force"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = on(&pki, &homes, &["renew", "--refresh-copies", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let row = copy(&json_of(&out), &alice).unwrap_or_else(|| panic!("{out}")).clone();
    assert_eq!(row["action"], "refreshed", "{row}");
    assert!(row["reason"].as_str().unwrap().contains("but for an older certificate and key"), "{row}");
    assert_eq!(std::fs::read(&alice).unwrap(), pki.read("admin.conf"));
    assert_eq!(owner_and_mode(&alice), (NOBODY, NOBODY, 0o600));
}

#[test]
fn a_copy_in_a_directory_another_user_may_write_or_with_other_hard_links_is_left_alone() {
    let pki = std_pki();
    let homes = Homes::new();
    let admin = pki.read("admin.conf");
    // ~/.kube writable by the root group, which is not grace's private group
    let grace = homes.put("grace", &admin, 0o600);
    let kube = grace.parent().unwrap();
    std::os::unix::fs::chown(kube, Some(NOBODY), Some(0)).unwrap();
    std::fs::set_permissions(kube, std::fs::Permissions::from_mode(0o770)).unwrap();
    // a copy that is also another name
    let heidi = homes.put("heidi", &admin, 0o600);
    std::fs::hard_link(&heidi, homes.root().join("home/heidi/also-config")).unwrap();
    let before = homes.snapshot();
    let (code, out, err) = on(&pki, &homes, &["renew", "admin.conf", "--force", "--refresh-copies", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v = json_of(&out);
    let reason = |p: &Path| copy(&v, p).unwrap()["reason"].as_str().unwrap().to_string();
    assert!(reason(&grace).contains(&format!("{} is writable by its group (mode 0770)", kube.display())), "{v}");
    assert!(reason(&heidi).contains("it has 2 hard links"), "{v}");
    assert_eq!(copy(&v, &grace).unwrap()["action"], "none");
    assert_unchanged(&before, &homes.snapshot(), "a copy left alone");
}

#[test]
fn a_copy_check_may_not_read_is_a_warning_not_a_silence() {
    let pki = std_pki();
    let homes = Homes::new();
    // check as nobody on a PKI nobody owns; a copy only root may read
    let st = Command::new("chown").args(["-R", "65534:65534"]).arg(pki.root()).status().unwrap();
    assert!(st.success());
    std::fs::set_permissions(pki.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root_only = homes.put("ivan", &pki.read("admin.conf"), 0o600);
    std::os::unix::fs::chown(&root_only, Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(root_only.parent().unwrap(), Some(0), Some(0)).unwrap();
    std::fs::set_permissions(root_only.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut args: Vec<String> = vec!["check".into(), "--no-default-copies".into(), "--copies".into(), homes.pattern()];
    args.extend(pki.dirs());
    args.extend(["--kubelet-dir".into(), pki.kubelet().display().to_string()]);
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin_path())
        .args(&args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("{}: cannot read (Permission denied", root_only.display()))
            && err.contains("whether it is a copy of this cluster's credentials is not known"),
        "{err}"
    );
}

#[test]
fn the_module_reports_and_refreshes_copies_and_refuses_their_options_where_they_do_not_apply() {
    let pki = std_pki();
    let homes = Homes::new();
    let alice = homes.put("alice", &pki.read("admin.conf"), 0o600);
    let search = serde_json::json!({"copies": [homes.pattern()], "default_copies": false});
    let mut args = search.clone();
    let v = module_on(&pki, args.clone());
    assert_eq!(copy(&v, &alice).unwrap()["current"], true, "{v}");
    args["state"] = "renew".into();
    args["certificates"] = serde_json::json!(["admin.conf"]);
    args["force"] = true.into();
    args["refresh_copies"] = "yes".into();
    let v = module_on(&pki, args);
    assert_eq!(copy(&v, &alice).unwrap()["action"], "refreshed", "{v}");
    assert_eq!(std::fs::read(&alice).unwrap(), pki.read("admin.conf"));
    let v = module_on(&pki, serde_json::json!({"refresh_copies": true}));
    assert_eq!(
        (v["failed"].as_bool(), v["msg"].as_str()),
        (Some(true), Some("refresh_copies applies to state renew, not check")),
        "{v}"
    );
    let v = module_on(&pki, serde_json::json!({"state": "csr", "csr_dir": "/nonexistent", "copies": ["/x"]}));
    assert_eq!(v["msg"], "copies applies to state check or renew, not csr", "{v}");
}

/// admin.conf with its user's certificate and key replaced by a certificate of the same subject from the same CA
/// that expired yesterday (`openssl x509 -days -1`): what a copy of it holds a year after a renewal.
fn expired_admin_conf(pki: &Pki) -> Vec<u8> {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n).display().to_string();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("k.pem"),
        "-subj",
        "/O=system:masters/CN=kubernetes-admin",
        "-out",
        &p("r.csr"),
    ]);
    let ca = pki.certs();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("r.csr"),
        "-CA",
        ca.join("ca.crt").to_str().unwrap(),
        "-CAkey",
        ca.join("ca.key").to_str().unwrap(),
        "-days",
        "-1",
        "-out",
        &p("c.pem"),
    ]);
    let b64 = |f: &str| base64_encode(&std::fs::read(d.path().join(f)).unwrap());
    let admin = String::from_utf8(pki.read("admin.conf")).unwrap();
    let line = |field: &str| admin.lines().find(|l| l.trim_start().starts_with(field)).unwrap().to_string();
    let (cert_line, key_line) = (line("client-certificate-data:"), line("client-key-data:"));
    admin
        .replace(&cert_line, &format!("    client-certificate-data: {}", b64("c.pem")))
        .replace(&key_line, &format!("    client-key-data: {}", b64("k.pem")))
        .into_bytes()
}

#[test]
fn an_expired_former_admin_conf_of_a_user_is_not_revived_and_roots_is_refreshed() {
    let pki = std_pki();
    let homes = Homes::new();
    let expired = expired_admin_conf(&pki);
    let mallory = homes.put("mallory", &expired, 0o644);
    let root_copy = homes.root().join("root-kube/config");
    std::fs::create_dir(root_copy.parent().unwrap()).unwrap();
    std::fs::write(&root_copy, &expired).unwrap();
    std::fs::set_permissions(&root_copy, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (pattern, root_path) = (homes.pattern(), root_copy.display().to_string());
    let (code, out, err) = run_on(
        &pki,
        &[
            "renew",
            "--refresh-copies",
            "-o",
            "json",
            "--no-default-copies",
            "--copies",
            &pattern,
            "--copies",
            &root_path,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v = json_of(&out);
    let m = copy(&v, &mallory).unwrap_or_else(|| panic!("{v}"));
    assert_eq!(m["action"], "none", "{m}");
    assert!(
        m["reason"].as_str().unwrap().contains("whose certificate expired")
            && m["reason"].as_str().unwrap().contains("give nobody back"),
        "{m}"
    );
    assert_eq!(std::fs::read(&mallory).unwrap(), expired, "an expired user's copy was revived");
    assert_eq!(copy(&v, &root_copy).unwrap()["action"], "refreshed", "{v}");
    assert_eq!(std::fs::read(&root_copy).unwrap(), pki.read("admin.conf"));
    // a refreshed copy others may read is named in a warning (mode kept all the same)
    let open_copy = homes.put("olivia", &pki.read("admin.conf"), 0o644);
    let (code, out, err) = on(&pki, &homes, &["renew", "admin.conf", "--force", "--refresh-copies", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v = json_of(&out);
    assert_eq!(copy(&v, &open_copy).unwrap()["action"], "refreshed", "{v}");
    assert_eq!(owner_and_mode(&open_copy), (NOBODY, NOBODY, 0o644));
    let warned = format!("{}: refreshed, and readable by other users than its owner (mode 0644)", open_copy.display());
    assert!(v["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().starts_with(&warned)), "{v}");
}
