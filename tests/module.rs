//! The Ansible binary-module protocol: `kubeadm-certs ARGS_FILE` with Ansible's flat JSON args, string
//! coercion as Ansible's argument spec does it, check mode, diff, no_log, idempotence, one JSON object on
//! stdout and no key material in it.

mod common;
use common::*;

use serde_json::json;

#[test]
fn check_returns_every_entry_and_ca() {
    let pki = std_pki();
    let v = module_on(&pki, json!({"state": "check", "_ansible_check_mode": false, "_ansible_version": "2.19.0"}));
    assert_eq!(v["changed"], false);
    assert!(v.get("failed").is_none(), "{v}");
    let certs = v["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 11);
    let api = certs.iter().find(|c| c["name"] == "apiserver").unwrap();
    for key in [
        "name",
        "kind",
        "path",
        "subject",
        "sans",
        "serial",
        "not_before",
        "not_after",
        "residual_seconds",
        "residual",
        "ca",
        "externally_managed",
        "missing",
        "action",
    ] {
        assert!(api.get(key).is_some(), "missing return key {key}: {api}");
    }
    assert_eq!(api["kind"], "cert");
    assert_eq!(api["subject"], "CN=kube-apiserver");
    assert_eq!(api["action"], "none");
    assert!(api["sans"].as_array().unwrap().contains(&json!("DNS:kubernetes.default.svc.cluster.local")));
    assert!(api["not_after"].as_str().unwrap().ends_with('Z'));
    let sa = certs.iter().find(|c| c["name"] == "super-admin.conf").unwrap();
    assert_eq!(sa["missing"], true);
    assert_eq!(sa["kind"], "kubeconfig");
    assert_eq!(v["certificate_authorities"].as_array().unwrap().len(), 3);
    assert_eq!(v["invocation"]["module_args"]["state"], "check");
}

#[test]
fn check_mode_and_diff_write_nothing_and_show_changes() {
    let pki = std_pki();
    let before = pki.snapshot();
    let v = module_on(
        &pki,
        json!({"state": "renew", "force": "yes", "certificates": "apiserver,admin.conf",
        "_ansible_check_mode": true, "_ansible_diff": true}),
    );
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["renewed"], json!(["admin.conf", "apiserver"]));
    let actions: Vec<_> = v["certificates"].as_array().unwrap().iter().map(|c| c["action"].clone()).collect();
    assert_eq!(actions, [json!("would_renew"), json!("would_renew")]);
    let diff = v["diff"].as_array().unwrap();
    assert_eq!(diff.len(), 2);
    for d in diff {
        for k in ["before_header", "after_header", "before", "after"] {
            assert!(d[k].is_string(), "{d}");
        }
        assert!(d["before"].as_str().unwrap().contains("not_after: "));
        assert!(d["after"].as_str().unwrap().contains("(new random serial)"));
    }
    assert_unchanged(&before, &pki.snapshot(), "check mode");
    // without _ansible_diff no diff is returned
    let v = module_on(&pki, json!({"state": "renew", "force": true, "_ansible_check_mode": true}));
    assert!(v.get("diff").is_none());
}

#[test]
fn renew_is_idempotent_and_reports_what_to_restart() {
    let pki = std_pki();
    let v = module_on(&pki, json!({"state": "renew", "renew_before": "400d", "_ansible_diff": true}));
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["renewed"].as_array().unwrap().len(), 10);
    assert_eq!(v["restart"], json!(["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]));
    assert_eq!(v["diff"].as_array().unwrap().len(), 10);
    let renewed_serial =
        v["certificates"].as_array().unwrap().iter().find(|c| c["name"] == "apiserver").unwrap()["serial"].clone();
    let v = module_on(&pki, json!({"state": "renew", "renew_before": "300d"}));
    assert_eq!(v["changed"], false, "second run: {v}");
    assert_eq!(v["renewed"], json!([]));
    let api = v["certificates"].as_array().unwrap().iter().find(|c| c["name"] == "apiserver").unwrap().clone();
    assert_eq!(api["serial"], renewed_serial);
    assert!(api["reason"].as_str().unwrap().contains("not within renew_before"), "{api}");
}

#[test]
fn coerces_strings_like_ansible_and_refuses_wrong_types() {
    let pki = std_pki();
    let v = module_on(
        &pki,
        json!({"state": "renew", "force": "True", "backup": "no", "certificates": "front-proxy-client",
        "validity": "8760h0m0s", "_ansible_check_mode": "yes"}),
    );
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["renewed"], json!(["front-proxy-client"]));
    let v = module_on(&pki, json!({"state": "renew", "certificates": ["apiserver", 7]}));
    assert_eq!(v["failed"], true);
    assert!(
        v["msg"].as_str().unwrap().contains("\"7\""),
        "an int element is coerced to a str, then refused as a name: {v}"
    );
    let v = module_on(&pki, json!({"state": "renew", "force": {"a": 1}}));
    assert_eq!(v["failed"], true);
    assert!(v["msg"].as_str().unwrap().contains("'force' is of type dict"), "{v}");
    let v = module_on(&pki, json!({"state": "check", "validity": "1y"}));
    assert_eq!(v["failed"], true);
    assert!(v["msg"].as_str().unwrap().contains("validity applies to state renew"), "{v}");
    let v = module_on(&pki, json!({"state": "renew", "key_algorithm": "dsa-1024"}));
    assert_eq!(v["failed"], true);
    assert!(v["msg"].as_str().unwrap().contains("key_algorithm"), "{v}");
}

#[test]
fn fail_within_fails_the_task_with_the_names() {
    let pki = std_pki();
    let v = module_on(&pki, json!({"state": "check", "fail_within": "400d"}));
    assert_eq!(v["failed"], true, "{v}");
    assert!(v["expiring"].as_array().unwrap().contains(&json!("apiserver")));
    assert!(!v["expiring"].as_array().unwrap().contains(&json!("ca")), "CAs have 9 years left");
    let v = module_on(&pki, json!({"state": "check", "fail_within": "30d"}));
    assert!(v.get("failed").is_none(), "{v}");
}

#[test]
fn no_log_drops_invocation_and_diff() {
    let pki = std_pki();
    let v = module_on(
        &pki,
        json!({"state": "renew", "force": true, "_ansible_check_mode": true, "_ansible_diff": true, "_ansible_no_log": true}),
    );
    assert_eq!(v["changed"], true);
    assert!(v.get("invocation").is_none(), "{v}");
    assert!(v.get("diff").is_none(), "{v}");
}

#[test]
fn no_key_material_in_any_output() {
    let pki = std_pki();
    // every key that exists at any moment: the old ones, and the new ones each run writes
    let mut keys = common::leaks::KeyMaterial::default();
    keys.add(&pki);
    let v = module_on(&pki, json!({"state": "renew", "force": true, "backup": true, "_ansible_diff": true}));
    keys.add(&pki);
    let mut outputs = vec![v.to_string()];
    for args in
        [&["renew", "--force", "--diff", "-o", "json"][..], &["renew", "--force", "--diff"], &["check", "-o", "yaml"]]
    {
        let (code, out, err) = run_on(&pki, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        keys.add(&pki);
        outputs.push(out + &err);
    }
    // 3 CA keys, sa.key, kubelet.conf's (kubeadm-certs does not renew it), 10 leaf keys, and 3 x 10 new ones
    assert_eq!(keys.keys(), 5 + 10 + 3 * 10, "every key seen");
    for text in &outputs {
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(!text.contains("client-key-data"), "{text}");
        keys.assert_absent("output", text);
    }
}

#[test]
fn malformed_args_are_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin().arg(dir.path()).output().unwrap();
    // a directory is not an args file: the CLI answers (usage), not the module
    assert_eq!(out.status.code(), Some(2));
    let f = dir.path().join("args");
    std::fs::write(&f, "[1,2]").unwrap();
    let out = bin().arg(&f).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["failed"], true);
    assert_eq!(text.trim().lines().count(), 1, "one line, one object: {text}");
}

#[test]
fn a_reader_that_goes_away_is_not_a_crash() {
    let pki = std_pki();
    let script = format!(
        "{} check {} | true; exit ${{PIPESTATUS[0]}}",
        bin_path().display(),
        pki.dirs().iter().map(|d| format!("'{d}'")).collect::<Vec<_>>().join(" ")
    );
    let out = std::process::Command::new("bash").arg("-c").arg(script).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
}
