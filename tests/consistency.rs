//! `check`'s consistency section on PKIs real kubeadm 1.20.2 made (scripts/mkpki.sh, which leaves the kubeadm
//! configuration it used at ROOT/kubeadm-config.yaml): the fingerprints a controller compares across nodes, and
//! what one node's certificates fail to cover, each finding naming the file and the SAN it lacks; exit 5.
//! Loopback addresses 127.0.0.120-129 are this file's.

mod common;
use common::*;

use serde_json::Value;

fn config(pki: &Pki) -> String {
    pki.root().join("kubeadm-config.yaml").display().to_string()
}

fn check_json(pki: &Pki, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["check", "-o", "json", "--no-default-copies"];
    args.extend(extra);
    let (code, out, err) = run_on(pki, &args);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v, err)
}

/// The cluster's endpoint moved to a load balancer after the certificates were made: what kubeadm-made PKIs
/// look like when `controlPlaneEndpoint` was changed and the apiserver certificate was not reissued.
fn with_endpoint(pki: &Pki, endpoint: &str) {
    let path = pki.root().join("kubeadm-config.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed: String = text
        .lines()
        .map(|l| {
            if l.starts_with("controlPlaneEndpoint:") {
                format!("controlPlaneEndpoint: \"{endpoint}\"")
            } else {
                l.into()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(changed, text, "mkpki.sh's configuration has a controlPlaneEndpoint line");
    std::fs::write(&path, changed + "\n").unwrap();
}

fn findings(v: &Value) -> Vec<(String, String)> {
    v["consistency"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["file"].as_str().unwrap().to_string(), f["message"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn a_clean_kubeadm_pki_has_no_finding_exits_0_and_its_fingerprints_are_openssls() {
    let pki = kubeadm_pki("std", "cp1", "127.0.0.120");
    let cfg = config(&pki);
    let (code, v, err) = check_json(&pki, &["--config", &cfg]);
    assert_eq!(code, 0, "{err}");
    let c = &v["consistency"];
    assert_eq!(findings(&v), vec![], "{c:#}");
    assert_eq!(c["config_source"], format!("--config {cfg}"));
    assert_eq!(c["control_plane_endpoint"], "127.0.0.120:6443");
    let ids: Vec<&str> = c["identity"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(ids, ["ca", "etcd-ca", "front-proxy-ca", "sa"]);
    for id in c["identity"].as_array().unwrap() {
        // the key file's public key is the certificate's (sa: sa.pub's): one pair
        assert_eq!(id["public_key_sha256"], id["key_public_key_sha256"], "{id}");
        assert_eq!(id["public_key_sha256"].as_str().unwrap().len(), 64, "{id}");
    }
    let ca = &c["identity"][0];
    let openssl_fp = openssl(&["x509", "-noout", "-fingerprint", "-sha256", "-in", ca["path"].as_str().unwrap()]);
    let hex: String = openssl_fp.trim().rsplit('=').next().unwrap().replace(':', "").to_lowercase();
    assert_eq!(ca["certificate_sha256"], hex);
    // without --config the ConfigMap is asked for (nothing listens on this address): a reason, no failure
    let (code, v, _) = check_json(&pki, &[]);
    assert_eq!(code, 0);
    let reasons = v["consistency"]["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("kubeadm-config") && r.as_str().unwrap().contains("--config")),
        "{reasons:?}"
    );
    assert!(v["consistency"]["config_source"].is_null());
}

#[test]
fn an_apiserver_certificate_without_the_endpoint_host_is_a_finding_naming_file_and_san_exit_5() {
    let pki = kubeadm_pki("std", "cp1", "127.0.0.121");
    with_endpoint(&pki, "lb.example.internal:6443");
    let cfg = config(&pki);
    let (code, v, err) = check_json(&pki, &["--config", &cfg]);
    assert_eq!(code, 5, "{err}");
    let apiserver = pki.certs().join("apiserver.crt").display().to_string();
    let found = findings(&v);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, apiserver);
    assert!(
        found[0].1.starts_with(&format!("{apiserver}: lacks DNS:lb.example.internal, the controlPlaneEndpoint host"))
    );
    assert!(found[0].1.contains("`kubeadm-certs renew apiserver --extra-san lb.example.internal`"), "{}", found[0].1);
    assert!(err.contains("1 consistency finding"), "{err}");

    // the table says it after kubeadm's tables; 3 (expiring) wins over 5
    let (code, table, _) = run_on(&pki, &["check", "--no-default-copies", "--config", &cfg]);
    assert_eq!(code, 5);
    let at = table.find("INCONSISTENT FILE").expect(&table);
    assert!(at > table.find("CERTIFICATE AUTHORITY").unwrap());
    assert!(table[at..].contains(&apiserver) && table[at..].contains("lacks DNS:lb.example.internal"), "{table}");
    let (code, _, _) = run_on(&pki, &["check", "--no-default-copies", "--config", &cfg, "--fail-within", "400d"]);
    assert_eq!(code, 3);

    // the module: the same findings; it fails only when asked to
    let base = serde_json::json!({"state": "check", "config": cfg, "default_copies": false});
    let r = module_on(&pki, base.clone());
    assert_ne!(r["failed"], true, "{r}");
    assert_eq!(r["consistency"]["findings"][0]["file"], apiserver.as_str());
    let mut strict = base;
    strict["fail_inconsistent"] = true.into();
    let r = module_on(&pki, strict);
    assert_eq!(r["failed"], true, "{r}");
    assert!(r["msg"].as_str().unwrap().contains("lacks DNS:lb.example.internal"), "{r}");
}

#[test]
fn the_advertise_address_of_the_apiserver_manifest_must_be_in_its_certificate() {
    let pki = kubeadm_pki("std", "cp1", "127.0.0.122");
    let manifests = pki.kube().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let manifest = |address: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    \
             image: registry.k8s.io/kube-apiserver:v1.20.2\n    command:\n    - kube-apiserver\n    \
             - --advertise-address={address}\n"
        )
    };
    // mkpki.sh gives a loopback node the documentation address 192.0.2.<last octet> as its advertise address
    std::fs::write(manifests.join("kube-apiserver.yaml"), manifest("192.0.2.122")).unwrap();
    let (code, v, err) = check_json(&pki, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["consistency"]["advertise_address"], "192.0.2.122");
    std::fs::write(manifests.join("kube-apiserver.yaml"), manifest("203.0.113.7")).unwrap();
    let (code, v, _) = check_json(&pki, &[]);
    assert_eq!(code, 5);
    let found = findings(&v);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].1.contains("lacks IP:203.0.113.7, this node's advertise address"), "{found:?}");
    assert!(found[0].1.contains("manifests/kube-apiserver.yaml --advertise-address"), "{found:?}");
}

#[test]
fn no_private_key_byte_is_in_the_consistency_section() {
    let pki = kubeadm_pki("std", "cp1", "127.0.0.123");
    let (_, out, err) = run_on(&pki, &["check", "-o", "yaml", "--no-default-copies"]);
    for key in ["ca.key", "sa.key", "front-proxy-ca.key", "etcd/ca.key"] {
        let pem = String::from_utf8(pki.read(&format!("pki/{key}"))).unwrap();
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!out.contains(line) && !err.contains(line), "{key}: a line of it was printed");
        }
    }
    // -o yaml reads back (the section is the first mapping nested under a key in that document)
    let doc: Value = serde_norway::from_str(&out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
    assert_eq!(doc["consistency"]["identity"].as_array().map(Vec::len), Some(4), "{out}");
    assert_eq!(doc["consistency"]["identity"][3]["name"], "sa");
}
