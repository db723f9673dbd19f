//! What a caller asks for, in the engine's terms. Both front doors (clap and the Ansible args file) end
//! in these types; the engine never sees either.

use std::net::IpAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::duration::Span;
use crate::error::{Error, Result};
use crate::inventory::{self, CERTIFICATES, CaId, CertSpec};
use crate::pki::Layout;
use crate::pki::key::KeyAlgorithm;

pub const DEFAULT_CERT_DIR: &str = "/etc/kubernetes/pki";
pub const DEFAULT_KUBECONFIG_DIR: &str = "/etc/kubernetes";
pub const DEFAULT_KUBELET_DIR: &str = "/var/lib/kubelet";
pub const DEFAULT_RENEW_BEFORE: Span = Span::days(90);
pub const DEFAULT_VALIDITY: Span = Span::days(365);
/// kubeadm's CA lifetime (`constants.CACertificateValidityPeriod`, 87600h; v1beta4's `caCertificateValidityPeriod`
/// default): what a CA renewal issues unless told otherwise.
pub const DEFAULT_CA_VALIDITY: Span = Span::days(3650);
/// A CA is due when less than a year is left: a certificate it signs after that is cut short to its expiry (with
/// the leaves' one-year validity), so waiting for the leaves' 90 days would shorten every renewal of the last
/// nine months. The time also covers what a CA renewal needs beyond this node (docs/in-use.md).
pub const DEFAULT_CA_RENEW_BEFORE: Span = Span::days(365);
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
            if CaId::parse(name).is_some() {
                return Err(Error::Usage(format!(
                    "{name} is a CA: only renew takes it (kubeadm-certs renew {name}; module state renew); the other \
                     commands take certificates ({})",
                    inventory::known_names()
                )));
            }
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

/// `renew`'s names: kubeadm's certificates (`all`, or those named) and the CAs named. A CA is never part of
/// `all`; naming only CAs selects no certificate.
pub fn renew_names<S: AsRef<str>>(names: &[S]) -> Result<(Selection, Vec<CaId>)> {
    let mut cas = Vec::new();
    let mut rest = Vec::new();
    for name in names.iter().map(|s| s.as_ref().trim()).filter(|s| !s.is_empty()) {
        match CaId::parse(name) {
            Some(ca) if !cas.contains(&ca) => cas.push(ca),
            Some(_) => {}
            None => rest.push(name),
        }
    }
    cas.sort();
    let selection = if rest.is_empty() && !cas.is_empty() {
        Selection { specs: Vec::new(), explicit: true }
    } else {
        Selection::parse(&rest)?
    };
    Ok((selection, cas))
}

/// A lowercase RFC 1123 subdomain, what the apiserver takes as an object's name (a Lease, a Node) and as the
/// domain of a signer name.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
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

/// Where credential copies are looked for by default: root's and every user's `~/.kube/config`, where kubeadm's
/// instructions and kubespray put admin.conf.
pub const DEFAULT_COPIES: [&str; 2] = ["/root/.kube/config", "/home/*/.kube/config"];

/// Where `check` and `renew` look for copies of this cluster's credentials (`copies`): the default places and the
/// paths asked for (`*` is every name of one directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopySearch {
    pub paths: Vec<PathBuf>,
    /// Look in [`DEFAULT_COPIES`] too.
    pub defaults: bool,
}

impl Default for CopySearch {
    fn default() -> CopySearch {
        CopySearch { paths: Vec::new(), defaults: true }
    }
}

impl CopySearch {
    /// Paths as typed; a relative one is refused (it would depend on where the run started).
    pub fn new(paths: Vec<PathBuf>, defaults: bool) -> Result<CopySearch> {
        if let Some(p) = paths.iter().find(|p| !p.is_absolute()) {
            return Err(Error::Usage(format!(
                "copies: {} is not an absolute path (e.g. /home/*/.kube/config, /opt/ci/kubeconfig)",
                p.display()
            )));
        }
        Ok(CopySearch { paths, defaults })
    }

    /// Every pattern to look at: the defaults (when kept), then the paths asked for.
    pub fn patterns(&self) -> Vec<PathBuf> {
        let defaults = DEFAULT_COPIES.iter().filter(|_| self.defaults).map(PathBuf::from);
        defaults.chain(self.paths.iter().cloned()).collect()
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
    /// The kubelet's directory (`config.yaml`, `pki/`); its `kubelet.conf` is in the kubeconfig dir.
    pub kubelet_dir: PathBuf,
    /// kubeadm's configuration (`--config`): external etcd left out, SANs it asks for checked.
    pub config: Option<crate::kubeadm_config::KubeadmConfig>,
    /// Where credential copies are looked for (with `all`).
    pub copies: CopySearch,
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

/// The CAs a `renew` names (`renew ca|etcd-ca|front-proxy-ca`), each issued again with its own key
/// (`engine::ca_renew`), or given: the CA certificate another node renewed, installed as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaRenewal {
    pub cas: Vec<CaId>,
    /// Renew a CA whose residual time is below this (or `force`).
    pub renew_before: Span,
    /// Lifetime of a renewed CA certificate.
    pub validity: Span,
    /// `--ca-cert FILE`: the new CA certificate, made elsewhere with the same key (one CA named): installed
    /// when it differs from the one on disk, instead of issuing one here.
    pub given: Option<PathBuf>,
    /// `--cluster-info` (module `cluster_info`): after the run, the `cluster-info` ConfigMap in `kube-public` gets
    /// the `ca` certificate on disk, through the apiserver with these credentials (`engine::cluster_info`).
    pub cluster_info: Option<PathBuf>,
}

impl CaRenewal {
    /// What a `renew` of `cas` beside `leaves` asks of the CAs. `validity` and `renew_before` are what the user
    /// typed (`None`: not given); `config_validity` is kubeadm's `caCertificateValidityPeriod`. A validity typed
    /// for a run that renews CAs and certificates alike is refused: a CA's ten years and a certificate's year
    /// are never meant to be the same, and one of them would silently be wrong.
    pub fn of(
        cas: Vec<CaId>,
        leaves: &Selection,
        validity: Option<Span>,
        renew_before: Option<Span>,
        config_validity: Option<Span>,
        given: Option<PathBuf>,
    ) -> Result<CaRenewal> {
        let names = || cas.iter().map(|c| c.name()).collect::<Vec<_>>().join(" ");
        if given.is_some() && cas.len() != 1 {
            return Err(Error::Usage(format!(
                "a given CA certificate (--ca-cert, module ca_cert) is for one CA: name it alone (renew ca --ca-cert \
                 FILE); named: {}",
                if cas.is_empty() { "none".to_string() } else { names() }
            )));
        }
        if cas.is_empty() {
            return Ok(CaRenewal::default());
        }
        let mixed = !leaves.specs.is_empty();
        if mixed && validity.is_some() {
            return Err(Error::Usage(format!(
                "a validity for both {} and certificates is ambiguous (a CA's default is {}, a certificate's {}): \
                 renew the CA in a run of its own (kubeadm-certs renew {} --validity DURATION)",
                names(),
                DEFAULT_CA_VALIDITY,
                DEFAULT_VALIDITY,
                names()
            )));
        }
        Ok(CaRenewal {
            renew_before: renew_before.unwrap_or(DEFAULT_CA_RENEW_BEFORE),
            validity: validity.or(config_validity).unwrap_or(DEFAULT_CA_VALIDITY),
            given,
            cas,
            cluster_info: None,
        })
    }

    /// Asks for the `cluster-info` ConfigMap to follow `ca` (credentials `kubeconfig`); refused unless `ca` is named.
    pub fn with_cluster_info(mut self, kubeconfig: Option<PathBuf>) -> Result<CaRenewal> {
        if kubeconfig.is_some() && !self.cas.contains(&CaId::Ca) {
            return Err(Error::Usage(
                "cluster-info (--cluster-info, module cluster_info) follows the cluster CA: name ca (renew ca \
                 --cluster-info)"
                    .into(),
            ));
        }
        self.cluster_info = kubeconfig;
        Ok(self)
    }
}

impl CaRenewal {
    /// What does not apply to a CA renewal, refused by name rather than ignored: the certificates API (it
    /// signs certificates, never a CA; a CA is issued again with its key on this node), and a key algorithm for
    /// a run of CAs alone (a CA keeps its key: a new one would be a rotation, which this is not).
    pub fn refuse_options(&self, leaves: &Selection, api_signer: bool, key_algorithm_asked: bool) -> Result<()> {
        let Some(first) = self.cas.first() else { return Ok(()) };
        if api_signer {
            return Err(Error::Usage(format!(
                "{} is renewed with its own key on this node; the certificates API (--use-api, signer api) signs \
                 certificates, not CAs: renew the CA in a run of its own without it",
                first.name()
            )));
        }
        if key_algorithm_asked && leaves.specs.is_empty() {
            return Err(Error::Usage(format!(
                "{} keeps its key when renewed (every certificate it issued stays valid); a key algorithm applies to \
                 certificates. A CA with a new key is a rotation, which renew does not do",
                first.name()
            )));
        }
        Ok(())
    }
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
    /// The CAs named (none unless named: `all` never includes one).
    pub ca: CaRenewal,
    /// Where credential copies are looked for: when `refresh_copies`, or when admin.conf is renewed (to say
    /// which copies keep the old certificate).
    pub copies: CopySearch,
    /// Replace each copy that is a former admin.conf with admin.conf as it is after the run.
    pub refresh_copies: bool,
    /// `--resign-old-issuer` (module `resign_old_issuer`), for a CA rotation (docs/ca-rotation.md): a certificate
    /// issued by another CA certificate of its CA file (the old CA of the bundle) is accepted, and issued again
    /// under the first (the CA whose key is `<base>.key`), due whatever its dates. Without it such a certificate
    /// is refused, as one that does not chain to the CA on disk.
    pub resign_old_issuer: bool,
}

/// `renew kubelet-client`: the kubelet's client certificate issued again from `ca` on this node
/// (`engine::kubelet_client`).
#[derive(Clone, Debug)]
pub struct KubeletClientRequest {
    pub layout: Layout,
    pub kubelet_dir: PathBuf,
    /// The node's name; by default the current certificate's `system:node:NAME`.
    pub node_name: Option<String>,
    pub renew_before: Span,
    pub force: bool,
    pub validity: Span,
    /// `None`: ECDSA P-256, as the kubelet's own rotation.
    pub key_algorithm: Option<KeyAlgorithm>,
    pub check_mode: bool,
    pub lock_timeout: Span,
    /// `systemctl restart kubelet` after the write, then wait until it is back.
    pub restart_kubelet: bool,
    pub timeout: Span,
    pub step: KubeletClientStep,
}

/// Where the kubelet's new client certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KubeletClientStep {
    /// `renew kubelet-client`: issued from `ca.key` on this node (a control-plane node).
    Issue,
    /// `csr kubelet-client`, a worker's first step: a new key and a CSR in this directory, when due; the CSR is
    /// signed on a control-plane node (`sign kubelet-client`), the CA key never leaves it.
    Csr { csr_dir: PathBuf },
    /// `install kubelet-client`, a worker's last step: the certificate a control-plane node signed
    /// (`signed_dir/kubelet-client.crt`) with the key the CSR step wrote (`csr_dir/kubelet-client.key`).
    Install { csr_dir: PathBuf, signed_dir: PathBuf },
}

/// `sign kubelet-client` on a control-plane node: a worker's CSR (`csr_dir/kubelet-client.csr`, untrusted)
/// signed by `ca` for the node the caller names, written as `csr_dir/kubelet-client.crt` (`engine::kubelet_sign`).
#[derive(Clone, Debug)]
pub struct KubeletSignRequest {
    pub layout: Layout,
    pub csr_dir: PathBuf,
    /// Who the certificate is for, from the caller (the inventory), never from the CSR.
    pub node_name: String,
    pub validity: Span,
    pub check_mode: bool,
    pub lock_timeout: Span,
}

/// `renew kubelet-serving`: the kubelet's self-signed serving certificate (`kubelet.crt`) issued again with a new
/// key, its SANs kept (`engine::kubelet_serving`).
#[derive(Clone, Debug)]
pub struct KubeletServingRequest {
    /// The PKI's lock and journal, and `kubelet.conf` (whose node), `admin.conf` (asked when the kubelet is back).
    pub layout: Layout,
    pub kubelet_dir: PathBuf,
    /// The node's name, for the wait after the restart; by default `kubelet.conf`'s `system:node:NAME`.
    pub node_name: Option<String>,
    pub renew_before: Span,
    pub force: bool,
    pub validity: Span,
    /// `None`: the algorithm of the key it replaces (the kubelet makes RSA 2048).
    pub key_algorithm: Option<KeyAlgorithm>,
    pub backup: bool,
    pub check_mode: bool,
    pub lock_timeout: Span,
    /// `systemctl restart kubelet` after the write, then wait until it serves the new certificate and is back.
    pub restart_kubelet: bool,
    pub timeout: Span,
}

/// `approve kubelet-serving`: the pending `kubernetes.io/kubelet-serving` CertificateSigningRequests that ask for
/// exactly what their node may have, approved through the certificates API (`api::kubelet_serving`); nothing on
/// disk changes.
#[derive(Clone, Debug)]
pub struct ApproveRequest {
    /// Only where held static pod manifests are put back, as every run does (`engine::run`).
    pub layout: Layout,
    /// Whose credentials (default admin.conf): they must be allowed to approve for the `kubernetes.io/kubelet-serving` signer.
    pub kubeconfig: PathBuf,
    /// Judge and report, approve nothing (the apiserver is still asked).
    pub check_mode: bool,
}

/// The name `renew` takes for the kubelet's client certificate. It is not kubeadm's, so it is renewed on its
/// own: with other names it is a usage error.
pub const KUBELET_CLIENT: &str = "kubelet-client";
/// The name `renew` and `approve` take for the kubelet's serving certificate (`check` reports it as the row
/// `kubelet-server`, the kubelet's own name for it). On its own too.
pub const KUBELET_SERVING: &str = "kubelet-serving";

/// Whether `names` ask for the kubelet's client certificate (alone), or a usage error when mixed.
pub fn wants_kubelet_client<S: AsRef<str>>(verb: &str, names: &[S]) -> Result<bool> {
    wants_alone(verb, names, KUBELET_CLIENT)
}

/// Whether `names` ask for the kubelet's serving certificate (alone), or a usage error when mixed.
pub fn wants_kubelet_serving<S: AsRef<str>>(verb: &str, names: &[S]) -> Result<bool> {
    wants_alone(verb, names, KUBELET_SERVING)
}

fn wants_alone<S: AsRef<str>>(verb: &str, names: &[S], name: &str) -> Result<bool> {
    let names: Vec<&str> = names.iter().map(|s| s.as_ref().trim()).filter(|s| !s.is_empty()).collect();
    match (names.contains(&name), names.len()) {
        (false, _) => Ok(false),
        (true, 1) => Ok(true),
        (true, _) => Err(Error::Usage(format!(
            "{verb} {name} on its own: it is the kubelet's certificate, not one of kubeadm's (got {})",
            names.join(", ")
        ))),
    }
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

/// How `restart` restarts a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartMethod {
    /// kubeadm's: move the static pod manifest out, wait until the process is gone, put it back changed (a
    /// restart annotation: a new pod UID, no crash backoff), wait until it runs again.
    StaticPod,
    /// `crictl stop` the component's containers; the kubelet starts them again.
    Crictl,
    /// `systemctl restart COMPONENT` (components run as systemd units).
    Systemd,
    /// A command of the user's (`sh -c`), told the component and its pid in the environment.
    Command,
    /// Restart nothing: report what is stale.
    None,
}

impl RestartMethod {
    pub const NAMES: &'static str = "static_pod, crictl, systemd, command, none";
    pub fn parse(s: &str) -> Option<RestartMethod> {
        Some(match s {
            "static_pod" => RestartMethod::StaticPod,
            "crictl" => RestartMethod::Crictl,
            "systemd" => RestartMethod::Systemd,
            "command" => RestartMethod::Command,
            "none" => RestartMethod::None,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            RestartMethod::StaticPod => "static_pod",
            RestartMethod::Crictl => "crictl",
            RestartMethod::Systemd => "systemd",
            RestartMethod::Command => "command",
            RestartMethod::None => "none",
        }
    }
}

/// How long `restart` waits for each step (process gone, running again, healthy) by default.
pub const DEFAULT_RESTART_TIMEOUT: Span = Span(300);

/// The static pod manifests of a node whose kubeconfig dir is `kubeconfig_dir` (kubeadm's layout).
pub fn default_manifests_dir(kubeconfig_dir: &std::path::Path) -> PathBuf {
    kubeconfig_dir.join("manifests")
}

#[derive(Clone, Debug)]
pub struct RestartRequest {
    pub layout: Layout,
    /// `None`: every stale component (`restart stale`, or no names).
    pub components: Option<Vec<inventory::Component>>,
    pub method: RestartMethod,
    pub manifests_dir: PathBuf,
    /// method `command`: run with `sh -c`.
    pub command: Option<String>,
    /// Each wait (gone, running again, healthy) gives up after this.
    pub timeout: Span,
    pub check_mode: bool,
    pub lock_timeout: Span,
    pub cluster: ClusterOptions,
}

/// `restart`'s look beyond this node (docs/in-use.md, "Cluster gates").
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Refuse unless every etcd member and every apiserver is healthy.
    pub gate: bool,
    /// Take turns with the other nodes through a Lease.
    pub lease: Option<LeaseOptions>,
    /// Whose credentials (default admin.conf).
    pub kubeconfig: PathBuf,
}

impl ClusterOptions {
    pub fn wanted(&self) -> bool {
        self.gate || self.lease.is_some()
    }
}

pub const DEFAULT_LEASE_NAME: &str = "kubeadm-certs-restart";
/// Longer than any one restart takes; renewed every third of it while held.
pub const DEFAULT_LEASE_DURATION: Span = Span(900);
/// How long a node waits for its turn.
pub const DEFAULT_LEASE_TIMEOUT: Span = Span(1800);

#[derive(Clone, Debug)]
pub struct LeaseOptions {
    pub name: String,
    /// holderIdentity: the node name.
    pub identity: String,
    pub duration: Span,
    pub timeout: Span,
}

impl LeaseOptions {
    /// The name goes into the Lease's URL: a DNS subdomain, as the apiserver requires of it.
    pub fn checked(self) -> Result<LeaseOptions> {
        let n = &self.name;
        if !is_dns_subdomain(n) {
            return Err(Error::Usage(format!(
                "invalid lease name {n:?}: a Lease's name is a lowercase DNS subdomain, e.g. kubeadm-certs-restart"
            )));
        }
        if self.identity.trim().is_empty() {
            return Err(Error::Usage("the lease identity (the node name) is empty".into()));
        }
        Ok(self)
    }
}

/// The node name a lease is held under by default: the host name, as the kubelet names its node.
pub fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-node".into())
}

impl RestartRequest {
    /// Component names as typed: empty or `stale` means the stale ones; unknown names are a usage error.
    pub fn parse_components<S: AsRef<str>>(names: &[S]) -> Result<Option<Vec<inventory::Component>>> {
        let names: Vec<&str> = names.iter().map(|s| s.as_ref().trim()).filter(|s| !s.is_empty()).collect();
        if names.is_empty() || names == ["stale"] {
            return Ok(None);
        }
        let mut out = Vec::new();
        for n in names {
            let c = inventory::Component::parse(n).ok_or_else(|| {
                Error::Usage(format!(
                    "unknown component {n:?}; known: {}, or stale (alone)",
                    inventory::Component::known_names()
                ))
            })?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out.sort();
        Ok(Some(out))
    }
}

/// `rotate CA --phase PHASE`: one node's step of a CA rotation (`engine::ca_rotate`, docs/ca-rotation.md).
#[derive(Clone, Debug)]
pub struct RotateRequest {
    pub layout: Layout,
    pub kubelet_dir: PathBuf,
    pub ca: CaId,
    pub phase: RotatePhase,
    /// Lifetime of the new CA certificate (`generate`), and of the certificates issued again (`reissue`).
    pub ca_validity: Span,
    pub validity: Span,
    pub check_mode: bool,
    pub lock_timeout: Span,
    /// `--cluster-info` (module `cluster_info`), for `ca`: after the step, the `cluster-info` ConfigMap trusts what
    /// the CA file holds, through the apiserver with these credentials (`engine::cluster_info::follow_rotation`).
    pub cluster_info: Option<PathBuf>,
}

impl RotateRequest {
    /// What both front doors build: the CA by name, and options that belong to other phases refused.
    pub fn new(
        layout: Layout,
        kubelet_dir: PathBuf,
        ca: &str,
        phase: RotatePhase,
        validity: Option<Span>,
        check_mode: bool,
        lock_timeout: Span,
    ) -> Result<RotateRequest> {
        let ca = CaId::parse(ca.trim())
            .ok_or_else(|| Error::Usage(format!("rotate takes one CA: {} (given {ca:?})", CaId::known_names())))?;
        let generate = matches!(phase, RotatePhase::Trust(NewCa::Generate));
        if validity.is_some() && !generate && phase != RotatePhase::Reissue {
            return Err(Error::Usage(
                "a validity applies to the new CA (phase trust with generate) or to the certificates issued again \
                 (phase reissue)"
                    .into(),
            ));
        }
        Ok(RotateRequest {
            layout,
            kubelet_dir,
            ca,
            ca_validity: validity.filter(|_| generate).unwrap_or(DEFAULT_CA_VALIDITY),
            validity: validity.filter(|_| !generate).unwrap_or(DEFAULT_VALIDITY),
            phase,
            check_mode,
            lock_timeout,
            cluster_info: None,
        })
    }

    /// Asks for `cluster-info` to follow (credentials `kubeconfig`); refused unless the CA is `ca`.
    pub fn with_cluster_info(mut self, kubeconfig: Option<PathBuf>) -> Result<RotateRequest> {
        if kubeconfig.is_some() && self.ca != CaId::Ca {
            return Err(Error::Usage(format!(
                "cluster-info (--cluster-info, module cluster_info) trusts the cluster CA, not {}: rotate ca --cluster-info",
                self.ca.name()
            )));
        }
        self.cluster_info = kubeconfig;
        Ok(self)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotatePhase {
    /// a: the CA file becomes [OLD, NEW], NEW's key `<base>.next.key`; kubeconfigs' CA data follow.
    Trust(NewCa),
    /// b: [NEW, OLD], `<base>.key` NEW's, `<base>.previous.key` OLD's; then every certificate of the CA here is
    /// issued again under NEW.
    Reissue,
    /// c: [NEW]; OLD's certificate and key copied into this directory first (where OLD's key is on this node).
    Drop { old_ca_backup: Option<PathBuf> },
}

/// Where phase a's new CA comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewCa {
    /// Made here (`--generate`): a new key of the old one's kind, the old certificate's subject.
    Generate,
    /// Made on another node: its certificate, and its key where this node holds the CA's key (a worker gets
    /// the certificate alone).
    Given { cert: PathBuf, key: Option<PathBuf> },
}

#[derive(Clone, Debug)]
pub enum Request {
    Rotate(RotateRequest),
    Check(CheckRequest),
    Renew(RenewRequest),
    KubeletClient(KubeletClientRequest),
    KubeletSign(KubeletSignRequest),
    KubeletServing(KubeletServingRequest),
    Approve(ApproveRequest),
    Csr(CsrRequest),
    Install(InstallRequest),
    Restart(RestartRequest),
}
