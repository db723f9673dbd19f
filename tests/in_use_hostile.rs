//! What a local user or a wedged component can plant on a control-plane node, against the in-use view and the
//! restart engine, which run as root, on a timer, holding the PKI lock: a process named like a component, a
//! listener on a component's port, a TLS endpoint that never finishes its handshake, a file in the holding dir,
//! and manifests whose YAML 1.1 meaning a rewrite would change.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const NOBODY: &str = "65534";

fn component<'a>(v: &'a Value, name: &str) -> &'a Value {
    let list = v["components"].as_array().unwrap_or_else(|| panic!("no components in {v}"));
    let found: Vec<&Value> = list.iter().filter(|c| c["name"] == name).collect();
    assert_eq!(found.len(), 1, "{name} once in {v}");
    found[0]
}

/// A process that stops when dropped.
struct Proc(Child);

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python3 SCRIPT ARGS...` under the program name `name` (argv[0]), as `user` (`None`: root), in the background.
/// /usr/bin/python3: a pyenv shim would exec python again and lose the program name.
fn spawn_named(name: &str, user: Option<&str>, script: &Path, args: &[String]) -> Proc {
    let mut cmd = Command::new("setpriv");
    if let Some(u) = user {
        cmd.args([format!("--reuid={u}"), format!("--regid={u}"), "--clear-groups".into()]);
    }
    cmd.args(["bash", "-c", "exec -a \"$0\" /usr/bin/python3 \"$@\"", name]).arg(script).args(args);
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // until it runs under that name (setpriv and bash exec it in the same process)
    let (pid, deadline) = (child.id(), Instant::now() + Duration::from_secs(10));
    let named = format!("{name}\0");
    while !std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default().starts_with(named.as_bytes()) {
        assert!(Instant::now() < deadline, "{name} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proc(child)
}

/// Until `ip:port` accepts connections (the process we started listens).
fn until_listening(ip: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = format!("{ip}:{port}").parse().unwrap();
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    // the unprivileged processes read their scripts and certificates from here
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    p
}

/// A directory nobody (uid 65534) may read, for its scripts.
fn scratch() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    d
}

/// Sleeps; it exists to be found in /proc under a component's name, with the flags it was given.
const SLEEPER: &str = "import time\ntime.sleep(600)\n";

/// Serves HTTPS on --bind-address:--secure-port with a self-signed certificate, answering `ok` to anything.
const HEALTHZ: &str = r#"import http.server, ssl, sys
flags = dict(a[2:].split('=', 1) for a in sys.argv[1:] if a.startswith('--') and '=' in a)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
s = http.server.HTTPServer((flags['bind-address'], int(flags['secure-port'])), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(flags['serve-cert'], flags['serve-key'])
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#;

/// Listens on --bind-address:--secure-port; to each connection announces a 16 KiB TLS handshake record and then
/// sends one byte a second, forever.
const WEDGE: &str = r#"import socket, sys, threading, time
flags = dict(a[2:].split('=', 1) for a in sys.argv[1:] if a.startswith('--') and '=' in a)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((flags['bind-address'], int(flags['secure-port']))); s.listen(16)
def drip(c):
    try:
        c.sendall(bytes([0x16, 0x03, 0x03, 0x40, 0x00]))
        while True:
            c.sendall(b'\x00'); time.sleep(1)
    except OSError: pass
while True:
    c, _ = s.accept(); threading.Thread(target=drip, args=(c,), daemon=True).start()
"#;

fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (crt, key) = (dir.join("serve.crt"), dir.join("serve.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=impostor",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
    for p in [&crt, &key] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    (crt, key)
}

/// Runs the binary, killing it after `limit`; `None` when it had to be killed.
fn run_within(args: &[String], limit: Duration) -> Option<(i32, String, String)> {
    let mut child = Command::new(bin_path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn with_dirs(pki: &Pki, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(pki.dirs());
    all
}

#[test]
fn a_local_users_process_named_like_a_component_is_not_taken_for_it() {
    let ip = "127.0.0.80";
    let pki = kubeadm_pki("std", "cp1", ip);
    let cluster = Cluster::start(&pki, ip);
    let dir = scratch();
    let sleeper = write(dir.path(), "sleeper.py", SLEEPER);
    let certs = pki.certs();
    let named = vec![
        format!("--tls-cert-file={}", certs.join("apiserver.crt").display()),
        format!("--kubelet-client-certificate={}", certs.join("apiserver-kubelet-client.crt").display()),
    ];
    let mut impostor = spawn_named("kube-apiserver", Some(NOBODY), &sleeper, &named);

    let (code, out, err) = run_on(&pki, &["check", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(component(&v, "kube-apiserver")["pid"], cluster.pid("kube-apiserver"), "{v}");

    // a renewal makes the real one stale; the restart restarts it alone, waiting for nothing of the impostor's
    let (code, out, err) = run_on(&pki, &["renew", "apiserver-kubelet-client", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    let real = cluster.pid("kube-apiserver");
    let cmd = cluster.restart_command();
    let (code, out, err) = run_on(
        &pki,
        &["restart", "stale", "--method", "command", "--restart-command", &cmd, "--timeout", "90s", "-o", "json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let restarts = v["restarts"].as_array().unwrap();
    assert_eq!(restarts.len(), 1, "{out}");
    assert_eq!(restarts[0]["pid_before"].as_u64(), Some(real), "{out}");
    assert!(!out.contains(&format!(":{},", impostor.pid())), "the impostor's pid is nowhere in {out}");
    assert!(impostor.running(), "the impostor was neither waited on nor touched");
}

#[test]
fn a_health_answer_counts_only_from_the_components_own_listener() {
    let ip = "127.0.0.81";
    let pki = kubeadm_pki("std", "cp1", ip);
    let _cluster = Cluster::start(&pki, ip);
    let dir = scratch();
    let (crt, key) = self_signed(dir.path());
    let healthz = write(dir.path(), "healthz.py", HEALTHZ);
    let sleeper = write(dir.path(), "sleeper.py", SLEEPER);
    let conf = pki.kube().join("scheduler.conf");
    let flags = vec![
        format!("--kubeconfig={}", conf.display()),
        format!("--bind-address={ip}"),
        "--secure-port=10259".to_string(),
        format!("--serve-cert={}", crt.display()),
        format!("--serve-key={}", key.display()),
    ];

    // 1. the scheduler's manifest left held, and a local user's kube-scheduler answering ok on its port: the
    // manifest goes back, and nothing that runs is the scheduler (there is no kubelet here to start one)
    let manifests = pki.kube().join("manifests");
    let holding = pki.kube().join("tmp/kubeadm-certs-paused-manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::DirBuilder::new().recursive(true).create(&holding).unwrap();
    std::fs::set_permissions(&holding, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-scheduler\n  namespace: kube-system\nspec:\n  containers:\n  - name: kube-scheduler\n";
    std::fs::write(holding.join("kube-scheduler.yaml"), manifest).unwrap();
    let impostor = spawn_named("kube-scheduler", Some(NOBODY), &healthz, &flags);
    until_listening(ip, 10259);
    let (code, out, err) = run_on(&pki, &["restart", "--timeout", "3s", "-o", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("kube-scheduler: its manifest was put back") && err.contains("it is not running 3s later"),
        "{err}"
    );
    assert!(!format!("{out}{err}").contains(&impostor.pid().to_string()), "{out}{err}");
    assert!(manifests.join("kube-scheduler.yaml").exists());
    drop(impostor);

    // 2. a scheduler of root's restarted by the method, and another user's listener answering ok on its port:
    // the answer is not the scheduler's
    let listener = spawn_named("healthz", Some(NOBODY), &healthz, &flags);
    until_listening(ip, 10259);
    let mut sleeping = flags.clone();
    sleeping.truncate(3);
    let first = spawn_named("kube-scheduler", None, &sleeper, &sleeping);
    let script = sleeper.display();
    let args: Vec<String> = sleeping.iter().map(|a| format!("'{a}'")).collect();
    let cmd = format!(
        "kill $KUBEADM_CERTS_PID; setsid bash -c 'exec -a kube-scheduler /usr/bin/python3 {script} {}' </dev/null >/dev/null 2>&1 &",
        args.join(" ")
    );
    let (code, out, err) = run_on(
        &pki,
        &["restart", "kube-scheduler", "--method", "command", "--restart-command", &cmd, "--timeout", "3s"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("{ip}:10259 is not a listener of pid")), "{err}");
    let _ = Command::new("pkill").args(["-f", &format!("kube-scheduler {script}")]).status();
    drop((first, listener));
}

/// A root process named kube-apiserver, on this PKI, whose secure port is a wedged TLS listener.
fn wedged_apiserver(pki: &Pki, ip: &str, dir: &Path) -> Proc {
    let wedge = write(dir, "wedge.py", WEDGE);
    let certs = pki.certs();
    let flags = vec![
        format!("--advertise-address={ip}"),
        format!("--bind-address={ip}"),
        "--secure-port=6443".to_string(),
        format!("--tls-cert-file={}", certs.join("apiserver.crt").display()),
        format!("--kubelet-client-certificate={}", certs.join("apiserver-kubelet-client.crt").display()),
    ];
    let p = spawn_named("kube-apiserver", None, &wedge, &flags);
    until_listening(ip, 6443);
    p
}

#[test]
fn a_wedged_tls_endpoint_costs_a_probe_its_deadline_and_is_reported_not_waited_on() {
    let ip = "127.0.0.82";
    let pki = kubeadm_pki("std", "cp1", ip);
    let dir = scratch();
    let _wedge = wedged_apiserver(&pki, ip, dir.path());
    let began = Instant::now();
    let done = run_within(&with_dirs(&pki, &["check", "-o", "json"]), Duration::from_secs(120));
    let (code, out, err) = done.expect("check still ran after 120 s against a listener that sends a byte a second");
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let api = component(&v, "kube-apiserver");
    let reason = api["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("cannot be probed on {ip}:6443")), "{reason}");
    // one probe, one deadline (5 s), and the rest of check: well under a minute on any machine
    assert!(began.elapsed() < Duration::from_secs(60), "{:?}", began.elapsed());
}

#[test]
fn a_renewal_probes_what_runs_only_after_it_has_let_go_of_the_lock() {
    let ip = "127.0.0.83";
    let pki = kubeadm_pki("std", "cp1", ip);
    let dir = scratch();
    let _wedge = wedged_apiserver(&pki, ip, dir.path());
    let crt = pki.certs().join("apiserver-kubelet-client.crt");
    let before = std::fs::read(&crt).unwrap();
    let out_file = dir.path().join("first.json");
    let mut first = Proc(
        Command::new(bin_path())
            .args(with_dirs(&pki, &["renew", "apiserver-kubelet-client", "--force", "-o", "json"]))
            .stdout(std::fs::File::create(&out_file).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // the files are written: the first run is now looking at what runs (the wedged endpoint)
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read(&crt).unwrap() == before {
        assert!(Instant::now() < deadline, "the first renewal never wrote");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(first.running(), "the first run is still probing");
    let (code, out, err) = run_on(&pki, &["renew", "--lock-timeout", "1s", "-o", "json"]);
    assert_eq!(code, 0, "a second run got the lock while the first probed: {out}{err}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while first.running() {
        assert!(Instant::now() < deadline, "the first run still probes after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(v["restart"], serde_json::json!(["kube-apiserver"]), "{v}");
}

/// Values a YAML 1.2 serialiser writes back differently from how the kubelet (YAML 1.1) read them.
const TRICKY: &str = r#"apiVersion: v1
kind: Pod
metadata:
  annotations:
    # kept: comments are what operators leave for each other
    example.com/enabled: "yes"
    example.com/switch: "on"
  creationTimestamp: null
  labels:
    component: kube-scheduler
    flag: "NO"
  name: kube-scheduler
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-scheduler
    - --kubeconfig=/etc/kubernetes/scheduler.conf
    env:
    - name: BUDGET
      value: "1_000"
    name: kube-scheduler
    volumeMounts:
    - mountPath: /etc/kubernetes/scheduler.conf
      name: kubeconfig
  volumes:
  - secret:
      defaultMode: 0600   # octal to YAML 1.1
      secretName: x
    name: kubeconfig
"#;

/// Loads a file with PyYAML (a YAML 1.1 resolver, like the kubelet's go-yaml v2) and prints it as JSON.
fn yaml11(path: &Path) -> Value {
    let out = Command::new("/usr/bin/python3")
        .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_restart_annotation_changes_that_line_alone_as_a_yaml_1_1_reader_sees_it() {
    let pki = std_pki();
    let manifests = pki.kube().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let manifest = manifests.join("kube-scheduler.yaml");
    std::fs::write(&manifest, TRICKY).unwrap();
    let original = pki.root().join("original.yaml");
    std::fs::write(&original, TRICKY).unwrap();
    // not running: the manifest is rewritten for a new pod (with no kubelet here, nothing starts)
    let (code, _, err) = run_on(&pki, &["restart", "kube-scheduler", "--timeout", "1s"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("its manifest rewritten to start a new pod"), "{err}");
    let after = std::fs::read_to_string(&manifest).unwrap();

    // every line kept, in order, one line added
    let kept: Vec<&str> = after.lines().filter(|l| !l.contains("kubeadm-certs.k8s-pki.io/restartedAt")).collect();
    assert_eq!(kept, TRICKY.lines().collect::<Vec<_>>(), "{after}");
    assert_eq!(after.lines().count(), TRICKY.lines().count() + 1, "{after}");
    // and to a YAML 1.1 reader the only difference is the annotation
    let (mut new, old) = (yaml11(&manifest), yaml11(&original));
    assert_eq!(old["metadata"]["annotations"]["example.com/enabled"], "yes", "PyYAML reads as the kubelet does");
    assert_eq!(old["spec"]["volumes"][0]["secret"]["defaultMode"], 384, "0600 is octal to YAML 1.1");
    let set = new["metadata"]["annotations"].as_object_mut().unwrap().remove("kubeadm-certs.k8s-pki.io/restartedAt");
    assert!(set.and_then(|v| v.as_str().map(String::from)).is_some_and(|t| t.ends_with('Z')), "{after}");
    assert_eq!(new, old, "{after}");

    // a manifest a line edit cannot keep exact is refused, nothing moved
    let flow = "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-scheduler, namespace: kube-system}\nspec: {containers: [{name: kube-scheduler}]}\n";
    std::fs::write(&manifest, flow).unwrap();
    let (code, _, err) = run_on(&pki, &["restart", "kube-scheduler", "--timeout", "1s"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot set the restart annotation as one line") && err.contains("nothing was moved"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), flow);
}

#[test]
fn the_holding_dir_gives_back_only_component_manifests_from_a_dir_only_root_could_write() {
    let pki = std_pki();
    let manifests = pki.kube().join("manifests");
    let holding = pki.kube().join("tmp/kubeadm-certs-paused-manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::DirBuilder::new().recursive(true).create(&holding).unwrap();
    std::fs::set_permissions(&holding, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let backdoor = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: backdoor\nspec:\n  hostNetwork: true\n  containers:\n  - name: x\n    securityContext:\n      privileged: true\n";
    std::fs::write(holding.join("backdoor.yaml"), backdoor).unwrap();
    std::fs::write(holding.join("kube-apiserver.yaml"), "kind: Pod\n").unwrap();
    let (code, out, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!manifests.join("backdoor.yaml").exists(), "the kubelet would run it");
    assert!(holding.join("backdoor.yaml").exists());
    assert!(err.contains("backdoor.yaml is not the manifest of etcd, kube-apiserver"), "{err}");
    assert!(manifests.join("kube-apiserver.yaml").exists(), "a component's own goes back: {err}");

    // a holding dir another user owns is not believed at all
    std::fs::rename(manifests.join("kube-apiserver.yaml"), holding.join("kube-apiserver.yaml")).unwrap();
    let st = Command::new("chown").args([&format!("{NOBODY}:{NOBODY}"), holding.to_str().unwrap()]).status().unwrap();
    assert!(st.success());
    let (code, out, err) = run_on(&pki, &["check"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains(&format!("is owned by uid {NOBODY}, not by uid 0 (root)")), "{err}");
    assert!(!manifests.join("kube-apiserver.yaml").exists() && holding.join("kube-apiserver.yaml").exists());
    // nor used to hold one
    std::fs::write(manifests.join("kube-scheduler.yaml"), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: s\n").unwrap();
    let (code, _, err) = run_on(&pki, &["restart", "kube-scheduler", "--timeout", "1s"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot hold a manifest in") || err.contains("is owned by uid"), "{err}");
}
