//! A worker's side of repairing its kubelet's client certificate. A worker holds no CA key, so the certificate
//! is made in three steps, and the key never leaves the worker nor the CA key its control-plane node:
//!
//! 1. `csr kubelet-client` (here, on the worker): when the certificate is due, a new key (ECDSA P-256, as the
//!    kubelet's rotation makes) and a CSR for `O=system:nodes, CN=system:node:NAME` in the CSR dir, both 0600;
//!    a CSR already there for the same node, from a key of ours, is kept (a rerun after an interrupted repair
//!    signs the same request)
//! 2. `sign kubelet-client` on a control-plane node ([`super::kubelet_sign`]), the CSR carried there by the
//!    controller, which names the node from its inventory
//! 3. `install kubelet-client` (here): the signed certificate checked against the key, the node's name and
//!    the cluster CA on this node, then written, `kubelet.conf` pointed at it and the kubelet restarted and
//!    waited for exactly as on a control-plane node ([`Current::put_in_place`])

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::csr::{drop_foreign, ours};
use super::install::refuse_foreign_key;
use super::key_dir::{self, KeyDir};
use super::kubelet_client::{Current, due, node_subject};
use super::kubelet_sign;
use super::plan::key_usage_names;
use super::sign;
use crate::commit::{self, FileWrite, MODE_SECRET};
use crate::error::{Error, Result};
use crate::inventory::CaId;
use crate::pki::cert::{Certificate, EKU_CLIENT_AUTH, pem_encode};
use crate::pki::key::{KeyAlgorithm, PrivateKey};
use crate::pki::{self, Keys, Links, Pki};
use crate::report::{Action, CsrReport, Outcome};
use crate::request::{KUBELET_CLIENT, KubeletClientRequest};

fn paths(csr_dir: &Path) -> (PathBuf, PathBuf) {
    (csr_dir.join(format!("{KUBELET_CLIENT}.csr")), csr_dir.join(format!("{KUBELET_CLIENT}.key")))
}

/// Step 1: a key and a CSR for this node's kubelet, when its client certificate is due.
pub fn csr(req: &KubeletClientRequest, csr_dir: &Path, now: DateTime<Utc>) -> Result<Outcome> {
    let current = Current::read(req)?;
    let Some(reason) = due(current.cert.as_ref(), req, now) else {
        return Ok(current.not_due(req, now));
    };
    let dir = key_dir::check(&req.layout, csr_dir, &KeyDir::CSR)?;
    let (csr_path, key_path) = paths(csr_dir);
    let algorithm = req.key_algorithm.unwrap_or(KeyAlgorithm::EcdsaP256);
    let keep = !req.force && ours(&csr_path)? && ours(&key_path)? && still_asks(&csr_path, &key_path, &current.node);
    if !keep && !req.check_mode {
        if !dir.exists {
            key_dir::create(csr_dir, &KeyDir::CSR)?;
        }
        let key = PrivateKey::generate(algorithm)?;
        let request = sign::request_pem(&node_subject(&current.node), &[], &[], &key)
            .map_err(|e| Error::Crypto(format!("{KUBELET_CLIENT}: cannot build the CSR: {e}")))?;
        let writes = [
            FileWrite { path: key_path.clone(), contents: key.pem().as_bytes().to_vec(), mode: MODE_SECRET },
            FileWrite { path: csr_path.clone(), contents: request.into_bytes(), mode: MODE_SECRET },
        ];
        drop_foreign(&writes)?;
        commit::commit(&req.layout, &writes, false, now)?;
    }
    let node = current.node.clone();
    let mut out = current.outcome(req, now);
    out.csrs.push(CsrReport {
        name: KUBELET_CLIENT.into(),
        csr_path: csr_path.display().to_string(),
        key_path: key_path.display().to_string(),
        ca: CaId::Ca.name(),
        subject: node_subject(&node).to_string(),
        sans: Vec::new(),
        key_usage: key_usage_names(algorithm),
        extended_key_usage: vec!["clientAuth"],
        changed: !keep,
    });
    if !keep {
        out.csr_files.push(csr_path.display().to_string());
    }
    out.changed = !keep;
    let next = format!(
        "sign it on a control-plane node: kubeadm-certs sign {KUBELET_CLIENT} --csr-dir DIR --node-name {node}"
    );
    let (action, why) = match (keep, req.check_mode) {
        (true, _) => (Action::None, format!("due ({reason}); its CSR is ready: sign it on a control-plane node")),
        (false, true) => (Action::WouldWriteCsr, reason.clone()),
        (false, false) => (Action::CsrWritten, reason.clone()),
    };
    super::kubelet_client::mark(&mut out, action, why);
    out.msg = match (keep, req.check_mode) {
        (true, _) => format!(
            "{KUBELET_CLIENT} of node {node} is due ({reason}); its CSR {} is ready, {next}",
            csr_path.display()
        ),
        (false, true) => {
            format!("would write a CSR for {KUBELET_CLIENT} of node {node} ({reason}) to {}", csr_path.display())
        }
        (false, false) => {
            format!("wrote a CSR for {KUBELET_CLIENT} of node {node} ({reason}) to {}; {next}", csr_path.display())
        }
    };
    Ok(out)
}

/// The CSR on disk asks for this node with the key beside it (what `sign` would accept).
fn still_asks(csr_path: &Path, key_path: &Path, node: &str) -> bool {
    let Ok(key) = PrivateKey::read(key_path) else { return false };
    let Ok(bytes) = pki::read_file(csr_path, Links::Refuse) else { return false };
    crate::pki::csr::parse(&bytes)
        .is_ok_and(|c| c.public_key_raw == key.public_key_raw() && kubelet_sign::refusal(&c, node).is_none())
}

/// Step 3: the certificate a control-plane node signed, put where the kubelet reads it.
pub fn install(req: &KubeletClientRequest, csr_dir: &Path, signed_dir: &Path, now: DateTime<Utc>) -> Result<Outcome> {
    let mut current = Current::read(req)?;
    let dir = key_dir::check(&req.layout, csr_dir, &KeyDir::CSR)?;
    key_dir::require_existing(&dir)?;
    let (_, key_path) = paths(csr_dir);
    let crt_path = signed_dir.join(format!("{KUBELET_CLIENT}.crt"));
    if !pki::exists(&crt_path)? {
        return Err(Error::invalid(
            &crt_path,
            format!(
                "does not exist: nothing signed to install. Sign the CSR on a control-plane node first \
                 (kubeadm-certs sign {KUBELET_CLIENT} --csr-dir DIR --node-name {} there)",
                current.node
            ),
        ));
    }
    let cert = Certificate::read(&crt_path)?;
    if current.cert.as_ref().is_some_and(|c| c.der == cert.der) {
        let msg = format!("{KUBELET_CLIENT} of node {}: {} is installed already", current.node, crt_path.display());
        let mut out = current.outcome(req, now);
        out.msg = msg;
        super::kubelet_client::mark(&mut out, Action::None, format!("{} is installed already", crt_path.display()));
        return Ok(out);
    }
    refuse_foreign_key(&key_path)?;
    let key = PrivateKey::read(&key_path)?;
    let pki = Pki::read(&req.layout, &[], false, Keys::Skip)?;
    let ca_entry = pki.ca(CaId::Ca);
    let ca = ca_entry.cert.as_ref().ok_or_else(|| {
        Error::invalid(
            &ca_entry.cert_path,
            "does not exist: the signed certificate cannot be checked against the cluster CA",
        )
    })?;
    fits(&cert, &key, &current.node, ca, now)
        .map_err(|why| Error::invalid(&crt_path, format!("{why}; nothing was installed")))?;
    let mut cert_pem = pem_encode("CERTIFICATE", &cert.der);
    for intermediate in &cert.chain_rest {
        cert_pem.push_str(&pem_encode("CERTIFICATE", intermediate));
    }
    let diff = current.diff(req, &cert_pem)?;
    let signed = format!("signed {}", crt_path.display());
    if req.check_mode {
        let mut out = current.would(req, now, &format!("get the certificate {} signed", crt_path.display()), diff);
        super::kubelet_client::mark(&mut out, Action::WouldInstall, signed);
        return Ok(out);
    }
    current.put_in_place(req, &cert_pem, key.pem(), now)?;
    let what = format!("installed {KUBELET_CLIENT} of node {} from {}", current.node, crt_path.display());
    let mut out = current.done(req, &what, diff);
    super::kubelet_client::mark(&mut out, Action::Installed, signed);
    Ok(out)
}

/// What the kubelet can use as `node`'s client certificate: for the key the CSR step wrote, the node's subject,
/// client auth, not a CA, chaining to this node's cluster CA, valid now.
fn fits(
    cert: &Certificate,
    key: &PrivateKey,
    node: &str,
    ca: &Certificate,
    now: DateTime<Utc>,
) -> std::result::Result<(), String> {
    if !key.matches(&cert.public_key_raw) {
        return Err("is not for the key the CSR step wrote: sign the CSR that step wrote beside it".into());
    }
    let want = node_subject(node);
    if cert.subject.to_string() != want.to_string() {
        return Err(format!("is for \"{}\", the kubelet of node {node} is \"{want}\"", cert.subject));
    }
    if cert.is_ca() {
        return Err("is a CA certificate".into());
    }
    if !cert.ext_key_usage.iter().any(|u| u == EKU_CLIENT_AUTH) {
        return Err("does not allow client authentication (extended key usage clientAuth)".into());
    }
    // a CA file holding a rotation's two CA certificates trusts either (`verify::trusted_by`)
    crate::pki::verify::trusted_by(cert, ca).map_err(|e| format!("does not chain to this node's cluster CA: {e}"))?;
    if cert.not_after <= now {
        return Err("has already expired".into());
    }
    if cert.not_before > now + chrono::Duration::minutes(5) {
        return Err(format!("is not valid yet (from {})", crate::report::rfc3339(cert.not_before)));
    }
    Ok(())
}
