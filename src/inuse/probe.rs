//! What a component serves and whether it answers healthy, asked over the network with nothing installed
//! on the node: a TLS handshake that reads the served certificate (and then hangs up), and an HTTPS GET
//! of a health endpoint. Each has one deadline for the whole exchange and reads a bounded number of bytes: a
//! wedged or hostile listener (a TLS record announced and sent a byte a second) costs a probe
//! [`PROBE_DEADLINE`], never a run.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use super::proc::Process;
use crate::inventory::{Component, Listener};
use crate::kube::client::pem_certificates;
use crate::pki::{Links, read_file};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The whole of one probe: connect, handshake, request and answer.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(5);
/// What a handshake may read before its certificate: a kubeadm chain is a few KiB, a TLS record at most 16.
const HANDSHAKE_BYTES: usize = 64 << 10;
/// What a health answer may be.
const ANSWER_BYTES: u64 = 1 << 20;

/// A socket with one deadline for everything read and written through it, and a cap on what is read.
pub struct Bounded {
    sock: TcpStream,
    deadline: Instant,
    left: usize,
}

impl Bounded {
    pub fn connect(addr: &SocketAddr, deadline: Instant, max_read: usize) -> std::io::Result<Bounded> {
        let left = deadline.saturating_duration_since(Instant::now());
        let sock = TcpStream::connect_timeout(addr, left.min(CONNECT_TIMEOUT).max(Duration::from_millis(1)))?;
        Ok(Bounded { sock, deadline, left: max_read })
    }

    /// Time left before the deadline, or the error that says it passed.
    fn left_in_time(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the probe's deadline passed"));
        }
        Ok(left)
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("the server sent more than a probe reads"));
        }
        self.sock.set_read_timeout(Some(self.left_in_time()?))?;
        let cap = buf.len().min(self.left);
        let n = self.sock.read(&mut buf[..cap])?;
        self.left -= n;
        Ok(n)
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sock.set_write_timeout(Some(self.left_in_time()?))?;
        self.sock.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.sock.flush()
    }
}

/// A `host:port` to dial, as the component's flags give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => write!(f, "[{}]:{}", self.host, self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// A listener that binds every address is dialled on loopback (or on `fallback`, an address its
/// certificate names).
fn dial_host(bound: &str, fallback: Option<&str>) -> String {
    match bound.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => {
            fallback.map(String::from).unwrap_or_else(|| if ip.is_ipv6() { "::1".into() } else { "127.0.0.1".into() })
        }
        _ => bound.to_string(),
    }
}

/// The first `SCHEME://host:port` of a comma-separated URL list (etcd's `--listen-*-urls`).
pub fn first_url(urls: &str, scheme: &str) -> Option<Endpoint> {
    urls.split(',').find_map(|u| {
        let rest = u.trim().strip_prefix(scheme)?.strip_prefix("://")?;
        let hostport = rest.split('/').next()?;
        let (host, port) = hostport.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(Endpoint { host: dial_host(host, None), port: port.parse().ok()? })
    })
}

/// Where `process` serves what `listener` names.
pub fn endpoint(process: &Process, listener: Listener) -> Option<Endpoint> {
    match listener {
        Listener::ApiserverSecurePort => {
            let port = process.flag("secure-port").unwrap_or("6443").parse().ok()?;
            let bound = process.flag("bind-address").unwrap_or("0.0.0.0");
            // the serving certificate names the advertise address, not loopback
            Some(Endpoint { host: dial_host(bound, process.flag("advertise-address")), port })
        }
        Listener::EtcdClientUrls => first_url(process.flag("listen-client-urls")?, "https"),
        Listener::EtcdPeerUrls => first_url(process.flag("listen-peer-urls")?, "https"),
    }
}

fn resolve(ep: &Endpoint) -> Result<SocketAddr, String> {
    (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| format!("{ep}: cannot resolve: {e}"))?
        .next()
        .ok_or_else(|| format!("{ep}: no address"))
}

/// Takes the server's leaf certificate and refuses it: the handshake stops there, we send nothing
/// further and trust nothing.
#[derive(Debug)]
struct TakeLeaf {
    leaf: Mutex<Option<Vec<u8>>>,
    schemes: Vec<SignatureScheme>,
}

const TAKEN: &str = "kubeadm-certs: served certificate read";

impl ServerCertVerifier for TakeLeaf {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.leaf.lock().unwrap_or_else(|p| p.into_inner()) = Some(end_entity.to_vec());
        Err(rustls::Error::General(TAKEN.into()))
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(TAKEN.into()))
    }
    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(TAKEN.into()))
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// The DER of the certificate served at `ep` (its leaf).
pub fn served_certificate(ep: &Endpoint) -> Result<Vec<u8>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let take = Arc::new(TakeLeaf {
        leaf: Mutex::new(None),
        schemes: provider.signature_verification_algorithms.supported_schemes(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(take.clone())
        .with_no_client_auth();
    let name = match ep.host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(ep.host.clone()).map_err(|e| format!("{ep}: {e}"))?,
    };
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let addr = resolve(ep)?;
    let deadline = Instant::now() + PROBE_DEADLINE;
    let mut sock = Bounded::connect(&addr, deadline, HANDSHAKE_BYTES).map_err(|e| format!("{ep}: {e}"))?;
    let mut last_err = None;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            last_err = Some(e);
            break;
        }
    }
    take.leaf.lock().unwrap_or_else(|p| p.into_inner()).take().ok_or_else(|| match last_err {
        Some(e) => format!("{ep}: TLS handshake failed before a certificate came: {e}"),
        None => format!("{ep}: the server sent no certificate"),
    })
}

/// How a health endpoint is asked and checked.
pub struct Health<'a> {
    pub url: String,
    /// Verify the server against this CA bundle (PEM file); `None`: the endpoint serves a certificate
    /// no CA of the cluster issued (kube-controller-manager and kube-scheduler make their own).
    pub ca: Option<&'a Path>,
    /// Present this client certificate and key (PEM files).
    pub client: Option<(&'a Path, &'a Path)>,
    /// The body must contain this.
    pub expect: &'a str,
}

/// The certificates of a PEM file, read like every other file of the PKI (capped, a regular file).
fn pem_certs(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let bytes = read_file(path, Links::Follow).map_err(|e| e.to_string())?;
    pem_certificates(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// An HTTPS agent that verifies the server against `ca` (or, `None`, not at all) and presents `client`.
fn agent(ca: Option<&Path>, client: Option<(&Path, &Path)>) -> Result<ureq::Agent, String> {
    let mut tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    tls = match ca {
        Some(ca) => tls.root_certs(RootCerts::new_with_certs(&pem_certs(ca)?)),
        None => tls.disable_verification(true),
    };
    if let Some((cert, key)) = client {
        // keys never through a link, as everywhere else
        let key_bytes = read_file(key, Links::Refuse).map_err(|e| e.to_string())?;
        // ureq's PEM reader never echoes key bytes in its error
        let key_pem = PrivateKey::from_pem(&key_bytes)
            .map_err(|e| format!("{}: cannot load the private key: {e}", key.display()))?;
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&pem_certs(cert)?, key_pem)));
    }
    Ok(ureq::Agent::config_builder()
        .tls_config(tls.build())
        .proxy(None)
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(PROBE_DEADLINE))
        .build()
        .new_agent())
}

/// Status and (bounded) body of an answer.
fn answer(url: &str, sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<(u16, String), String> {
    let mut resp = sent.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let mut body = String::new();
    let _ = resp.body_mut().as_reader().take(ANSWER_BYTES).read_to_string(&mut body);
    Ok((status, body))
}

/// GETs the health URL; `Ok` when it answers 2xx with the expected text, else what it said.
pub fn check_health(h: &Health<'_>) -> Result<(), String> {
    let agent = agent(h.ca, h.client)?;
    let (status, body) = answer(&h.url, agent.get(&h.url).call())?;
    let body = body.trim();
    if !(200..300).contains(&status) || !body.contains(h.expect) {
        return Err(format!("{}: HTTP {status}: {}", h.url, body.chars().take(300).collect::<String>()));
    }
    Ok(())
}

/// POSTs `body` (JSON) to `url`, verified against `ca`, presenting `client`; the JSON answer of a 2xx.
pub fn post_json(
    url: &str,
    body: &serde_json::Value,
    ca: &Path,
    client: (&Path, &Path),
) -> Result<serde_json::Value, String> {
    let agent = agent(Some(ca), Some(client))?;
    let sent = agent.post(url).content_type("application/json").send(body.to_string());
    let (status, text) = answer(url, sent)?;
    if !(200..300).contains(&status) {
        return Err(format!("{url}: HTTP {status}: {}", text.trim().chars().take(300).collect::<String>()));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: not JSON: {e}"))
}

/// The health check of a running component, as kubeadm's own probes ask it, answered by that process: the
/// listener asked is one of its own sockets before and after the answer ([`Process::owns_listener`]). Where the
/// answer is not verified against a CA (kube-controller-manager's and kube-scheduler's self-signed ports, etcd's
/// plain metrics listener), whoever bound the port while the component was down could otherwise answer for it.
pub fn health_of(process: &Process, cert_dir: &Path) -> Result<(), String> {
    let ca = cert_dir.join("ca.crt");
    let etcd_ca = cert_dir.join("etcd/ca.crt");
    let (hc_cert, hc_key) =
        (cert_dir.join("etcd/healthcheck-client.crt"), cert_dir.join("etcd/healthcheck-client.key"));
    let local = |bound: Option<&str>| dial_host(bound.unwrap_or("0.0.0.0"), None);
    let (ep, h) = match process.component {
        // kubeadm's etcd has a plain-HTTP metrics listener on 127.0.0.1:2381 for its liveness probe
        Component::Etcd => match process.flag("listen-metrics-urls").and_then(|u| first_url(u, "http")) {
            Some(ep) => {
                let url = format!("http://{ep}/health");
                (ep, Health { url, ca: None, client: None, expect: "\"health\":\"true\"" })
            }
            None => {
                let ep = endpoint(process, Listener::EtcdClientUrls)
                    .ok_or("etcd: no https:// URL in --listen-client-urls to ask /health")?;
                let url = format!("https://{ep}/health");
                (
                    ep,
                    Health {
                        url,
                        ca: Some(&etcd_ca),
                        client: Some((&hc_cert, &hc_key)),
                        expect: "\"health\":\"true\"",
                    },
                )
            }
        },
        Component::KubeApiserver => {
            let ep = endpoint(process, Listener::ApiserverSecurePort).ok_or("kube-apiserver: bad --secure-port")?;
            let url = format!("https://{ep}/readyz");
            (ep, Health { url, ca: Some(&ca), client: None, expect: "ok" })
        }
        Component::KubeControllerManager | Component::KubeScheduler => {
            let default = if process.component == Component::KubeScheduler { "10259" } else { "10257" };
            let port = process.flag("secure-port").unwrap_or(default).parse().map_err(|_| "bad --secure-port")?;
            let ep = Endpoint { host: local(process.flag("bind-address")), port };
            let url = format!("https://{ep}/healthz");
            (ep, Health { url, ca: None, client: None, expect: "ok" })
        }
    };
    let addr = resolve(&ep)?.ip();
    its_own(process, &ep, addr)?;
    check_health(&h)?;
    its_own(process, &ep, addr)
}

/// `Ok` when `ep` is a listener of `process`'s own.
fn its_own(process: &Process, ep: &Endpoint, addr: IpAddr) -> Result<(), String> {
    match process.owns_listener(addr, ep.port) {
        Ok(true) => Ok(()),
        Ok(false) => {
            Err(format!("{ep} is not a listener of pid {} (another process listens there, or none)", process.pid))
        }
        Err(e) => Err(format!("cannot tell whose listener {ep} is: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_bound_to_every_address_are_dialled_on_loopback() {
        let ep = first_url("http://127.0.0.1:2381", "http").unwrap();
        assert_eq!(ep.to_string(), "127.0.0.1:2381");
        let ep = first_url("https://0.0.0.0:2379,https://10.0.0.5:2379", "https").unwrap();
        assert_eq!(ep.to_string(), "127.0.0.1:2379");
        let ep = first_url("http://x:1,https://[::]:2380", "https").unwrap();
        assert_eq!(ep.to_string(), "[::1]:2380");
        assert_eq!(first_url("http://127.0.0.1:2379", "https"), None);
    }
}
