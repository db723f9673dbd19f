//! Certificates in use, not just on disk: real etcd 3.4 and kube-apiserver 1.20.2 (scripts/cluster.sh)
//! on a kubeadm PKI, found through /proc, judged by what they serve and when they started.

mod common;
use common::*;

use std::process::Command;

use serde_json::Value;

fn check_json(pki: &Pki) -> Value {
    let (code, out, err) = run_on(pki, &["check", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap()
}

fn component<'a>(v: &'a Value, name: &str) -> &'a Value {
    let list = v["components"].as_array().unwrap_or_else(|| panic!("no components in {v}"));
    let found: Vec<&Value> = list.iter().filter(|c| c["name"] == name).collect();
    assert_eq!(found.len(), 1, "{name} once in {v}");
    found[0]
}

#[test]
fn a_stale_apiserver_is_found_by_start_time_and_fresh_again_after_it_restarts() {
    let ip = "127.0.0.61";
    let pki = kubeadm_pki("std", "cp1", ip);
    let cluster = Cluster::start(&pki, ip);

    // 1. both found in /proc by the files their command lines name, neither stale
    let v = check_json(&pki);
    let api = component(&v, "kube-apiserver");
    assert_eq!(api["pid"], cluster.pid("kube-apiserver"), "{v}");
    assert_eq!(api["stale"], false, "{v}");
    assert!(api["startedAt"].as_str().is_some_and(|s| s.ends_with('Z')), "{v}");
    assert_eq!(component(&v, "etcd")["pid"], cluster.pid("etcd"), "{v}");
    assert_eq!(component(&v, "etcd")["stale"], false, "{v}");
    // not running is reported, not an error
    for absent in ["kube-controller-manager", "kube-scheduler"] {
        let c = component(&v, absent);
        assert!(c["pid"].is_null() && c["stale"] == false, "{v}");
        assert_eq!(c["reason"], "not running on this PKI");
    }
    // the table: kubeadm's two, then the components
    let (code, table, _) = run_on(&pki, &["check"]);
    assert_eq!(code, 0);
    let at = table.find("\nCOMPONENT ").expect("a components table");
    assert!(table[..at].contains("CERTIFICATE AUTHORITY"), "{table}");
    assert!(table[at..].lines().any(|l| l.starts_with("kube-apiserver ") && l.contains(" no ")), "{table}");

    // 2. a client certificate the apiserver reads only at start renewed on disk: stale by start time
    let (code, out, err) = run_on(&pki, &["renew", "apiserver-kubelet-client", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let renewed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(renewed["restart"], serde_json::json!(["kube-apiserver"]), "{out}");
    let v = check_json(&pki);
    let api = component(&v, "kube-apiserver");
    assert_eq!(api["stale"], true, "{v}");
    let reason = api["reason"].as_str().unwrap();
    assert!(reason.contains("apiserver-kubelet-client.crt was written") && reason.starts_with("started "), "{reason}");
    assert_eq!(component(&v, "etcd")["stale"], false, "etcd reads nothing that was renewed: {v}");

    // 3. the rerun finds nothing due and still names the stale apiserver (the outage of issue 11)
    let (code, out, err) = run_on(&pki, &["renew", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let rerun: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rerun["changed"], false, "{out}");
    assert_eq!(rerun["renewed"], serde_json::json!([]), "{out}");
    assert_eq!(rerun["restart"], serde_json::json!(["kube-apiserver"]), "{out}");
    assert!(rerun["msg"].as_str().unwrap().contains("kube-apiserver"), "{out}");
    let m = module_on(&pki, serde_json::json!({"state": "renew"}));
    assert_eq!(m["changed"], false, "{m}");
    assert_eq!(m["restart"], serde_json::json!(["kube-apiserver"]), "{m}");
    assert_eq!(m["components"].as_array().map(Vec::len), Some(4), "{m}");
    // every state that writes names it (csr writes nothing a component reads)
    let csr_dir = tempfile::tempdir().unwrap();
    let m = module_on(
        &pki,
        serde_json::json!({"state": "csr", "csr_dir": csr_dir.path().display().to_string(), "_ansible_check_mode": true}),
    );
    assert_eq!(m["restart"], serde_json::json!(["kube-apiserver"]), "{m}");

    // 4. restarted, it reads the new file: fresh
    cluster.stop("kube-apiserver");
    cluster.cluster_sh("start");
    let v = check_json(&pki);
    let api = component(&v, "kube-apiserver");
    assert_eq!(api["pid"], cluster.pid("kube-apiserver"), "{v}");
    assert_eq!(api["stale"], false, "{v}");
    let (_, out, _) = run_on(&pki, &["renew", "-o", "json"]);
    let rerun: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rerun["restart"], serde_json::json!([]), "{out}");
}

#[test]
fn served_certificates_are_judged_by_the_serial_served_and_etcd_reloads_its_own() {
    let ip = "127.0.0.62";
    let pki = kubeadm_pki("std", "cp1", ip);
    let _cluster = Cluster::start(&pki, ip);
    // etcd 3.4 reads its server certificate on every handshake: renewed on disk, served at once, not stale
    let (code, out, err) = run_on(&pki, &["renew", "etcd-server", "etcd-peer", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let renewed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(renewed["restart"], serde_json::json!([]), "etcd serves the renewed files already: {out}");
    let v = check_json(&pki);
    assert_eq!(component(&v, "etcd")["stale"], false, "{v}");

    // kube-apiserver reloads its serving certificate too, but one it cannot load (here: a certificate that
    // does not match apiserver.key) it never serves: judged by the serial it serves, it is stale
    std::fs::copy(pki.certs().join("apiserver-kubelet-client.crt"), pki.certs().join("apiserver.crt")).unwrap();
    // check fails on the broken pair (exit 1, a warning naming it) and still reports what is in use
    let (code, out, err) = run_on(&pki, &["check", "-o", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("apiserver: the private key") && err.contains("does not match the certificate"), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let api = component(&v, "kube-apiserver");
    assert_eq!(api["stale"], true, "{v}");
    let reason = api["reason"].as_str().unwrap();
    assert!(reason.starts_with("serves apiserver serial ") && reason.contains("apiserver.crt has serial"), "{v}");
}

fn restart_json(pki: &Pki, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["restart"];
    all.extend_from_slice(args);
    all.extend(["-o", "json"]);
    let (code, out, err) = run_on(pki, &all);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), format!("{out}{err}"))
}

#[test]
fn restart_stale_restarts_the_stale_apiserver_and_gates_on_its_health_and_certificates() {
    let ip = "127.0.0.63";
    let pki = kubeadm_pki("std", "cp1", ip);
    let cluster = Cluster::start(&pki, ip);
    let (code, v, text) = restart_json(&pki, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["msg"], "nothing stale", "{text}");
    assert_eq!(v["changed"], false);

    let (code, out, err) = run_on(&pki, &["renew", "apiserver-kubelet-client", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    let before = cluster.pid("kube-apiserver");

    // check mode says what it would do and does nothing
    let cmd = cluster.restart_command();
    let (code, v, text) = restart_json(&pki, &["stale", "--check", "--method", "command", "--restart-command", &cmd]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["restarts"][0]["name"], "kube-apiserver", "{text}");
    assert_eq!(v["restarts"][0]["action"], "would_restart", "{text}");
    assert_eq!(v["changed"], false, "{text}");
    let m = module_on(
        &pki,
        serde_json::json!({"state": "restart", "method": "command", "restart_command": cmd, "_ansible_check_mode": true}),
    );
    assert_eq!(m["restarts"][0]["action"], "would_restart", "{m}");
    assert_eq!(m["restart"], serde_json::json!(["kube-apiserver"]), "{m}");
    assert_eq!(cluster.pid("kube-apiserver"), before);

    // the real run: restarted, running again, /readyz verified against the CA, the renewed file in use
    let (code, v, text) =
        restart_json(&pki, &["stale", "--method", "command", "--restart-command", &cmd, "--timeout", "90s"]);
    assert_eq!(code, 0, "{text}");
    let r = &v["restarts"][0];
    assert_eq!((r["name"].as_str(), r["action"].as_str()), (Some("kube-apiserver"), Some("restarted")), "{text}");
    assert_eq!(r["pid_before"], before, "{text}");
    let after = cluster.pid("kube-apiserver");
    assert_ne!(after, before);
    assert_eq!(r["pid_after"], after, "{text}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["restart"], serde_json::json!([]), "nothing stale after: {text}");
    assert_eq!(component(&v, "kube-apiserver")["stale"], false, "{text}");
    assert_eq!(component(&v, "etcd")["pid"], cluster.pid("etcd"), "etcd was left alone: {text}");

    // a component not running is reported, not an error
    let (code, v, text) = restart_json(&pki, &["kube-scheduler", "--method", "none"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["restarts"][0]["action"], "not_running", "{text}");
    assert_eq!(v["msg"], "not running: kube-scheduler", "{text}");
}

#[test]
fn a_restarted_component_that_crashes_before_it_is_healthy_is_followed_to_its_successor() {
    // The Molecule ha run that found this: kube-scheduler, started anew, exited before its /healthz answered
    // (the apiserver had just restarted) and the kubelet started it again; the restart failed at the first exit.
    let ip = "127.0.0.76";
    let pki = kubeadm_pki("std", "cp1", ip);
    let cluster = Cluster::start(&pki, ip);
    let (code, out, err) = run_on(&pki, &["renew", "apiserver-kubelet-client", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    let before = cluster.pid("kube-apiserver");
    let (root, sh, bin) = (pki.root().display(), repo().join("scripts/cluster.sh"), k8s_bin());
    let start = format!(
        "rm -f {root}/run/kube-apiserver.pid; READY_TIMEOUT=0 K8S_BIN={} {} start {root} {ip}",
        bin.display(),
        sh.display()
    );
    let stop = |pid: &str| {
        format!("kill {pid}; while [ -e /proc/{pid} ] && ! grep -q ') Z' /proc/{pid}/stat; do sleep 0.1; done")
    };
    // The supervisor stand-in: stop the apiserver, then start a second kube-apiserver that crashes before it is
    // healthy, then a third. The second has the first's command line (so it is this PKI's kube-apiserver) but
    // is a listener that exits at the first connection to its port: the restart's own health probe. So it
    // crashes exactly after the restart has seen it and before it could be healthy, whatever the machine's load.
    // (/usr/bin/python3: a pyenv shim would exec python again and lose the program name kube-apiserver.)
    let crasher = "import socket, sys\n\
                   flags = dict(a[2:].split('=', 1) for a in sys.argv[1:] if a.startswith('--') and '=' in a)\n\
                   s = socket.socket()\n\
                   s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                   s.bind((flags.get('bind-address', '0.0.0.0'), int(flags.get('secure-port', '6443'))))\n\
                   s.listen(1)\n\
                   s.accept()[0].close()\n";
    std::fs::write(pki.root().join("crasher.py"), crasher).unwrap();
    let cmd = format!(
        "args=$(tr '\\0' ' ' < /proc/$KUBEADM_CERTS_PID/cmdline | cut -d' ' -f2-); {}; \
         ( bash -c 'echo $$ > {root}/second.pid; exec -a kube-apiserver /usr/bin/python3 {root}/crasher.py \"$@\"' crasher $args; \
           {start} ) </dev/null >{root}/supervisor.log 2>&1 & \
         while [ ! -s {root}/second.pid ]; do sleep 0.05; done",
        stop("$KUBEADM_CERTS_PID"),
    );
    let (code, v, text) =
        restart_json(&pki, &["stale", "--method", "command", "--restart-command", &cmd, "--timeout", "90s"]);
    let log = std::fs::read_to_string(pki.root().join("supervisor.log")).unwrap_or_default();
    assert_eq!(code, 0, "{text}\nthe supervisor stand-in said: {log}");
    let second = std::fs::read_to_string(pki.root().join("second.pid")).unwrap().trim().to_string();
    let third = cluster.pid("kube-apiserver");
    assert!(third != before && third.to_string() != second, "three processes: {before}, {second}, {third}");
    let r = &v["restarts"][0];
    assert_eq!((r["action"].as_str(), r["pid_after"].as_u64()), (Some("restarted"), Some(third)), "{text}");
    let said = format!("kube-apiserver: pid {second} exited before it was healthy; its successor pid {third} is");
    assert!(v["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().starts_with(&said)), "{text}");
    assert_eq!(component(&v, "kube-apiserver")["stale"], false, "{text}");
}

#[test]
fn a_static_pod_restart_puts_the_manifest_back_at_once_when_the_process_does_not_stop() {
    let ip = "127.0.0.64";
    let pki = kubeadm_pki("std", "cp1", ip);
    let cluster = Cluster::start(&pki, ip);
    let pid = cluster.pid("kube-apiserver");
    let manifests = pki.kube().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let manifest = manifests.join("kube-apiserver.yaml");
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\nspec:\n  containers:\n  - name: kube-apiserver\n    image: k8s.gcr.io/kube-apiserver:v1.20.2\n";
    std::fs::write(&manifest, text).unwrap();

    // a tool the method needs is missing: said first, nothing moved
    let out = bin()
        .args(["restart", "kube-apiserver", "--method", "crictl"])
        .args(pki.dirs())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("method crictl needs crictl") && err.contains("nothing was restarted"), "{err}");

    // no kubelet here: the process never stops, so the manifest must come back, unchanged
    let (code, _, err) = run_on(&pki, &["restart", "kube-apiserver", "--timeout", "2s"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("kube-apiserver: pid ") && err.contains("still runs"), "{err}");
    assert!(err.contains("is back in place"), "{err}");
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), text);
    let held: Vec<_> = std::fs::read_dir(pki.kube().join("tmp/kubeadm-certs-paused-manifests")).unwrap().collect();
    assert!(held.is_empty(), "{held:?}");
    assert_eq!(cluster.pid("kube-apiserver"), pid);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    // a component that is not a static pod here is refused before anything moves
    std::fs::remove_file(&manifest).unwrap();
    let (code, _, err) = run_on(&pki, &["restart", "kube-apiserver"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot read its static pod manifest") && err.contains("nothing was restarted"), "{err}");
}

#[test]
fn a_static_pod_asked_for_by_name_that_is_not_running_is_started_anew_through_its_manifest() {
    // kube-controller-manager and kube-scheduler exit when they lose their leader lease (the apiserver restarting
    // under load) and wait out the kubelet's crash backoff: asked for by name, such a component gets a new pod now
    let pki = std_pki();
    let manifests = pki.kube().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let manifest = manifests.join("kube-scheduler.yaml");
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-scheduler\n  namespace: kube-system\nspec:\n  containers:\n  - name: kube-scheduler\n";
    std::fs::write(&manifest, text).unwrap();

    // check mode says it would, and changes nothing
    let (code, v, err) = restart_json(&pki, &["kube-scheduler", "--check"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["restarts"][0]["action"], "would_restart", "{v}");
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), text);

    // `stale` never names what does not run; another method cannot start it: reported, nothing changed
    let (code, v, err) = restart_json(&pki, &["stale"]);
    assert_eq!(code, 0, "{err}");
    assert!(v["restarts"].as_array().is_none_or(|r| r.is_empty()), "{v}");
    assert_eq!(v["msg"], "nothing stale", "{v}");
    let (code, v, err) = restart_json(&pki, &["kube-scheduler", "--method", "command", "--restart-command", "false"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["restarts"][0]["action"], "not_running", "{v}");
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), text);

    // static_pod: the manifest is rewritten with a new restart annotation (a new pod for the kubelet); with no
    // kubelet here nothing starts, and the run says so after --timeout
    let (code, _, err) = run_on(&pki, &["restart", "kube-scheduler", "--timeout", "1s"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("kube-scheduler: not running, its manifest rewritten to start a new pod, but it is not running"),
        "{err}"
    );
    let doc: serde_norway::Value = serde_norway::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert!(doc["metadata"]["annotations"]["kubeadm-certs.k8s-pki.io/restartedAt"].is_string(), "{doc:?}");
    assert_eq!(doc["spec"]["containers"][0]["name"], "kube-scheduler");
    let held: Vec<_> = std::fs::read_dir(pki.kube().join("tmp/kubeadm-certs-paused-manifests")).unwrap().collect();
    assert!(held.is_empty(), "no temp left beside the held manifests: {held:?}");
}

/// A PKI whose kube-apiserver manifest is in the holding dir (a restart holds it, or held it when it was
/// killed): the PKI, the manifests dir, the holding dir.
fn apiserver_manifest_left_held() -> (Pki, std::path::PathBuf, std::path::PathBuf) {
    let pki = std_pki();
    let manifests = pki.kube().join("manifests");
    let held = pki.kube().join("tmp/kubeadm-certs-paused-manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    // as a run makes it: 0700, root's (anything else is not believed)
    std::fs::DirBuilder::new().recursive(true).create(&held).unwrap();
    std::fs::set_permissions(&held, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::write(held.join("kube-apiserver.yaml"), "kind: Pod\n").unwrap();
    (pki, manifests, held)
}

#[test]
fn every_state_first_puts_back_a_manifest_an_interrupted_restart_left_held() {
    let (pki, manifests, held) = apiserver_manifest_left_held();

    // check mode says so and leaves it
    let (code, out, err) = run_on(&pki, &["renew", "--check", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("left held by an interrupted restart"), "{out}");
    assert!(held.join("kube-apiserver.yaml").exists());
    // check (a real run of a state that writes nothing else) puts it back and warns on stderr
    let (code, out, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("put back") && err.contains("kube-apiserver.yaml"), "{err}");
    assert_eq!(std::fs::read_to_string(manifests.join("kube-apiserver.yaml")).unwrap(), "kind: Pod\n");
    assert!(!held.join("kube-apiserver.yaml").exists());
    // the module too (a renew with nothing due)
    std::fs::rename(manifests.join("kube-apiserver.yaml"), held.join("kube-apiserver.yaml")).unwrap();
    let v = module_on(&pki, serde_json::json!({"state": "renew"}));
    assert_eq!(v["changed"], true, "{v}");
    assert!(v["warnings"].to_string().contains("put back"), "{v}");
    assert!(manifests.join("kube-apiserver.yaml").exists());
}

#[test]
fn controller_manager_and_scheduler_are_stale_after_their_kubeconfigs_are_renewed_until_restarted() {
    let ip = "127.0.0.65";
    let pki = kubeadm_pki("std", "cp1", ip);
    let cluster = Cluster::start_all(&pki, ip);
    let v = check_json(&pki);
    for name in ["kube-controller-manager", "kube-scheduler"] {
        assert_eq!(component(&v, name)["pid"], cluster.pid(name), "{v}");
        assert_eq!(component(&v, name)["stale"], false, "{v}");
    }
    let (code, out, err) =
        run_on(&pki, &["renew", "controller-manager.conf", "scheduler.conf", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["restart"], serde_json::json!(["kube-controller-manager", "kube-scheduler"]), "{out}");
    for name in ["kube-controller-manager", "kube-scheduler"] {
        let reason = component(&v, name)["reason"].as_str().unwrap().to_string();
        assert!(reason.contains(".conf was written"), "{name}: {reason}");
    }
    // both restarted in one run; each gated on its /healthz on the secure port
    let before = (cluster.pid("kube-controller-manager"), cluster.pid("kube-scheduler"));
    let cmd = cluster.restart_command();
    let (code, v, text) = restart_json(&pki, &["--method", "command", "--restart-command", &cmd, "--timeout", "90s"]);
    assert_eq!(code, 0, "{text}");
    let names: Vec<&str> = v["restarts"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["kube-controller-manager", "kube-scheduler"], "{text}");
    assert!(v["restarts"].as_array().unwrap().iter().all(|r| r["action"] == "restarted"), "{text}");
    let after = (cluster.pid("kube-controller-manager"), cluster.pid("kube-scheduler"));
    assert!(after.0 != before.0 && after.1 != before.1, "{text}");
    assert_eq!(v["restart"], serde_json::json!([]), "{text}");
}

/// The restart stand-in for kube-controller-manager and kube-scheduler run as pods (tests/fixtures/as-pod.sh):
/// stops the pid and starts the component as a pod again, returning at once: whether it is healthy is for the
/// product's own gate to find out.
fn as_pod_restart_command(cluster: &Cluster<'_>) -> String {
    let stop = "kill \"$KUBEADM_CERTS_PID\"; \
                while [ -e /proc/$KUBEADM_CERTS_PID ] && ! grep -q ') Z' /proc/$KUBEADM_CERTS_PID/stat; do sleep 0.1; done";
    format!(
        "{stop}; case $KUBEADM_CERTS_COMPONENT in kube-controller-manager) {};; kube-scheduler) {};; *) exit 3;; esac",
        cluster.as_pod_command("kube-controller-manager", false),
        cluster.as_pod_command("kube-scheduler", false)
    )
}

#[test]
fn kubeconfigs_bind_mounted_as_single_files_keep_their_components_found_and_stale_until_restarted() {
    // kubeadm mounts controller-manager.conf and scheduler.conf into their pods as single files: a renewal's
    // rename leaves each component on the old, deleted file, which compared by inode is no longer ours
    let ip = "127.0.0.79";
    let pki = kubeadm_pki("std", "cp1", ip);
    let cluster = Cluster::start_as_pods(&pki, ip);
    let pods = ["kube-controller-manager", "kube-scheduler"];
    let v = check_json(&pki);
    for name in pods {
        assert_eq!(component(&v, name)["pid"], cluster.pid(name), "{v}");
        assert_eq!(component(&v, name)["stale"], false, "{v}");
    }

    // renewed: each still runs on this PKI, on the file as it was before, and says so
    let (code, out, err) =
        run_on(&pki, &["renew", "controller-manager.conf", "scheduler.conf", "--force", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let renewed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(renewed["restart"], serde_json::json!(pods), "{out}");
    for v in [&renewed, &check_json(&pki)] {
        for name in pods {
            let c = component(v, name);
            assert_eq!(c["pid"], cluster.pid(name), "{name} is still found: {v}");
            assert_eq!(c["stale"], true, "{v}");
            let reason = c["reason"].as_str().unwrap();
            assert!(
                reason.contains("as it was before it was replaced (mounted into its pod as a single file"),
                "{reason}"
            );
        }
    }

    // `restart stale` (the schedule timer's) restarts both; the new processes see the new files
    let before: Vec<u64> = pods.iter().map(|n| cluster.pid(n)).collect();
    let cmd = as_pod_restart_command(&cluster);
    let (code, v, text) =
        restart_json(&pki, &["stale", "--method", "command", "--restart-command", &cmd, "--timeout", "90s"]);
    assert_eq!(code, 0, "{text}");
    let restarts = v["restarts"].as_array().unwrap();
    assert_eq!(restarts.len(), 2, "{text}");
    for (r, (name, old)) in restarts.iter().zip(pods.iter().zip(&before)) {
        assert_eq!((r["name"].as_str(), r["action"].as_str()), (Some(*name), Some("restarted")), "{text}");
        assert_eq!(r["pid_before"].as_u64(), Some(*old), "{text}");
        assert_eq!(r["pid_after"].as_u64(), Some(cluster.pid(name)), "{text}");
        assert_ne!(cluster.pid(name), *old);
    }
    let v = check_json(&pki);
    for name in pods {
        assert_eq!(component(&v, name)["stale"], false, "{v}");
        assert_eq!(component(&v, name)["pid"], cluster.pid(name), "{v}");
    }
}

/// kubectl (the machine's) against the test cluster, as the admin; stdin given.
fn kubectl(pki: &Pki, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(pki.kube().join("admin.conf"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_cluster_gate_passes_a_healthy_cluster_and_refuses_naming_a_hung_etcd_member_or_a_down_apiserver() {
    let ip = "127.0.0.66";
    let pki = kubeadm_pki("std", "cp1", ip);
    let cluster = Cluster::start(&pki, ip);
    let cmd = cluster.restart_command();
    let gated =
        ["kube-apiserver", "--cluster-gate", "--method", "command", "--restart-command", &cmd, "--timeout", "90s"];

    // healthy: every member and apiserver named as checked, then restarted
    let before = cluster.pid("kube-apiserver");
    let (code, v, text) = restart_json(&pki, &gated);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["cluster"]["etcd_members"], serde_json::json!(["cp1"]), "{text}");
    assert_eq!(v["cluster"]["apiservers"], serde_json::json!([format!("{ip}:6443")]), "{text}");
    assert_eq!(v["restarts"][0]["action"], "restarted", "{text}");
    assert_ne!(cluster.pid("kube-apiserver"), before);

    // another control-plane node kubeadm recorded (v1.20 ClusterStatus), whose apiserver is down
    let status = format!(
        "apiEndpoints:\n  cp1:\n    advertiseAddress: {ip}\n    bindPort: 6443\n  cp2:\n    advertiseAddress: 127.0.0.67\n    bindPort: 6443\napiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterStatus\n"
    );
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kubeadm-config", "namespace": "kube-system"}, "data": {"ClusterStatus": status}});
    kubectl(&pki, &["create", "-f", "-"], &cm.to_string());
    let pid = cluster.pid("kube-apiserver");
    let (code, _, text) = restart_json(&pki, &gated);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("cluster gate: not restarting anything while kube-apiserver 127.0.0.67:6443: not ready"),
        "{text}"
    );
    assert!(!text.contains("etcd member cp1"), "etcd is healthy: {text}");
    assert_eq!(cluster.pid("kube-apiserver"), pid, "nothing restarted");
    let m = module_on(
        &pki,
        serde_json::json!({"state": "restart", "components": ["kube-apiserver"], "cluster_gate": true,
        "method": "command", "restart_command": cmd}),
    );
    assert_eq!(m["failed"], true, "{m}");
    assert!(m["msg"].as_str().unwrap().contains("kube-apiserver 127.0.0.67:6443"), "{m}");
    kubectl(&pki, &["-n", "kube-system", "delete", "configmap", "kubeadm-config"], "");

    // this node's etcd member hangs (SIGSTOP): refused, naming it
    let etcd = cluster.pid("etcd").to_string();
    assert!(Command::new("kill").args(["-STOP", &etcd]).status().unwrap().success());
    let (code, _, text) = restart_json(&pki, &gated);
    assert!(Command::new("kill").args(["-CONT", &etcd]).status().unwrap().success());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(&format!("etcd member cp1 (https://{ip}:2379): cannot list the etcd members")), "{text}");
    assert!(text.contains("nothing was restarted"), "{text}");
    assert_eq!(cluster.pid("kube-apiserver"), pid, "nothing restarted");
}

struct LeaseRun {
    holder: String,
    acquired: chrono::DateTime<chrono::Utc>,
    released: chrono::DateTime<chrono::Utc>,
    waited: u64,
}

fn lease_run(v: &Value, text: &str) -> LeaseRun {
    let t = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(v["lease"][k].as_str().unwrap_or_else(|| panic!("no lease.{k}: {text}")))
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    LeaseRun {
        holder: v["lease"]["holder"].as_str().unwrap().into(),
        acquired: t("acquired_at"),
        released: t("released_at"),
        waited: v["lease"]["waited_seconds"].as_u64().unwrap(),
    }
}

/// `kubectl get lease kubeadm-certs-restart -w`: each version of the Lease the apiserver sends, as it comes.
struct LeaseWatch {
    child: std::process::Child,
    seen: std::sync::mpsc::Receiver<Value>,
}

impl LeaseWatch {
    /// Returns once the watch has shown the Lease as it is now.
    fn start(pki: &Pki) -> LeaseWatch {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(pki.kube().join("admin.conf"))
            .args(["-n", "kube-system", "get", "lease", "kubeadm-certs-restart", "-w", "-o", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, seen) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for v in serde_json::Deserializer::from_reader(stdout).into_iter::<Value>() {
                let Ok(v) = v else { break };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let w = LeaseWatch { child, seen };
        w.seen.recv_timeout(std::time::Duration::from_secs(30)).expect("the watch shows the Lease");
        w
    }

    /// The holders in the order the apiserver sent them (repeats of one holder, its renewals, folded), from the
    /// first version seen until it has been released after two holders.
    fn until_released_twice(self) -> Vec<Option<String>> {
        let mut holders: Vec<Option<String>> = vec![None];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while holders.iter().filter(|h| h.is_some()).count() < 2 || holders.last() != Some(&None) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(v) = self.seen.recv_timeout(left) else { break };
            let h = v["spec"]["holderIdentity"].as_str().map(String::from);
            if holders.last() != Some(&h) {
                holders.push(h);
            }
        }
        holders
    }
}

impl Drop for LeaseWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_nodes_restarting_with_the_lease_never_hold_it_at_once() {
    // two nodes, each its own etcd and apiserver; they take turns through the Lease in a third apiserver
    // (the cluster's, as a load balancer would reach it), so each keeps renewing while its own restarts
    let (ip_a, ip_b, ip_c) = ("127.0.0.68", "127.0.0.69", "127.0.0.72");
    let (pki_a, pki_b, pki_c) =
        (kubeadm_pki("std", "cp1", ip_a), kubeadm_pki("std", "cp2", ip_b), kubeadm_pki("std", "cp3", ip_c));
    let (a, b, _c) = (Cluster::start(&pki_a, ip_a), Cluster::start(&pki_b, ip_b), Cluster::start(&pki_c, ip_c));
    let admin = pki_c.kube().join("admin.conf").display().to_string();
    let spawn = |pki: &Pki, cluster: &Cluster<'_>, node: &str| {
        let cmd = cluster.restart_command();
        Command::new(bin_path())
            .args(["restart", "kube-apiserver", "--lease", "--lease-identity", node, "--api-kubeconfig", &admin])
            // shorter than a restart (~8 s): held throughout only because it is renewed
            .args(["--lease-duration", "3s"])
            .args(["--method", "command", "--restart-command", &cmd, "--timeout", "90s", "-o", "json"])
            .args(pki.dirs())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Watched from outside the product: every change of the Lease object as the apiserver sends it. It is made
    // first (nobody holding it), so that the watch has shown it before either run begins.
    kubectl(
        &pki_c,
        &["create", "-f", "-"],
        r#"{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "kubeadm-certs-restart", "namespace": "kube-system"}, "spec": {}}"#,
    );
    let watch = LeaseWatch::start(&pki_c);
    let (before_a, before_b) = (a.pid("kube-apiserver"), b.pid("kube-apiserver"));
    let (run_a, run_b) = (spawn(&pki_a, &a, "cp1"), spawn(&pki_b, &b, "cp2"));
    let mut runs = Vec::new();
    for child in [run_a, run_b] {
        let out = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{text}");
        let v: Value = serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(v["restarts"][0]["action"], "restarted", "{text}");
        runs.push(lease_run(&v, &text));
    }
    assert_ne!(a.pid("kube-apiserver"), before_a);
    assert_ne!(b.pid("kube-apiserver"), before_b);
    assert_eq!((runs[0].holder.as_str(), runs[1].holder.as_str()), ("cp1", "cp2"));
    let (first, second) =
        if runs[0].acquired <= runs[1].acquired { (&runs[0], &runs[1]) } else { (&runs[1], &runs[0]) };
    assert!(
        first.released <= second.acquired,
        "held at once: {:?}..{:?} and {:?}..{:?}",
        first.acquired,
        first.released,
        second.acquired,
        second.released
    );
    assert!(second.waited >= 1, "the second waited for its turn");
    // as the apiserver saw it: held by one node, released, held by the other, released; never handed from one node
    // to the other
    let holders = watch.until_released_twice();
    let (one, other) = (first.holder.as_str(), second.holder.as_str());
    assert_eq!(holders, [None, Some(one.to_string()), None, Some(other.to_string()), None], "{holders:?}");
    // released: nobody holds it
    let lease = kubectl(&pki_c, &["-n", "kube-system", "get", "lease", "kubeadm-certs-restart", "-o", "json"], "");
    let lease: Value = serde_json::from_str(&lease).unwrap();
    assert!(lease["spec"]["holderIdentity"].is_null(), "{lease}");
}

#[test]
fn a_lease_another_node_holds_makes_the_run_wait_and_an_expired_one_is_taken_over() {
    let ip = "127.0.0.70";
    let pki = kubeadm_pki("std", "cp1", ip);
    let cluster = Cluster::start(&pki, ip);
    let cmd = cluster.restart_command();
    let lease = |renewed: chrono::DateTime<chrono::Utc>| {
        serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "kubeadm-certs-restart", "namespace": "kube-system"},
            "spec": {"holderIdentity": "cp9", "leaseDurationSeconds": 600,
                     "renewTime": renewed.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)}})
        .to_string()
    };
    let args = [
        "kube-apiserver",
        "--lease",
        "--lease-identity",
        "cp1",
        "--method",
        "command",
        "--restart-command",
        &cmd,
        "--timeout",
        "90s",
    ];

    // held by cp9 and renewed just now: cp1 waits, then gives up at --lease-timeout, restarting nothing
    kubectl(&pki, &["create", "-f", "-"], &lease(chrono::Utc::now()));
    let pid = cluster.pid("kube-apiserver");
    let mut waiting = args.to_vec();
    waiting.extend(["--lease-timeout", "3s"]);
    let started = std::time::Instant::now();
    let (code, _, text) = restart_json(&pki, &waiting);
    assert_eq!(code, 1, "{text}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(3), "it waited");
    assert!(
        text.contains("lease kube-system/kubeadm-certs-restart not taken in 3s") && text.contains("held by cp9"),
        "{text}"
    );
    assert!(text.contains("nothing was restarted"), "{text}");
    assert_eq!(cluster.pid("kube-apiserver"), pid);

    // cp9 stopped renewing 11 minutes ago (its 10 minutes are past): taken over, restarted, released
    kubectl(&pki, &["replace", "-f", "-"], &lease(chrono::Utc::now() - chrono::Duration::minutes(11)));
    let (code, v, text) = restart_json(&pki, &args);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["lease"]["took_over_from"], "cp9", "{text}");
    assert_eq!(v["restarts"][0]["action"], "restarted", "{text}");
    assert_ne!(cluster.pid("kube-apiserver"), pid);
    let got = kubectl(&pki, &["-n", "kube-system", "get", "lease", "kubeadm-certs-restart", "-o", "json"], "");
    let got: Value = serde_json::from_str(&got).unwrap();
    assert!(got["spec"]["holderIdentity"].is_null(), "released: {got}");
    assert_eq!(got["spec"]["leaseTransitions"], 1, "{got}");
}

#[test]
fn lease_and_gate_options_outside_a_restart_with_a_lease_are_named_as_mistakes() {
    let pki = std_pki();
    let v = module_on(&pki, serde_json::json!({"state": "renew", "cluster_gate": true}));
    assert_eq!(v["failed"], true, "{v}");
    assert_eq!(v["msg"], "cluster_gate applies to state restart, not renew", "{v}");
    let v = module_on(&pki, serde_json::json!({"state": "restart", "lease_timeout": "1m"}));
    assert_eq!(v["failed"], true, "{v}");
    assert_eq!(v["msg"], "lease_timeout applies with lease: true", "{v}");
    let (code, _, err) = run_on(&pki, &["restart", "--lease-timeout", "1m"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--lease"), "{err}");
    // the name goes into the Lease's URL
    for bad in ["a/../../configmaps/x", "Upper", "x?watch=1"] {
        let (code, _, err) = run_on(&pki, &["restart", "--lease", "--lease-name", bad]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&format!("invalid lease name {bad:?}")), "{err}");
    }
    let v = module_on(&pki, serde_json::json!({"state": "restart", "lease": true, "lease_name": "a/b"}));
    assert!(v["failed"] == true && v["msg"].as_str().unwrap().contains("invalid lease name"), "{v}");
    // nothing runs on this PKI: nothing would restart, so neither the gate nor the lease asks the cluster
    // (no apiserver listens for this PKI's admin.conf)
    let (code, v, text) =
        restart_json(&pki, &["--cluster-gate", "--lease", "--method", "command", "--restart-command", "true"]);
    assert_eq!(code, 0, "{text}");
    assert!(v["lease"].is_null() && v["cluster"].is_null(), "{text}");
}

/// Three etcd members, one per node PKI (one CA), kube-apiserver on the first; stopped on drop.
struct ThreeMembers {
    dir: tempfile::TempDir,
    ips: [&'static str; 3],
}

impl ThreeMembers {
    fn root(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(format!("n{}", i + 1))
    }
    fn members(&self) -> String {
        self.ips
            .iter()
            .enumerate()
            .map(|(i, ip)| format!("cp{}=https://{ip}:2380", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }
    fn sh(&self, script: &str, args: &[&str], i: usize) {
        let out = Command::new(repo().join(script))
            .args(args)
            .env("K8S_BIN", k8s_bin())
            .env("ETCD_MEMBERS", self.members())
            .env("CA_FROM", self.root(0))
            .output()
            .unwrap();
        assert!(out.status.success(), "{script} {args:?} (node {i}): {}", String::from_utf8_lossy(&out.stderr));
    }
    fn start(ips: [&'static str; 3]) -> ThreeMembers {
        let c = ThreeMembers { dir: tempfile::tempdir().unwrap(), ips };
        for (i, ip) in ips.iter().enumerate() {
            let root = c.root(i);
            std::fs::create_dir(&root).unwrap();
            let node = format!("cp{}", i + 1);
            let mut cmd = Command::new(repo().join("scripts/mkpki.sh"));
            cmd.arg(&root).args(["std", &node, ip]).env("K8S_BIN", k8s_bin());
            if i > 0 {
                cmd.env("CA_FROM", c.root(0));
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "mkpki.sh: {}", String::from_utf8_lossy(&out.stderr));
        }
        for (i, ip) in ips.iter().enumerate() {
            c.sh("scripts/cluster.sh", &["start-etcd", &c.root(i).display().to_string(), ip], i);
        }
        // the apiserver waits until etcd has its quorum and /readyz answers
        c.sh("scripts/cluster.sh", &["start", &c.root(0).display().to_string(), ips[0]], 0);
        c
    }
    /// etcd's /health on member `i`, asked with curl (not with the code under test).
    fn etcd_healthy(&self, i: usize) -> bool {
        let p = self.root(i).join("etc/kubernetes/pki/etcd");
        let out = Command::new("curl")
            .args(["-s", "--max-time", "2", "--cacert"])
            .arg(p.join("ca.crt"))
            .arg("--cert")
            .arg(p.join("healthcheck-client.crt"))
            .arg("--key")
            .arg(p.join("healthcheck-client.key"))
            .arg(format!("https://{}:2379/health", self.ips[i]))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("\"health\":\"true\"")
    }
    fn etcd_pid(&self, i: usize) -> String {
        std::fs::read_to_string(self.root(i).join("run/etcd.pid")).unwrap().trim().to_string()
    }
}

impl Drop for ThreeMembers {
    fn drop(&mut self) {
        for i in 0..3 {
            let _ = Command::new("kill").args(["-CONT", &self.etcd_pid(i)]).status();
            let _ = Command::new(repo().join("scripts/cluster.sh")).arg("stop").arg(self.root(i)).output();
        }
    }
}

#[test]
fn the_cluster_gate_asks_every_etcd_member_and_names_the_one_that_hangs() {
    let c = ThreeMembers::start(["127.0.0.73", "127.0.0.74", "127.0.0.75"]);
    let root = c.root(0);
    let kube = root.join("etc/kubernetes");
    let gate = |extra: &[&str]| {
        let out = bin()
            .args(["restart", "kube-apiserver", "--cluster-gate", "--check", "--method", "command"])
            .args(["--restart-command", "true", "-o", "json", "--cert-dir"])
            .arg(kube.join("pki"))
            .arg("--kubeconfig-dir")
            .arg(&kube)
            .args(extra)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code(), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null), text)
    };
    // the list comes from this node's member; each member's /health is asked on its own client URL
    let (code, v, text) = gate(&[]);
    assert_eq!(code, Some(0), "{text}");
    let mut names: Vec<&str> =
        v["cluster"]["etcd_members"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    names.sort();
    assert_eq!(names, ["cp1", "cp2", "cp3"], "{text}");

    // cp3 hangs: the quorum holds (cp1 and cp2 answer), and the gate names cp3 alone
    let stopped = c.etcd_pid(2);
    assert!(Command::new("kill").args(["-STOP", &stopped]).status().unwrap().success());
    // if cp3 led, cp1 and cp2 elect a new leader first (about a second): until then they too are unhealthy
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !(c.etcd_healthy(0) && c.etcd_healthy(1)) {
        assert!(std::time::Instant::now() < deadline, "cp1 and cp2 never healthy without cp3");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (code, _, text) = gate(&[]);
    assert!(Command::new("kill").args(["-CONT", &stopped]).status().unwrap().success());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "cluster gate: not restarting anything while etcd member cp3 (https://127.0.0.75:2379): not healthy"
        ),
        "{text}"
    );
    assert!(!text.contains("etcd member cp1") && !text.contains("etcd member cp2"), "{text}");
}

#[test]
fn a_manifest_held_by_a_run_in_progress_is_left_to_it() {
    // a restart holding kube-apiserver's manifest holds the PKI lock the whole time; another run on the node (a
    // check, a timer's renew) that put the manifest back would start the apiserver under the restart, and the
    // restart would then fail to find its manifest (seen in Molecule ha: "cannot write the new manifest")
    use std::os::unix::fs::OpenOptionsExt;
    let (pki, manifests, held) = apiserver_manifest_left_held();
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(pki.certs().join(".kubeadm-certs.lock"))
        .unwrap();
    lock.lock().unwrap();
    let (code, out, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("is held by a kubeadm-certs run in progress"), "{err}");
    assert!(held.join("kube-apiserver.yaml").exists() && !manifests.join("kube-apiserver.yaml").exists(), "{err}");
    let (code, out, err) = run_on(&pki, &["renew", "--lock-timeout", "1s"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(held.join("kube-apiserver.yaml").exists() && !manifests.join("kube-apiserver.yaml").exists(), "{err}");
    // once the run is over, the next run puts it back
    drop(lock);
    let (code, out, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("put back"), "{err}");
    assert!(manifests.join("kube-apiserver.yaml").exists());
}

#[test]
fn a_held_manifest_goes_back_only_once_the_components_old_process_is_gone() {
    // the interrupted run was killed between "hold" and "the process is gone": the next run finishes that step
    // before it puts the manifest back (put back while the kubelet still stops the old pod, it is an update of a
    // pod being killed, and the wait for the component then finds the old process)
    let (pki, manifests, held) = apiserver_manifest_left_held();
    let mark = pki.root().join("held-when-it-exited");
    // a kube-apiserver of this PKI that the kubelet is still stopping: it notes, as it exits, whether the
    // manifest is still held
    let code = format!(
        "import os, time\ntime.sleep(2)\nopen({:?}, 'w').write(str(os.path.exists({:?})))\n",
        mark.display().to_string(),
        held.join("kube-apiserver.yaml").display().to_string()
    );
    let (_, reaper) = fake_apiserver(&pki, &code);
    let (code, out, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    reaper.join().unwrap().unwrap();
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "True", "the manifest was put back under the old process");
    assert!(manifests.join("kube-apiserver.yaml").exists() && err.contains("put back"), "{err}");
}

/// A process that is this PKI's kube-apiserver to anyone looking in /proc (its argv names apiserver.crt),
/// running the Python `code`; returns its pid once bash has exec'd it, and a thread that reaps it.
fn fake_apiserver(pki: &Pki, code: &str) -> (u32, std::thread::JoinHandle<std::io::Result<std::process::ExitStatus>>) {
    let cert = format!("--tls-cert-file={}", pki.certs().join("apiserver.crt").display());
    let mut child = Command::new("bash")
        .args(["-c", "exec -a kube-apiserver /usr/bin/python3 -c \"$1\" \"$2\"", "fake", code, &cert])
        .spawn()
        .unwrap();
    let pid = child.id();
    // until bash has exec'd it: then it is a kube-apiserver to anyone who looks
    let cmdline = format!("/proc/{pid}/cmdline");
    while !std::fs::read(&cmdline).unwrap_or_default().starts_with(b"kube-apiserver\0") {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // reaped as soon as it exits (a zombie is gone too, but only once its parent notices)
    (pid, std::thread::spawn(move || child.wait()))
}

#[test]
fn a_held_manifest_whose_name_is_back_waits_for_nothing_and_is_left_held() {
    // put back by hand: the component running now is the one from that manifest, no old process to wait for
    let (pki, manifests, held) = apiserver_manifest_left_held();
    std::fs::write(manifests.join("kube-apiserver.yaml"), "kind: Pod\n# by hand\n").unwrap();
    let (pid, reaper) = fake_apiserver(&pki, "import time\ntime.sleep(600)\n");
    let started = std::time::Instant::now();
    let (code, out, err) = run_on(&pki, &["check"]);
    let took = started.elapsed();
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = reaper.join();
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("still runs"), "it waited for the running apiserver: {err}");
    assert!(err.contains("its name is in") && held.join("kube-apiserver.yaml").exists(), "{err}");
    assert!(took < std::time::Duration::from_secs(60), "check took {took:?}");
}
