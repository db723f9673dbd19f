//! `renew kubelet-serving`: the kubelet's self-signed serving certificate issued again, on kubelet directories laid out
//! as the kubelet lays them out (its `kubelet.crt` is a leaf `CN=HOST@UNIX` followed by the throwaway CA
//! `CN=HOST-ca@UNIX` that signed it, client-go v1.20 `GenerateSelfSignedCertKeyWithFixtures`; older kubelets wrote a
//! certificate signed by itself), made here by OpenSSL. The restart of a real kubelet and the handshake on its port
//! are in the Molecule playbook `molecule/shared/kubelet_serving.yml`; here the kubelet is never restarted
//! (`--no-restart-kubelet`, or no systemctl on PATH).

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

const KUBEADM_CONFIG: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
                              cgroupDriver: systemd\nrotateCertificates: true\n";

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The kubelet's own pair in `PKI/var/lib/kubelet/pki`, valid for `days`, with `sans` (openssl's syntax), as
/// v1.20's kubelet writes it: an RSA leaf signed by a throwaway CA, the CA after the leaf, the key PKCS#1.
fn kubelet_made(pki: &Pki, days: u32, sans: &str) {
    let dir = pki.kubelet().join("pki");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(pki.kubelet().join("config.yaml"), KUBEADM_CONFIG).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let f = |n: &str| s(&scratch.path().join(n));
    let days = days.to_string();
    #[rustfmt::skip]
    openssl(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &f("ca.key"), "-out", &f("ca.crt"),
              "-subj", "/CN=cp1-ca@1700000000", "-days", &days]);
    openssl(&["genrsa", "-traditional", "-out", &s(&dir.join("kubelet.key")), "2048"]);
    openssl(&["req", "-new", "-key", &s(&dir.join("kubelet.key")), "-subj", "/CN=cp1@1700000000", "-out", &f("l.csr")]);
    std::fs::write(
        scratch.path().join("ext"),
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName={sans}\n"
        ),
    )
    .unwrap();
    #[rustfmt::skip]
    openssl(&["x509", "-req", "-in", &f("l.csr"), "-CA", &f("ca.crt"), "-CAkey", &f("ca.key"), "-set_serial", "2",
              "-days", &days, "-extfile", &f("ext"), "-out", &f("leaf.crt")]);
    let both = [std::fs::read(f("leaf.crt")).unwrap(), std::fs::read(f("ca.crt")).unwrap()].concat();
    std::fs::write(dir.join("kubelet.crt"), both).unwrap();
    std::fs::set_permissions(dir.join("kubelet.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `renew kubelet-serving -o json --kubelet-dir ... --no-restart-kubelet EXTRA...`: (exit code, JSON, all text).
fn renew(pki: &Pki, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let kubelet = s(&pki.kubelet());
    let mut args = vec!["renew", "kubelet-serving", "-o", "json", "--kubelet-dir", &kubelet, "--no-restart-kubelet"];
    args.extend_from_slice(extra);
    let (code, out, err) = run_on(pki, &args);
    (code, serde_json::from_str(&out).unwrap_or(serde_json::Value::Null), format!("{out}{err}"))
}

fn x509(file: &Path, args: &[&str]) -> String {
    let mut all = vec!["x509", "-in", file.to_str().unwrap(), "-noout"];
    all.extend_from_slice(args);
    openssl(&all)
}

/// The certificates of a PEM file, each as its own file in `scratch`.
fn split(file: &Path, scratch: &Path) -> Vec<std::path::PathBuf> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    for (i, block) in text.split_inclusive("-----END CERTIFICATE-----\n").enumerate() {
        let p = scratch.join(format!("{i}.pem"));
        std::fs::write(&p, block).unwrap();
        out.push(p);
    }
    out
}

fn public_key(args: &[&str]) -> String {
    openssl(args)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_kubelets_self_signed_serving_certificate_is_issued_again_as_the_kubelet_makes_it_with_its_sans_and_a_new_key() {
    let pki = std_pki();
    kubelet_made(&pki, 200, "DNS:cp1,IP:10.0.0.5");
    let (crt, key) = (pki.kubelet().join("pki/kubelet.crt"), pki.kubelet().join("pki/kubelet.key"));
    let pki_before = pki.snapshot();
    let old_key = public_key(&["pkey", "-in", &s(&key), "-pubout"]);
    let old_end = x509(&crt, &["-enddate"]);

    // 200 days left: not due
    let (code, v, text) = renew(&pki, &[]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(false)), "{text}");
    assert_eq!(v["certificates"][0]["action"], "none", "{v}");
    assert!(v["msg"].as_str().unwrap().contains("is not due (expires in 19"), "{v}");

    let started = chrono::Utc::now().timestamp();
    let (code, v, text) = renew(&pki, &["--force"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["renewed"], json!(["kubelet-serving"]), "{v}");
    let row = &v["certificates"][0];
    assert_eq!((row["name"].as_str(), row["action"].as_str()), (Some("kubelet-serving"), Some("renewed")), "{v}");
    assert_eq!((row["reason"].as_str(), row["ca"].as_str()), (Some("forced"), Some("self-signed")), "{v}");
    assert_eq!(row["sans"], json!(["DNS:cp1", "IP:10.0.0.5"]), "{v}");
    assert!(v["warnings"].to_string().contains("was not restarted"), "{v}");
    assert_eq!(v["kubelet"][1]["name"], "kubelet-server", "check's row follows: {v}");
    assert!(!text.contains("PRIVATE KEY"), "no key in the output");

    // as the kubelet writes it: the leaf, then the CA that signed it; a new key, PKCS#1, 0600; the certificate 0644
    let scratch = tempfile::tempdir().unwrap();
    let parts = split(&crt, scratch.path());
    assert_eq!(parts.len(), 2, "leaf and CA");
    let (leaf, ca) = (&parts[0], &parts[1]);
    openssl(&["verify", "-CAfile", &s(ca), &s(leaf)]);
    let subject = x509(leaf, &["-subject", "-issuer", "-nameopt", "RFC2253"]);
    let stamp = |line: &str, prefix: &str| -> i64 {
        let value = subject.lines().find_map(|l| l.strip_prefix(line)).unwrap();
        value.strip_prefix(prefix).unwrap().parse().unwrap()
    };
    let (leaf_at, ca_at) = (stamp("subject=", "CN=cp1@"), stamp("issuer=", "CN=cp1-ca@"));
    assert!(leaf_at >= started && leaf_at == ca_at, "{subject}");
    let sans = x509(leaf, &["-ext", "subjectAltName,extendedKeyUsage,basicConstraints"]);
    assert!(sans.contains("DNS:cp1, IP Address:10.0.0.5"), "the same SANs: {sans}");
    assert!(sans.contains("TLS Web Server Authentication") && sans.contains("CA:FALSE"), "{sans}");
    assert!(x509(ca, &["-ext", "basicConstraints"]).contains("CA:TRUE"));
    let new_key = public_key(&["pkey", "-in", &s(&key), "-pubout"]);
    assert_ne!(new_key, old_key, "a new key");
    assert_eq!(new_key, public_key(&["x509", "-in", &s(leaf), "-noout", "-pubkey"]), "the key of the certificate");
    assert!(std::fs::read_to_string(&key).unwrap().starts_with("-----BEGIN RSA PRIVATE KEY-----"), "RSA 2048, PKCS#1");
    assert!(x509(leaf, &["-text"]).contains("Public-Key: (2048 bit)"));
    assert_eq!((mode(&key), mode(&crt)), (0o600, 0o644));
    let end = chrono::NaiveDateTime::parse_from_str(
        x509(leaf, &["-enddate"]).trim().trim_start_matches("notAfter="),
        "%b %e %H:%M:%S %Y GMT",
    )
    .unwrap()
    .and_utc();
    assert!((end - chrono::Utc::now() - chrono::Duration::days(365)).num_seconds().abs() < 120, "365d from now: {end}");
    assert_ne!(x509(leaf, &["-enddate"]), old_end);
    let serial = x509(leaf, &["-serial"]);
    assert_ne!(serial.trim(), "serial=02", "a random serial, not the kubelet's fixed 2");

    // nothing else changed: kubeadm's PKI, no journal, no temp file; a rerun finds it not due
    assert_unchanged(&pki_before, &pki.snapshot(), "kubeadm's PKI");
    let names: Vec<String> = std::fs::read_dir(pki.kubelet().join("pki"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["kubelet.crt", "kubelet.key"]);
    let (code, v, text) = renew(&pki, &[]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(false)), "{text}");
    // `check` reads it as the kubelet's serving certificate
    let (_, out, _) = run_on(&pki, &["check", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["kubelet"][1]["issuer"], format!("CN=cp1-ca@{ca_at}"), "{doc}");
}

#[test]
fn a_certificate_signed_by_itself_as_older_kubelets_made_it_is_due_by_date_or_a_broken_key_and_can_be_backed_up() {
    let pki = std_pki();
    std::fs::create_dir_all(pki.kubelet().join("pki")).unwrap();
    std::fs::write(pki.kubelet().join("config.yaml"), KUBEADM_CONFIG).unwrap();
    let (crt, key) = (pki.kubelet().join("pki/kubelet.crt"), pki.kubelet().join("pki/kubelet.key"));
    #[rustfmt::skip]
    openssl(&["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", &s(&key),
              "-out", &s(&crt), "-subj", "/CN=10.0.0.5@1500000000", "-days", "30",
              "-addext", "subjectAltName=IP:10.0.0.5", "-addext", "extendedKeyUsage=serverAuth"]);
    // 30 days left: within the default 90d
    let (code, v, text) = renew(&pki, &["--backup", "--validity", "100d"]);
    assert_eq!(code, 0, "{text}");
    let reason = v["certificates"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("expires in 29d") && reason.ends_with("within renew_before 90d"), "{v}");
    let backups = v["backup_files"].as_array().unwrap();
    assert_eq!(backups.len(), 2, "the key and the certificate: {v}");
    for b in backups {
        assert_eq!(mode(Path::new(b.as_str().unwrap())), 0o600, "{b}");
    }
    let scratch = tempfile::tempdir().unwrap();
    let leaf = &split(&crt, scratch.path())[0];
    assert!(
        x509(leaf, &["-subject", "-nameopt", "RFC2253"]).contains("CN=10.0.0.5@"),
        "the host as the kubelet named it"
    );
    assert!(
        x509(leaf, &["-text"]).contains("prime256v1") || x509(leaf, &["-text"]).contains("P-256"),
        "its key's algorithm"
    );
    assert!(x509(leaf, &["-ext", "subjectAltName"]).contains("IP Address:10.0.0.5"));
    // a key that is not the certificate's (the kubelet would not start): due whatever the dates
    openssl(&["genrsa", "-traditional", "-out", &s(&key), "2048"]);
    let (code, v, text) = renew(&pki, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        v["certificates"][0]["reason"].as_str().unwrap().ends_with("kubelet.key is not the certificate's key"),
        "{v}"
    );
    std::fs::remove_file(&key).unwrap();
    let (code, v, text) = renew(&pki, &["--key-algorithm", "ecdsa-p384"]);
    assert_eq!(code, 0, "{text}");
    assert!(v["certificates"][0]["reason"].as_str().unwrap().ends_with("kubelet.key is missing"), "{v}");
    assert_eq!(v["certificates"][0]["key_algorithm"], "ecdsa-p384", "{v}");
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn check_mode_and_diff_show_what_would_change_and_write_nothing() {
    let pki = std_pki();
    kubelet_made(&pki, 10, "DNS:cp1");
    let before = (pki.snapshot(), Snapshot::of(&pki.kubelet()));
    let kubelet = s(&pki.kubelet());
    let (code, out, err) = run_on(&pki, &["renew", "kubelet-serving", "--check", "--diff", "--kubelet-dir", &kubelet]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("--- ") && out.contains("+serial: (new random serial)") && out.contains("+subject: CN=cp1@"),
        "{out}"
    );
    assert!(out.contains(" sans: [DNS:cp1]"), "the SANs stay: {out}");
    let line = out.lines().find(|l| l.starts_with("kubelet-serving ")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("would_renew"), "{out}");
    let v = module_on(
        &pki,
        json!({"state": "renew", "certificates": ["kubelet-serving"], "kubelet_dir": kubelet,
               "_ansible_check_mode": true, "_ansible_diff": true}),
    );
    assert_eq!(v["changed"], true, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("would renew the kubelet's self-signed serving certificate"), "{v}");
    assert!(v["msg"].as_str().unwrap().ends_with("and restart the kubelet"), "{v}");
    assert!(v["diff"][0]["before"].as_str().unwrap().contains("serial: 02"), "{v}");
    assert!(!v.to_string().contains("PRIVATE KEY"));
    assert!(before == (pki.snapshot(), Snapshot::of(&pki.kubelet())), "check mode writes nothing");
}

#[test]
fn a_serving_certificate_the_kubelet_did_not_make_itself_is_refused_with_what_renews_it() {
    let pki = std_pki();
    kubelet_made(&pki, 10, "DNS:cp1");
    let config = pki.kubelet().join("config.yaml");
    let before = Snapshot::of(&pki.kubelet());
    // tlsCertFile: someone's own
    std::fs::write(&config, format!("{KUBEADM_CONFIG}tlsCertFile: /etc/ssl/node.crt\n")).unwrap();
    let (code, _, text) = renew(&pki, &["--force"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("config.yaml: sets tlsCertFile") && text.contains("/etc/ssl/node.crt missing"), "{text}");
    assert!(text.contains("Renew it where it was issued"), "{text}");
    // serverTLSBootstrap: the cluster's, rotated by the kubelet
    std::fs::write(&config, format!("{KUBEADM_CONFIG}serverTLSBootstrap: true\n")).unwrap();
    let v = module_on(
        &pki,
        json!({"state": "renew", "certificates": ["kubelet-serving"], "kubelet_dir": s(&pki.kubelet())}),
    );
    assert_eq!(v["failed"], true, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.contains("sets serverTLSBootstrap") && msg.contains("kubeadm-certs approve kubelet-serving"), "{msg}");
    assert!(msg.contains("kubelet-server-current.pem missing"), "{msg}");
    std::fs::write(&config, KUBEADM_CONFIG).unwrap();
    // a certificate from the cluster CA put at kubelet.crt
    let crt = pki.kubelet().join("pki/kubelet.crt");
    let own = std::fs::read(&crt).unwrap();
    std::fs::copy(pki.certs().join("apiserver.crt"), &crt).unwrap();
    let (code, _, text) = renew(&pki, &["--force"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not the kubelet's CN=HOST@UNIX-TIME") && text.contains("move"), "{text}");
    // a leaf CN=HOST@UNIX whose CA is not carried after it
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(&crt, &own).unwrap();
    let leaf_only = std::fs::read(&split(&crt, scratch.path())[0]).unwrap();
    std::fs::write(&crt, leaf_only).unwrap();
    let (code, _, text) = renew(&pki, &["--force"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("is issued by \"CN=cp1-ca@1700000000\", not by the kubelet's own"), "{text}");
    std::fs::write(&crt, &own).unwrap();
    assert!(before == Snapshot::of(&pki.kubelet()), "nothing written");
    // no kubelet.crt: the kubelet makes one at start
    std::fs::remove_file(&crt).unwrap();
    let (code, _, text) = renew(&pki, &["--force"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("kubelet.crt: does not exist") && text.contains("systemctl restart kubelet"), "{text}");
}

#[test]
fn options_that_do_not_apply_are_refused_and_the_restart_needs_the_node_and_systemctl() {
    let pki = std_pki();
    kubelet_made(&pki, 10, "DNS:cp1");
    for (extra, says) in [
        (&["--use-api"][..], "--use-api"),
        (&["--extra-san", "x"][..], "--extra-san"),
        (&["apiserver"][..], "renew kubelet-serving on its own"),
        (&["kubelet-client"][..], "on its own"),
    ] {
        let (code, _, text) = renew(&pki, extra);
        assert_eq!(code, 2, "{extra:?}: {text}");
        assert!(text.contains(says), "{extra:?}: {text}");
    }
    let v = module_on(&pki, json!({"state": "renew", "certificates": ["kubelet-serving"], "csr_dir": "/tmp/x"}));
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("csr_dir does not apply to state renew with certificates: [kubelet-serving]"),
        "{v}"
    );
    let v = module_on(&pki, json!({"state": "csr", "certificates": ["kubelet-serving"], "csr_dir": "/tmp/x"}));
    assert!(v["msg"].as_str().unwrap().contains("state csr does not take kubelet-serving"), "{v}");
    let before = Snapshot::of(&pki.kubelet());
    // a restart: kubelet.conf names the node; a node it does not name is refused before anything is written
    let kubelet = s(&pki.kubelet());
    let mut args = vec!["renew", "kubelet-serving", "--kubelet-dir", kubelet.as_str(), "--node-name", "cp2"];
    let dirs = pki.dirs();
    args.extend(dirs.iter().map(String::as_str));
    let out = bin().args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is node cp1") && err.contains("not cp2"), "{err}");
    assert!(before == Snapshot::of(&pki.kubelet()), "nothing written");
    // no systemctl on this PATH: written, then the run fails saying so
    args.truncate(4);
    args.extend(dirs.iter().map(String::as_str));
    let out = bin().args(&args).env("PATH", "/nonexistent").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs systemctl") && err.contains("it is in place, and a rerun finds it not due"), "{err}");
    let (code, v, text) = renew(&pki, &[]);
    assert_eq!((code, v["changed"].as_bool()), (0, Some(false)), "{text}");
}
