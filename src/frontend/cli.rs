//! The command line for humans and timers (clap). Exit codes: 0 success, 1 the operation failed and
//! nothing changed, 2 usage error, 3 `--fail-within` found something expiring, 4 the operation failed after
//! settling an interrupted run's journal (the PKI changed).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use super::manual;
use crate::duration::{self, Span};
use crate::error::Error;
use crate::kubeadm_config::KubeadmConfig;
use crate::pki::Layout;
use crate::pki::key::KeyAlgorithm;
use crate::render;
use crate::report::Outcome;
use crate::request::*;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_EXPIRING: u8 = 3;
/// The operation failed, but only after completing (or rolling back) an interrupted run's journal: unlike
/// 1, the PKI on disk changed, and the components using it need a restart.
pub const EXIT_FAILED_CHANGED: u8 = 4;
/// `check` found this node's certificates not covering what the cluster asks of them (`consistency.findings`):
/// after 1 and 3, which say more urgent things.
pub const EXIT_INCONSISTENT: u8 = 5;

#[derive(Parser)]
#[command(
    name = "kubeadm-certs",
    version,
    about = "Check and renew the certificates of a kubeadm control plane: only what is due, all or nothing, with backups.",
    after_help = "Run with a single argument that is a file (`kubeadm-certs ARGS_FILE`) to act as the Ansible module k8s_pki.kubeadm.certs."
)]
struct Cli {
    #[command(subcommand)]
    command: TopCommand,
}

#[derive(Subcommand)]
enum TopCommand {
    // boxed: a parsed command is a few hundred bytes, `completions` and `man` one byte at most
    #[command(flatten)]
    Pki(Box<Command>),
    /// Print the completion script for a shell (the schedule role installs them next to the binary on the nodes)
    Completions {
        #[arg(value_enum)]
        shell: manual::Shell,
    },
    /// Print the man page (roff): `kubeadm-certs man | man -l -`
    Man,
}

/// The commands that act on a PKI: each becomes a `Request` for the engine.
#[derive(Subcommand)]
enum Command {
    /// Show when each certificate and CA expires (kubeadm certs check-expiration)
    Check(CheckArgs),
    /// Renew the certificates that are due (or forced, or missing a required SAN)
    Renew(RenewArgs),
    /// Write a new key and a CSR per certificate for an external CA (kubeadm certs renew --csr-only)
    Csr(CsrArgs),
    /// Install certificates an external CA signed for the keys `csr` wrote
    Install(InstallArgs),
    /// Sign a node's kubelet-client CSR with the cluster CA on this control-plane node (a worker's repair)
    Sign(SignArgs),
    /// Approve the pending kubelet-serving CertificateSigningRequests that ask for exactly their node's names and addresses (serverTLSBootstrap)
    Approve(ApproveArgs),
    /// Restart control-plane components (default: every stale one) and wait until each is healthy and uses the certificates on disk
    Restart(RestartArgs),
    /// One node's step of a rotation to a new CA: trust both, re-issue under the new one, drop the old (docs/ca-rotation.md)
    Rotate(RotateArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum PhaseArg {
    Trust,
    Reissue,
    Drop,
}

#[derive(Args)]
struct RotateArgs {
    /// The CA: ca, etcd-ca or front-proxy-ca
    ca: String,
    /// trust: the CA file holds the old and the new CA; reissue: the new one signs and every certificate of the CA
    /// here is issued again under it; drop: the new one alone
    #[arg(long, value_enum)]
    phase: PhaseArg,
    /// trust: make the new CA here (a new key of the old one's kind, the old certificate's subject)
    #[arg(long, conflicts_with = "next_ca_cert")]
    generate: bool,
    /// trust: the new CA certificate another node made (the same on every node)
    #[arg(long, value_name = "FILE")]
    next_ca_cert: Option<PathBuf>,
    /// trust: its key, on a node that holds the CA's key (not on a worker)
    #[arg(long, value_name = "FILE", requires = "next_ca_cert")]
    next_ca_key: Option<PathBuf>,
    /// drop: the directory the old CA's certificate and key are kept in (0700, the key 0600; one nobody else can write)
    #[arg(long, value_name = "DIR")]
    old_ca_backup: Option<PathBuf>,
    /// trust --generate: the new CA's lifetime [default: 10y]; reissue: the certificates' [default: 365d]
    #[arg(long, value_name = "DURATION", value_parser = span)]
    validity: Option<Span>,
    #[command(flatten)]
    dirs: Dirs,
    /// The kubelet's directory: for ca, its client certificate is part of the rotation
    #[arg(long, value_name = "DIR", default_value = DEFAULT_KUBELET_DIR)]
    kubelet_dir: PathBuf,
    /// With ca: after the step, the cluster-info ConfigMap (kube-public), what kubeadm join trusts, trusts what the CA
    /// file holds, through the apiserver with the kubeconfig dir's admin.conf (or --api-kubeconfig)
    #[arg(long)]
    cluster_info: bool,
    /// With --cluster-info: credentials for the apiserver (default: KUBECONFIG_DIR/admin.conf)
    #[arg(long, value_name = "FILE", requires = "cluster_info")]
    api_kubeconfig: Option<PathBuf>,
    /// Show each change before and after
    #[arg(long)]
    diff: bool,
    #[command(flatten)]
    writing: Writing,
}

#[derive(Args)]
struct Dirs {
    /// Where the certificates are
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CERT_DIR)]
    cert_dir: PathBuf,
    /// Where admin.conf, controller-manager.conf, scheduler.conf and super-admin.conf are
    #[arg(long, value_name = "DIR", default_value = DEFAULT_KUBECONFIG_DIR)]
    kubeconfig_dir: PathBuf,
}

impl Dirs {
    fn layout(&self) -> Layout {
        Layout::new(&self.cert_dir, &self.kubeconfig_dir)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum CheckFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

fn span(s: &str) -> Result<Span, String> {
    duration::parse(s).map_err(|e| e.to_string())
}

fn instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid time {s:?}: {e} (expected RFC 3339, e.g. 2027-06-01T00:00:00Z)"))
}

/// `keep` or an algorithm (a newtype: clap cannot parse straight into an `Option`).
#[derive(Clone, Copy)]
struct KeyChoice(Option<KeyAlgorithm>);

fn key_algorithm(s: &str) -> Result<KeyChoice, String> {
    if s == "keep" {
        return Ok(KeyChoice(None));
    }
    KeyAlgorithm::parse(s)
        .map(|a| KeyChoice(Some(a)))
        .ok_or_else(|| format!("unknown key algorithm {s:?} (keep, {})", KeyAlgorithm::NAMES))
}

/// What every writing command shares.
#[derive(Args)]
struct Writing {
    /// Decide and report, write nothing
    #[arg(long)]
    check: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Format,
    /// How long to wait for another run holding the PKI lock
    #[arg(long, value_name = "DURATION", value_parser = span, default_value = "60s")]
    lock_timeout: Span,
}

#[derive(Args)]
struct CheckArgs {
    /// Certificate names (default: all)
    names: Vec<String>,
    #[command(flatten)]
    dirs: Dirs,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: CheckFormat,
    /// Evaluate residual times as of this RFC 3339 instant (plan a maintenance window)
    #[arg(long, value_name = "RFC3339_TIME", value_parser = instant)]
    at: Option<DateTime<Utc>>,
    /// Exit 3 if a certificate or CA expires within this duration (or has expired)
    #[arg(long, value_name = "DURATION", value_parser = span)]
    fail_within: Option<Span>,
    /// The kubelet's directory (config.yaml, pki/); its kubelet.conf is in --kubeconfig-dir. Its client and
    /// serving certificates are reported after kubeadm's tables when the directory exists
    #[arg(long, value_name = "DIR", default_value = DEFAULT_KUBELET_DIR)]
    kubelet_dir: PathBuf,
    #[command(flatten)]
    copies: CopyArgs,
    /// kubeadm's configuration (InitConfiguration/ClusterConfiguration): external etcd's entries are left out,
    /// as kubeadm leaves them out; SANs it asks for and a certificate lacks are warned about; its
    /// kubernetesVersion decides kubeadm's rows and formats where no KUBECONFIG_DIR/manifests/kube-apiserver.yaml
    /// image tag does
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Where copies of the cluster's credentials (kubeconfigs outside --kubeconfig-dir) are looked for.
#[derive(Args)]
struct CopyArgs {
    /// Another place a kubeconfig carrying this cluster's credentials may be, besides /root/.kube/config and
    /// /home/*/.kube/config (absolute; `*` is every name of one directory); repeatable
    #[arg(long = "copies", value_name = "PATH")]
    copies: Vec<PathBuf>,
    /// Look only at the --copies given, not at /root/.kube/config and /home/*/.kube/config
    #[arg(long)]
    no_default_copies: bool,
}

impl CopyArgs {
    fn search(self) -> Result<CopySearch, Error> {
        CopySearch::new(self.copies, !self.no_default_copies)
    }
}

#[derive(Args)]
// what reaches the apiserver, and so may name its credentials: signing through it, cluster-info
#[command(group(clap::ArgGroup::new("api_users").args(["use_api", "cluster_info"]).multiple(true)))]
struct RenewArgs {
    /// Certificate names, or all (default); CAs (ca, etcd-ca, front-proxy-ca) only when named, never in all
    names: Vec<String>,
    #[command(flatten)]
    dirs: Dirs,
    /// Renew a certificate whose residual time is below this [default: 90d; a CA named: 1y]
    #[arg(long, value_name = "DURATION", value_parser = span)]
    renew_before: Option<Span>,
    /// Renew regardless of residual time
    #[arg(long)]
    force: bool,
    /// Lifetime of renewed certificates (cut to the CA's expiry) [default: 365d, or --config's
    /// certificateValidityPeriod; a CA named: 10y, or --config's caCertificateValidityPeriod]
    #[arg(long, value_name = "DURATION", value_parser = span)]
    validity: Option<Span>,
    /// With one CA named: install this certificate of it (renewed with the same key on another node, or by the
    /// CA's owner) instead of issuing one here, when it differs from the one on disk
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// A SAN the apiserver certificate must carry (renews it when missing); repeatable
    #[arg(long = "extra-san", value_name = "SAN")]
    extra_sans: Vec<String>,
    /// keep, rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384 [default: keep, or --config's
    /// encryptionAlgorithm]
    #[arg(long, value_name = "ALG", value_parser = key_algorithm)]
    key_algorithm: Option<KeyChoice>,
    /// kubeadm's configuration: external etcd's entries left out of all, certificateValidityPeriod and
    /// encryptionAlgorithm (v1beta4) as defaults, apiServer.certSANs required like --extra-san
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Keep timestamped copies (0600) of the files replaced
    #[arg(long)]
    backup: bool,
    /// Replace each copy of admin.conf elsewhere (--copies) that is a former admin.conf with admin.conf as it is
    /// after the run, keeping its owner and mode; say what was left alone and why
    #[arg(long)]
    refresh_copies: bool,
    /// During a CA rotation (docs/ca-rotation.md): issue again under the CA file's first certificate every
    /// certificate issued by another certificate of that file (the old CA of the bundle), whatever its dates;
    /// without it renew refuses them
    #[arg(long)]
    resign_old_issuer: bool,
    /// With ca named: after the run, write the ca certificate on disk into the cluster-info ConfigMap (kube-public),
    /// what kubeadm join trusts, through the apiserver with the kubeconfig dir's admin.conf (or --api-kubeconfig)
    #[arg(long)]
    cluster_info: bool,
    #[command(flatten)]
    copies: CopyArgs,
    /// Show each change before and after
    #[arg(long)]
    diff: bool,
    /// With --check: decide as of this RFC 3339 instant (what a run then would renew)
    #[arg(long, value_name = "RFC3339_TIME", value_parser = instant, requires = "check")]
    at: Option<DateTime<Utc>>,
    /// Sign through the cluster's certificates API instead of the CA key on disk
    #[arg(long)]
    use_api: bool,
    /// With --use-api: approve our own CertificateSigningRequests (if the credentials may)
    #[arg(long, requires = "use_api")]
    approve: bool,
    /// With --use-api: the signerName of every request (default: per certificate)
    #[arg(long, value_name = "NAME", requires = "use_api")]
    signer_name: Option<String>,
    /// With --use-api or --cluster-info: credentials for the apiserver (default: KUBECONFIG_DIR/admin.conf)
    #[arg(long, value_name = "FILE", requires = "api_users")]
    api_kubeconfig: Option<PathBuf>,
    /// With --use-api: how long to wait for approval and issuance
    #[arg(long, value_name = "DURATION", value_parser = span, default_value = "5m", requires = "use_api")]
    api_timeout: Span,
    #[command(flatten)]
    kubelet: KubeletOpts,
    #[command(flatten)]
    kubelet_restart: KubeletRestart,
    #[command(flatten)]
    writing: Writing,
}

/// Where the kubelet's certificates are and whose they are (`renew`, `csr`, `install` of kubelet-client, `renew`
/// of kubelet-serving).
#[derive(Args)]
struct KubeletOpts {
    /// kubelet-client, kubelet-serving: the kubelet's directory (config.yaml; pki/ gets the new certificate)
    #[arg(long, value_name = "DIR", default_value = DEFAULT_KUBELET_DIR)]
    kubelet_dir: PathBuf,
    /// kubelet-client, kubelet-serving: the node's name (default: kubelet.conf's certificate's system:node:NAME)
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
}

/// The kubelet's restart after its new certificate is written (`renew`, `install` of kubelet-client, `renew` of
/// kubelet-serving).
#[derive(Args)]
struct KubeletRestart {
    /// kubelet-client, kubelet-serving: write the certificate but do not restart the kubelet
    #[arg(long)]
    no_restart_kubelet: bool,
    /// kubelet-client, kubelet-serving: how long to wait until the kubelet is back
    #[arg(long, value_name = "DURATION", value_parser = span, default_value = "5m")]
    timeout: Span,
}

#[derive(Args)]
struct CsrArgs {
    /// Certificate names, or all (default)
    names: Vec<String>,
    #[command(flatten)]
    dirs: Dirs,
    /// Where to write NAME.csr and NAME.key (created 0700 if missing; never a directory of the PKI)
    #[arg(long, value_name = "DIR")]
    csr_dir: PathBuf,
    /// Rewrite CSRs and keys even when the existing ones still match
    #[arg(long)]
    force: bool,
    /// keep, rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384 (kubelet-client: keep is ecdsa-p256)
    #[arg(long, value_name = "ALG", value_parser = key_algorithm, default_value = "keep")]
    key_algorithm: KeyChoice,
    /// kubelet-client: write a CSR when the certificate's residual time is below this
    #[arg(long, value_name = "DURATION", value_parser = span, default_value = "90d")]
    renew_before: Span,
    #[command(flatten)]
    kubelet: KubeletOpts,
    #[command(flatten)]
    writing: Writing,
}

#[derive(Args)]
struct SignArgs {
    /// What to sign: kubelet-client (a node's CSR for its kubelet, from `csr kubelet-client` on that node)
    names: Vec<String>,
    #[command(flatten)]
    dirs: Dirs,
    /// Where the node's kubelet-client.csr is; kubelet-client.crt is written beside it
    #[arg(long, value_name = "DIR")]
    csr_dir: PathBuf,
    /// The node the certificate is for, as `kubectl get nodes` shows it (never taken from the CSR)
    #[arg(long, value_name = "NAME")]
    node_name: String,
    /// Lifetime of the certificate (cut to the CA's expiry)
    #[arg(long, value_name = "DURATION", value_parser = span, default_value = "365d")]
    validity: Span,
    /// Show the certificate before and after
    #[arg(long)]
    diff: bool,
    #[command(flatten)]
    writing: Writing,
}

#[derive(Args)]
struct ApproveArgs {
    /// What to approve: kubelet-serving (kubelets' requests for their serving certificates, serverTLSBootstrap)
    names: Vec<String>,
    #[command(flatten)]
    dirs: Dirs,
    /// Credentials for the apiserver, allowed to approve for kubernetes.io/kubelet-serving (default:
    /// KUBECONFIG_DIR/admin.conf)
    #[arg(long, value_name = "FILE")]
    api_kubeconfig: Option<PathBuf>,
    /// Judge each pending request and report, approve nothing
    #[arg(long)]
    check: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Format,
}

#[derive(Args)]
struct InstallArgs {
    /// Certificate names, or all (default: every one with a signed NAME.crt)
    names: Vec<String>,
    #[command(flatten)]
    dirs: Dirs,
    /// Where `csr` wrote NAME.key
    #[arg(long, value_name = "DIR")]
    csr_dir: PathBuf,
    /// Where the signed NAME.crt files are (default: the CSR dir)
    #[arg(long, value_name = "DIR")]
    signed_dir: Option<PathBuf>,
    /// Keep timestamped copies (0600) of the files replaced
    #[arg(long)]
    backup: bool,
    /// kubelet-client: show the certificate before and after
    #[arg(long)]
    diff: bool,
    #[command(flatten)]
    kubelet: KubeletOpts,
    #[command(flatten)]
    kubelet_restart: KubeletRestart,
    #[command(flatten)]
    writing: Writing,
}

#[derive(Args)]
struct RestartArgs {
    /// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, or stale (default: every stale one)
    components: Vec<String>,
    #[command(flatten)]
    dirs: Dirs,
    /// static_pod, crictl, systemd, command, none
    #[arg(long, value_name = "METHOD", value_parser = restart_method, default_value = "static_pod")]
    method: RestartMethod,
    /// Where the static pod manifests are (default: KUBECONFIG_DIR/manifests)
    #[arg(long, value_name = "DIR")]
    manifests_dir: Option<PathBuf>,
    /// With --method command: run this with sh -c (KUBEADM_CERTS_COMPONENT and KUBEADM_CERTS_PID are set)
    #[arg(long, value_name = "COMMAND")]
    restart_command: Option<String>,
    /// How long to wait for each step: gone, running again, healthy
    #[arg(long, value_name = "DURATION", value_parser = span, default_value = "5m")]
    timeout: Span,
    /// Refuse, naming who, unless every etcd member and every apiserver of the cluster is healthy
    #[arg(long)]
    cluster_gate: bool,
    /// Take turns with the other nodes: hold a coordination.k8s.io Lease in kube-system while restarting
    #[arg(long)]
    lease: bool,
    /// With --lease: the Lease's name
    #[arg(long, value_name = "NAME", default_value = DEFAULT_LEASE_NAME, requires = "lease")]
    lease_name: String,
    /// With --lease: the holder identity (default: this node's name, the host name)
    #[arg(long, value_name = "NAME", requires = "lease")]
    lease_identity: Option<String>,
    /// With --lease: how long the lease holds unless renewed (renewed every third of it)
    #[arg(long, value_name = "DURATION", value_parser = span, default_value = "15m", requires = "lease")]
    lease_duration: Span,
    /// With --lease: how long to wait for the turn of this node
    #[arg(long, value_name = "DURATION", value_parser = span, default_value = "30m", requires = "lease")]
    lease_timeout: Span,
    /// For --cluster-gate and --lease: whose credentials (default: KUBECONFIG_DIR/admin.conf)
    #[arg(long, value_name = "PATH")]
    api_kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    writing: Writing,
}

fn restart_method(s: &str) -> Result<RestartMethod, String> {
    RestartMethod::parse(s).ok_or_else(|| format!("unknown restart method {s:?} ({})", RestartMethod::NAMES))
}

enum Print {
    Check(CheckFormat),
    Actions { format: Format, diff: bool },
    Restart(Format),
    Approve(Format),
}

/// The request and how to print its outcome, per command (a `kubelet-client` name picks the kubelet's path).
fn request(command: Command) -> Result<(Request, Print), Error> {
    match command {
        Command::Check(a) => check(a),
        Command::Renew(a) if wants_kubelet_client("renew", &a.names)? => renew_kubelet_client(a),
        Command::Renew(a) if wants_kubelet_serving("renew", &a.names)? => renew_kubelet_serving(a),
        Command::Csr(a) if wants_kubelet_client("csr", &a.names)? => csr_kubelet_client(a),
        Command::Install(a) if wants_kubelet_client("install", &a.names)? => install_kubelet_client(a),
        Command::Sign(a) => sign(a),
        Command::Approve(a) => approve(a),
        Command::Rotate(a) => rotate(a),
        Command::Renew(a) => renew(a),
        Command::Csr(a) => csr(a),
        Command::Install(a) => install(a),
        Command::Restart(a) => restart(a),
    }
}

/// `check`: when each certificate and CA expires, as kubeadm's check-expiration shows it.
fn check(a: CheckArgs) -> Result<(Request, Print), Error> {
    let config = a.config.as_deref().map(KubeadmConfig::read).transpose()?;
    Ok((
        Request::Check(CheckRequest {
            layout: a.dirs.layout(),
            selection: KubeadmConfig::selection(config.as_ref(), Selection::parse(&a.names)?),
            at: a.at,
            fail_within: a.fail_within,
            kubelet_dir: a.kubelet_dir,
            config,
            copies: a.copies.search()?,
        }),
        Print::Check(a.output),
    ))
}

/// `renew kubelet-client`: the kubelet's client certificate, signed with `ca.key` on this node.
fn renew_kubelet_client(a: RenewArgs) -> Result<(Request, Print), Error> {
    let copies = a.refresh_copies || !a.copies.copies.is_empty() || a.copies.no_default_copies;
    if a.use_api
        || !a.extra_sans.is_empty()
        || a.backup
        || a.at.is_some()
        || a.config.is_some()
        || a.ca_cert.is_some()
        || copies
    {
        return Err(Error::Usage(format!(
            "renew {KUBELET_CLIENT} signs with ca.key on this node: --use-api, --extra-san, --backup, --at, --config, \
             --ca-cert and the credential copies' options do not apply"
        )));
    }
    Ok((
        Request::KubeletClient(KubeletClientRequest {
            layout: a.dirs.layout(),
            kubelet_dir: a.kubelet.kubelet_dir,
            node_name: a.kubelet.node_name,
            renew_before: a.renew_before.unwrap_or(DEFAULT_RENEW_BEFORE),
            force: a.force,
            validity: a.validity.unwrap_or(DEFAULT_VALIDITY),
            key_algorithm: a.key_algorithm.and_then(|k| k.0),
            check_mode: a.writing.check,
            lock_timeout: a.writing.lock_timeout,
            restart_kubelet: !a.kubelet_restart.no_restart_kubelet,
            timeout: a.kubelet_restart.timeout,
            step: KubeletClientStep::Issue,
        }),
        Print::Actions { format: a.writing.output, diff: a.diff },
    ))
}

/// `renew kubelet-serving`: the kubelet's self-signed serving certificate, issued again as the kubelet makes it.
fn renew_kubelet_serving(a: RenewArgs) -> Result<(Request, Print), Error> {
    if a.use_api || !a.extra_sans.is_empty() || a.at.is_some() || a.config.is_some() || a.ca_cert.is_some() {
        return Err(Error::Usage(format!(
            "renew {KUBELET_SERVING} issues the kubelet's self-signed certificate again on this node: --use-api, \
             --extra-san (its SANs are kept), --at, --config and --ca-cert do not apply"
        )));
    }
    Ok((
        Request::KubeletServing(KubeletServingRequest {
            layout: a.dirs.layout(),
            kubelet_dir: a.kubelet.kubelet_dir,
            node_name: a.kubelet.node_name,
            renew_before: a.renew_before.unwrap_or(DEFAULT_RENEW_BEFORE),
            force: a.force,
            validity: a.validity.unwrap_or(DEFAULT_VALIDITY),
            key_algorithm: a.key_algorithm.and_then(|k| k.0),
            backup: a.backup,
            check_mode: a.writing.check,
            lock_timeout: a.writing.lock_timeout,
            restart_kubelet: !a.kubelet_restart.no_restart_kubelet,
            timeout: a.kubelet_restart.timeout,
        }),
        Print::Actions { format: a.writing.output, diff: a.diff },
    ))
}

/// `approve kubelet-serving`: the kubelets' pending serving-certificate requests that ask for what their node may
/// have, approved through the apiserver.
fn approve(a: ApproveArgs) -> Result<(Request, Print), Error> {
    if a.names != [KUBELET_SERVING] {
        return Err(Error::Usage(format!(
            "approve takes {KUBELET_SERVING} (the kubelets' requests for their serving certificates); got {:?}",
            a.names.join(" ")
        )));
    }
    let layout = a.dirs.layout();
    Ok((
        Request::Approve(ApproveRequest {
            kubeconfig: a.api_kubeconfig.unwrap_or_else(|| layout.kubeconfig_dir.join("admin.conf")),
            layout,
            check_mode: a.check,
        }),
        Print::Approve(a.output),
    ))
}

/// `csr kubelet-client`: a worker's key and CSR for its kubelet, to be signed on a control-plane node.
fn csr_kubelet_client(a: CsrArgs) -> Result<(Request, Print), Error> {
    Ok((
        Request::KubeletClient(KubeletClientRequest {
            layout: a.dirs.layout(),
            kubelet_dir: a.kubelet.kubelet_dir,
            node_name: a.kubelet.node_name,
            renew_before: a.renew_before,
            force: a.force,
            validity: DEFAULT_VALIDITY,
            key_algorithm: a.key_algorithm.0,
            check_mode: a.writing.check,
            lock_timeout: a.writing.lock_timeout,
            restart_kubelet: false,
            timeout: DEFAULT_RESTART_TIMEOUT,
            step: KubeletClientStep::Csr { csr_dir: a.csr_dir },
        }),
        Print::Actions { format: a.writing.output, diff: false },
    ))
}

/// `install kubelet-client`: the certificate a control-plane node signed for this node's kubelet.
fn install_kubelet_client(a: InstallArgs) -> Result<(Request, Print), Error> {
    Ok((
        Request::KubeletClient(KubeletClientRequest {
            layout: a.dirs.layout(),
            kubelet_dir: a.kubelet.kubelet_dir,
            node_name: a.kubelet.node_name,
            renew_before: DEFAULT_RENEW_BEFORE,
            force: false,
            validity: DEFAULT_VALIDITY,
            key_algorithm: None,
            check_mode: a.writing.check,
            lock_timeout: a.writing.lock_timeout,
            restart_kubelet: !a.kubelet_restart.no_restart_kubelet,
            timeout: a.kubelet_restart.timeout,
            step: KubeletClientStep::Install {
                signed_dir: a.signed_dir.unwrap_or_else(|| a.csr_dir.clone()),
                csr_dir: a.csr_dir,
            },
        }),
        Print::Actions { format: a.writing.output, diff: a.diff },
    ))
}

/// `sign kubelet-client`: a worker's kubelet CSR signed with the cluster CA on this node.
fn sign(a: SignArgs) -> Result<(Request, Print), Error> {
    if a.names != [KUBELET_CLIENT] {
        return Err(Error::Usage(format!(
            "sign takes {KUBELET_CLIENT} (a node's CSR for its kubelet); kubeadm's certificates are renewed \
             with renew, or csr and install for an external CA (got {:?})",
            a.names.join(" ")
        )));
    }
    Ok((
        Request::KubeletSign(KubeletSignRequest {
            layout: a.dirs.layout(),
            csr_dir: a.csr_dir,
            node_name: a.node_name,
            validity: a.validity,
            check_mode: a.writing.check,
            lock_timeout: a.writing.lock_timeout,
        }),
        Print::Actions { format: a.writing.output, diff: a.diff },
    ))
}

/// `renew`: kubeadm's certificates that are due, signed on this node or through the certificates API.
fn renew(a: RenewArgs) -> Result<(Request, Print), Error> {
    let layout = a.dirs.layout();
    let api_kubeconfig = a.api_kubeconfig.unwrap_or_else(|| layout.kubeconfig_dir.join("admin.conf"));
    let cluster_info = a.cluster_info.then(|| api_kubeconfig.clone());
    let signer = if a.use_api {
        SignerChoice::Api(ApiOptions {
            kubeconfig: api_kubeconfig,
            approve: a.approve,
            signer_name: a.signer_name,
            timeout: a.api_timeout,
            announce: true,
        })
    } else {
        SignerChoice::Local
    };
    let config = a.config.as_deref().map(KubeadmConfig::read).transpose()?;
    let (selection, cas) = renew_names(&a.names)?;
    let selection = KubeadmConfig::selection(config.as_ref(), selection);
    let ca = CaRenewal::of(
        cas,
        &selection,
        a.validity,
        a.renew_before,
        config.as_ref().and_then(|c| c.ca_validity),
        a.ca_cert,
    )?
    .with_cluster_info(cluster_info)?;
    ca.refuse_options(&selection, a.use_api, a.key_algorithm.is_some_and(|k| k.0.is_some()))?;
    let (validity, key_algorithm, extra_sans) = KubeadmConfig::renew_defaults(
        config.as_ref(),
        a.validity,
        a.key_algorithm.map(|k| k.0),
        a.extra_sans.iter().map(|s| San::parse(s)).collect::<Result<_, _>>()?,
    );
    Ok((
        Request::Renew(RenewRequest {
            selection,
            renew_before: a.renew_before.unwrap_or(DEFAULT_RENEW_BEFORE),
            force: a.force,
            validity,
            extra_sans,
            key_algorithm,
            backup: a.backup,
            check_mode: a.writing.check,
            at: a.at,
            signer,
            lock_timeout: a.writing.lock_timeout,
            layout,
            ca,
            copies: a.copies.search()?,
            refresh_copies: a.refresh_copies,
            resign_old_issuer: a.resign_old_issuer,
        }),
        Print::Actions { format: a.writing.output, diff: a.diff },
    ))
}

/// `rotate`: one node's step of a CA rotation.
fn rotate(a: RotateArgs) -> Result<(Request, Print), Error> {
    let phase = match a.phase {
        PhaseArg::Trust => RotatePhase::Trust(match (a.generate, a.next_ca_cert) {
            (true, _) => NewCa::Generate,
            (false, Some(cert)) => NewCa::Given { cert, key: a.next_ca_key },
            (false, None) => {
                return Err(Error::Usage(
                    "rotate --phase trust needs the new CA: --generate (on the first control-plane node), or \
                     --next-ca-cert FILE [--next-ca-key FILE] (the one another node made)"
                        .into(),
                ));
            }
        }),
        PhaseArg::Reissue => RotatePhase::Reissue,
        PhaseArg::Drop => RotatePhase::Drop { old_ca_backup: a.old_ca_backup },
    };
    let layout = a.dirs.layout();
    let cluster_info =
        a.cluster_info.then(|| a.api_kubeconfig.unwrap_or_else(|| layout.kubeconfig_dir.join("admin.conf")));
    let request =
        RotateRequest::new(layout, a.kubelet_dir, &a.ca, phase, a.validity, a.writing.check, a.writing.lock_timeout)?
            .with_cluster_info(cluster_info)?;
    Ok((Request::Rotate(request), Print::Actions { format: a.writing.output, diff: a.diff }))
}

/// `csr`: keys and CSRs for an external CA (kubeadm's `certs renew --csr-only`).
fn csr(a: CsrArgs) -> Result<(Request, Print), Error> {
    Ok((
        Request::Csr(CsrRequest {
            csr_dir: a.csr_dir,
            layout: a.dirs.layout(),
            selection: Selection::parse(&a.names)?,
            force: a.force,
            key_algorithm: a.key_algorithm.0,
            check_mode: a.writing.check,
            lock_timeout: a.writing.lock_timeout,
        }),
        Print::Actions { format: a.writing.output, diff: false },
    ))
}

/// `install`: the certificates an external CA signed for the keys `csr` wrote.
fn install(a: InstallArgs) -> Result<(Request, Print), Error> {
    Ok((
        Request::Install(InstallRequest {
            signed_dir: a.signed_dir.unwrap_or_else(|| a.csr_dir.clone()),
            csr_dir: a.csr_dir,
            layout: a.dirs.layout(),
            selection: Selection::parse(&a.names)?,
            backup: a.backup,
            check_mode: a.writing.check,
            lock_timeout: a.writing.lock_timeout,
        }),
        Print::Actions { format: a.writing.output, diff: false },
    ))
}

/// `restart`: control-plane components restarted until each is healthy and uses the certificates on disk.
fn restart(a: RestartArgs) -> Result<(Request, Print), Error> {
    let lease = match a.lease {
        false => None,
        true => Some(
            LeaseOptions {
                name: a.lease_name,
                identity: a.lease_identity.unwrap_or_else(node_name),
                duration: a.lease_duration,
                timeout: a.lease_timeout,
            }
            .checked()?,
        ),
    };
    Ok((
        Request::Restart(RestartRequest {
            components: RestartRequest::parse_components(&a.components)?,
            manifests_dir: a.manifests_dir.unwrap_or_else(|| default_manifests_dir(&a.dirs.kubeconfig_dir)),
            layout: a.dirs.layout(),
            method: a.method,
            command: a.restart_command,
            timeout: a.timeout,
            check_mode: a.writing.check,
            lock_timeout: a.writing.lock_timeout,
            cluster: ClusterOptions {
                gate: a.cluster_gate,
                lease,
                kubeconfig: a.api_kubeconfig.unwrap_or_else(|| a.dirs.kubeconfig_dir.join("admin.conf")),
            },
        }),
        Print::Restart(a.writing.output),
    ))
}

/// The text for stdout (warnings of `check` go to stderr, after kubeadm's table).
fn text_for(out: &Outcome, how: &Print) -> String {
    match how {
        Print::Check(CheckFormat::Table) => render::kubeadm::table(out),
        Print::Check(CheckFormat::Json) => render::kubeadm::json(out),
        Print::Check(CheckFormat::Yaml) => render::kubeadm::yaml(out),
        Print::Restart(Format::Table) => render::restart::table(out),
        Print::Restart(Format::Json) | Print::Approve(Format::Json) => {
            serde_json::to_string_pretty(out).expect("plain data") + "\n"
        }
        Print::Approve(Format::Table) => render::approvals_table(out),
        Print::Actions { format: Format::Json, diff } => {
            let mut v = serde_json::to_value(out).expect("plain data");
            if *diff {
                v["diff"] = serde_json::to_value(&out.diff).expect("plain data");
            }
            serde_json::to_string_pretty(&v).expect("plain data") + "\n"
        }
        Print::Actions { format: Format::Table, diff } => {
            let mut text = if *diff { render::diff_text(out) } else { String::new() };
            text.push_str(&render::actions_table(out));
            text
        }
    }
}

/// Writes to stdout; a reader that went away (`kubeadm-certs check | head -3`) is not an error: the
/// work is done and the exit code still says how it went.
fn emit(bytes: &[u8]) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes).and_then(|_| stdout.flush());
}

/// `name` is one of the command line's subcommands (or `help`): `kubeadm-certs NAME` alone is that command,
/// never an Ansible args file of that name. Taken from the parser, so a new subcommand cannot be missed.
pub fn is_subcommand(name: &str) -> bool {
    name == "help" || parser().get_subcommands().any(|c| c.get_name() == name)
}

/// The parser's definitions, which the completions and the man page are generated from.
fn parser() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

pub fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let command = match cli.command {
        TopCommand::Pki(command) => *command,
        TopCommand::Completions { shell } => {
            emit(&manual::completions(shell, parser()));
            return ExitCode::SUCCESS;
        }
        TopCommand::Man => {
            emit(&manual::man_page(parser()));
            return ExitCode::SUCCESS;
        }
    };
    let result = request(command).and_then(|(req, how)| crate::run(&req, Utc::now()).map(|out| (out, how)));
    match result {
        Ok((out, how)) => {
            emit(text_for(&out, &how).as_bytes());
            // check's stdout is kubeadm's document, byte for byte: what it cannot hold goes to stderr
            if matches!(how, Print::Check(_)) {
                for w in &out.warnings {
                    eprintln!("[warning] {w}");
                }
            }
            // a broken PKI fails whatever the dates say: 1 before 3, and both before 5
            if out.pki_broken {
                eprintln!("kubeadm-certs: {}", out.msg);
                ExitCode::from(EXIT_FAILED)
            } else if out.threshold_failed {
                eprintln!("kubeadm-certs: {}", out.msg);
                ExitCode::from(EXIT_EXPIRING)
            } else if out.inconsistent {
                eprintln!("kubeadm-certs: {}", out.msg);
                ExitCode::from(EXIT_INCONSISTENT)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("kubeadm-certs: error: {e}");
            ExitCode::from(match () {
                _ if e.is_usage() => EXIT_USAGE,
                _ if e.settled().is_some() => EXIT_FAILED_CHANGED,
                _ => EXIT_FAILED,
            })
        }
    }
}
