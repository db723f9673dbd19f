//! The kubelet's own certificates in `check`, on the files real kubeadm 1.20.2 writes (`kubelet.conf`) and
//! the layouts the kubelet keeps under `/var/lib/kubelet` (its config file, the self-signed `kubelet.crt`,
//! the rotated `kubelet-client-current.pem` link to a dated file). The real kubelet is in the Molecule
//! scenarios (`molecule/shared/kubelet.yml`); these pin each layout and the output format.

mod common;
use common::*;

use std::path::Path;

/// The KubeletConfiguration fields kubeadm 1.20 writes that matter here (the rest do not change them).
const KUBEADM_CONFIG: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
                              cgroupDriver: systemd\nclusterDNS:\n- 10.96.0.10\nrotateCertificates: true\n";

/// A self-signed RSA certificate for `subject`, valid for `days` (openssl, as a kubelet or a CA of one's own).
fn openssl_self_signed(subject: &str, days: u32, key: &Path, crt: &Path) {
    let days = days.to_string();
    let (key, crt) = (key.to_str().unwrap(), crt.to_str().unwrap());
    openssl(&[
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-days", &days, "-keyout", key, "-out", crt,
    ]);
}

/// `csr` signed by `ca_crt`/`ca_key` for `days` as a kubelet client certificate (clientAuth), by openssl, into `crt`.
fn openssl_client_cert(csr: &Path, ca_crt: &Path, ca_key: &Path, days: u32, crt: &Path) {
    let ext = crt.with_extension("ext");
    std::fs::write(&ext, "extendedKeyUsage = clientAuth\nkeyUsage = critical, digitalSignature\n").unwrap();
    let s = |p: &Path| p.display().to_string();
    let days = days.to_string();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(csr),
        "-CA",
        &s(ca_crt),
        "-CAkey",
        &s(ca_key),
        "-CAcreateserial",
        "-days",
        &days,
        "-extfile",
        &s(&ext),
        "-out",
        &s(crt),
    ]);
}

/// A self-signed serving certificate as the kubelet makes it at first start, valid for `days`.
fn self_signed(dir: &Path, days: u32) {
    std::fs::create_dir_all(dir).unwrap();
    openssl_self_signed("/CN=cp1@1700000000", days, &dir.join("kubelet.key"), &dir.join("kubelet.crt"));
}

/// A kubelet directory like a node's after `kubeadm init`: config.yaml and the self-signed pair.
fn kubelet_dir(pki: &Pki, config: &str) {
    std::fs::create_dir_all(pki.kubelet()).unwrap();
    std::fs::write(pki.kubelet().join("config.yaml"), config).unwrap();
    self_signed(&pki.kubelet().join("pki"), 365);
}

/// The embedded client certificate of kubeadm's kubelet.conf, as PEM.
fn embedded(pki: &Pki, field: &str) -> Vec<u8> {
    let conf = String::from_utf8(pki.read("kubelet.conf")).unwrap();
    let line = conf.lines().find(|l| l.trim_start().starts_with(&format!("{field}:"))).unwrap();
    base64_decode(line.split_once(':').unwrap().1.trim())
}

fn json(pki: &Pki, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["check", "-o", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run_on(pki, &args);
    (code, serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")), err)
}

fn row<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["kubelet"]
        .as_array()
        .unwrap_or_else(|| panic!("no kubelet list: {v}"))
        .iter()
        .find(|k| k["name"] == name)
        .unwrap()
}

fn not_after(pem_file: &Path) -> String {
    let end = openssl(&["x509", "-noout", "-enddate", "-in", pem_file.to_str().unwrap()]);
    let t = chrono::NaiveDateTime::parse_from_str(end.trim().trim_start_matches("notAfter="), "%b %e %H:%M:%S %Y GMT")
        .unwrap();
    t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[test]
fn the_kubelets_certificates_follow_kubeadms_tables_which_stay_as_they_were() {
    let pki = std_pki();
    let (code, without, _) = run_on(&pki, &["check"]);
    assert_eq!(code, 0);
    assert!(!without.contains("KUBELET"), "no kubelet directory, no kubelet table:\n{without}");
    let (_, doc, _) = json(&pki, &[]);
    assert!(doc.get("kubelet").is_none(), "no kubelet directory, no kubelet field: {doc}");

    kubelet_dir(&pki, KUBEADM_CONFIG);
    let (code, with, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "nothing to warn about: {err}");
    let (kubeadms, ours) = with.split_once("\nKUBELET CERTIFICATE").expect("a kubelet table");
    assert_eq!(kubeadms, without, "kubeadm's tables are unchanged, byte for byte");
    let lines: Vec<&str> = ours.lines().collect();
    assert!(lines[0].contains("EXPIRES") && lines[0].ends_with("ROTATION   PATH"), "{ours}");
    // kubeadm init embeds the kubelet's first client certificate in kubelet.conf
    let client = lines.iter().find(|l| l.starts_with("kubelet-client ")).unwrap();
    assert!(
        client.contains("364d") && client.contains(" yes ") && client.ends_with("/etc/kubernetes/kubelet.conf"),
        "{ours}"
    );
    let server = lines.iter().find(|l| l.starts_with("kubelet-server ")).unwrap();
    assert!(server.contains(" no ") && server.ends_with("/var/lib/kubelet/pki/kubelet.crt"), "{ours}");

    let (_, doc, _) = json(&pki, &[]);
    let c = row(&doc, "kubelet-client");
    let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys[..6], ["name", "path", "expirationDate", "residualTime", "rotation", "missing"]);
    assert_eq!(c["path"], pki.kube().join("kubelet.conf").display().to_string());
    assert_eq!(c["rotation"], true);
    assert_eq!(c["missing"], false);
    assert_eq!(c["subject"], "O=system:nodes, CN=system:node:cp1");
    let written = pki.root().join("client.pem");
    std::fs::write(&written, embedded(&pki, "client-certificate-data")).unwrap();
    assert_eq!(c["expirationDate"], not_after(&written), "kubelet.conf's own certificate, as openssl reads it");
    let s = row(&doc, "kubelet-server");
    assert_eq!(s["expirationDate"], not_after(&pki.kubelet().join("pki/kubelet.crt")));
    assert_eq!((s["rotation"].as_bool(), s["missing"].as_bool()), (Some(false), Some(false)));
    // names typed on the command line are kubeadm's; the kubelet's rows come with `all`
    let (_, doc, _) = json(&pki, &["apiserver"]);
    assert!(doc.get("kubelet").is_none(), "{doc}");
}

#[test]
fn a_rotated_client_certificate_is_read_where_kubelet_conf_points_through_the_kubelets_link() {
    let pki = std_pki();
    kubelet_dir(&pki, KUBEADM_CONFIG);
    // kubeadm's kubelet-finalize phase: the pair in a dated file, a link to it, kubelet.conf naming the link
    let dir = pki.kubelet().join("pki");
    let dated = dir.join("kubelet-client-2026-11-30-01-00-00.pem");
    let mut pem = embedded(&pki, "client-certificate-data");
    pem.extend(embedded(&pki, "client-key-data"));
    std::fs::write(&dated, pem).unwrap();
    std::os::unix::fs::symlink(&dated, dir.join("kubelet-client-current.pem")).unwrap();
    let current = dir.join("kubelet-client-current.pem");
    let conf = String::from_utf8(pki.read("kubelet.conf")).unwrap();
    let conf: String = conf
        .lines()
        .map(|l| match l.trim_start() {
            t if t.starts_with("client-certificate-data:") => format!("    client-certificate: {}", current.display()),
            t if t.starts_with("client-key-data:") => format!("    client-key: {}", current.display()),
            _ => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(pki.kube().join("kubelet.conf"), conf).unwrap();

    let (code, doc, err) = json(&pki, &[]);
    assert_eq!(code, 0, "{err}");
    let c = row(&doc, "kubelet-client");
    assert_eq!(c["path"], current.display().to_string(), "the file kubelet.conf names");
    assert_eq!(c["expirationDate"], not_after(&dated));
    assert_eq!(c["missing"], false);
    // the link pointing nowhere (a rotation that lost its file) is a missing certificate, not an error
    std::fs::remove_file(&dated).unwrap();
    let (code, doc, _) = json(&pki, &[]);
    assert_eq!(code, 0);
    assert_eq!(row(&doc, "kubelet-client")["missing"], true);
}

#[test]
fn a_serving_certificate_requested_from_the_cluster_and_never_approved_is_missing() {
    let pki = std_pki();
    kubelet_dir(&pki, &format!("{KUBEADM_CONFIG}serverTLSBootstrap: true\n"));
    let (code, table, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{err}");
    let line = table.lines().find(|l| l.contains("kubelet-server")).unwrap();
    assert!(line.starts_with("!MISSING! kubelet-server"), "{table}");
    assert!(line.contains(" yes ") && line.ends_with("/var/lib/kubelet/pki/kubelet-server-current.pem"), "{table}");
    let (_, doc, _) = json(&pki, &[]);
    let s = row(&doc, "kubelet-server");
    assert_eq!((s["missing"].as_bool(), s["rotation"].as_bool()), (Some(true), Some(true)));
    assert_eq!(s["expirationDate"], serde_json::Value::Null);
    assert_eq!(s["residualTime"], 0);
}

#[test]
fn fail_within_covers_the_kubelets_certificates() {
    let pki = std_pki();
    kubelet_dir(&pki, KUBEADM_CONFIG);
    self_signed(&pki.kubelet().join("pki"), 10);
    let (code, _, err) = run_on(&pki, &["check", "--fail-within", "30d"]);
    assert_eq!(code, 3, "a serving certificate with 10 days left is within 30d: {err}");
    assert!(err.contains("kubelet-server") && !err.contains("kubelet-client"), "{err}");
    let (code, _, err) = run_on(&pki, &["check", "--fail-within", "5d"]);
    assert_eq!(code, 0, "{err}");

    let v = module_on(&pki, serde_json::json!({"state": "check", "fail_within": "30d"}));
    assert_eq!(v["failed"], true, "{v}");
    assert_eq!(v["expiring"], serde_json::json!(["kubelet-server"]), "{v}");
    assert_eq!(v["kubelet"][1]["name"], "kubelet-server", "{v}");
    assert!(v["kubelet"][1]["residualTime"].as_i64().unwrap() <= 10 * 86400, "{v}");
}

#[test]
fn an_unreadable_kubelet_conf_is_a_warning_and_the_client_certificate_missing() {
    let pki = std_pki();
    kubelet_dir(&pki, KUBEADM_CONFIG);
    std::fs::write(pki.kube().join("kubelet.conf"), "apiVersion: v1\nkind: Config\nusers: []\n").unwrap();
    let (code, table, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "the kubelet's files do not fail kubeadm's check: {err}");
    assert!(err.contains("kubelet.conf") && err.contains("current-context"), "{err}");
    assert!(table.contains("!MISSING! kubelet-client"), "{table}");
}

/// A real kube-apiserver (running) accepts the client certificate `kubeconfig` names: kubectl gets the API's
/// versions with it.
fn assert_authenticates(kubeconfig: &Path) {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "--raw", "/api"])
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("\"kind\":\"APIVersions\""), "{said}");
}

/// `renew kubelet-client ...` on the PKI, with the root's kubelet directory and no kubelet to restart here (the
/// restart against a real kubelet is in the Molecule scenarios).
fn repair(pki: &Pki, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let kubelet = pki.kubelet().display().to_string();
    let mut args = vec!["renew", "kubelet-client", "-o", "json", "--kubelet-dir", &kubelet, "--no-restart-kubelet"];
    args.extend_from_slice(extra);
    let (code, out, err) = run_on(pki, &args);
    (code, serde_json::from_str(&out).unwrap_or(serde_json::Value::Null), format!("{out}{err}"))
}

fn kubelet_snapshot(pki: &Pki) -> (Snapshot, Snapshot) {
    (pki.snapshot(), Snapshot::of(&pki.kubelet()))
}

#[test]
fn a_kubelet_client_certificate_is_issued_again_from_the_ca_as_the_kubelet_keeps_its_own_and_a_real_apiserver_accepts_it()
 {
    let ip = "127.0.0.77";
    let pki = kubeadm_pki("std", "cp1", ip);
    kubelet_dir(&pki, KUBEADM_CONFIG);
    // kubeadm init's kubelet.conf embeds a certificate with a year left: not due
    let before = kubelet_snapshot(&pki);
    let (code, v, text) = repair(&pki, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["changed"], false, "{text}");
    assert!(v["msg"].as_str().unwrap().contains("not due"), "{text}");
    // due within 400 days: check mode says so and writes nothing
    let (code, v, text) = repair(&pki, &["--renew-before", "400d", "--check"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["changed"], true, "{text}");
    assert!(
        v["msg"].as_str().unwrap().contains("would be renewed (expires in 364d, within renew_before 400d)"),
        "{text}"
    );
    assert!(before == kubelet_snapshot(&pki), "check mode wrote something");

    let (code, v, text) = repair(&pki, &["--renew-before", "400d"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        (v["changed"].as_bool(), v["renewed"].clone()),
        (Some(true), serde_json::json!(["kubelet-client"])),
        "{text}"
    );
    // the kubelet's layout: a dated file holding certificate and key (0600), the link swapped to it
    let dir = pki.kubelet().join("pki");
    let link = dir.join("kubelet-client-current.pem");
    let dated = std::fs::read_link(&link).expect("kubelet-client-current.pem is a link");
    let name = dated.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("kubelet-client-20") && name.ends_with(".pem"), "{name}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&dated).unwrap().permissions().mode() & 0o777, 0o600);
    let pem = std::fs::read_to_string(&dated).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE") && pem.contains("PRIVATE KEY"), "certificate and key in one file");
    // kubelet.conf names the link instead of embedding; everything else as kubeadm wrote it
    let conf = String::from_utf8(pki.read("kubelet.conf")).unwrap();
    assert!(!conf.contains("client-certificate-data") && !conf.contains("client-key-data"), "{conf}");
    assert!(conf.contains(&format!("client-certificate: {}", link.display())), "{conf}");
    assert!(conf.contains(&format!("client-key: {}", link.display())), "{conf}");
    assert!(
        conf.contains("certificate-authority-data:") && conf.contains(&format!("server: https://{ip}:6443")),
        "{conf}"
    );
    // what the kubelet's own rotation would get: system:node:cp1 in system:nodes, client auth, from ca
    let ca = pki.certs().join("ca.crt");
    let verified =
        openssl(&["verify", "-CAfile", ca.to_str().unwrap(), "-purpose", "sslclient", link.to_str().unwrap()]);
    assert!(verified.trim().ends_with(": OK"), "{verified}");
    let subject = openssl(&["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", link.to_str().unwrap()]);
    assert_eq!(subject.trim(), "subject=CN=system:node:cp1,O=system:nodes");
    let text = openssl(&["x509", "-noout", "-text", "-in", link.to_str().unwrap()]);
    assert!(text.contains("TLS Web Client Authentication") && text.contains("prime256v1"), "{text}");
    let modulus = |args: &[&str]| openssl(args).trim().to_string();
    assert_eq!(
        modulus(&["pkey", "-pubout", "-in", dated.to_str().unwrap()]),
        modulus(&["x509", "-noout", "-pubkey", "-in", dated.to_str().unwrap()]),
        "the key in the file is the certificate's"
    );
    // check reports it where the kubelet reads it; a second run has nothing to do
    let (_, doc, _) = json(&pki, &[]);
    assert_eq!(row(&doc, "kubelet-client")["path"], link.display().to_string());
    assert_eq!(row(&doc, "kubelet-client")["expirationDate"], not_after(&link));
    let (code, v, text) = repair(&pki, &[]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(false)), "{text}");

    // a real kube-apiserver authenticates the kubelet with it, through kubelet.conf as rewritten
    let _cluster = Cluster::start(&pki, ip);
    assert_authenticates(&pki.kube().join("kubelet.conf"));
}

/// `renew kubelet-client --check` in table mode says what it decided and why, as its JSON does (it printed only
/// a header once): a row with the action and the reason, then the run's message naming the node.
#[test]
fn renew_kubelet_client_in_table_mode_prints_its_decision_and_why() {
    let pki = std_pki();
    kubelet_dir(&pki, KUBEADM_CONFIG);
    let before = kubelet_snapshot(&pki);
    let kubelet = pki.kubelet().display().to_string();
    let table = |extra: &[&str]| {
        let mut args = vec!["renew", "kubelet-client", "--kubelet-dir", &kubelet, "--no-restart-kubelet", "--check"];
        args.extend_from_slice(extra);
        let (code, out, err) = run_on(&pki, &args);
        assert_eq!(code, 0, "{out}{err}");
        out
    };
    let line = |out: &str| out.lines().find(|l| l.starts_with("kubelet-client ")).map(str::to_string);
    // kubeadm init's certificate has a year left: not due, and the reason is the comparison made
    let out = table(&[]);
    assert!(out.starts_with("CERTIFICATE "), "{out}");
    let not_due = line(&out).unwrap_or_else(|| panic!("no kubelet-client row:\n{out}"));
    assert!(not_due.contains(" none ") && not_due.ends_with("expires in 364d, not within renew_before 90d"), "{out}");
    assert!(out.contains("kubelet-client of node cp1 is not due (expires in 364d)"), "{out}");
    // due within 400 days: would_renew, why, and what a run would do
    let out = table(&["--renew-before", "400d"]);
    let due = line(&out).unwrap_or_else(|| panic!("no kubelet-client row:\n{out}"));
    assert!(due.contains(" would_renew ") && due.ends_with("expires in 364d, within renew_before 400d"), "{out}");
    assert!(out.contains("kubelet-client of node cp1 would be renewed (expires in 364d"), "{out}");
    // the JSON carries the same decision on the row
    let (_, v, text) = repair(&pki, &["--renew-before", "400d", "--check"]);
    let client = row(&v, "kubelet-client");
    assert_eq!(
        (client["action"].as_str(), client["reason"].as_str()),
        (Some("would_renew"), Some("expires in 364d, within renew_before 400d")),
        "{text}"
    );
    assert!(before == kubelet_snapshot(&pki), "check mode wrote something");
}

#[test]
fn a_kubelet_client_renewal_asks_for_what_it_cannot_know_and_refuses_what_does_not_apply() {
    let pki = std_pki();
    kubelet_dir(&pki, KUBEADM_CONFIG);
    let before = kubelet_snapshot(&pki);
    // mixed with kubeadm's names
    let (code, _, text) = repair(&pki, &["apiserver"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("renew kubelet-client on its own"), "{text}");
    // no CA key on this node (a worker, an external CA)
    std::fs::rename(pki.certs().join("ca.key"), pki.root().join("ca.key")).unwrap();
    let (code, _, text) = repair(&pki, &["--force"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("ca.key: does not exist: the cluster CA's key is not on this node"), "{text}");
    std::fs::rename(pki.root().join("ca.key"), pki.certs().join("ca.key")).unwrap();
    // a kubelet.conf whose certificate is unreadable: the node's name must be given
    std::fs::write(pki.kube().join("kubelet.conf"), "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nusers:\n- name: u\n  user: {client-certificate: /nonexistent.pem}\nclusters: []\n").unwrap();
    let (code, _, text) = repair(&pki, &["--force"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--node-name"), "{text}");
    let after = kubelet_snapshot(&pki);
    assert!(before.1 == after.1, "the kubelet directory is unchanged");
    // the module: certificates [kubelet-client] with state renew, and its own parameters nowhere else
    let v = module_on(&pki, serde_json::json!({"state": "check", "node_name": "cp1"}));
    assert_eq!(v["failed"], true, "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("node_name applies to certificates: [kubelet-client] (states renew, csr, install, sign)"),
        "{v}"
    );
    let v = module_on(
        &pki,
        serde_json::json!({"state": "renew", "certificates": ["kubelet-client"], "node_name": "cp1",
                           "kubelet_dir": pki.kubelet().display().to_string(), "restart_kubelet": false,
                           "_ansible_check_mode": true, "_ansible_diff": true}),
    );
    assert_eq!(v["changed"], true, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("kubelet-client of node cp1 would be renewed (missing)"), "{v}");
    assert!(v["diff"][0]["after"].as_str().unwrap().contains("CN=system:node:cp1"), "{v}");
    assert!(!v.to_string().contains("PRIVATE KEY"), "no key in the result: {v}");
}

#[test]
fn a_kubelet_that_cannot_be_restarted_fails_the_run_saying_the_certificate_is_in_place() {
    let pki = std_pki();
    kubelet_dir(&pki, KUBEADM_CONFIG);
    let kubelet = pki.kubelet().display().to_string();
    let mut args = vec!["renew", "kubelet-client", "--force", "--kubelet-dir", kubelet.as_str()];
    let dirs = pki.dirs();
    args.extend(dirs.iter().map(String::as_str));
    // no systemctl on this PATH
    let out = bin().args(&args).env("PATH", "/nonexistent").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs systemctl") && err.contains("the new certificate is in place"), "{err}");
    assert!(pki.kubelet().join("pki/kubelet-client-current.pem").exists(), "written before the restart");
    // a rerun finds it not due, as the message says
    let (code, v, text) = repair(&pki, &[]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(false)), "{text}");
}

/// A worker's node root beside the control plane's `cp`: only what `kubeadm join` leaves on a worker
/// (`pki/ca.crt`, a `kubelet.conf` naming the kubelet's rotated file) and a kubelet client certificate for
/// `system:node:w1` from `cp`'s CA, valid for a day (so due).
fn worker_of(cp: &Pki) -> Pki {
    let w = Pki { dir: tempfile::tempdir().unwrap() };
    std::fs::create_dir_all(w.certs()).unwrap();
    std::fs::copy(cp.certs().join("ca.crt"), w.certs().join("ca.crt")).unwrap();
    kubelet_dir(&w, KUBEADM_CONFIG);
    let pki_dir = w.kubelet().join("pki");
    let dated = pki_dir.join("kubelet-client-2026-01-01-00-00-00.pem");
    let (key, csr, crt) = (w.root().join("k.pem"), w.root().join("r.csr"), w.root().join("c.pem"));
    let s = |p: &Path| p.display().to_string();
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &s(&key)]);
    openssl(&["req", "-new", "-key", &s(&key), "-subj", "/O=system:nodes/CN=system:node:w1", "-out", &s(&csr)]);
    openssl_client_cert(&csr, &cp.certs().join("ca.crt"), &cp.certs().join("ca.key"), 1, &crt);
    let both = [std::fs::read(&crt).unwrap(), std::fs::read(&key).unwrap()].concat();
    std::fs::write(&dated, both).unwrap();
    std::os::unix::fs::symlink(&dated, pki_dir.join("kubelet-client-current.pem")).unwrap();
    // kubeadm's kubelet.conf with the user a joined kubelet has: the rotated file, through its link
    let conf = String::from_utf8(cp.read("kubelet.conf")).unwrap();
    let link = s(&pki_dir.join("kubelet-client-current.pem"));
    let conf: String = conf
        .lines()
        .map(|l| match l.trim_start().split_once(':') {
            Some(("client-certificate-data", _)) => format!("    client-certificate: {link}\n"),
            Some(("client-key-data", _)) => format!("    client-key: {link}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(w.kube().join("kubelet.conf"), conf).unwrap();
    w
}

/// `VERB kubelet-client --csr-dir DIR ...` on a node root, JSON out.
fn kubelet_step(node: &Pki, verb: &str, csr_dir: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let (kubelet, dir) = (node.kubelet().display().to_string(), csr_dir.display().to_string());
    let mut args = vec![verb, "kubelet-client", "-o", "json", "--csr-dir", &dir];
    if verb != "sign" {
        args.extend(["--kubelet-dir", &kubelet]);
    }
    args.extend_from_slice(extra);
    let (code, out, err) = run_on(node, &args);
    (code, serde_json::from_str(&out).unwrap_or(serde_json::Value::Null), format!("{out}{err}"))
}

/// A directory of the signing side's own, 0700, with `csr` copied in as `kubelet-client.csr` (the controller's part).
fn carried(to: &Pki, name: &str, csr: &[u8]) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = to.root().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(dir.join("kubelet-client.csr"), csr).unwrap();
    dir
}

#[test]
fn a_workers_kubelet_client_is_repaired_with_a_csr_signed_on_a_control_plane_node_and_a_real_apiserver_accepts_it() {
    let ip = "127.0.0.78";
    let cp = kubeadm_pki("std", "cp1", ip);
    let w = worker_of(&cp);
    let csr_dir = w.root().join("var/lib/kubeadm-certs/kubelet-csr");
    // 1. on the worker: due (a day left), so a key and a CSR; check mode writes nothing, a rerun keeps them
    let (code, v, text) = kubelet_step(&w, "csr", &csr_dir, &["--check"]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(true)), "{text}");
    assert!(!csr_dir.exists(), "check mode created the CSR dir");
    let (code, v, text) = kubelet_step(&w, "csr", &csr_dir, &[]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(true)), "{text}");
    assert_eq!(v["csrs"][0]["subject"], "O=system:nodes, CN=system:node:w1", "{text}");
    assert!(v["msg"].as_str().unwrap().contains("sign kubelet-client --csr-dir DIR --node-name w1"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&csr_dir), mode(&csr_dir.join("kubelet-client.key"))), (0o700, 0o600));
    let csr = std::fs::read(csr_dir.join("kubelet-client.csr")).unwrap();
    let (code, v, text) = kubelet_step(&w, "csr", &csr_dir, &[]);
    assert_eq!(
        (code, v["changed"].as_bool(), v["csrs"][0]["changed"].as_bool()),
        (0, Some(false), Some(false)),
        "{text}"
    );
    assert_eq!(std::fs::read(csr_dir.join("kubelet-client.csr")).unwrap(), csr, "a rerun signs the same request");

    // 2. on the control-plane node, the CSR carried there: signed for the node the caller names
    let sign_dir = carried(&cp, "sign-w1", &csr);
    let cp_before = cp.snapshot();
    let (code, v, text) = kubelet_step(&cp, "sign", &sign_dir, &["--node-name", "w1", "--diff"]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(true)), "{text}");
    let crt = sign_dir.join("kubelet-client.crt");
    let ca = cp.certs().join("ca.crt");
    let verified =
        openssl(&["verify", "-CAfile", ca.to_str().unwrap(), "-purpose", "sslclient", crt.to_str().unwrap()]);
    assert!(verified.trim().ends_with(": OK"), "{verified}");
    let subject = openssl(&["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", crt.to_str().unwrap()]);
    assert_eq!(subject.trim(), "subject=CN=system:node:w1,O=system:nodes");
    assert_unchanged(&cp_before, &cp.snapshot(), "signing changes nothing of the control plane's PKI");
    let signed = std::fs::read(&crt).unwrap();
    let (code, v, text) = kubelet_step(&cp, "sign", &sign_dir, &["--node-name", "w1"]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(false)), "a rerun keeps it: {text}");
    assert_eq!(std::fs::read(&crt).unwrap(), signed);

    // 3. on the worker: installed where the kubelet reads it
    std::fs::write(csr_dir.join("kubelet-client.crt"), &signed).unwrap();
    let before = Snapshot::of(&w.kubelet());
    let (code, v, text) = kubelet_step(&w, "install", &csr_dir, &["--no-restart-kubelet", "--check", "--diff"]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(true)), "{text}");
    assert!(before == Snapshot::of(&w.kubelet()), "check mode wrote something");
    let (code, v, text) = kubelet_step(&w, "install", &csr_dir, &["--no-restart-kubelet"]);
    assert_eq!((code, v["renewed"].clone()), (0, serde_json::json!(["kubelet-client"])), "{text}");
    let link = w.kubelet().join("pki/kubelet-client-current.pem");
    let pem = std::fs::read(&link).unwrap();
    assert!(pem.starts_with(&signed), "the link's file holds the signed certificate first");
    let key = std::fs::read_to_string(csr_dir.join("kubelet-client.key")).unwrap();
    assert!(String::from_utf8_lossy(&pem).ends_with(&key), "and the key the CSR step wrote");
    assert_eq!(mode(&std::fs::read_link(&link).unwrap()), 0o600);
    let (_, doc, _) = json(&w, &[]);
    assert_eq!(row(&doc, "kubelet-client")["expirationDate"], not_after(&link));
    let (code, v, text) = kubelet_step(&w, "install", &csr_dir, &["--no-restart-kubelet"]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(false)), "{text}");
    // no longer due: the worker's next CSR step has nothing to do
    let (code, v, text) = kubelet_step(&w, "csr", &csr_dir, &[]);
    assert_eq!((code, v["changed"].as_bool(), v["csrs"].as_array().map_or(0, Vec::len)), (0, Some(false), 0), "{text}");
    assert!(v["msg"].as_str().unwrap().contains("is not due"), "{text}");

    // a real kube-apiserver authenticates the worker's kubelet with it, through its kubelet.conf
    let _cluster = Cluster::start(&cp, ip);
    assert_authenticates(&w.kube().join("kubelet.conf"));
}

/// A CSR for `subject` from a new P-256 key, made by openssl (another producer's encoding), with `extra` args.
fn openssl_csr(dir: &Path, subject: &str, extra: &[&str]) -> Vec<u8> {
    let (key, csr) = (dir.join("other.key"), dir.join("other.csr"));
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key.to_str().unwrap()]);
    let mut args = vec!["req", "-new", "-key", key.to_str().unwrap(), "-subj", subject, "-out", csr.to_str().unwrap()];
    args.extend_from_slice(extra);
    openssl(&args);
    std::fs::read(csr).unwrap()
}

#[test]
fn the_control_plane_signs_only_what_a_nodes_kubelet_may_ask_for_and_the_worker_installs_only_what_fits() {
    let cp = std_pki();
    let w = worker_of(&cp);
    let scratch = tempfile::tempdir().unwrap();
    let cp_before = cp.snapshot();
    let refused = |csr: Vec<u8>, node: &str, why: &str| {
        let dir = carried(&cp, "sign", &csr);
        let (code, _, text) = kubelet_step(&cp, "sign", &dir, &["--node-name", node]);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains(why) && text.contains("nothing was signed"), "{why}: {text}");
        assert!(!dir.join("kubelet-client.crt").exists(), "{why}: a certificate was written");
    };
    // another node's name, cluster-admin's group, extensions, a second organization
    refused(openssl_csr(scratch.path(), "/O=system:nodes/CN=system:node:cp1", &[]), "w1", "another node's name");
    refused(openssl_csr(scratch.path(), "/O=system:masters/CN=system:node:w1", &[]), "w1", "O=system:masters");
    refused(
        openssl_csr(scratch.path(), "/O=system:nodes/CN=system:node:w1", &["-addext", "subjectAltName=DNS:evil"]),
        "w1",
        "extension",
    );
    refused(
        openssl_csr(scratch.path(), "/O=system:nodes/O=system:masters/CN=system:node:w1", &[]),
        "w1",
        "exactly O=system:nodes",
    );
    // a signature its key does not verify (the last byte of the DER flipped): the CSR proves no key
    let good = openssl_csr(scratch.path(), "/O=system:nodes/CN=system:node:w1", &[]);
    let mut der = pem::parse(&good).unwrap().contents().to_vec();
    *der.last_mut().unwrap() ^= 1;
    refused(pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der)).into_bytes(), "w1", "proves no key");
    // not a CSR, and a node name that is no node name
    refused(std::fs::read(cp.certs().join("ca.crt")).unwrap(), "w1", "not a CERTIFICATE REQUEST");
    let dir = carried(&cp, "sign", &good);
    let (code, _, text) = kubelet_step(&cp, "sign", &dir, &["--node-name", "system:masters"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("invalid node name"), "{text}");
    assert_unchanged(&cp_before, &cp.snapshot(), "refusals change nothing");
    // openssl's CSR for the right node is signed (UTF8String names, as Go and rcgen write them, or not)
    let (code, _, text) = kubelet_step(&cp, "sign", &dir, &["--node-name", "w1"]);
    assert_eq!(code, 0, "{text}");
    let other_key_cert = std::fs::read(dir.join("kubelet-client.crt")).unwrap();

    // the worker: the CSR step's key and a certificate for another key do not make a pair
    let csr_dir = w.root().join("csr");
    let (code, _, text) = kubelet_step(&w, "csr", &csr_dir, &[]);
    assert_eq!(code, 0, "{text}");
    let before = Snapshot::of(&w.kubelet());
    let conf_before = w.read("kubelet.conf");
    std::fs::write(csr_dir.join("kubelet-client.crt"), &other_key_cert).unwrap();
    let (code, _, text) = kubelet_step(&w, "install", &csr_dir, &["--no-restart-kubelet"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("is not for the key the CSR step wrote") && text.contains("nothing was installed"), "{text}");
    // signed by another CA (the worker's own throwaway CA): it must chain to this node's cluster CA
    let other = std_pki_other_ca(scratch.path(), &csr_dir);
    std::fs::write(csr_dir.join("kubelet-client.crt"), other).unwrap();
    let (code, _, text) = kubelet_step(&w, "install", &csr_dir, &["--no-restart-kubelet"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("does not chain to this node's cluster CA"), "{text}");
    // nothing signed yet
    std::fs::remove_file(csr_dir.join("kubelet-client.crt")).unwrap();
    let (code, _, text) = kubelet_step(&w, "install", &csr_dir, &["--no-restart-kubelet"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("nothing signed to install") && text.contains("sign kubelet-client"), "{text}");
    assert!(before == Snapshot::of(&w.kubelet()), "the kubelet's files are unchanged");
    assert_eq!(w.read("kubelet.conf"), conf_before);
    // a worker has no CA key: renew kubelet-client there says how it is done instead
    let (code, _, text) = repair(&w, &["--force"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("on a worker, `csr kubelet-client` there"), "{text}");
}

/// The CSR step's request in `csr_dir`, signed by a CA of its own (openssl): right key, right node, wrong CA.
fn std_pki_other_ca(scratch: &Path, csr_dir: &Path) -> Vec<u8> {
    let (ca_key, ca_crt, crt) = (scratch.join("ca.key"), scratch.join("ca.crt"), scratch.join("w.crt"));
    openssl_self_signed("/CN=kubernetes", 3, &ca_key, &ca_crt);
    openssl_client_cert(&csr_dir.join("kubelet-client.csr"), &ca_crt, &ca_key, 2, &crt);
    std::fs::read(crt).unwrap()
}

#[test]
fn the_modules_kubelet_client_states_take_their_own_parameters_and_sign_names_the_node() {
    let cp = std_pki();
    let w = worker_of(&cp);
    let csr_dir = w.root().join("csr").display().to_string();
    let kubelet = w.kubelet().display().to_string();
    let failed = |node: &Pki, args: serde_json::Value, why: &str| {
        let v = module_on(node, args);
        assert_eq!(v["failed"], true, "{v}");
        assert!(v["msg"].as_str().unwrap().contains(why), "{why}: {v}");
    };
    failed(
        &cp,
        serde_json::json!({"state": "sign", "certificates": ["kubelet-client"], "csr_dir": csr_dir}),
        "missing: node_name",
    );
    failed(
        &cp,
        serde_json::json!({"state": "sign", "csr_dir": csr_dir, "node_name": "w1"}),
        "state sign takes certificates: [kubelet-client]",
    );
    failed(
        &w,
        serde_json::json!({"state": "csr", "certificates": ["kubelet-client"], "csr_dir": csr_dir, "restart_kubelet": true}),
        "restart_kubelet does not apply to state csr with certificates: [kubelet-client]",
    );
    failed(&w, serde_json::json!({"state": "install", "certificates": ["kubelet-client"]}), "missing: csr_dir");
    // the three steps through the module, as the role runs them
    let v = module_on(
        &w,
        serde_json::json!({"state": "csr", "certificates": ["kubelet-client"], "csr_dir": csr_dir, "kubelet_dir": kubelet}),
    );
    assert_eq!((v["changed"].as_bool(), v["csrs"][0]["name"].as_str()), (Some(true), Some("kubelet-client")), "{v}");
    let sign_dir = carried(&cp, "sign", &std::fs::read(w.root().join("csr/kubelet-client.csr")).unwrap());
    let v = module_on(
        &cp,
        serde_json::json!({"state": "sign", "certificates": ["kubelet-client"], "node_name": "w1",
                           "csr_dir": sign_dir.display().to_string(), "validity": "30d"}),
    );
    assert_eq!(v["changed"], true, "{v}");
    std::fs::copy(sign_dir.join("kubelet-client.crt"), w.root().join("csr/kubelet-client.crt")).unwrap();
    let v = module_on(
        &w,
        serde_json::json!({"state": "install", "certificates": ["kubelet-client"], "csr_dir": csr_dir,
                           "kubelet_dir": kubelet, "restart_kubelet": false}),
    );
    assert_eq!(v["changed"], true, "{v}");
    let client = v["kubelet"].as_array().unwrap().iter().find(|k| k["name"] == "kubelet-client").unwrap();
    assert!(client["residualTime"].as_i64().unwrap() > 29 * 86400, "30 days from the sign step: {v}");
    assert!(!v.to_string().contains("PRIVATE KEY"), "no key in the result: {v}");
}
