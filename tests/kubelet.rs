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

/// A self-signed serving certificate as the kubelet makes it at first start, valid for `days`.
fn self_signed(dir: &Path, days: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let (crt, key) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=cp1@1700000000",
        "-days",
        &days.to_string(),
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
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
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(pki.kube().join("kubelet.conf"))
        .args(["get", "--raw", "/api"])
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("\"kind\":\"APIVersions\""), "{said}");
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
        v["msg"].as_str().unwrap().contains("node_name applies to state renew with certificates: [kubelet-client]"),
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
