//! The Ansible binary-module protocol: Ansible runs `kubeadm-certs ARGS_FILE`, the file being one JSON
//! object of the task's parameters plus `_ansible_*` keys. Ansible validates nothing for binary modules,
//! so this does what `AnsibleModule`'s argument spec would: coerce strings (`force=yes`,
//! `certificates=a,b`), refuse unknown parameters and wrong types by name. Exactly one JSON object goes
//! to stdout, whatever happens.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::duration::{self, Span};
use crate::error::Error;
use crate::kubeadm_config::KubeadmConfig;
use crate::pki::Layout;
use crate::pki::key::KeyAlgorithm;
use crate::report::Outcome;
use crate::request::*;

pub const MODULE: &str = "k8s_pki.kubeadm.certs";

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Path,
    Bool,
    List,
}

/// The argument spec (name, type, choices); defaults live where the values are used.
const SPEC: &[(&str, Kind, &[&str])] = &[
    ("state", Kind::Str, &["check", "renew", "csr", "install", "restart", "sign", "approve", "rotate"]),
    ("certificates", Kind::List, &[]),
    ("cert_dir", Kind::Path, &[]),
    ("kubeconfig_dir", Kind::Path, &[]),
    ("kubelet_dir", Kind::Path, &[]),
    ("config", Kind::Path, &[]),
    ("renew_before", Kind::Str, &[]),
    ("force", Kind::Bool, &[]),
    ("validity", Kind::Str, &[]),
    ("extra_sans", Kind::List, &[]),
    ("key_algorithm", Kind::Str, &["keep", "rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384"]),
    ("backup", Kind::Bool, &[]),
    ("csr_dir", Kind::Path, &[]),
    ("signed_dir", Kind::Path, &[]),
    ("fail_within", Kind::Str, &[]),
    ("fail_inconsistent", Kind::Bool, &[]),
    ("signer", Kind::Str, &["local", "api"]),
    ("approve", Kind::Bool, &[]),
    ("signer_name", Kind::Str, &[]),
    ("api_kubeconfig", Kind::Path, &[]),
    ("api_timeout", Kind::Str, &[]),
    ("lock_timeout", Kind::Str, &[]),
    ("components", Kind::List, &[]),
    ("method", Kind::Str, &["static_pod", "crictl", "systemd", "command", "none"]),
    ("manifests_dir", Kind::Path, &[]),
    ("restart_command", Kind::Str, &[]),
    ("restart_timeout", Kind::Str, &[]),
    ("cluster_gate", Kind::Bool, &[]),
    ("lease", Kind::Bool, &[]),
    ("lease_name", Kind::Str, &[]),
    ("lease_identity", Kind::Str, &[]),
    ("lease_duration", Kind::Str, &[]),
    ("lease_timeout", Kind::Str, &[]),
    ("node_name", Kind::Str, &[]),
    ("restart_kubelet", Kind::Bool, &[]),
    ("ca_cert", Kind::Path, &[]),
    ("copies", Kind::List, &[]),
    ("default_copies", Kind::Bool, &[]),
    ("refresh_copies", Kind::Bool, &[]),
    ("cluster_info", Kind::Bool, &[]),
    ("resign_old_issuer", Kind::Bool, &[]),
    ("phase", Kind::Str, &["trust", "reissue", "drop"]),
    ("generate", Kind::Bool, &[]),
    ("next_ca_cert", Kind::Path, &[]),
    ("next_ca_key", Kind::Path, &[]),
    ("old_ca_backup", Kind::Path, &[]),
];

/// Parameters after coercion.
#[derive(Default)]
struct Params {
    values: Map<String, Value>,
    check_mode: bool,
    diff: bool,
    no_log: bool,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "None",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Ansible's `boolean()`: the same spellings, case-insensitive.
fn to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn coerce(name: &str, kind: Kind, v: &Value) -> Result<Value, String> {
    let unable =
        |to: &str| format!("argument '{name}' is of type {} and we were unable to convert to {to}", type_name(v));
    match kind {
        Kind::Bool => to_bool(v).map(Value::Bool).ok_or_else(|| unable("bool")),
        Kind::Str | Kind::Path => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(unable("str")),
            };
            let s = if matches!(kind, Kind::Path) { expand_user(&s) } else { s };
            Ok(Value::String(s))
        }
        Kind::List => match v {
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(Value::String(s.clone())),
                    Value::Number(n) => Ok(Value::String(n.to_string())),
                    _ => Err(format!(
                        "argument '{name}' has an element of type {} where a str is expected",
                        type_name(i)
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Value::Array),
            // Ansible splits a comma-separated string into a list
            Value::String(s) => Ok(Value::Array(
                s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| Value::String(p.into())).collect(),
            )),
            Value::Number(n) => Ok(Value::Array(vec![Value::String(n.to_string())])),
            _ => Err(unable("list")),
        },
    }
}

fn expand_user(s: &str) -> String {
    match (s.strip_prefix('~'), std::env::var("HOME")) {
        (Some(rest), Ok(home)) if rest.is_empty() || rest.starts_with('/') => format!("{home}{rest}"),
        _ => s.to_string(),
    }
}

fn parse_params(raw: &Map<String, Value>) -> Result<Params, String> {
    let mut p = Params::default();
    let mut unknown = Vec::new();
    for (k, v) in raw {
        if let Some(internal) = k.strip_prefix("_ansible_") {
            let flag = to_bool(v).unwrap_or(false);
            match internal {
                "check_mode" => p.check_mode = flag,
                "diff" => p.diff = flag,
                "no_log" => p.no_log = flag,
                _ => {}
            }
            continue;
        }
        let Some(&(_, kind, choices)) = SPEC.iter().find(|(n, _, _)| n == k) else {
            unknown.push(k.clone());
            continue;
        };
        if v.is_null() {
            continue;
        }
        let value = coerce(k, kind, v)?;
        if !choices.is_empty() {
            let s = value.as_str().unwrap_or_default();
            if !choices.contains(&s) {
                return Err(format!("value of {k} must be one of: {}, got: {s}", choices.join(", ")));
            }
        }
        p.values.insert(k.clone(), value);
    }
    if !unknown.is_empty() {
        unknown.sort();
        let mut supported: Vec<&str> = SPEC.iter().map(|(n, _, _)| *n).collect();
        supported.sort();
        return Err(format!(
            "Unsupported parameters for ({MODULE}) module: {}. Supported parameters include: {}.",
            unknown.join(", "),
            supported.join(", ")
        ));
    }
    Ok(p)
}

impl Params {
    fn str(&self, k: &str) -> Option<&str> {
        self.values.get(k).and_then(Value::as_str)
    }
    fn bool(&self, k: &str) -> bool {
        self.values.get(k).and_then(Value::as_bool).unwrap_or(false)
    }
    fn list(&self, k: &str) -> Vec<String> {
        self.values
            .get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    }
    fn path(&self, k: &str, default: &str) -> PathBuf {
        PathBuf::from(self.str(k).unwrap_or(default))
    }
    fn span(&self, k: &str, default: Span) -> Result<Span, Error> {
        match self.str(k) {
            None => Ok(default),
            Some(s) => duration::parse(s).map_err(|e| Error::Usage(format!("{k}: {e}"))),
        }
    }

    /// The request the parameters ask for: what every state shares, then the state's own builder. A
    /// parameter that only another state reads is refused by name.
    fn request(&self) -> Result<Request, Error> {
        let state = self.str("state").unwrap_or("check");
        let common = self.common(state)?;
        if state == "approve" {
            return self.approve(common);
        }
        if state == "rotate" {
            return self.rotate(common);
        }
        // the kubelet's serving certificate: renew (the self-signed one); its requests are approved by `approve`
        if wants_kubelet_serving(state, &self.list("certificates"))? {
            return match state {
                "renew" => self.kubelet_serving(common),
                _ => Err(Error::Usage(format!(
                    "state {state} does not take {KUBELET_SERVING}: state renew renews the kubelet's self-signed \
                     serving certificate, state approve approves the kubelets' requests for theirs"
                ))),
            };
        }
        // the kubelet's client certificate: renew (here), csr + install (a worker), sign (for a worker)
        let kubelet_client = matches!(state, "renew" | "csr" | "install" | "sign")
            && wants_kubelet_client(state, &self.list("certificates"))?;
        if state == "sign" && !kubelet_client {
            return Err(Error::Usage(format!(
                "state sign takes certificates: [{KUBELET_CLIENT}] (a node's CSR for its kubelet, signed with ca.key here)"
            )));
        }
        if kubelet_client {
            return self.kubelet_client(state, common);
        }
        self.refuse_other_states(state)?;
        let config = self.str("config").map(|p| KubeadmConfig::read(Path::new(p))).transpose()?;
        // CAs are taken by renew alone, and only when named
        let names = self.list("certificates");
        let (selection, cas) =
            if state == "renew" { renew_names(&names)? } else { (Selection::parse(&names)?, Vec::new()) };
        let selection = KubeadmConfig::selection(config.as_ref(), selection);
        let Common { layout, csr_dir, key_algorithm, lock_timeout } = common;
        Ok(match state {
            "check" => Request::Check(CheckRequest {
                layout,
                selection,
                at: None,
                fail_within: self.str("fail_within").map(|_| self.span("fail_within", Span(0))).transpose()?,
                kubelet_dir: self.path("kubelet_dir", DEFAULT_KUBELET_DIR),
                config,
                copies: self.copies()?,
            }),
            "renew" => self.renew(layout, selection, cas, config, key_algorithm, lock_timeout)?,
            "csr" => Request::Csr(CsrRequest {
                layout,
                selection,
                csr_dir,
                force: self.bool("force"),
                key_algorithm,
                check_mode: self.check_mode,
                lock_timeout,
            }),
            "restart" => self.restart(layout, lock_timeout)?,
            _ => Request::Install(InstallRequest {
                layout,
                selection,
                signed_dir: self.str("signed_dir").map(PathBuf::from).unwrap_or_else(|| csr_dir.clone()),
                csr_dir,
                backup: self.bool("backup"),
                check_mode: self.check_mode,
                lock_timeout,
            }),
        })
    }

    /// What every state reads: the directories, the key algorithm, the lock timeout, and the CSR dir that
    /// `csr`, `install` and `sign` require.
    fn common(&self, state: &str) -> Result<Common, Error> {
        let lock_timeout = self.span("lock_timeout", DEFAULT_LOCK_TIMEOUT)?;
        // required_if: a CSR run never defaults to a directory the control plane reads (kubeadm 1.20 also
        // refuses --csr-only without --csr-dir)
        let csr_dir = match (self.str("csr_dir"), state) {
            (Some(d), _) => PathBuf::from(d),
            (None, "csr" | "install" | "sign") => {
                return Err(Error::Usage(format!(
                    "state is {state} but all of the following are missing: csr_dir (a directory of its own for \
                     the new keys and CSRs, never the cert dir, e.g. /etc/kubernetes/kubeadm-certs/csr)"
                )));
            }
            (None, _) => PathBuf::new(),
        };
        Ok(Common {
            layout: Layout::new(
                self.path("cert_dir", DEFAULT_CERT_DIR),
                self.path("kubeconfig_dir", DEFAULT_KUBECONFIG_DIR),
            ),
            csr_dir,
            key_algorithm: match self.str("key_algorithm") {
                None | Some("keep") => None,
                Some(s) => KeyAlgorithm::parse(s),
            },
            lock_timeout,
        })
    }

    /// A parameter that only another state reads is a mistake worth naming.
    fn refuse_other_states(&self, state: &str) -> Result<(), Error> {
        let only = |param: &str, states: &[&str]| -> Result<(), Error> {
            if self.values.contains_key(param) && !states.contains(&state) {
                return Err(Error::Usage(format!("{param} applies to state {}, not {state}", states.join(" or "))));
            }
            Ok(())
        };
        only("fail_within", &["check"])?;
        only("fail_inconsistent", &["check"])?;
        only("kubelet_dir", &["check", "renew"])?;
        only("config", &["check", "renew"])?;
        only("copies", &["check", "renew"])?;
        only("default_copies", &["check", "renew"])?;
        only("refresh_copies", &["renew"])?;
        only("cluster_info", &["renew"])?;
        only("resign_old_issuer", &["renew"])?;
        for p in ["phase", "generate", "next_ca_cert", "next_ca_key", "old_ca_backup"] {
            only(p, &["rotate"])?;
        }
        only("signed_dir", &["install"])?;
        for p in
            ["signer", "approve", "signer_name", "api_timeout", "renew_before", "validity", "extra_sans", "ca_cert"]
        {
            only(p, &["renew"])?;
        }
        only("api_kubeconfig", &["renew", "restart"])?;
        for p in RESTART_ONLY {
            only(p, &["restart"])?;
        }
        for p in ["lease_name", "lease_identity", "lease_duration", "lease_timeout"] {
            if self.values.contains_key(p) && !self.bool("lease") {
                return Err(Error::Usage(format!("{p} applies with lease: true")));
            }
        }
        for p in ["node_name", "restart_kubelet"] {
            if self.values.contains_key(p) {
                return Err(Error::Usage(format!(
                    "{p} applies to certificates: [{KUBELET_CLIENT}] (states renew, csr, install, sign) and \
                     [{KUBELET_SERVING}] (state renew)"
                )));
            }
        }
        Ok(())
    }

    fn api_kubeconfig(&self, layout: &Layout) -> PathBuf {
        self.str("api_kubeconfig").map(PathBuf::from).unwrap_or_else(|| layout.kubeconfig_dir.join("admin.conf"))
    }

    /// `state: renew`: kubeadm's certificates, signed on the node or through the certificates API; the
    /// kubeadm configuration (`config`) supplies defaults the task does not set.
    fn renew(
        &self,
        layout: Layout,
        selection: Selection,
        cas: Vec<crate::inventory::CaId>,
        config: Option<KubeadmConfig>,
        key_algorithm: Option<KeyAlgorithm>,
        lock_timeout: Span,
    ) -> Result<Request, Error> {
        let signer = match self.str("signer").unwrap_or("local") {
            "api" => SignerChoice::Api(ApiOptions {
                kubeconfig: self.api_kubeconfig(&layout),
                approve: self.bool("approve"),
                signer_name: self.str("signer_name").map(String::from),
                timeout: self.span("api_timeout", Span(300))?,
                announce: false,
            }),
            _ => SignerChoice::Local,
        };
        let asked_algorithm = self.str("key_algorithm").map(|_| key_algorithm);
        let asked_validity = self.str("validity").map(|_| self.span("validity", DEFAULT_VALIDITY)).transpose()?;
        let asked_renew_before =
            self.str("renew_before").map(|_| self.span("renew_before", DEFAULT_RENEW_BEFORE)).transpose()?;
        let ca = CaRenewal::of(
            cas,
            &selection,
            asked_validity,
            asked_renew_before,
            config.as_ref().and_then(|c| c.ca_validity),
            self.str("ca_cert").map(PathBuf::from),
        )?
        .with_cluster_info(self.bool("cluster_info").then(|| self.api_kubeconfig(&layout)))?;
        ca.refuse_options(&selection, matches!(signer, SignerChoice::Api(_)), key_algorithm.is_some())?;
        let (validity, key_algorithm, extra_sans) = KubeadmConfig::renew_defaults(
            config.as_ref(),
            asked_validity,
            asked_algorithm,
            self.list("extra_sans").iter().map(|s| San::parse(s)).collect::<Result<_, _>>()?,
        );
        Ok(Request::Renew(RenewRequest {
            layout,
            selection,
            renew_before: asked_renew_before.unwrap_or(DEFAULT_RENEW_BEFORE),
            force: self.bool("force"),
            validity,
            extra_sans,
            key_algorithm,
            backup: self.bool("backup"),
            check_mode: self.check_mode,
            at: None,
            signer,
            lock_timeout,
            ca,
            copies: self.copies()?,
            refresh_copies: self.bool("refresh_copies"),
            resign_old_issuer: self.bool("resign_old_issuer"),
        }))
    }

    /// Where credential copies are looked for: `copies`, and the default places unless `default_copies: false`.
    fn copies(&self) -> Result<CopySearch, Error> {
        let defaults = self.values.get("default_copies").and_then(Value::as_bool).unwrap_or(true);
        CopySearch::new(self.list("copies").into_iter().map(PathBuf::from).collect(), defaults)
    }

    /// `state: restart`: the components, how, and the cluster gate and Lease around it.
    fn restart(&self, layout: Layout, lock_timeout: Span) -> Result<Request, Error> {
        let components = RestartRequest::parse_components(&self.list("components"))?;
        let timeout = self.span("restart_timeout", DEFAULT_RESTART_TIMEOUT)?;
        let lease = match self.bool("lease") {
            false => None,
            true => Some(
                LeaseOptions {
                    name: self.str("lease_name").unwrap_or(DEFAULT_LEASE_NAME).to_string(),
                    identity: self.str("lease_identity").map(String::from).unwrap_or_else(node_name),
                    duration: self.span("lease_duration", DEFAULT_LEASE_DURATION)?,
                    timeout: self.span("lease_timeout", DEFAULT_LEASE_TIMEOUT)?,
                }
                .checked()?,
            ),
        };
        Ok(Request::Restart(RestartRequest {
            components,
            method: self.str("method").and_then(RestartMethod::parse).unwrap_or(RestartMethod::StaticPod),
            manifests_dir: self
                .str("manifests_dir")
                .map(PathBuf::from)
                .unwrap_or_else(|| default_manifests_dir(&layout.kubeconfig_dir)),
            cluster: ClusterOptions {
                gate: self.bool("cluster_gate"),
                lease,
                kubeconfig: self.api_kubeconfig(&layout),
            },
            layout,
            command: self.str("restart_command").map(String::from),
            timeout,
            check_mode: self.check_mode,
            lock_timeout,
        }))
    }
}

/// What every state reads (`Params::common`).
struct Common {
    layout: Layout,
    csr_dir: PathBuf,
    key_algorithm: Option<KeyAlgorithm>,
    lock_timeout: Span,
}

/// The parameters only `state: restart` reads.
const RESTART_ONLY: [&str; 11] = [
    "components",
    "method",
    "manifests_dir",
    "restart_command",
    "restart_timeout",
    "cluster_gate",
    "lease",
    "lease_name",
    "lease_identity",
    "lease_duration",
    "lease_timeout",
];

impl Params {
    /// `certificates: [kubelet-client]`: each state takes its own parameters and no others.
    fn kubelet_client(&self, state: &str, common: Common) -> Result<Request, Error> {
        let Common { layout, csr_dir, key_algorithm, lock_timeout } = common;
        let allowed: &[&str] = match state {
            "renew" => &[
                "renew_before",
                "force",
                "validity",
                "key_algorithm",
                "kubelet_dir",
                "node_name",
                "restart_kubelet",
                "restart_timeout",
            ],
            "csr" => &["csr_dir", "renew_before", "force", "key_algorithm", "kubelet_dir", "node_name"],
            "install" => &["csr_dir", "signed_dir", "kubelet_dir", "node_name", "restart_kubelet", "restart_timeout"],
            _ => &["csr_dir", "node_name", "validity"],
        };
        self.only(state, KUBELET_CLIENT, allowed)?;
        if state == "sign" {
            let node_name = self.str("node_name").map(String::from).ok_or_else(|| {
                Error::Usage(
                    "state is sign but all of the following are missing: node_name (the node the certificate is \
                     for, from the inventory; never read from the CSR)"
                        .into(),
                )
            })?;
            return Ok(Request::KubeletSign(KubeletSignRequest {
                layout,
                csr_dir,
                node_name,
                validity: self.span("validity", DEFAULT_VALIDITY)?,
                check_mode: self.check_mode,
                lock_timeout,
            }));
        }
        let step = match state {
            "csr" => KubeletClientStep::Csr { csr_dir },
            "install" => KubeletClientStep::Install {
                signed_dir: self.str("signed_dir").map(PathBuf::from).unwrap_or_else(|| csr_dir.clone()),
                csr_dir,
            },
            _ => KubeletClientStep::Issue,
        };
        Ok(Request::KubeletClient(KubeletClientRequest {
            layout,
            kubelet_dir: self.path("kubelet_dir", DEFAULT_KUBELET_DIR),
            node_name: self.str("node_name").map(String::from),
            renew_before: self.span("renew_before", DEFAULT_RENEW_BEFORE)?,
            force: self.bool("force"),
            validity: self.span("validity", DEFAULT_VALIDITY)?,
            key_algorithm,
            check_mode: self.check_mode,
            lock_timeout,
            restart_kubelet: state != "csr"
                && self.values.get("restart_kubelet").and_then(Value::as_bool).unwrap_or(true),
            timeout: self.span("restart_timeout", DEFAULT_RESTART_TIMEOUT)?,
            step,
        }))
    }
}

impl Params {
    /// A parameter `state` (with `certificates: [NAME]`) does not read, refused by name.
    fn only(&self, state: &str, name: &str, allowed: &[&str]) -> Result<(), Error> {
        let common = ["state", "certificates", "cert_dir", "kubeconfig_dir", "lock_timeout"];
        match self.values.keys().find(|p| !allowed.contains(&p.as_str()) && !common.contains(&p.as_str())) {
            Some(p) => Err(Error::Usage(format!(
                "{p} does not apply to state {state} with certificates: [{name}] (it takes {})",
                allowed.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// `state: renew` with `certificates: [kubelet-serving]`: the kubelet's self-signed serving certificate.
    fn kubelet_serving(&self, common: Common) -> Result<Request, Error> {
        self.only(
            "renew",
            KUBELET_SERVING,
            &[
                "renew_before",
                "force",
                "validity",
                "key_algorithm",
                "backup",
                "kubelet_dir",
                "node_name",
                "restart_kubelet",
                "restart_timeout",
            ],
        )?;
        let Common { layout, key_algorithm, lock_timeout, .. } = common;
        Ok(Request::KubeletServing(KubeletServingRequest {
            layout,
            kubelet_dir: self.path("kubelet_dir", DEFAULT_KUBELET_DIR),
            node_name: self.str("node_name").map(String::from),
            renew_before: self.span("renew_before", DEFAULT_RENEW_BEFORE)?,
            force: self.bool("force"),
            validity: self.span("validity", DEFAULT_VALIDITY)?,
            key_algorithm,
            backup: self.bool("backup"),
            check_mode: self.check_mode,
            lock_timeout,
            restart_kubelet: self.values.get("restart_kubelet").and_then(Value::as_bool).unwrap_or(true),
            timeout: self.span("restart_timeout", DEFAULT_RESTART_TIMEOUT)?,
        }))
    }

    /// `state: rotate`: one node's step of a CA rotation (`certificates: [ca]`, one CA, and `phase`).
    fn rotate(&self, common: Common) -> Result<Request, Error> {
        let names = self.list("certificates");
        let [ca] = names.as_slice() else {
            return Err(Error::Usage(format!(
                "state rotate takes one CA in certificates (ca, etcd-ca or front-proxy-ca), got [{}]",
                names.join(", ")
            )));
        };
        self.only(
            "rotate",
            ca,
            &[
                "phase",
                "generate",
                "next_ca_cert",
                "next_ca_key",
                "old_ca_backup",
                "validity",
                "kubelet_dir",
                "cluster_info",
                "api_kubeconfig",
            ],
        )?;
        let phase = match self.str("phase") {
            Some("trust") => RotatePhase::Trust(match (self.bool("generate"), self.str("next_ca_cert")) {
                (true, None) => NewCa::Generate,
                (false, Some(cert)) => {
                    NewCa::Given { cert: PathBuf::from(cert), key: self.str("next_ca_key").map(PathBuf::from) }
                }
                _ => {
                    return Err(Error::Usage(
                        "phase trust takes either generate: true (on the first control-plane node) or next_ca_cert \
                         (with next_ca_key where the node holds the CA key)"
                            .into(),
                    ));
                }
            }),
            Some("reissue") => RotatePhase::Reissue,
            Some("drop") => RotatePhase::Drop { old_ca_backup: self.str("old_ca_backup").map(PathBuf::from) },
            _ => return Err(Error::Usage("state rotate needs phase: trust, reissue or drop".into())),
        };
        // generate: false (its default) is no request of another phase's
        let generate_asked = self.bool("generate");
        for (p, applies) in [
            ("generate", !generate_asked || matches!(phase, RotatePhase::Trust(_))),
            ("next_ca_cert", matches!(phase, RotatePhase::Trust(_))),
            ("next_ca_key", matches!(phase, RotatePhase::Trust(_))),
            ("old_ca_backup", matches!(phase, RotatePhase::Drop { .. })),
        ] {
            if self.values.contains_key(p) && !applies {
                return Err(Error::Usage(format!("{p} does not apply to phase {}", self.str("phase").unwrap_or(""))));
            }
        }
        let validity = self.str("validity").map(|_| self.span("validity", DEFAULT_VALIDITY)).transpose()?;
        let cluster_info = self.bool("cluster_info").then(|| self.api_kubeconfig(&common.layout));
        Ok(Request::Rotate(
            RotateRequest::new(
                common.layout,
                self.path("kubelet_dir", DEFAULT_KUBELET_DIR),
                ca,
                phase,
                validity,
                self.check_mode,
                common.lock_timeout,
            )?
            .with_cluster_info(cluster_info)?,
        ))
    }

    /// `state: approve`: the kubelets' pending serving-certificate requests, judged and approved through the API.
    fn approve(&self, common: Common) -> Result<Request, Error> {
        let names = self.list("certificates");
        if !names.is_empty() && names != [KUBELET_SERVING] {
            return Err(Error::Usage(format!(
                "state approve takes certificates: [{KUBELET_SERVING}] (the default; the kubelets' requests for their \
                 serving certificates), got {}",
                names.join(", ")
            )));
        }
        self.only("approve", KUBELET_SERVING, &["api_kubeconfig"])?;
        Ok(Request::Approve(ApproveRequest {
            kubeconfig: self.api_kubeconfig(&common.layout),
            layout: common.layout,
            check_mode: self.check_mode,
        }))
    }
}

/// An args file's text as the request it asks for, or the message the module would fail with; nothing
/// runs. The first half of [`result_for`], public for the fuzzer (fuzz/fuzz_targets/module_args.rs).
pub fn parse_request(text: &str) -> Result<Request, String> {
    parse_params(&args_object(text)?)?.request().map_err(|e| e.to_string())
}

/// The args file's text as the JSON object Ansible writes there.
fn args_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the module arguments are not a JSON object".into()),
        Err(e) => Err(format!("the module arguments are not valid JSON: {e}")),
    }
}

fn failed(msg: String) -> Value {
    json!({"failed": true, "changed": false, "msg": msg})
}

/// A failed run's result: `changed` and a warning when it had settled an interrupted run's journal first.
fn failure(e: &Error) -> Value {
    let mut v = failed(e.to_string());
    if let Some(done) = e.settled() {
        v["changed"] = Value::Bool(true);
        v["warnings"] = json!([done]);
    }
    v
}

/// The result object for an args file. Never panics on bad input; the caller prints it.
pub fn result_for(args_file: &Path) -> Value {
    let raw = match std::fs::read_to_string(args_file) {
        Ok(t) => t,
        Err(e) => return failed(format!("{}: cannot read the module arguments: {e}", args_file.display())),
    };
    let obj = match args_object(&raw) {
        Ok(m) => m,
        Err(msg) => return failed(format!("{}: {msg}", args_file.display())),
    };
    let params = match parse_params(&obj) {
        Ok(p) => p,
        Err(msg) => return failed(msg),
    };
    let outcome = params.request().and_then(|req| crate::run(&req, Utc::now()));
    let mut result = match outcome {
        Ok(out) => success(&out, &params),
        Err(e) => failure(&e),
    };
    if !params.no_log {
        result["invocation"] = json!({ "module_args": Value::Object(params.values.clone()) });
    }
    result
}

fn success(out: &Outcome, params: &Params) -> Value {
    let mut v = serde_json::to_value(out).expect("plain data");
    if params.diff && !params.no_log && !out.diff.is_empty() {
        v["diff"] = serde_json::to_value(&out.diff).expect("plain data");
    }
    if out.threshold_failed || out.pki_broken || (out.inconsistent && params.bool("fail_inconsistent")) {
        v["failed"] = Value::Bool(true);
    }
    v
}

/// Module mode entry: prints exactly one JSON object, also when something panics.
pub fn main(args_file: &Path) -> std::process::ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let msg = match info.payload().downcast_ref::<&str>() {
            Some(s) => s.to_string(),
            None => info.payload().downcast_ref::<String>().cloned().unwrap_or_else(|| "unknown panic".into()),
        };
        let loc = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        println!("{}", failed(format!("kubeadm-certs crashed (a bug, please report it): {msg}{loc}")));
        std::process::exit(1);
    }));
    let result = result_for(args_file);
    println!("{result}");
    if result.get("failed").and_then(Value::as_bool) == Some(true) {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The module's documentation (ansible-doc, the argument checks users read) and the spec the binary
    /// enforces are one list: a parameter added to one and not the other, or a type or choice that differs,
    /// fails here.
    #[test]
    fn the_spec_the_binary_enforces_is_the_documented_one() {
        let py = include_str!("../../ansible/plugins/modules/certs.py");
        let doc = py.split("DOCUMENTATION = r\"\"\"").nth(1).and_then(|d| d.split("\"\"\"").next()).unwrap();
        let doc: serde_norway::Value = serde_norway::from_str(doc).unwrap();
        let options = doc["options"].as_mapping().unwrap();
        let documented: Vec<&str> = options.keys().map(|k| k.as_str().unwrap()).collect();
        let enforced: Vec<&str> = SPEC.iter().map(|(n, _, _)| *n).collect();
        let mut a = documented.clone();
        let mut b = enforced.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "documented (left) and enforced (right) parameters differ");
        for (name, kind, choices) in SPEC {
            let o = &options[*name];
            let ty = match kind {
                Kind::Str => "str",
                Kind::Path => "path",
                Kind::Bool => "bool",
                Kind::List => "list",
            };
            assert_eq!(o["type"].as_str(), Some(ty), "{name}: documented type");
            let doc_choices: Vec<&str> =
                o["choices"].as_sequence().map(|c| c.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
            assert_eq!(doc_choices, *choices, "{name}: documented choices");
        }
    }

    /// Each default certs.py documents is the one the binary uses: a task that spells the documented default
    /// asks for the same request as a task that leaves the parameter out (in the first state that takes it).
    #[test]
    fn the_documented_defaults_are_the_ones_the_binary_uses() {
        let py = include_str!("../../ansible/plugins/modules/certs.py");
        let doc = py.split("DOCUMENTATION = r\"\"\"").nth(1).and_then(|d| d.split("\"\"\"").next()).unwrap();
        let doc: serde_norway::Value = serde_norway::from_str(doc).unwrap();
        let states = [
            json!({}),
            json!({"state": "renew"}),
            json!({"state": "csr", "csr_dir": "/csr"}),
            json!({"state": "install", "csr_dir": "/csr"}),
            json!({"state": "restart"}),
            json!({"state": "restart", "lease": true}),
            json!({"state": "renew", "certificates": ["kubelet-client"]}),
            json!({"state": "rotate", "certificates": ["ca"], "phase": "drop"}),
        ];
        let mut compared = 0;
        for (name, option) in doc["options"].as_mapping().unwrap() {
            let name = name.as_str().unwrap();
            let Some(default) = option.get("default") else { continue };
            let default = serde_json::to_value(default).unwrap();
            let mut taken = false;
            for base in &states {
                let Ok(without) = parse_request(&base.to_string()) else { continue };
                let mut with = base.clone();
                with[name] = default.clone();
                let Ok(with) = parse_request(&with.to_string()) else { continue };
                assert_eq!(
                    format!("{with:?}"),
                    format!("{without:?}"),
                    "{name}: the documented default {default} asks for another request than leaving it out ({base})"
                );
                taken = true;
                break;
            }
            assert!(taken, "{name}: no state takes its documented default {default}");
            compared += 1;
        }
        assert!(compared >= 20, "only {compared} documented defaults compared");
    }

    fn params(v: Value) -> Result<Params, String> {
        parse_params(v.as_object().unwrap())
    }

    #[test]
    fn coerces_like_ansible() {
        let p = params(json!({"force": "yes", "backup": "False", "certificates": "apiserver, admin.conf", "_ansible_check_mode": true}))
            .unwrap();
        assert!(p.bool("force"));
        assert!(!p.bool("backup"));
        assert_eq!(p.list("certificates"), ["apiserver", "admin.conf"]);
        assert!(p.check_mode);
    }

    #[test]
    fn names_what_is_wrong() {
        let e = params(json!({"forse": true})).err().unwrap();
        assert!(e.contains("Unsupported parameters") && e.contains("forse"), "{e}");
        let e = params(json!({"force": "maybe"})).err().unwrap();
        assert!(e.contains("'force'") && e.contains("bool"), "{e}");
        let e = params(json!({"state": "renewed"})).err().unwrap();
        assert!(e.contains("state") && e.contains("renewed"), "{e}");
        let e = params(json!({"certificates": {"a": 1}})).err().unwrap();
        assert!(e.contains("'certificates'"), "{e}");
    }
}
