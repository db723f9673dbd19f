//! `renew kubelet-client`: kubeadm's documented fix for a kubelet whose client certificate expired or never
//! rotated ("kubelet client certificate rotation fails" in kubeadm's troubleshooting guide), done safely on a
//! node that holds the cluster CA's key (a control-plane node):
//!
//! 1. read: the certificate `kubelet.conf` uses now ([`super::kubelet`]) and the node's name (that
//!    certificate's `system:node:NAME`, or `--node-name`)
//! 2. decide: missing, expired, within `renew_before`, or forced; else nothing to do
//! 3. build: a new key (ECDSA P-256, as the kubelet's own rotation makes) and a certificate for
//!    `O=system:nodes, CN=system:node:NAME` with client auth, signed by `ca` on disk
//! 4. write, as the kubelet writes its own rotations: the dated `pki/kubelet-client-DATE.pem` (certificate and
//!    key, 0600, a new name), then the `pki/kubelet-client-current.pem` link swapped to it (a new link renamed
//!    over the old), then `kubelet.conf` pointed at the link instead of embedded data (a temp renamed over it).
//!    Each step is atomic and leaves a working kubelet; an interrupted run is completed by the next one (the
//!    link is what the next run reads, and it is already new).
//! 5. restart the kubelet (`systemctl restart kubelet`; it reads its client certificate at start), wait until
//!    its `/healthz` answers and the apiserver shows it back: its node Lease renewed after the restart (so
//!    authenticated with the new certificate) and its node Ready, asked as admin.conf's user or, where there
//!    is none (a worker), as the kubelet itself.
//!
//! A worker holds no CA key: there step 3 is split in three (`super::kubelet_csr`: a key and a CSR on the
//! worker, `super::kubelet_sign`: signed on a control-plane node, then installed on the worker), and steps 4
//! and 5 are the same ([`Current::put_in_place`]).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::kubelet::{self, CLIENT};
use super::kubelet_restart::{Back, restart_and_wait};
use super::plan::{BACKDATE, Desired};
use super::sign::sign_local;
use crate::commit::{parent, sync_dir};
use crate::duration::{self, Span};
use crate::error::{Error, Result};
use crate::inventory::CaId;
use crate::pki::cert::{Certificate, EKU_CLIENT_AUTH, Name, NameAttr, OID_CN, OID_O, pem_encode};
use crate::pki::key::{KeyAlgorithm, PrivateKey};
use crate::pki::kubeconfig;
use crate::pki::{Keys, Pki};
use crate::report::rfc3339;
use crate::report::{Action, DiffEntry, Outcome};
use crate::request::{KubeletClientRequest, KubeletClientStep};

const CURRENT: &str = "kubelet-client-current.pem";
/// ASN.1 UTF8String: `system:nodes` holds a colon, which a PrintableString cannot (Go picks the same).
const UTF8: u32 = 12;

pub fn renew(req: &KubeletClientRequest, now: DateTime<Utc>) -> Result<Outcome> {
    match &req.step {
        KubeletClientStep::Issue => issue_here(req, now),
        KubeletClientStep::Csr { csr_dir } => super::kubelet_csr::csr(req, csr_dir, now),
        KubeletClientStep::Install { csr_dir, signed_dir } => {
            super::kubelet_csr::install(req, csr_dir, signed_dir, now)
        }
    }
}

/// On a control-plane node: steps 1 to 5 of the module's comment.
fn issue_here(req: &KubeletClientRequest, now: DateTime<Utc>) -> Result<Outcome> {
    // 1. read
    let mut current = Current::read(req)?;
    // 2. decide
    let Some(reason) = due(current.cert.as_ref(), req, now) else {
        return Ok(current.not_due(req, now));
    };
    // 3. build
    let (cert_pem, key) = issue(req, &current.node, now)?;
    let diff = current.diff(req, &cert_pem)?;
    if req.check_mode {
        let mut out = current.would(req, now, &format!("be renewed ({reason})"), diff);
        mark(&mut out, Action::WouldRenew, reason);
        return Ok(out);
    }
    // 4. write, 5. restart and wait
    current.put_in_place(req, &cert_pem, key.pem(), now)?;
    let what = format!("renewed kubelet-client of node {} ({reason})", current.node);
    let mut out = current.done(req, &what, diff);
    mark(&mut out, Action::Renewed, reason);
    Ok(out)
}

/// The kubelet-client row of `out` says what became of it and why, as a certificate's row does (`renew`'s table
/// and JSON show it).
pub(super) fn mark(out: &mut Outcome, action: Action, reason: String) {
    if let Some(row) = out.kubelet.iter_mut().find(|k| k.name == CLIENT) {
        row.action = Some(action);
        row.reason = Some(reason);
    }
}

/// What the node's kubelet uses now, and who it is.
pub(super) struct Current {
    /// `kubelet.conf`
    pub conf: PathBuf,
    /// The file the client certificate was read from (`kubelet.conf` when embedded).
    path: PathBuf,
    pub cert: Option<Certificate>,
    pub node: String,
    warnings: Vec<String>,
}

impl Current {
    pub fn read(req: &KubeletClientRequest) -> Result<Current> {
        let conf = req.layout.kubeconfig_dir.join("kubelet.conf");
        if !crate::pki::exists(&conf)? {
            return Err(Error::invalid(
                &conf,
                "does not exist: this node's kubelet was never joined (kubeadm join writes it), nothing to repair",
            ));
        }
        let mut warnings = Vec::new();
        let current = kubelet::client(&req.layout.kubeconfig_dir, &mut warnings);
        let node = node_name(req.node_name.as_ref(), current.cert.as_ref(), &conf)?;
        Ok(Current { conf, path: current.path, cert: current.cert, node, warnings })
    }

    pub fn link(req: &KubeletClientRequest) -> PathBuf {
        req.kubelet_dir.join("pki").join(CURRENT)
    }

    /// The certificate now and the one `cert_pem` would make it, by subject, issuer, serial and end.
    pub fn diff(&self, req: &KubeletClientRequest, cert_pem: &str) -> Result<DiffEntry> {
        let before = self.cert.as_ref().map(describe).unwrap_or_else(|| "(missing)\n".into());
        let link = Self::link(req);
        let after = describe(&Certificate::from_file_bytes(&link, cert_pem.as_bytes())?);
        Ok(DiffEntry {
            before_header: self.path.display().to_string(),
            after_header: link.display().to_string(),
            before,
            after,
        })
    }

    /// What `check` reports for the kubelet, with what reading it warned about; nothing changed.
    pub fn outcome(self, req: &KubeletClientRequest, now: DateTime<Utc>) -> Outcome {
        report(req, now, self.warnings)
    }

    pub fn not_due(self, req: &KubeletClientRequest, now: DateTime<Utc>) -> Outcome {
        let left = residual(self.cert.as_ref(), now);
        let msg = format!("kubelet-client of node {} is not due ({left})", self.node);
        let mut out = self.outcome(req, now);
        out.msg = msg;
        mark(&mut out, Action::None, format!("{left}, not within renew_before {}", req.renew_before));
        out
    }

    /// Check mode: what a run would do (`what`: "be renewed (expired ...)").
    pub fn would(self, req: &KubeletClientRequest, now: DateTime<Utc>, what: &str, diff: DiffEntry) -> Outcome {
        let msg = format!(
            "kubelet-client of node {} would {what}{}",
            self.node,
            if req.restart_kubelet { " and the kubelet restarted" } else { "" }
        );
        let mut out = report(req, now, self.warnings);
        out.changed = true;
        out.msg = msg;
        out.diff.push(diff);
        out
    }

    /// Steps 4 and 5: the new certificate and key written as the kubelet keeps its own, `kubelet.conf` pointed
    /// at them, the kubelet restarted and waited for (unless `restart_kubelet` is off).
    pub fn put_in_place(
        &mut self,
        req: &KubeletClientRequest,
        cert_pem: &str,
        key_pem: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // 4. write
        let dir = req.kubelet_dir.join("pki");
        let dated = dir.join(format!("kubelet-client-{}.pem", now.format("%Y-%m-%d-%H-%M-%S")));
        let link = Self::link(req);
        fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
        write_new(&dated, format!("{cert_pem}{key_pem}").as_bytes())?;
        swap_link(&link, &dated)?;
        let conf_bytes = crate::pki::read_file(&self.conf, crate::pki::Links::Refuse)?;
        let pointed = kubeconfig::with_client_file(&self.conf, &conf_bytes, &link)?;
        if pointed != conf_bytes {
            replace(&self.conf, &pointed)?;
        }
        // 5. restart and wait
        if req.restart_kubelet {
            // the files are written whatever happens now: say so, and that a rerun finds nothing due
            let own = Own { conf: &self.conf, conf_bytes: &pointed, cert_pem, key_pem };
            let back = Back {
                kubeconfig_dir: &req.layout.kubeconfig_dir,
                node: &self.node,
                since: now,
                timeout: req.timeout,
                own: &|| own.credentials(),
                serves: None,
            };
            restart_and_wait(&back).map_err(|e| {
                Error::Restart(format!(
                    "{e} (the new certificate is in place: {} names {}; a rerun finds it not due)",
                    self.conf.display(),
                    link.display()
                ))
            })?;
        } else {
            self.warnings.push(
                "the kubelet was not restarted (restart_kubelet: false): it uses the new certificate from its next \
                 start"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn done(self, req: &KubeletClientRequest, what: &str, diff: DiffEntry) -> Outcome {
        let mut out = report(req, Utc::now(), self.warnings);
        out.changed = true;
        out.renewed = vec![CLIENT.to_string()];
        out.msg = format!("{what}{}", if req.restart_kubelet { "; the kubelet restarted and is back" } else { "" });
        out.diff.push(diff);
        out
    }
}

/// The node's name: asked for, or the current client certificate's `system:node:NAME`.
pub(super) fn node_name(asked: Option<&String>, cert: Option<&Certificate>, conf: &Path) -> Result<String> {
    let named = cert.and_then(|c| c.subject.common_name()).and_then(|cn| cn.strip_prefix("system:node:"));
    if let Some(n) = asked {
        // a certificate for another node would make this kubelet that node: a typo, or the wrong host
        return match named {
            Some(other) if other != n => Err(Error::Usage(format!(
                "the kubelet on this host is node {other} (the client certificate {} uses), not {n}: check the \
                 node name (--node-name, node_name, kubelet_client_node_name)",
                conf.display()
            ))),
            _ => Ok(n.clone()),
        };
    }
    named.map(String::from).ok_or_else(|| {
        Error::Usage(format!(
            "the node's name cannot be read from the client certificate {} uses (missing or not system:node:NAME); \
                 give it with --node-name (node_name), as `kubectl get nodes` shows it",
            conf.display()
        ))
    })
}

pub(super) fn due(cert: Option<&Certificate>, req: &KubeletClientRequest, now: DateTime<Utc>) -> Option<String> {
    due_by(cert, req.force, req.renew_before, now)
}

/// Why a kubelet's certificate is due: missing, expired, forced, or within `renew_before`; `None` when not.
pub(super) fn due_by(
    cert: Option<&Certificate>,
    force: bool,
    renew_before: Span,
    now: DateTime<Utc>,
) -> Option<String> {
    let Some(cert) = cert else { return Some("missing".into()) };
    let left = (cert.not_after - now).num_seconds();
    if left <= 0 {
        Some(format!("expired {}", rfc3339(cert.not_after)))
    } else if force {
        Some("forced".into())
    } else if left < renew_before.seconds() {
        Some(format!("expires in {}, within renew_before {}", duration::human(left), renew_before))
    } else {
        None
    }
}

pub(super) fn residual(cert: Option<&Certificate>, now: DateTime<Utc>) -> String {
    cert.map(|c| format!("expires in {}", duration::human((c.not_after - now).num_seconds())))
        .unwrap_or_else(|| "missing".into())
}

/// A key and a certificate for the node, from `ca` on disk; its key never leaves this node.
fn issue(req: &KubeletClientRequest, node: &str, now: DateTime<Utc>) -> Result<(String, PrivateKey)> {
    let (ca, ca_private, ca_crt) = cluster_ca(&req.layout)?;
    let algorithm = req.key_algorithm.unwrap_or(KeyAlgorithm::EcdsaP256);
    let key = PrivateKey::generate(algorithm)?;
    let desired = node_certificate(node, algorithm, req.validity, &ca, now);
    let der = sign_local(&desired, key.pair(), &ca, &ca_private).map_err(|e| Error::invalid(&ca_crt, e))?;
    Ok((pem_encode("CERTIFICATE", &der), key))
}

/// The cluster CA as every renewal reads it: its certificate, and its key checked against it
/// (`Ca::load_key`); refused where the key is not (a worker, an external CA).
pub(super) fn cluster_ca(layout: &crate::pki::Layout) -> Result<(Certificate, PrivateKey, PathBuf)> {
    let pki = Pki::read(layout, &[], false, Keys::Skip)?;
    let ca_entry = pki.ca(CaId::Ca);
    let Some(ca) = ca_entry.cert.as_ref() else {
        return Err(Error::invalid(&ca_entry.cert_path, "does not exist: there is no cluster CA to issue from"));
    };
    if !ca_entry.has_key {
        return Err(Error::invalid(
            &ca_entry.key_path,
            "does not exist: the cluster CA's key is not on this node (a worker, or an external CA). Run this on a \
             control-plane node that holds it; on a worker, `csr kubelet-client` there, `sign kubelet-client` on a \
             control-plane node, `install kubelet-client` on the worker (the role k8s_pki.kubeadm.kubelet_client)",
        ));
    }
    Ok((ca.clone(), ca_entry.load_key()?, ca_entry.cert_path.clone()))
}

/// The subject the kubelet's own client certificate carries: `O=system:nodes, CN=system:node:NAME`.
pub(super) fn node_subject(node: &str) -> Name {
    let attr = |oid: &str, value: String| NameAttr { oid: oid.to_string(), tag: UTF8, value };
    Name(vec![attr(OID_O, "system:nodes".into()), attr(OID_CN, format!("system:node:{node}"))])
}

/// What the kubelet's rotation would get from the cluster: client auth for `node`, for `validity` (cut to the
/// CA's end), backdated as kubeadm backdates.
pub(super) fn node_certificate(
    node: &str,
    algorithm: KeyAlgorithm,
    validity: Span,
    ca: &Certificate,
    now: DateTime<Utc>,
) -> Desired {
    let not_after = (now + validity.as_chrono()).min(ca.not_after);
    Desired {
        subject: node_subject(node),
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        ext_key_usage: vec![EKU_CLIENT_AUTH.to_string()],
        key_algorithm: algorithm,
        basic_constraints: true,
        not_before: now - BACKDATE,
        not_after,
        clamped_to_ca: not_after == ca.not_after,
    }
}

pub(super) fn describe(c: &Certificate) -> String {
    format!(
        "subject: {}\nissuer: {}\nserial: {}\nnot after: {}\n",
        c.subject,
        c.issuer,
        c.serial_hex,
        rfc3339(c.not_after)
    )
}

/// What `check` reports for the kubelet, as the run leaves it.
fn report(req: &KubeletClientRequest, now: DateTime<Utc>, mut warnings: Vec<String>) -> Outcome {
    let (rows, more) = kubelet::certificates(&req.kubelet_dir, &req.layout.kubeconfig_dir, now);
    warnings.extend(more);
    Outcome { kubelet: rows, warnings, ..Outcome::default() }
}

/// A file that did not exist, written whole, 0600, then its directory synced.
fn write_new(path: &Path, contents: &[u8]) -> Result<()> {
    let mut f =
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| Error::write(path, e))?;
    f.write_all(contents).and_then(|_| f.sync_all()).map_err(|e| Error::write(path, e))?;
    sync_dir(parent(path))
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent(path).join(format!(".{name}.kubeadm-certs.{}", std::process::id()))
}

/// `link` now points at `target`: a new link renamed over the old one (the kubelet's own way).
fn swap_link(link: &Path, target: &Path) -> Result<()> {
    let temp = temp_beside(link);
    let _ = fs::remove_file(&temp);
    std::os::unix::fs::symlink(target, &temp).map_err(|e| Error::write(&temp, e))?;
    fs::rename(&temp, link).map_err(|e| {
        let _ = fs::remove_file(&temp);
        Error::write(link, e)
    })?;
    sync_dir(parent(link))
}

/// `path`'s contents replaced atomically, keeping its mode.
fn replace(path: &Path, contents: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o600);
    let temp = temp_beside(path);
    let _ = fs::remove_file(&temp);
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        f.write_all(contents)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(Error::write(path, e));
    }
    sync_dir(parent(path))
}

/// The kubelet's own credentials after the write: what proves it back where no admin.conf is (a worker); the
/// Node authorizer lets a kubelet read its own node and Lease.
struct Own<'a> {
    conf: &'a Path,
    conf_bytes: &'a [u8],
    cert_pem: &'a str,
    key_pem: &'a str,
}

impl Own<'_> {
    fn credentials(&self) -> Result<crate::kube::credentials::Credentials> {
        let embedded = kubeconfig::with_client_data(
            self.conf,
            self.conf_bytes,
            self.cert_pem.as_bytes(),
            self.key_pem.as_bytes(),
        )?;
        let kc = kubeconfig::Kubeconfig::parse(self.conf, &embedded)?;
        crate::kube::credentials::Credentials::from_kubeconfig(self.conf, &kc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(force: bool) -> KubeletClientRequest {
        KubeletClientRequest {
            layout: crate::pki::Layout::new("/nonexistent/pki", "/nonexistent"),
            kubelet_dir: PathBuf::from("/nonexistent/kubelet"),
            node_name: None,
            renew_before: Span::days(90),
            force,
            validity: Span::days(365),
            key_algorithm: None,
            check_mode: true,
            lock_timeout: Span(1),
            restart_kubelet: false,
            timeout: Span(1),
            step: KubeletClientStep::Issue,
        }
    }

    fn cert_ending(not_after: DateTime<Utc>) -> Certificate {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.not_before =
            time::OffsetDateTime::from_unix_timestamp((not_after - chrono::Duration::days(400)).timestamp()).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(not_after.timestamp()).unwrap();
        let der = p.self_signed(key.pair()).unwrap().der().to_vec();
        Certificate::from_der(Path::new("test"), &der).unwrap()
    }

    #[test]
    fn due_when_missing_expired_within_renew_before_or_forced_and_only_then() {
        // whole seconds, as certificates keep them
        let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        assert_eq!(due(None, &request(false), now).as_deref(), Some("missing"));
        let expired = cert_ending(now - chrono::Duration::hours(1));
        assert!(due(Some(&expired), &request(false), now).unwrap().starts_with("expired "));
        assert!(
            due(Some(&expired), &request(true), now).unwrap().starts_with("expired "),
            "expired says so, forced or not"
        );
        let soon = cert_ending(now + chrono::Duration::days(10));
        assert_eq!(due(Some(&soon), &request(false), now).as_deref(), Some("expires in 10d, within renew_before 90d"));
        let fine = cert_ending(now + chrono::Duration::days(200));
        assert_eq!(due(Some(&fine), &request(false), now), None);
        assert_eq!(due(Some(&fine), &request(true), now).as_deref(), Some("forced"));
    }
}
