//! `check` against real kubeadm 1.20.2's `certs check-expiration` on PKIs kubeadm made: same entries,
//! same expiry, same externally-managed answer; kubeadm's JSON document shape; `--at` and `--fail-within`.

mod common;
use common::*;

use std::process::Command;

/// kubeadm's table rows as cells (split on runs of 2+ spaces), blank lines dropped.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect())
        .collect()
}

fn kubeadm_check(pki: &Pki) -> (bool, String, String) {
    let out = Command::new(kubeadm())
        .args(["certs", "check-expiration", "--config", "/kubeadm-config.yaml", "--rootfs"])
        .arg(pki.root())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// kubeadm 1.20 leaves the CA column of kubeconfig rows blank (newer kubeadm prints `ca`) and has no
/// super-admin.conf; otherwise the rows must be identical.
fn normalize_ours(ours: Vec<Vec<String>>) -> Vec<Vec<String>> {
    ours.into_iter()
        .filter(|r| r[0] != "!MISSING! super-admin.conf")
        .map(|mut r| {
            if r[0].ends_with(".conf") && r.len() == 5 && r[3] == "ca" {
                r.remove(3);
            }
            r
        })
        .collect()
}

#[test]
fn table_matches_kubeadm_on_a_standard_pki() {
    let pki = std_pki();
    let (ok, theirs, err) = kubeadm_check(&pki);
    assert!(ok, "kubeadm failed: {err}");
    let (code, ours, _) = run_on(&pki, &["check"]);
    assert_eq!(code, 0);
    assert_eq!(normalize_ours(rows(&ours)), rows(&theirs), "ours:\n{ours}\nkubeadm:\n{theirs}");
    // the format is kubeadm's: header, Go date, trailing `no      ` of `%-8v`
    assert!(ours.starts_with("CERTIFICATE                  EXPIRES"), "{ours}");
    assert!(ours.lines().nth(1).unwrap().ends_with("no      "), "{ours}");
}

#[test]
fn external_etcd_entries_are_missing_not_errors() {
    let pki = kubeadm_pki("extetcd", "cp1", "127.0.0.11");
    let (ok, theirs, err) = kubeadm_check(&pki);
    assert!(ok, "kubeadm failed: {err}");
    let (code, ours, _) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{ours}");
    for name in ["etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client", "etcd-ca"] {
        assert!(ours.contains(&format!("!MISSING! {name}")), "{name} not reported missing:\n{ours}");
        assert!(!theirs.contains(name), "kubeadm 1.20 lists {name}?\n{theirs}");
    }
    // every row kubeadm prints, we print identically
    let ours_rows = normalize_ours(rows(&ours));
    for row in rows(&theirs) {
        assert!(ours_rows.contains(&row), "missing row {row:?} in\n{ours}");
    }
    let (_, json, _) = run_on(&pki, &["check", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let etcd = v["certificates"].as_array().unwrap().iter().find(|c| c["name"] == "etcd-server").unwrap();
    assert_eq!(etcd["missing"], true);
    assert_eq!(etcd["expirationDate"], serde_json::Value::Null);
    assert_eq!(etcd["residualTime"], 0);
}

#[test]
fn external_ca_is_reported_where_kubeadm_1_20_fails() {
    let pki = kubeadm_pki("extca", "cp1", "127.0.0.11");
    let (ok, _, _) = kubeadm_check(&pki);
    assert!(!ok, "kubeadm 1.20 check-expiration was expected to fail on an external CA PKI");
    let (code, json, err) = run_on(&pki, &["check", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let managed = |list: &str, name: &str| {
        v[list].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()["externallyManaged"].as_bool().unwrap()
    };
    assert!(managed("certificateAuthorities", "ca"));
    assert!(!managed("certificateAuthorities", "front-proxy-ca"));
    assert!(!managed("certificateAuthorities", "etcd-ca"));
    for name in ["apiserver", "apiserver-kubelet-client", "admin.conf", "scheduler.conf"] {
        assert!(managed("certificates", name), "{name}");
    }
    for name in ["front-proxy-client", "etcd-server", "apiserver-etcd-client"] {
        assert!(!managed("certificates", name), "{name}");
    }
}

#[test]
fn json_and_yaml_are_kubeadms_certificate_expiration_info() {
    let pki = std_pki();
    let (code, json, _) = run_on(&pki, &["check", "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["kind"], "CertificateExpirationInfo");
    assert_eq!(v["apiVersion"], "output.kubeadm.k8s.io/v1alpha3");
    let certs = v["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 11);
    let api = certs.iter().find(|c| c["name"] == "apiserver").unwrap();
    let keys: Vec<&str> = api.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["name", "expirationDate", "residualTime", "externallyManaged", "caName", "missing"]);
    assert_eq!(api["caName"], "ca");
    let secs = api["residualTime"].as_i64().unwrap();
    assert!((364 * 86400..=365 * 86400).contains(&secs), "{secs}");
    // the expiry is the certificate's NotAfter, as openssl reads it
    let enddate = openssl(&["x509", "-noout", "-enddate", "-in", pki.certs().join("apiserver.crt").to_str().unwrap()]);
    let t =
        chrono::NaiveDateTime::parse_from_str(enddate.trim().trim_start_matches("notAfter="), "%b %e %H:%M:%S %Y GMT")
            .unwrap();
    assert_eq!(api["expirationDate"], t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let cas = v["certificateAuthorities"].as_array().unwrap();
    assert!(cas.iter().all(|c| c.get("caName").is_none()));

    let (_, yaml, _) = run_on(&pki, &["check", "-o", "yaml"]);
    let y: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
    // two runs a second apart may differ in residualTime by a second: compare that with a tolerance
    let strip = |mut doc: serde_json::Value| -> (serde_json::Value, Vec<i64>) {
        let mut residuals = Vec::new();
        for list in ["certificates", "certificateAuthorities"] {
            for item in doc[list].as_array_mut().unwrap() {
                residuals.push(item["residualTime"].as_i64().unwrap());
                item["residualTime"] = serde_json::Value::Null;
            }
        }
        (doc, residuals)
    };
    let ((yd, yr), (vd, vr)) = (strip(y), strip(v.clone()));
    assert_eq!(yd, vd, "YAML and JSON carry the same document");
    assert!(yr.iter().zip(&vr).all(|(a, b)| (a - b).abs() <= 2), "{yr:?} vs {vr:?}");
    assert!(
        yaml.starts_with("apiVersion: output.kubeadm.k8s.io/v1alpha3\n"),
        "kubectl's YAML printer sorts keys:\n{yaml}"
    );
}

#[test]
fn renew_check_at_shows_what_a_run_then_would_renew() {
    let pki = std_pki();
    let before = pki.snapshot();
    let due = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["renew", "--check", "-o", "json"];
        all.extend_from_slice(args);
        let (code, json, err) = run_on(&pki, &all);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["action"] == "would_renew")
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(due(&[]).is_empty(), "a fresh PKI has nothing due");
    // 300 days from now every certificate made today has 64 days left: below the default 90d
    let later = (chrono::Utc::now() + chrono::Duration::days(300)).to_rfc3339();
    let then = due(&["--at", &later]);
    assert_eq!(then.len(), 10, "{then:?}");
    assert!(due(&["--at", &later, "--renew-before", "30d"]).is_empty());
    // a real run with a clock set elsewhere would issue certificates not valid now
    let (code, _, err) = run_on(&pki, &["renew", "--at", &later]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--check"), "{err}");
    assert_unchanged(&before, &pki.snapshot(), "renew --check --at");
}

#[test]
fn at_and_fail_within_plan_a_maintenance_window() {
    let pki = std_pki();
    let (_, json, _) = run_on(&pki, &["check", "-o", "json", "apiserver"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(v["certificates"][0]["expirationDate"].as_str().unwrap()).unwrap();
    let at = (expires - chrono::Duration::days(10)).to_rfc3339();

    let (code, json, _) = run_on(&pki, &["check", "-o", "json", "apiserver", "--at", &at]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["certificates"][0]["residualTime"], 10 * 86400);
    let (_, table, _) = run_on(&pki, &["check", "apiserver", "--at", &at]);
    assert!(table.contains("   10d   "), "{table}");

    let (code, _, err) = run_on(&pki, &["check", "--at", &at, "--fail-within", "30d"]);
    assert_eq!(code, 3, "expiring within the window exits 3: {err}");
    assert!(err.contains("apiserver"), "{err}");
    let (code, _, _) = run_on(&pki, &["check", "--at", &at, "--fail-within", "9d"]);
    assert_eq!(code, 0);
    let (code, _, _) = run_on(&pki, &["check", "--fail-within", "360d"]);
    assert_eq!(code, 0, "fresh certificates have 364 days left");
    let (code, _, _) = run_on(&pki, &["check", "--fail-within", "1y"]);
    assert_eq!(code, 3);
    // after expiry: kubeadm's <invalid>
    let late = (expires + chrono::Duration::days(1)).to_rfc3339();
    let (code, table, _) = run_on(&pki, &["check", "apiserver", "--at", &late]);
    assert_eq!(code, 0);
    assert!(table.contains("<invalid>"), "{table}");
}

#[test]
fn a_missing_ca_certificate_fails_check_as_it_fails_kubeadm() {
    let pki = std_pki();
    std::fs::remove_file(pki.certs().join("ca.crt")).unwrap();
    let (ok, _, _) = kubeadm_check(&pki);
    assert!(!ok, "kubeadm 1.20 check-expiration was expected to fail without ca.crt");
    let (code, table, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 1, "{table}{err}");
    assert!(table.contains("!MISSING! ca "), "{table}");
    assert!(err.contains("pki/ca.crt is missing") && err.contains("apiserver"), "{err}");
}

/// `expirationDate` is a string to every YAML reader, YAML 1.1 ones too (PyYAML, what Ansible's
/// `from_yaml` uses): kubeadm quotes it, a plain RFC 3339 time would read back as a timestamp.
#[test]
fn yaml_expiration_dates_read_back_as_strings() {
    let pki = kubeadm_pki("extetcd", "cp1", "127.0.0.11");
    let (code, yaml, err) = run_on(&pki, &["check", "-o", "yaml"]);
    assert_eq!(code, 0, "{err}");
    let script = "import sys, yaml, json\n\
                  d = yaml.safe_load(sys.stdin)\n\
                  print(json.dumps({i['name']: type(i['expirationDate']).__name__\n\
                  for i in d['certificates'] + d['certificateAuthorities']}))";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("Debian's python3 with python3-yaml");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let types: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(types["apiserver"], "str", "{types}\n{yaml}");
    assert_eq!(types["ca"], "str", "{types}");
    // absent entries: null, as kubeadm's JSON has it
    assert_eq!(types["etcd-server"], "NoneType", "{types}");
    assert_eq!(types.as_object().unwrap().values().filter(|t| *t == "str").count(), 8, "{types}");
    assert!(yaml.contains("\n  expirationDate: \"20"), "double-quoted, as go-yaml quotes:\n{yaml}");
}

#[test]
fn with_kubeadms_configuration_external_etcd_is_left_out_as_kubeadm_leaves_it_out() {
    let pki = kubeadm_pki("extetcd", "cp1", "127.0.0.11");
    let (ok, theirs, err) = kubeadm_check(&pki);
    assert!(ok, "kubeadm failed: {err}");
    let config = pki.root().join("kubeadm-config.yaml");
    let (code, ours, err) = run_on(&pki, &["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // every row, in order, the CA table included: no etcd row and no etcd-ca
    assert_eq!(normalize_ours(rows(&ours)), rows(&theirs), "ours:\n{ours}\nkubeadm:\n{theirs}");
    let (_, json, _) = run_on(&pki, &["check", "-o", "json", "--config", config.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = v["certificates"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(!names.iter().any(|n| n.contains("etcd")), "{names:?}");
    // renew all with it renews what kubeadm's renew all would, and names no etcd entry
    let (code, out, err) =
        run_on(&pki, &["renew", "all", "--force", "--check", "-o", "json", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let due: Vec<&str> = v["certificates"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(due.len(), 7, "{due:?}");
    assert!(!due.iter().any(|n| n.contains("etcd")), "{due:?}");
}

#[test]
fn a_v1beta4_configuration_sets_validity_and_algorithm_and_its_sans_are_checked_and_renewed() {
    let pki = std_pki();
    let config = pki.root().join("v1beta4.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncertificateValidityPeriod: 2160h0m0s\n\
         encryptionAlgorithm: ECDSA-P256\napiServer:\n  certSANs: [drift.example.com]\n",
    )
    .unwrap();
    let c = config.to_str().unwrap();
    // the apiserver lacks the SAN the configuration asks for: check says so and which command adds it; a certSANs
    // entry the apiserver lacks is also a consistency finding (issue 21): exit 5
    let (code, _, err) = run_on(&pki, &["check", "--config", c]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("1 consistency finding") && err.contains("an apiServer.certSANs entry"), "{err}");
    assert!(err.contains("apiserver: lacks SANs") && err.contains("DNS:drift.example.com"), "{err}");
    assert!(err.contains(&format!("kubeadm-certs renew apiserver --config {c}")), "{err}");
    // renew without force: only the apiserver is due (its SAN), issued for 90 days with a P-256 key, with the SAN
    let (code, out, err) = run_on(&pki, &["renew", "--config", c, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["renewed"], serde_json::json!(["apiserver"]), "{out}");
    let crt = pki.certs().join("apiserver.crt");
    let text = openssl(&["x509", "-noout", "-text", "-in", crt.to_str().unwrap()]);
    assert!(text.contains("DNS:drift.example.com") && text.contains("prime256v1"), "{text}");
    let api = v["certificates"].as_array().unwrap().iter().find(|c| c["name"] == "apiserver").unwrap();
    let days = api["residual_seconds"].as_i64().unwrap() / 86400;
    assert_eq!(days, 89, "certificateValidityPeriod 2160h: {api}");
    let (code, _, err) = run_on(&pki, &["check", "--config", c]);
    assert!(!err.contains("lacks SANs"), "{err}");
    assert_eq!(code, 0, "renewed with the SAN, the apiserver is consistent again: {err}");
    // what is asked for wins over the configuration
    let (code, out, err) = run_on(
        &pki,
        &[
            "renew",
            "front-proxy-client",
            "--force",
            "--config",
            c,
            "--validity",
            "30d",
            "--key-algorithm",
            "keep",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let fp = &v["certificates"][0];
    assert_eq!(fp["residual_seconds"].as_i64().unwrap() / 86400, 29, "{fp}");
    assert!(fp["key_algorithm"].as_str().unwrap().to_ascii_lowercase().contains("rsa"), "{fp}");
}

/// An intermediate CA signed by `ca` (kubeadm 1.21+'s external-CA mode accepts leaves it signed, with the
/// chain in the leaf's file), and the apiserver's certificate re-issued by it with the chain appended.
fn apiserver_from_an_intermediate(pki: &Pki, signer_ca: &std::path::Path, signer_key: &std::path::Path) {
    let d = pki.root();
    let p = |n: &str| d.join(n).display().to_string();
    std::fs::write(d.join("int.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n").unwrap();
    std::fs::write(d.join("leaf.ext"), "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:kubernetes,IP:127.0.0.11\nauthorityKeyIdentifier=keyid\n").unwrap();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("int.key"),
        "-subj",
        "/CN=intermediate",
        "-out",
        &p("int.csr"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("int.csr"),
        "-CA",
        signer_ca.to_str().unwrap(),
        "-CAkey",
        signer_key.to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        "365",
        "-extfile",
        &p("int.ext"),
        "-out",
        &p("int.crt"),
    ]);
    let key = pki.certs().join("apiserver.key");
    openssl(&["req", "-new", "-key", key.to_str().unwrap(), "-subj", "/CN=kube-apiserver", "-out", &p("a.csr")]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("a.csr"),
        "-CA",
        &p("int.crt"),
        "-CAkey",
        &p("int.key"),
        "-CAcreateserial",
        "-days",
        "300",
        "-extfile",
        &p("leaf.ext"),
        "-out",
        &p("leaf.crt"),
    ]);
    let chain = [std::fs::read(d.join("leaf.crt")).unwrap(), std::fs::read(d.join("int.crt")).unwrap()].concat();
    std::fs::write(pki.certs().join("apiserver.crt"), chain).unwrap();
}

#[test]
fn a_leaf_signed_by_an_intermediate_with_the_chain_in_its_file_chains_to_the_ca() {
    let pki = std_pki();
    let (ca, ca_key) = (pki.certs().join("ca.crt"), pki.certs().join("ca.key"));
    apiserver_from_an_intermediate(&pki, &ca, &ca_key);
    // kubeadm's external-CA mode: the CA's key is elsewhere
    std::fs::rename(&ca_key, pki.root().join("ca.key")).unwrap();
    let (code, table, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{err}");
    let row = table.lines().find(|l| l.starts_with("apiserver ")).unwrap();
    assert!(row.contains("299d") && row.trim_end().ends_with("yes"), "{table}");
    // openssl agrees that the file's chain leads to ca.crt
    let verified = openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        "-untrusted",
        pki.root().join("int.crt").to_str().unwrap(),
        pki.root().join("leaf.crt").to_str().unwrap(),
    ]);
    assert!(verified.trim().ends_with(": OK"), "{verified}");
}

#[test]
fn an_intermediate_from_another_ca_does_not_make_a_leaf_chain() {
    let pki = std_pki();
    // the intermediate is signed by the front-proxy CA, not by ca
    let (fp, fp_key) = (pki.certs().join("front-proxy-ca.crt"), pki.certs().join("front-proxy-ca.key"));
    apiserver_from_an_intermediate(&pki, &fp, &fp_key);
    let (code, _, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("apiserver.crt: not issued by the CA") && err.contains("nor through the 1 intermediate CA"),
        "{err}"
    );
}

/// kubeadm's kube-apiserver static pod manifest with `image`, as `kubeadm init` writes it (the rest of it does
/// not matter here).
fn apiserver_manifest(pki: &Pki, image: &str) {
    let dir = pki.kube().join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kube-apiserver.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\nspec:\n  \
             containers:\n  - command:\n    - kube-apiserver\n    image: {image}\n    name: kube-apiserver\n"
        ),
    )
    .unwrap();
}

/// `check`'s table row of `name` as cells, if any.
fn row_of(table: &str, name: &str) -> Option<Vec<String>> {
    rows(table).into_iter().find(|r| r[0] == name)
}

/// A PKI whose front-proxy-client has 400 days left (renewed with that validity): 399 days, which kubeadm up to
/// 1.30 prints `1y` and kubeadm 1.31+ `399d`.
fn pki_with_399_days_left(variant: &str) -> Pki {
    let pki = kubeadm_pki(variant, "cp1", "127.0.0.11");
    let (code, _, err) = run_on(&pki, &["renew", "front-proxy-client", "--force", "--validity", "400d"]);
    assert_eq!(code, 0, "{err}");
    pki
}

#[test]
fn with_a_1_20_2_manifest_check_prints_byte_for_byte_what_kubeadm_1_20_2_prints() {
    let pki = std_pki();
    // the Molecule nodes' imageRepository: local-k8s
    apiserver_manifest(&pki, "local-k8s/kube-apiserver:v1.20.2");
    let (ok, theirs, err) = kubeadm_check(&pki);
    assert!(ok, "kubeadm failed: {err}");
    let (code, ours, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{err}");
    // no super-admin.conf row, kubeconfig rows without a CA, ShortHumanDuration: nothing to normalize
    assert_eq!(ours, theirs, "ours:\n{ours}\nkubeadm 1.20.2:\n{theirs}");
    assert!(!ours.contains("super-admin.conf"), "{ours}");
}

#[test]
fn a_1_28_7_node_has_no_super_admin_row_names_the_kubeconfig_ca_and_prints_399_days_as_1y() {
    let pki = pki_with_399_days_left("std");
    apiserver_manifest(&pki, "registry.k8s.io/kube-apiserver:v1.28.7");
    let (code, table, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(!table.contains("super-admin.conf"), "kubeadm 1.28 has no such row:\n{table}");
    assert_eq!(row_of(&table, "front-proxy-client").unwrap()[2], "1y", "{table}");
    assert_eq!(row_of(&table, "admin.conf").unwrap()[3], "ca", "kubeadm 1.24+ names the CA:\n{table}");
    assert_eq!(row_of(&table, "ca").unwrap()[2], "9y", "{table}");
    // the JSON document's rows are the version's too; the module says which version it went by and from where
    let (_, json, _) = run_on(&pki, &["check", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = v["certificates"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(!names.contains(&"super-admin.conf"), "{names:?}");
    let m = module_on(&pki, serde_json::json!({}));
    assert_eq!(m["kubernetes_version"]["version"], "1.28.7", "{m}");
    let manifest = pki.kube().join("manifests/kube-apiserver.yaml");
    assert_eq!(m["kubernetes_version"]["source"], manifest.display().to_string(), "{m}");
    let fp = m["certificates"].as_array().unwrap().iter().find(|c| c["name"] == "front-proxy-client").unwrap();
    assert_eq!(fp["residual"], "1y", "the module's residual text is the node's kubeadm's: {fp}");
    assert!(!m["msg"].as_str().unwrap().contains("super-admin"), "{m}");
}

#[test]
fn a_1_29_0_node_lists_a_missing_super_admin_conf_and_still_prints_short_durations() {
    let pki = pki_with_399_days_left("std");
    apiserver_manifest(&pki, "registry.k8s.io/kube-apiserver:v1.29.0");
    let (code, table, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("!MISSING! super-admin.conf"), "kubeadm 1.29 lists it:\n{table}");
    assert_eq!(row_of(&table, "front-proxy-client").unwrap()[2], "1y", "{table}");
}

#[test]
fn a_1_31_0_node_prints_kubeadm_1_31s_human_durations() {
    let pki = pki_with_399_days_left("std");
    apiserver_manifest(&pki, "registry.k8s.io/kube-apiserver:v1.31.0");
    let (code, table, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("!MISSING! super-admin.conf"), "{table}");
    assert_eq!(row_of(&table, "front-proxy-client").unwrap()[2], "399d", "{table}");
    // three years on, the CAs have a little under seven years left: HumanDuration's 6y364d, not 6y
    let at = (chrono::Utc::now() + chrono::Duration::days(3 * 365)).to_rfc3339();
    let (_, later, _) = run_on(&pki, &["check", "--at", &at]);
    assert_eq!(row_of(&later, "ca").unwrap()[2], "6y364d", "{later}");
    apiserver_manifest(&pki, "registry.k8s.io/kube-apiserver:v1.30.4");
    let (_, later, _) = run_on(&pki, &["check", "--at", &at]);
    assert_eq!(row_of(&later, "ca").unwrap()[2], "6y", "kubeadm 1.30: {later}");
}

#[test]
fn without_a_manifest_the_configurations_kubernetes_version_decides_and_a_manifest_wins_over_it() {
    let pki = pki_with_399_days_left("std");
    let config = pki.root().join("v1.28.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.28.7\n",
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let (code, table, err) = run_on(&pki, &["check", "--config", c]);
    assert_eq!(code, 0, "{err}");
    assert!(!table.contains("super-admin.conf"), "{table}");
    assert_eq!(row_of(&table, "front-proxy-client").unwrap()[2], "1y", "{table}");
    // the running kube-apiserver is what the node's kubeadm was upgraded with
    apiserver_manifest(&pki, "registry.k8s.io/kube-apiserver:v1.31.0");
    let (_, table, _) = run_on(&pki, &["check", "--config", c]);
    assert!(table.contains("!MISSING! super-admin.conf"), "{table}");
    assert_eq!(row_of(&table, "front-proxy-client").unwrap()[2], "399d", "{table}");
    // an image pinned by digest has no tag: the configuration decides
    apiserver_manifest(&pki, "registry.k8s.io/kube-apiserver@sha256:0123456789abcdef");
    let (_, table, _) = run_on(&pki, &["check", "--config", c]);
    assert!(!table.contains("super-admin.conf"), "{table}");
    // neither: current kubeadm's
    let (_, table, _) = run_on(&pki, &["check"]);
    assert!(table.contains("!MISSING! super-admin.conf") && table.contains(" 399d "), "{table}");
}

#[test]
fn a_super_admin_conf_made_by_hand_on_a_1_28_node_is_still_listed() {
    let pki = std_pki();
    apiserver_manifest(&pki, "registry.k8s.io/kube-apiserver:v1.28.7");
    std::fs::copy(pki.kube().join("admin.conf"), pki.kube().join("super-admin.conf")).unwrap();
    let (code, table, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(row_of(&table, "super-admin.conf").is_some_and(|r| r[2] == "364d"), "a credential that expires:\n{table}");
}
