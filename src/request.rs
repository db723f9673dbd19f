//! What a caller asks for, in the engine's terms. Both front doors (clap and the Ansible args file) end
//! in these types; the engine never sees either.

use std::net::IpAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::duration::Span;
use crate::error::{Error, Result};
use crate::inventory::{self, CERTIFICATES, CertSpec};
use crate::pki::Layout;
use crate::pki::key::KeyAlgorithm;

pub const DEFAULT_CERT_DIR: &str = "/etc/kubernetes/pki";
pub const DEFAULT_KUBECONFIG_DIR: &str = "/etc/kubernetes";
pub const DEFAULT_RENEW_BEFORE: Span = Span::days(90);
pub const DEFAULT_VALIDITY: Span = Span::days(365);
/// How long a run waits for another run holding the PKI lock (a timer and a human at once).
pub const DEFAULT_LOCK_TIMEOUT: Span = Span(60);

/// Which entries: `all` (absent ones are reported as missing) or names the user typed (which must exist).
#[derive(Clone, Debug)]
pub struct Selection {
    pub specs: Vec<&'static CertSpec>,
    pub explicit: bool,
}

impl Selection {
    pub fn all() -> Selection {
        Selection { specs: CERTIFICATES.iter().collect(), explicit: false }
    }

    /// Names as typed; empty or containing `all` means all. Unknown names are a usage error.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Selection> {
        let names: Vec<&str> = names.iter().map(|s| s.as_ref().trim()).filter(|s| !s.is_empty()).collect();
        if names.is_empty() || names.contains(&"all") {
            return Ok(Selection::all());
        }
        let mut specs: Vec<&'static CertSpec> = Vec::new();
        for name in names {
            let spec = inventory::find(name)
                .ok_or_else(|| Error::UnknownName { name: name.to_string(), known: inventory::known_names() })?;
            if !specs.iter().any(|s| s.name == spec.name) {
                specs.push(spec);
            }
        }
        // the table's order, so output does not depend on how names were typed
        specs.sort_by_key(|s| s.name);
        Ok(Selection { specs, explicit: true })
    }
}

/// A subject alternative name the apiserver certificate must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    pub fn parse(s: &str) -> Result<San> {
        let s = s.trim();
        let s = s.strip_prefix("DNS:").or_else(|| s.strip_prefix("IP:")).unwrap_or(s);
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        let valid = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|l| {
                !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
            });
        if !valid {
            return Err(Error::Usage(format!("invalid SAN {s:?}: not an IP address or DNS name")));
        }
        Ok(San::Dns(s.to_ascii_lowercase()))
    }
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(d) => write!(f, "DNS:{d}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct CheckRequest {
    pub layout: Layout,
    pub selection: Selection,
    /// Evaluate residual times as of this instant instead of now.
    pub at: Option<DateTime<Utc>>,
    /// Fail (exit 3 / failed) when a certificate or CA expires within this window.
    pub fail_within: Option<Span>,
}

/// Options of `signer: api` (the certificates API); filled in by the front doors.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    pub kubeconfig: PathBuf,
    pub approve: bool,
    pub signer_name: Option<String>,
    pub timeout: Span,
    /// Say on stderr what is created and awaited, as it happens (the CLI: a person may be the approver);
    /// the module returns `csr_names` instead.
    pub announce: bool,
}

#[derive(Clone, Debug)]
pub enum SignerChoice {
    Local,
    Api(ApiOptions),
}

#[derive(Clone, Debug)]
pub struct RenewRequest {
    pub layout: Layout,
    pub selection: Selection,
    pub renew_before: Span,
    pub force: bool,
    pub validity: Span,
    pub extra_sans: Vec<San>,
    /// `None`: keep each key's algorithm and size.
    pub key_algorithm: Option<KeyAlgorithm>,
    pub backup: bool,
    /// Decide and report, write nothing (Ansible check mode, `--check`).
    pub check_mode: bool,
    /// Check mode only: decide as of this instant instead of now (what a run then would renew).
    pub at: Option<DateTime<Utc>>,
    pub signer: SignerChoice,
    pub lock_timeout: Span,
}

#[derive(Clone, Debug)]
pub struct CsrRequest {
    pub layout: Layout,
    pub selection: Selection,
    pub csr_dir: PathBuf,
    pub force: bool,
    pub key_algorithm: Option<KeyAlgorithm>,
    pub check_mode: bool,
    pub lock_timeout: Span,
}

#[derive(Clone, Debug)]
pub struct InstallRequest {
    pub layout: Layout,
    pub selection: Selection,
    /// Where `NAME.key` (from `csr`) is.
    pub csr_dir: PathBuf,
    /// Where the externally signed `NAME.crt` is.
    pub signed_dir: PathBuf,
    pub backup: bool,
    pub check_mode: bool,
    pub lock_timeout: Span,
}

#[derive(Clone, Debug)]
pub enum Request {
    Check(CheckRequest),
    Renew(RenewRequest),
    Csr(CsrRequest),
    Install(InstallRequest),
}
