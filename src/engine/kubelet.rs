//! The kubelet's own certificates, which kubeadm's check leaves out and which nodes are most often lost
//! to: the client certificate `kubelet.conf` authenticates with, and the serving certificate of the
//! kubelet's port 10250. Found the way the kubelet finds them (kubelet `server.go`, `certificate/kubelet.go`):
//!
//! - client: `kubelet.conf`'s current user, either embedded (`client-certificate-data`, as `kubeadm init`
//!   writes it first) or the file it names (`client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem`,
//!   as kubeadm's kubelet-finalize phase rewrites it; a link to the dated file the kubelet rotated in).
//!   Rotation: `rotateCertificates` in the kubelet's `config.yaml` (kubeadm sets it).
//! - server: `tlsCertFile` of `config.yaml` when set; else with `serverTLSBootstrap` the certificate the
//!   kubelet requested from the cluster (`pki/kubelet-server-current.pem`, missing until someone approves
//!   its CSR); else the self-signed `pki/kubelet.crt` the kubelet made at first start. Rotation:
//!   `serverTLSBootstrap` without `tlsCertFile`.
//!
//! A host without the kubelet directory runs no kubelet (a PKI copy, a backup, the demo): nothing is
//! reported, so that `check` there stays kubeadm's, byte for byte.
//!
//! [`Serving`] is the one description of where the serving certificate comes from: `check` reports it, `renew
//! kubelet-serving` renews only the self-signed one and names the way to the others.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_norway::Value;

use super::describe::residual_seconds;
use crate::error::Result;
use crate::pki::cert::Certificate;
use crate::pki::kubeconfig::{self, ClientCertificate};
use crate::pki::{self, Links};
use crate::report::KubeletCertReport;
use crate::report::rfc3339;

pub const CLIENT: &str = "kubelet-client";
pub const SERVER: &str = "kubelet-server";
/// The self-signed serving pair, in the kubelet's certificate directory (`--cert-dir`, kubeadm's
/// `/var/lib/kubelet/pki`): what the kubelet writes at first start when told of no other (`InitializeTLS`).
pub const SELF_SIGNED_CERT: &str = "kubelet.crt";
pub const SELF_SIGNED_KEY: &str = "kubelet.key";
/// The kubelet's serving port (`port` of its configuration) when none is set.
const DEFAULT_PORT: u16 = 10250;

/// What the kubelet's `config.yaml` (a `KubeletConfiguration`) says about its certificates.
#[derive(Debug, PartialEq, Eq)]
struct Config {
    rotate_certificates: bool,
    server_tls_bootstrap: bool,
    tls_cert_file: Option<PathBuf>,
    /// `address` and `port`: where it serves (default every address, 10250), or what is wrong with them (only
    /// what waits for the kubelet's port needs them: `check` does not fail on them).
    listen: std::result::Result<(IpAddr, u16), String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            rotate_certificates: false,
            server_tls_bootstrap: false,
            tls_cert_file: None,
            listen: Ok((IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT)),
        }
    }
}

impl Config {
    /// Absent is the kubelet's defaults (no rotation, a self-signed serving certificate).
    fn read(kubelet_dir: &Path) -> Result<Config> {
        let path = kubelet_dir.join("config.yaml");
        if !pki::exists(&path)? {
            return Ok(Config::default());
        }
        let bytes = pki::read_file(&path, Links::Follow)?;
        let bad = |problem: String| crate::error::Error::invalid(&path, problem);
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not a KubeletConfiguration: not UTF-8 text".into()))?;
        let doc: Value =
            serde_norway::from_str(text).map_err(|e| bad(format!("not a valid KubeletConfiguration: {e}")))?;
        let flag = |k: &str| doc.get(k).and_then(Value::as_bool).unwrap_or(false);
        // relative paths in a kubelet config file are relative to the file's directory (the kubelet's
        // `resolveRelativePaths`)
        let tls_cert_file = doc.get("tlsCertFile").and_then(Value::as_str).filter(|s| !s.is_empty()).map(|f| {
            let f = Path::new(f);
            if f.is_absolute() { f.to_path_buf() } else { kubelet_dir.join(f) }
        });
        Ok(Config {
            rotate_certificates: flag("rotateCertificates"),
            server_tls_bootstrap: flag("serverTLSBootstrap"),
            tls_cert_file,
            listen: listen(&doc),
        })
    }
}

/// `address` and `port` of a kubelet configuration, defaulted as the kubelet defaults them.
fn listen(doc: &Value) -> std::result::Result<(IpAddr, u16), String> {
    let address = match doc.get("address").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(a) => a.parse().map_err(|_| format!("address {a:?} is not an IP address"))?,
    };
    let port = match doc.get("port") {
        None | Some(Value::Null) => DEFAULT_PORT,
        Some(p) => p.as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0).ok_or_else(|| {
            format!("port {} is not a TCP port", serde_norway::to_string(p).unwrap_or_default().trim())
        })?,
    };
    Ok((address, port))
}

/// Where the kubelet's serving certificate comes from, as the kubelet decides it (v1.20 `cmd/kubelet/app/server.go`
/// `InitializeTLS`, `pkg/kubelet/kubelet.go`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Serving {
    /// `tlsCertFile` of its configuration: someone's own certificate, which the kubelet only reads.
    Given(PathBuf),
    /// `serverTLSBootstrap`: requested from the cluster (`kubernetes.io/kubelet-serving`) and rotated by the
    /// kubelet; `kubelet-server-current.pem` is missing until someone approves its request.
    Bootstrap(PathBuf),
    /// Neither: the pair the kubelet generated at first start (`certutil.GenerateSelfSignedCertKey`).
    SelfSigned { cert: PathBuf, key: PathBuf },
}

impl Serving {
    fn of(kubelet_dir: &Path, config: &Config) -> Serving {
        let pki = kubelet_dir.join("pki");
        match (&config.tls_cert_file, config.server_tls_bootstrap) {
            (Some(file), _) => Serving::Given(file.clone()),
            (None, true) => Serving::Bootstrap(pki.join("kubelet-server-current.pem")),
            (None, false) => Serving::SelfSigned { cert: pki.join(SELF_SIGNED_CERT), key: pki.join(SELF_SIGNED_KEY) },
        }
    }

    /// The certificate file the kubelet serves.
    pub fn path(&self) -> &Path {
        match self {
            Serving::Given(p) | Serving::Bootstrap(p) => p,
            Serving::SelfSigned { cert, .. } => cert,
        }
    }

    /// Whether the kubelet renews it itself.
    fn rotation(&self) -> bool {
        matches!(self, Serving::Bootstrap(_))
    }
}

/// The kubelet's serving certificate as its `config.yaml` in `kubelet_dir` decides it, and where to reach its
/// serving port from this host (its `address`, loopback when that is every address). A configuration that
/// cannot be read is an error here: what would be renewed must not be guessed.
pub fn serving(kubelet_dir: &Path) -> Result<(Serving, std::net::SocketAddr)> {
    let config = Config::read(kubelet_dir)?;
    let (address, port) =
        config.listen.clone().map_err(|e| crate::error::Error::invalid(&kubelet_dir.join("config.yaml"), e))?;
    let dial = match address {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        a => a,
    };
    Ok((Serving::of(kubelet_dir, &config), (dial, port).into()))
}

/// Where a certificate is, if anywhere, and what reading it found.
pub(super) struct Found {
    pub path: PathBuf,
    pub cert: Option<Certificate>,
}

impl Found {
    fn at(path: PathBuf, warnings: &mut Vec<String>) -> Found {
        let cert = match pki::exists(&path) {
            Ok(false) => None,
            Ok(true) => Certificate::read(&path).map_err(|e| warnings.push(e.to_string())).ok(),
            Err(e) => {
                warnings.push(e.to_string());
                None
            }
        };
        Found { path, cert }
    }
}

/// The client certificate `kubelet.conf` uses: embedded, or the file it names.
pub(super) fn client(kubeconfig_dir: &Path, warnings: &mut Vec<String>) -> Found {
    let conf = kubeconfig_dir.join("kubelet.conf");
    match pki::exists(&conf) {
        Ok(true) => {}
        Ok(false) => return Found { path: conf, cert: None },
        Err(e) => {
            warnings.push(e.to_string());
            return Found { path: conf, cert: None };
        }
    }
    match kubeconfig::client_certificate(&conf) {
        Ok(ClientCertificate::File(path)) => Found::at(path, warnings),
        Ok(ClientCertificate::Embedded(pem)) => {
            let cert = Certificate::from_file_bytes(&conf, &pem).map_err(|e| warnings.push(e.to_string())).ok();
            Found { path: conf, cert }
        }
        Err(e) => {
            warnings.push(e.to_string());
            Found { path: conf, cert: None }
        }
    }
}

fn server(kubelet_dir: &Path, config: &Config, warnings: &mut Vec<String>) -> Found {
    Found::at(Serving::of(kubelet_dir, config).path().to_path_buf(), warnings)
}

fn row(name: &'static str, found: Found, rotation: bool, now: DateTime<Utc>) -> KubeletCertReport {
    KubeletCertReport {
        name,
        path: found.path.display().to_string(),
        expiration_date: found.cert.as_ref().map(|c| rfc3339(c.not_after)),
        residual_time: found.cert.as_ref().map(|c| residual_seconds(c.not_after, now)).unwrap_or(0),
        rotation,
        missing: found.cert.is_none(),
        subject: found.cert.as_ref().map(|c| c.subject.to_string()),
        issuer: found.cert.as_ref().map(|c| c.issuer.to_string()),
        action: None,
        reason: None,
    }
}

/// The kubelet's client and serving certificates as of `now`, and what could not be read (warnings: a
/// kubelet that cannot read its own files is worth knowing about, but it is not kubeadm's PKI, so it does
/// not fail `check`). Nothing when `kubelet_dir` is not a directory.
pub fn certificates(
    kubelet_dir: &Path,
    kubeconfig_dir: &Path,
    now: DateTime<Utc>,
) -> (Vec<KubeletCertReport>, Vec<String>) {
    let mut warnings = Vec::new();
    if !kubelet_dir.is_dir() {
        return (Vec::new(), warnings);
    }
    let config = Config::read(kubelet_dir).unwrap_or_else(|e| {
        warnings.push(format!("{e}; the kubelet's certificate settings are taken as its defaults"));
        Config::default()
    });
    let client = client(kubeconfig_dir, &mut warnings);
    let server = server(kubelet_dir, &config, &mut warnings);
    let server_rotation = Serving::of(kubelet_dir, &config).rotation();
    let rows = vec![row(CLIENT, client, config.rotate_certificates, now), row(SERVER, server, server_rotation, now)];
    (rows, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_decides_rotation_and_where_the_serving_certificate_is() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::read(dir.path()).unwrap(), Config::default(), "no config.yaml: the kubelet's defaults");
        std::fs::write(
            dir.path().join("config.yaml"),
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nrotateCertificates: true\n\
             serverTLSBootstrap: true\ntlsCertFile: pki/own.crt\n",
        )
        .unwrap();
        let c = Config::read(dir.path()).unwrap();
        assert!(c.rotate_certificates && c.server_tls_bootstrap);
        assert_eq!(c.tls_cert_file, Some(dir.path().join("pki/own.crt")), "relative to the config file");
        let mut w = Vec::new();
        assert_eq!(server(dir.path(), &c, &mut w).path, dir.path().join("pki/own.crt"));
        let boot = Config { server_tls_bootstrap: true, ..Config::default() };
        assert_eq!(server(dir.path(), &boot, &mut w).path, dir.path().join("pki/kubelet-server-current.pem"));
        assert_eq!(server(dir.path(), &Config::default(), &mut w).path, dir.path().join("pki/kubelet.crt"));
        assert!(w.is_empty(), "absent certificates are missing, not warnings: {w:?}");
        assert_eq!(
            Serving::of(dir.path(), &Config::default()),
            Serving::SelfSigned { cert: dir.path().join("pki/kubelet.crt"), key: dir.path().join("pki/kubelet.key") }
        );
    }

    #[test]
    fn the_serving_port_is_reached_on_loopback_unless_the_kubelet_serves_on_one_address() {
        let dir = tempfile::tempdir().unwrap();
        let (source, addr) = serving(dir.path()).unwrap();
        assert!(matches!(source, Serving::SelfSigned { .. }));
        assert_eq!(addr, "127.0.0.1:10250".parse().unwrap());
        std::fs::write(dir.path().join("config.yaml"), "address: \"::\"\nport: 10260\n").unwrap();
        assert_eq!(serving(dir.path()).unwrap().1, "[::1]:10260".parse().unwrap());
        std::fs::write(dir.path().join("config.yaml"), "address: 10.0.0.5\n").unwrap();
        assert_eq!(serving(dir.path()).unwrap().1, "10.0.0.5:10250".parse().unwrap());
        for bad in ["address: nowhere\n", "port: 70000\n", "port: web\n"] {
            std::fs::write(dir.path().join("config.yaml"), bad).unwrap();
            let e = serving(dir.path()).unwrap_err().to_string();
            assert!(e.contains("config.yaml") && (e.contains("address") || e.contains("port")), "{bad}: {e}");
        }
    }

    #[test]
    fn no_kubelet_directory_means_nothing_to_report() {
        let dir = tempfile::tempdir().unwrap();
        let (rows, warnings) = certificates(&dir.path().join("absent"), dir.path(), Utc::now());
        assert!(rows.is_empty() && warnings.is_empty());
    }

    #[test]
    fn a_config_file_that_is_not_yaml_is_a_warning_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yaml"), "rotateCertificates: [\n").unwrap();
        let (rows, warnings) = certificates(dir.path(), dir.path(), Utc::now());
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.missing && !r.rotation), "{rows:?}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("config.yaml") && warnings[0].contains("defaults"), "{warnings:?}");
    }
}
