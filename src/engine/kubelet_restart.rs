//! The kubelet restarted and awaited after one of its certificates changed on disk: it reads its client
//! certificate (`kubelet.conf`) and its self-signed serving pair (`kubelet.crt`, `kubelet.key`) only at start.
//! Shared by `renew kubelet-client` ([`super::kubelet_client`]) and `renew kubelet-serving`
//! ([`super::kubelet_serving`]):
//!
//! 1. `systemctl restart kubelet`
//! 2. its `/healthz` on 127.0.0.1:10248 answers ok, from a kubelet that started after the restart and holds that
//!    listener
//! 3. when a serving certificate was renewed: the same kubelet holds its serving port and a TLS handshake there
//!    reads the new certificate (the whole certificate compared, not only a serial)
//! 4. the apiserver shows it back: its node Lease renewed after the restart, its node Ready, asked as
//!    `admin.conf`'s user or, where there is none (a worker), as the kubelet itself
//!
//! Every step shares one deadline (`timeout`); each error says how far it got.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::duration::Span;
use crate::error::{Error, Result};
use crate::kube::credentials::Credentials;

const POLL: Duration = Duration::from_millis(500);

/// What to restart and await.
pub(super) struct Back<'a> {
    /// Where `admin.conf` is (the apiserver is asked as its user when it is there).
    pub kubeconfig_dir: &'a Path,
    pub node: &'a str,
    /// When this run began, before it restarted the kubelet.
    pub since: DateTime<Utc>,
    pub timeout: Span,
    /// The kubelet's own credentials, for a node without `admin.conf` (the Node authorizer lets a kubelet read
    /// its own node and Lease).
    pub own: &'a dyn Fn() -> Result<Credentials>,
    /// The certificate (DER) the kubelet must serve after the restart, and where its serving port is.
    pub serves: Option<(SocketAddr, &'a [u8])>,
}

/// Steps 1 to 4 of the module's comment.
pub(super) fn restart_and_wait(back: &Back<'_>) -> Result<()> {
    let systemctl = crate::restart::method::require(
        "systemctl",
        "the kubelet's restart",
        "restart the kubelet yourself, or pass --no-restart-kubelet (restart_kubelet: false)",
    )?;
    let out = std::process::Command::new(&systemctl)
        .args(["restart", "kubelet"])
        .output()
        .map_err(|e| Error::Restart(format!("kubelet: cannot run {}: {e}", systemctl.display())))?;
    if !out.status.success() {
        return Err(Error::Restart(format!(
            "kubelet: `systemctl restart kubelet` failed ({}): {}; the new certificate is in place, the kubelet \
             uses it once it starts (journalctl -u kubelet)",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(back.timeout.seconds().max(1) as u64);
    let mut last = String::new();
    while !kubelet_healthy(back.since, &mut last) {
        if Instant::now() >= deadline {
            return Err(Error::Restart(format!(
                "kubelet: restarted, but its /healthz on 127.0.0.1:10248 did not answer ok within {} ({last}); \
                 see journalctl -u kubelet",
                back.timeout
            )));
        }
        std::thread::sleep(POLL);
    }
    if let Some((addr, want)) = back.serves {
        while !serves(addr, want, back.since, &mut last) {
            if Instant::now() >= deadline {
                return Err(Error::Restart(format!(
                    "kubelet: restarted and healthy, but it does not serve the new certificate on {addr} within {} \
                     ({last}); see journalctl -u kubelet",
                    back.timeout
                )));
            }
            std::thread::sleep(POLL);
        }
    }
    let admin = back.kubeconfig_dir.join("admin.conf");
    let creds = if crate::pki::exists(&admin)? { Credentials::read(&admin)? } else { (back.own)()? };
    wait_back_in_cluster(&creds, back.node, back.since, deadline, back.timeout)
}

/// The kubelet's credentials as `kubelet.conf` names them: embedded, or in the file it points at (the kubelet's
/// `kubelet-client-current.pem`, certificate and key in one), for a node without `admin.conf`.
pub(super) fn kubelet_conf_credentials(conf: &Path) -> Result<Credentials> {
    use crate::pki::kubeconfig::{self, ClientCertificate, Kubeconfig};
    use crate::pki::{Links, read_file};
    let bytes = read_file(conf, Links::Follow)?;
    let embedded = match kubeconfig::client_certificate(conf)? {
        ClientCertificate::Embedded(_) => bytes,
        ClientCertificate::File(file) => {
            let both = read_file(&file, Links::Follow)?;
            let blocks = pem::parse_many(&both).map_err(|e| Error::invalid(&file, format!("not PEM: {e}")))?;
            let of = |key: bool| -> String {
                blocks
                    .iter()
                    .filter(|b| b.tag().ends_with("PRIVATE KEY") == key)
                    .map(|b| crate::pki::cert::pem_encode(b.tag(), b.contents()))
                    .collect()
            };
            kubeconfig::with_client_data(conf, &bytes, of(false).as_bytes(), of(true).as_bytes())?
        }
    };
    Credentials::from_kubeconfig(conf, &Kubeconfig::parse(conf, &embedded)?)
}

/// The kubelet that started after the restart (`since`) holds the listener at `addr` and serves `want` there:
/// a TLS handshake reads the certificate it presents (`inuse::probe::served_certificate`, one deadline, bounded)
/// and it is compared whole. Whoever bound the port while the kubelet was down would otherwise answer for it.
fn serves(addr: SocketAddr, want: &[u8], since: DateTime<Utc>, last: &mut String) -> bool {
    use crate::inuse::{probe, proc};
    match proc::listener_of_program("kubelet", addr.ip(), addr.port()) {
        Some(pid) if proc::start_time(pid).is_some_and(|t| t >= since) => {}
        Some(pid) => {
            *last = format!("{addr} is held by a kubelet (pid {pid}) that started before the restart");
            return false;
        }
        None => {
            *last = format!("no kubelet running as root holds {addr}");
            return false;
        }
    }
    let endpoint = probe::Endpoint { host: addr.ip().to_string(), port: addr.port() };
    match probe::served_certificate(&endpoint) {
        Ok(der) if der == want => true,
        Ok(der) => {
            let serial = crate::pki::cert::Certificate::from_der(Path::new("served"), &der)
                .map(|c| c.serial_hex)
                .unwrap_or_else(|_| "unreadable".into());
            *last = format!("{addr} serves another certificate (serial {serial})");
            false
        }
        Err(e) => {
            *last = e;
            false
        }
    }
}

/// The kubelet's local health endpoint (plain HTTP, kubeadm's default `healthzBindAddress`/`healthzPort`),
/// answered by the kubelet that started after the restart (`since`): a root process named kubelet that holds
/// that listener. Whoever bound 10248 while the kubelet was down would otherwise answer for it. One deadline for
/// the whole exchange, the answer read up to 4 KiB (`inuse::probe::Bounded`).
fn kubelet_healthy(since: DateTime<Utc>, last: &mut String) -> bool {
    use crate::inuse::probe::{Bounded, PROBE_DEADLINE};
    use crate::inuse::proc;
    let lo = std::net::Ipv4Addr::LOCALHOST;
    let answer = (|| -> std::io::Result<String> {
        let mut s = Bounded::connect(&(lo, 10248).into(), Instant::now() + PROBE_DEADLINE, 4096)?;
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut text = Vec::new();
        s.read_to_end(&mut text)?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    })();
    match answer {
        Ok(text) if text.starts_with("HTTP/1.") && text.split_whitespace().nth(1) == Some("200") => {}
        Ok(text) => {
            *last = text.lines().next().unwrap_or_default().to_string();
            return false;
        }
        Err(e) => {
            *last = e.to_string();
            return false;
        }
    }
    // `since` is when this run began, before it restarted the kubelet
    match proc::listener_of_program("kubelet", lo.into(), 10248) {
        Some(pid) if proc::start_time(pid).is_some_and(|t| t >= since) => true,
        Some(pid) => {
            *last = format!("127.0.0.1:10248 answers, but its kubelet (pid {pid}) started before the restart");
            false
        }
        None => {
            *last = "127.0.0.1:10248 answers, but no kubelet running as root holds that listener".into();
            false
        }
    }
}

/// Until the node's Lease was renewed after `since` (the kubelet authenticated with its new certificate) and
/// the node is Ready, as the apiserver says to `creds` (admin.conf's, or the kubelet's own).
fn wait_back_in_cluster(
    creds: &crate::kube::credentials::Credentials,
    node: &str,
    since: DateTime<Utc>,
    deadline: Instant,
    timeout: Span,
) -> Result<()> {
    let client = crate::kube::client::Client::new(creds)?;
    let mut last;
    loop {
        let lease = client.get(&format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}"));
        let status = client.get(&format!("/api/v1/nodes/{node}"));
        match (lease, status) {
            (Ok(l), Ok(n)) if l.ok() && n.ok() => {
                let renewed = l.body["spec"]["renewTime"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t.with_timezone(&Utc) > since);
                let ready = n.body["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                if renewed && ready {
                    return Ok(());
                }
                last = format!("lease renewed since the restart: {renewed}, node Ready: {ready}");
            }
            (Ok(l), Ok(n)) => last = format!("lease: {} {}, node: {} {}", l.status, l.message(), n.status, n.message()),
            (Err(e), _) | (_, Err(e)) => last = e.to_string(),
        }
        if Instant::now() >= deadline {
            return Err(Error::Restart(format!(
                "kubelet: healthy again, but node {node} is not back in the cluster within {timeout} ({last}); see \
                 `kubectl get node {node}` and journalctl -u kubelet"
            )));
        }
        std::thread::sleep(POLL);
    }
}
