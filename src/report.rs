//! What the engine answers: plain serializable values. The Ansible module returns them as they are; the
//! CLI prints them as kubeadm's tables, kubeadm's `CertificateExpirationInfo`, or JSON.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    None,
    Renewed,
    WouldRenew,
    CsrWritten,
    WouldWriteCsr,
    Installed,
    WouldInstall,
    SkippedExternallyManaged,
    /// A credential copy (`copies`) replaced by admin.conf as it is now.
    Refreshed,
    WouldRefresh,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Renewed => "renewed",
            Action::WouldRenew => "would_renew",
            Action::CsrWritten => "csr_written",
            Action::WouldWriteCsr => "would_write_csr",
            Action::Installed => "installed",
            Action::WouldInstall => "would_install",
            Action::SkippedExternallyManaged => "skipped_externally_managed",
            Action::Refreshed => "refreshed",
            Action::WouldRefresh => "would_refresh",
        }
    }
    pub fn changes(self) -> bool {
        !matches!(self, Action::None | Action::SkippedExternallyManaged)
    }
}

/// One certificate (or kubeconfig-embedded client certificate) as it stands after the run.
#[derive(Clone, Debug, Serialize)]
pub struct CertReport {
    pub name: String,
    pub kind: &'static str,
    pub path: String,
    pub subject: Option<String>,
    pub sans: Vec<String>,
    pub serial: Option<String>,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub residual_seconds: Option<i64>,
    pub residual: Option<String>,
    pub ca: &'static str,
    pub key_algorithm: Option<String>,
    pub externally_managed: bool,
    pub missing: bool,
    pub action: Action,
    /// Why the action was taken (or not): "expires in 20d, within renew_before 90d", "forced", ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CaReport {
    pub name: &'static str,
    pub path: String,
    pub subject: Option<String>,
    pub serial: Option<String>,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub residual_seconds: Option<i64>,
    pub residual: Option<String>,
    pub externally_managed: bool,
    pub missing: bool,
    /// `renew` of a CA named: what became of it (renewed, would_renew, none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The kubeconfig files whose `certificate-authority-data` followed the renewed CA (or would).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kubeconfigs: Vec<String>,
    /// A renewed CA: when the certificate it replaced expires. A component that read the old one only at start
    /// keeps verifying with it (same key) until then, and must restart before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_not_after: Option<String>,
}

/// `state: csr`: what a signer needs to know per request (a CSR carries no usages: the CA decides).
#[derive(Clone, Debug, Serialize)]
pub struct CsrReport {
    pub name: String,
    pub csr_path: String,
    pub key_path: String,
    pub ca: &'static str,
    pub subject: String,
    pub sans: Vec<String>,
    pub key_usage: Vec<&'static str>,
    pub extended_key_usage: Vec<&'static str>,
    pub changed: bool,
}

/// A control-plane component found running on this PKI (or not), and whether it uses what is on disk.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ComponentReport {
    /// As `restart` takes it: etcd, kube-apiserver, kube-controller-manager, kube-scheduler.
    pub name: &'static str,
    pub pid: Option<u32>,
    /// RFC 3339 UTC, to the second.
    #[serde(rename = "startedAt")]
    pub started_at: Option<String>,
    pub stale: bool,
    pub reason: String,
}

/// One of the kubelet's own certificates (`engine::kubelet`): its client certificate (`kubelet-client`)
/// and serving certificate (`kubelet-server`). Named as kubeadm names its document's fields, because
/// `check -o json|yaml` carries these in a `kubelet` list beside kubeadm's two.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct KubeletCertReport {
    pub name: &'static str,
    /// The file it was read from, or where it should be (`kubelet.conf` when embedded there).
    pub path: String,
    /// RFC 3339 UTC; `null` when missing.
    #[serde(rename = "expirationDate")]
    pub expiration_date: Option<String>,
    /// Seconds; 0 when missing, negative once expired.
    #[serde(rename = "residualTime")]
    pub residual_time: i64,
    /// Whether the kubelet renews it itself (`rotateCertificates`, `serverTLSBootstrap`).
    pub rotation: bool,
    pub missing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The issuer: the cluster's CA, or the certificate itself for the kubelet's self-signed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `renew`, `csr`, `install` of kubelet-client: what became of it (none when not due), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A kubeconfig outside the kubeconfig dir that carries a client certificate this cluster's `ca` issued
/// (`engine::copies`): `~/.kube/config` of root and of users, a copy made for a tool. Named as kubeadm names its
/// document's fields, because `check -o json|yaml` carries these in a `copies` list beside kubeadm's two.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CopyReport {
    pub path: String,
    /// RFC 3339 UTC.
    #[serde(rename = "expirationDate")]
    pub expiration_date: String,
    /// Seconds; negative once expired.
    #[serde(rename = "residualTime")]
    pub residual_time: i64,
    /// It carries the certificate admin.conf holds now (false: an older one, or another user's).
    pub current: bool,
    /// Its certificate's subject (`O=kubeadm:cluster-admins, CN=kubernetes-admin`).
    pub subject: String,
    /// The kubeconfig user holding it.
    pub user: String,
    /// The file's owner (a user name, or the uid when it has none) and mode (`0600`).
    pub owner: String,
    pub mode: String,
    /// `renew`: refreshed, would_refresh, or none (left alone: `reason` says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `check`: what must be the same on every control-plane node of one cluster (fingerprints, compared across nodes
/// by whoever gathers every node's report: the collection's `consistency` filter), what the node's certificates
/// must cover (SANs, the addresses the cluster knows the node by), and what this node alone shows wrong
/// (`findings`). Built by `engine::consistency`; never a byte of a private key, only fingerprints of public keys.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ConsistencyReport {
    /// `ca`, `etcd-ca`, `front-proxy-ca` and `sa` (the service-account key pair), in that order.
    pub identity: Vec<IdentityReport>,
    /// The SANs of the apiserver, etcd-server and etcd-peer certificates (`DNS:` / `IP:` less, as `sans`).
    pub apiserver_sans: Vec<String>,
    pub etcd_server_sans: Vec<String>,
    pub etcd_peer_sans: Vec<String>,
    /// The kube-apiserver static pod's `--advertise-address` (else the host of etcd's `--advertise-client-urls`).
    pub advertise_address: Option<String>,
    /// The cluster's kubeadm configuration, where it was read (`config_source`): `--config FILE` or the
    /// `kubeadm-config` ConfigMap in kube-system.
    pub control_plane_endpoint: Option<String>,
    pub cert_sans: Vec<String>,
    pub config_source: Option<String>,
    /// etcd's members as etcd lists them (asked with the healthcheck-client certificate), `local` marking this
    /// node's own.
    pub etcd_members: Vec<EtcdMemberReport>,
    /// What this node's certificates fail to cover; empty when all is well.
    pub findings: Vec<ConsistencyFinding>,
    /// What could not be looked at, and why (no finding: a part of the comparison is missing).
    pub reasons: Vec<String>,
}

/// One file (pair) that must be the same on every control-plane node: its certificate's and its public key's
/// SHA-256 (lowercase hex), and the public key of the private key file beside it (read off the key file on this
/// node; the private key never leaves it).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct IdentityReport {
    /// `ca`, `etcd-ca`, `front-proxy-ca`, `sa`.
    pub name: &'static str,
    /// The certificate (`sa`: sa.pub).
    pub path: String,
    /// SHA-256 of the certificate's DER (`sa`: none, it has no certificate).
    pub certificate_sha256: Option<String>,
    /// SHA-256 of the subjectPublicKey of the certificate (`sa`: of sa.pub).
    pub public_key_sha256: Option<String>,
    pub key_path: String,
    /// SHA-256 of the public key of the private key file (as the certificate would carry it).
    pub key_public_key_sha256: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct EtcdMemberReport {
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    /// This node's member (the local etcd's `--name`).
    pub local: bool,
}

/// Something this node's certificates do not cover: `file` is the certificate, `message` says what it lacks and
/// where that is asked for.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ConsistencyFinding {
    pub file: String,
    pub message: String,
}

/// `check`: where a CA rotation stands on this node, for one CA (`pki::rotation`, docs/ca-rotation.md).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CaRotationReport {
    pub name: &'static str,
    pub path: String,
    /// single, trusting, reissuing, reissued, inconsistent
    pub state: &'static str,
    /// Why `inconsistent`.
    pub reason: Option<String>,
    /// The CA file's certificates, in file order.
    pub certificates: Vec<RotationCertReport>,
    /// `<base>.next.key` (the new CA's key while the nodes come to trust it) is there.
    pub next_key: bool,
    /// `<base>.previous.key` (the old CA's key while certificates are issued again) is there.
    pub previous_key: bool,
    /// Certificates here issued by the CA file's second certificate.
    pub issued_by_other: Vec<RotationLeafReport>,
    /// Certificates here that no certificate of the CA file issued.
    pub untrusted: Vec<RotationLeafReport>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RotationCertReport {
    /// SHA-256 of the certificate's DER, lowercase hex (what `rotate_ca_from` names).
    pub sha256: String,
    pub spki_sha256: String,
    pub subject: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    /// `<base>.key` belongs to it.
    pub signing: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RotationLeafReport {
    pub name: String,
    pub path: String,
    pub issuer: String,
}

/// `rotate`: one node's step of a CA rotation.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RotationReport {
    pub name: &'static str,
    /// trust, reissue, drop
    pub phase: &'static str,
    pub state_before: &'static str,
    pub state_after: &'static str,
    /// The CA file's certificates after the step.
    pub certificates: Vec<RotationCertReport>,
    /// Files written or removed (or that would be).
    pub written: Vec<String>,
}

/// `restart`: what became of one component.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RestartReport {
    pub name: &'static str,
    /// restarted, would_restart, not_running, not_restarted (method none)
    pub action: &'static str,
    pub method: &'static str,
    pub pid_before: Option<u32>,
    pub pid_after: Option<u32>,
    pub reason: String,
}

/// The cluster gate passed: the etcd members and apiservers it found healthy.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ClusterReport {
    /// Names; empty when etcd was not gated from this node (see the warnings).
    pub etcd_members: Vec<String>,
    /// `host:port`.
    pub apiservers: Vec<String>,
}

/// The Lease this node took turns with: when it held it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LeaseReport {
    /// `kube-system/NAME`.
    pub name: String,
    pub holder: String,
    pub acquired_at: String,
    pub released_at: Option<String>,
    pub waited_seconds: u64,
    /// The holder whose lease had expired, when taken over.
    pub took_over_from: Option<String>,
}

/// `approve kubelet-serving`: one pending CertificateSigningRequest and what became of it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ApprovalReport {
    /// The CertificateSigningRequest object's name.
    pub name: String,
    pub signer_name: String,
    /// Who asked (`spec.username`): `system:node:NAME` for a kubelet.
    pub requester: String,
    /// The node it is for, when the requester is one.
    pub node: Option<String>,
    /// What it asks for, `DNS:name` / `IP:address` (empty when the request cannot be read).
    pub sans: Vec<String>,
    /// `approved`, `would_approve` (check mode) or `refused` (left pending, untouched).
    pub action: &'static str,
    /// Why refused, by name (`api::kubelet_serving_policy::Refusal`); absent when approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// What the checks found, in words.
    pub message: String,
}

/// One changed entry, community.crypto style: what a reviewer compares, never key material.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DiffEntry {
    pub before_header: String,
    pub after_header: String,
    pub before: String,
    pub after: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    pub changed: bool,
    pub msg: String,
    pub certificates: Vec<CertReport>,
    pub certificate_authorities: Vec<CaReport>,
    pub renewed: Vec<String>,
    pub csr_files: Vec<String>,
    pub backup_files: Vec<String>,
    /// signer=api: the CertificateSigningRequest objects this run created, in the order of `renewed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub csr_names: Vec<String>,
    /// Control-plane components that must restart to load what was renewed or installed.
    pub restart: Vec<&'static str>,
    /// The control-plane components running on this PKI (empty when none runs here): `check`, and every
    /// state that writes, as they stand after the run.
    pub components: Vec<ComponentReport>,
    /// `check`: the kubelet's client and serving certificates (empty where no kubelet directory is).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kubelet: Vec<KubeletCertReport>,
    /// `check` and `renew`: kubeconfigs outside the kubeconfig dir carrying a client certificate of this cluster.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<CopyReport>,
    /// `check`: the control plane's Kubernetes version and where it was read, when known (what kubeadm's tables
    /// are printed as).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<crate::kubeadm_version::Found>,
    /// How kubeadm's tables print on this node (`kubernetes_version`'s kubeadm; current kubeadm's by default).
    #[serde(skip)]
    pub dialect: crate::kubeadm_version::Dialect,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub csrs: Vec<CsrReport>,
    /// `approve`: every pending CertificateSigningRequest looked at, approved or refused (an empty list when none
    /// was pending; absent from every other state's result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Vec<ApprovalReport>>,
    /// `check` of every entry: what must be the same across a cluster's nodes, and what this node fails to cover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyReport>,
    /// `check`: where a CA rotation stands on this node, per CA present.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ca_rotation: Vec<CaRotationReport>,
    /// `rotate`: what this node's step did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationReport>,
    /// `renew ca` with `cluster_info`: what became of the `cluster-info` ConfigMap in `kube-public`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_info: Option<crate::engine::cluster_info::ClusterInfoReport>,
    /// Names (certificates and CAs) expiring within `fail_within`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expiring: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub diff: Vec<DiffEntry>,
    /// `restart`: one entry per component asked for (or found stale).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<RestartReport>,
    /// `restart` with the cluster gate: what it found healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
    /// `restart` with a lease: when this node held it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseReport>,
    /// Why each of `restart` must restart (the text and the CLI table say it).
    #[serde(skip)]
    pub stale: Vec<ComponentReport>,
    /// Set when `fail_within` found something: the front doors turn it into exit 3 / `failed`.
    #[serde(skip)]
    pub threshold_failed: bool,
    /// `check` found consistency findings (`consistency.findings`): the CLI exits 5 (after 1 and 3), the module
    /// fails with `fail_inconsistent`.
    #[serde(skip)]
    pub inconsistent: bool,
    /// `check` found the PKI broken whatever the dates say (a key that does not match its certificate, a
    /// missing CA): the front doors turn it into exit 1 / `failed`; `warnings` say what.
    #[serde(skip)]
    pub pki_broken: bool,
    /// What `inuse::settle` is to look at once the run has let go of the PKI lock (`engine::run`): probing a
    /// component (a TLS handshake, bounded but seconds long) never holds up another run.
    #[serde(skip)]
    pub settle: Option<Settle>,
}

/// The certificates a writing run changed (or, in check mode, would): the components that read them may need a
/// restart.
#[derive(Clone, Debug, Default)]
pub struct Settle {
    pub changed: Vec<&'static crate::inventory::CertSpec>,
    /// CA certificates renewed (or that would be): their readers count as a certificate's do.
    pub cas: Vec<crate::inventory::CaId>,
    pub check_mode: bool,
    /// `msg` goes on to say what to restart and why (renew's does).
    pub name_restarts: bool,
    /// Said after what to restart, when something is (a CA renewal: until when the old certificate still works).
    pub restart_note: Option<String>,
}

/// A time as every report shows it: RFC 3339, whole seconds, UTC (`Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
