//! `renew ca|etcd-ca|front-proxy-ca`: a CA certificate issued again with its own key, or installed as another
//! node issued it (`--ca-cert FILE`). The same key, subject, key identifiers and extensions; a new serial and
//! validity. Every certificate the CA issued stays valid under it (same issuer name, same key, their authority
//! key identifier its subject key identifier), so nothing has to go down. On this node the kubeconfigs that
//! embed the CA (`certificate-authority-data`) follow in the same transaction as the CA certificate.
//!
//! `renew` runs the steps here beside its own: [`decide`] (due by `renew_before` or `force`; a given
//! certificate when it differs), refusing what cannot be done (a CA without its key here, a given certificate
//! that is not this CA's); [`build`] (issue, then check: the same subject, key, identifiers and extensions,
//! self-signed, and every certificate on disk the old one issued verifies under the new one); [`follow`]
//! (the kubeconfigs); [`report`].

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::plan::BACKDATE;
use super::{diff, sign};
use crate::commit::{FileWrite, MODE_PUBLIC, MODE_SECRET};
use crate::duration;
use crate::error::{Error, Result};
use crate::inventory::{CERTIFICATES, CaId, CertSpec, Storage};
use crate::pki::cert::{Certificate, pem_encode};
use crate::pki::kubeconfig::{self, ClientCertificate};
use crate::pki::{self, Ca, Keys, Layout, Links, Pki, verify};
use crate::report::{Action, Outcome, rfc3339};
use crate::request::CaRenewal;

/// A CA that is due: why, the validity of its new certificate, and the certificate once built (or given).
pub struct Due {
    pub id: CaId,
    /// The CA certificate file.
    pub path: PathBuf,
    pub reason: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// The certificate on disk, replaced.
    pub old: Certificate,
    /// The new one: given (`--ca-cert`), or issued by [`build`]; `None` in check mode until then.
    pub new: Option<Certificate>,
    /// Kubeconfig files whose `certificate-authority-data` follows (or would), filled in by [`follow`].
    pub kubeconfigs: Vec<PathBuf>,
}

/// What [`decide`] found for the CAs a run names.
#[derive(Default)]
pub struct Plan {
    /// Each CA named with why it is kept (`None`: it is due).
    pub decisions: Vec<(CaId, Option<String>)>,
    pub due: Vec<Due>,
}

impl Plan {
    /// The NotAfter a certificate signed by `id` in this run may reach: the renewed CA's, when it is due.
    pub fn not_after_of(&self, id: CaId) -> Option<DateTime<Utc>> {
        self.due.iter().find(|d| d.id == id).map(|d| d.not_after)
    }
}

fn cannot_renew(id: CaId, path: &Path, why: impl Into<String>) -> Error {
    Error::cannot_renew(id.name(), path, why.into())
}

/// What a CA named comes to: kept (why), or due (why, the new certificate's validity, and the certificate itself
/// when it was given).
enum Verdict {
    Keep(String),
    Due { reason: String, not_before: DateTime<Utc>, not_after: DateTime<Utc>, given: Option<Box<Certificate>> },
}

/// Decides each CA `req` names: due when its residual time is below `renew_before` or when forced (a given
/// certificate: when it differs from the one on disk). Refuses, naming the file and what to do instead, a CA
/// that is missing, one whose key is not here (kubeadm's external CA: only its owner can issue it again), a
/// given certificate that is not this CA's, and a new certificate that would expire before the old one unless
/// forced.
pub fn decide(req: &CaRenewal, force: bool, pki: &Pki, now: DateTime<Utc>) -> Result<Plan> {
    let mut plan = Plan::default();
    for &id in &req.cas {
        let ca = pki.ca(id);
        let old = ca
            .cert
            .as_ref()
            .ok_or_else(|| Error::MissingRequested { name: id.name().into(), path: ca.cert_path.clone() })?;
        let verdict = match &req.given {
            Some(file) => given(id, file, old, &ca.cert_path, now)?,
            None => due_here(req, force, ca, old, now)?,
        };
        let (reason, not_before, not_after, given) = match verdict {
            Verdict::Keep(why) => {
                plan.decisions.push((id, Some(why)));
                continue;
            }
            Verdict::Due { reason, not_before, not_after, given } => (reason, not_before, not_after, given),
        };
        if not_after < old.not_after && !force {
            return Err(cannot_renew(
                id,
                &ca.cert_path,
                format!(
                    "the new certificate would expire {}, before the one it replaces ({}): certificates it issued \
                     would stop verifying earlier. Give a longer validity, or --force (module force) to shorten it",
                    rfc3339(not_after),
                    rfc3339(old.not_after)
                ),
            ));
        }
        plan.decisions.push((id, None));
        plan.due.push(Due {
            id,
            path: ca.cert_path.clone(),
            reason,
            not_before,
            not_after,
            old: old.clone(),
            new: given.map(|g| *g),
            kubeconfigs: Vec::new(),
        });
    }
    Ok(plan)
}

/// A CA certificate given (`--ca-cert FILE`): due when it is not the one on disk.
fn given(id: CaId, file: &Path, old: &Certificate, on_disk: &Path, now: DateTime<Utc>) -> Result<Verdict> {
    let given = read_given(id, file, old, now)?;
    if given.der == old.der {
        return Ok(Verdict::Keep(format!(
            "{} already is {} (serial {})",
            on_disk.display(),
            file.display(),
            old.serial_hex
        )));
    }
    Ok(Verdict::Due {
        reason: format!("given {} (serial {})", file.display(), given.serial_hex),
        not_before: given.not_before,
        not_after: given.not_after,
        given: Some(Box::new(given)),
    })
}

/// A CA to issue again here: due below `renew_before` or forced, refused when its key is not on this node.
fn due_here(req: &CaRenewal, force: bool, ca: &Ca, old: &Certificate, now: DateTime<Utc>) -> Result<Verdict> {
    let id = ca.spec.id;
    if !ca.has_key {
        return Err(cannot_renew(
            id,
            &ca.key_path,
            format!(
                "its key is not on this node, only its certificate {} (kubeadm's external-CA mode): a CA certificate \
                 is issued again with its own key, by whoever holds it. Have the CA's owner renew it with the same \
                 key, then install that certificate here with `kubeadm-certs renew {} --ca-cert FILE`",
                ca.cert_path.display(),
                id.name()
            ),
        ));
    }
    let residual = (old.not_after - now).num_seconds();
    let reason = if residual < req.renew_before.seconds() {
        let when =
            if residual < 0 { "expired".to_string() } else { format!("expires in {}", duration::human(residual)) };
        format!("{when}, within renew_before {}", req.renew_before)
    } else if force {
        "forced".to_string()
    } else {
        return Ok(Verdict::Keep(format!(
            "expires in {}, not within renew_before {}",
            duration::human(residual),
            req.renew_before
        )));
    };
    // whole seconds, as a certificate holds them
    let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    Ok(Verdict::Due { reason, not_before: now - BACKDATE, not_after: now + req.validity.as_chrono(), given: None })
}

/// A CA certificate given to install (`--ca-cert FILE`): this CA's, issued again with its key (by
/// `renew ca` on another node of the cluster, or by the CA's owner), valid now.
fn read_given(id: CaId, file: &Path, old: &Certificate, now: DateTime<Utc>) -> Result<Certificate> {
    let given = Certificate::read(file)?;
    let refuse = |why: String| Error::invalid(file, format!("not a certificate of {} to install: {why}", id.name()));
    if !given.chain_rest.is_empty() {
        return Err(refuse(format!(
            "it holds {} certificates; give the CA certificate alone",
            given.chain_rest.len() + 1
        )));
    }
    same_ca(old, &given).map_err(refuse)?;
    if given.not_before > now {
        return Err(refuse(format!(
            "it is not valid before {} (this node's clock says {}): every certificate it issued would stop \
             verifying here until then; set this node's clock right",
            rfc3339(given.not_before),
            rfc3339(now)
        )));
    }
    if given.not_after <= now {
        return Err(refuse(format!("it expired {}", rfc3339(given.not_after))));
    }
    Ok(given)
}

/// Whether `new` is the CA `old` issued again with its own key: the same subject (as encoded), public key,
/// subject key identifier, basic constraints and key usage, and self-signed with that key. The reason when not.
fn same_ca(old: &Certificate, new: &Certificate) -> std::result::Result<(), String> {
    if new.public_key_raw != old.public_key_raw {
        return Err("its public key is not the CA's (a CA with a new key is a rotation, not a renewal)".into());
    }
    if new.subject_raw != old.subject_raw {
        return Err(format!("its subject \"{}\" is not the CA's \"{}\" as encoded", new.subject, old.subject));
    }
    if new.subject_key_id != old.subject_key_id {
        return Err("its subject key identifier is not the CA's".into());
    }
    if !new.is_ca() || new.basic_constraints != old.basic_constraints {
        return Err("its basic constraints are not the CA's (CA:TRUE)".into());
    }
    if new.key_usage != old.key_usage {
        return Err("its key usage is not the CA's".into());
    }
    verify::issued_by(new, new).map_err(|e| format!("it is not self-signed with the CA's key: {e}"))
}

/// Issues every due CA certificate that was not given, with its own key (checked against the certificate), then
/// checks each new one ([`same_ca`], a new serial, the validity asked for) and that every certificate on disk
/// the old one issued verifies under it. Returns the CA certificate files to write.
pub fn build(plan: &mut Plan, pki: &Pki) -> Result<Vec<FileWrite>> {
    let mut writes = Vec::new();
    for d in &mut plan.due {
        let ca = pki.ca(d.id);
        let new = match d.new.take() {
            Some(given) => given,
            None => {
                let key = ca.load_key()?;
                let der = sign::reissue_ca(&d.old, &key, d.not_before, d.not_after)
                    .map_err(|why| cannot_renew(d.id, &ca.cert_path, why))?;
                let new = Certificate::from_der(&ca.cert_path, &der)?;
                if (new.not_before, new.not_after) != (d.not_before, d.not_after) {
                    return Err(cannot_renew(
                        d.id,
                        &ca.cert_path,
                        "the new certificate's validity is not the one asked for",
                    ));
                }
                new
            }
        };
        same_ca(&d.old, &new)
            .map_err(|why| cannot_renew(d.id, &ca.cert_path, format!("the new certificate is wrong: {why}")))?;
        if new.serial_hex == d.old.serial_hex {
            return Err(cannot_renew(d.id, &ca.cert_path, "the new certificate has the old one's serial"));
        }
        still_verify(&pki.layout, d.id, &d.old, &new)?;
        let mut contents = pem_encode("CERTIFICATE", &new.der);
        for extra in &d.old.chain_rest {
            contents.push_str(&pem_encode("CERTIFICATE", extra));
        }
        writes.push(FileWrite { path: ca.cert_path.clone(), contents: contents.into_bytes(), mode: MODE_PUBLIC });
        d.new = Some(Certificate { chain_rest: d.old.chain_rest.clone(), ..new });
    }
    Ok(writes)
}

/// Every certificate on disk that `old` issued (kubeadm's certificates of the CA, the client certificates of the
/// kubeconfigs embedding it, the kubelet's where `kubelet.conf` names it) verifies under `new`; the run fails,
/// naming the first that does not, before anything is written. Certificates the old CA did not issue are not
/// this run's concern (`check` reports them).
fn still_verify(layout: &Layout, id: CaId, old: &Certificate, new: &Certificate) -> Result<()> {
    let specs: Vec<&'static CertSpec> = CERTIFICATES.iter().filter(|s| s.ca == id).collect();
    let on_disk = Pki::read(layout, &specs, false, Keys::Skip)?;
    let mut leaves: Vec<(PathBuf, Certificate)> =
        on_disk.entries.into_iter().filter_map(|e| Some((e.location.path().to_path_buf(), e.loaded?.cert))).collect();
    for file in
        id.spec().kubeconfigs.iter().filter(|f| !specs.iter().any(|s| s.storage == Storage::Kubeconfig { file: f }))
    {
        let path = layout.kubeconfig_dir.join(file);
        if !pki::exists(&path)? {
            continue;
        }
        let cert = match kubeconfig::client_certificate(&path)? {
            ClientCertificate::Embedded(pem) => Certificate::from_file_bytes(&path, &pem),
            // the kubelet's rotated file, outside the PKI: verified when it can be read
            ClientCertificate::File(f) => match Certificate::read(&f) {
                Ok(c) => Ok(c),
                Err(_) => continue,
            },
        };
        leaves.push((path, cert?));
    }
    for (path, leaf) in leaves {
        if verify::chains_to(&leaf, old).is_ok() {
            verify::chains_to(&leaf, new).map_err(|why| {
                cannot_renew(
                    id,
                    &path,
                    format!("a certificate the old CA certificate issued would not verify under the new one: {why}"),
                )
            })?;
        }
    }
    Ok(())
}

/// Puts each renewed CA certificate in place of the old one in `pki`, so that what this run signs after it is
/// checked against (and kubeconfigs embed) the new one. Same subject and key: the signatures do not change.
pub fn adopt(plan: &Plan, pki: &mut Pki) {
    for d in &plan.due {
        if let (Some(new), Some(ca)) = (&d.new, pki.cas.iter_mut().find(|c| c.spec.id == d.id)) {
            ca.cert = Some(new.clone());
        }
    }
}

/// The kubeconfigs of each due CA (`CaSpec::kubeconfigs`, in the kubeconfig dir) whose clusters embed the old CA
/// certificate get the new one in its place, added to `writes` (or rewriting the write already there, when this
/// run renews its client certificate too). In check mode (no new certificate yet) only finds them. A cluster
/// that names a CA file instead, or embeds another CA, is left as it is and named in `warnings`; a kubeconfig
/// that is a symbolic link is never written through.
pub fn follow(plan: &mut Plan, layout: &Layout, writes: &mut Vec<FileWrite>, warnings: &mut Vec<String>) -> Result<()> {
    for d in &mut plan.due {
        let new_der = d.new.as_ref().map_or(&d.old.der, |n| &n.der).clone();
        let ca_path = layout.ca_paths(d.id.spec()).0;
        for file in d.id.spec().kubeconfigs {
            let path = layout.kubeconfig_dir.join(file);
            let at = writes.iter().position(|w| w.path == path);
            let bytes = match at {
                Some(i) => writes[i].contents.clone(),
                None => match std::fs::symlink_metadata(&path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::read(&path, e)),
                    Ok(m) if m.file_type().is_symlink() => {
                        warnings.push(format!(
                            "{}: a symbolic link, not rewritten (a write never follows a link): its \
                             certificate-authority-data still holds the old {} certificate; put the new one there",
                            path.display(),
                            d.id.name()
                        ));
                        continue;
                    }
                    Ok(_) => pki::read_file(&path, Links::Refuse)?,
                },
            };
            let found = kubeconfig::with_ca_replaced(&path, &bytes, &d.old.der, &new_der)?;
            for (cluster, named) in &found.files {
                let same = Path::new(named) == ca_path
                    || std::fs::canonicalize(named).ok() == std::fs::canonicalize(&ca_path).ok();
                if !same {
                    warnings.push(format!(
                        "{}: cluster {cluster:?} names its CA by file ({named}), left as it is: put the new {} \
                         certificate ({}) there",
                        path.display(),
                        d.id.name(),
                        ca_path.display()
                    ));
                }
            }
            for cluster in &found.others {
                warnings.push(format!(
                    "{}: cluster {cluster:?} embeds another CA certificate than {}'s; left as it is",
                    path.display(),
                    d.id.name()
                ));
            }
            let Some(contents) = found.contents else { continue };
            d.kubeconfigs.push(path.clone());
            if d.new.is_none() {
                continue;
            }
            match at {
                Some(i) => writes[i].contents = contents,
                None => writes.push(FileWrite { path, contents, mode: MODE_SECRET }),
            }
        }
    }
    Ok(())
}

/// Names what changed (or would) in `out`: `renewed`, a diff for each CA certificate (serial, validity,
/// subject; never key material) and for each kubeconfig that follows it. Returns the CAs and the inventory's
/// kubeconfig entries whose files were rewritten (or would be), for the restarts (`inuse::settle_with_cas`).
pub fn report(plan: &Plan, out: &mut Outcome) -> (Vec<CaId>, Vec<&'static CertSpec>) {
    let mut cas = Vec::new();
    let mut rewritten = Vec::new();
    for d in &plan.due {
        out.renewed.push(d.id.name().to_string());
        let before = diff::describe(&d.old);
        let after = match &d.new {
            Some(new) => diff::describe(new),
            None => diff::describe_ca_desired(&d.old, d.not_before, d.not_after),
        };
        out.diff.push(diff::entry(&d.path.display().to_string(), before.clone(), after.clone()));
        for path in &d.kubeconfigs {
            let data = |block: &str| format!("certificate-authority-data: {}\n{block}", d.id.name());
            out.diff.push(diff::entry(&path.display().to_string(), data(&before), data(&after)));
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            rewritten.extend(
                CERTIFICATES.iter().filter(|s| matches!(s.storage, Storage::Kubeconfig { file } if file == name)),
            );
        }
        cas.push(d.id);
    }
    (cas, rewritten)
}

/// The CA rows of `out` (after `finish`) say what became of each CA named, why, and which kubeconfigs followed;
/// `msg` says until when the components holding the old certificate keep working; `warnings` name the kubelet
/// when its `kubelet.conf` followed (it reads it only at start and is no control-plane component to restart).
pub fn annotate(plan: &Plan, check_mode: bool, out: &mut Outcome) {
    for (id, kept) in &plan.decisions {
        let Some(row) = out.certificate_authorities.iter_mut().find(|r| r.name == id.name()) else { continue };
        let due = plan.due.iter().find(|d| d.id == *id);
        row.action = Some(match (due, check_mode) {
            (None, _) => Action::None,
            (Some(_), true) => Action::WouldRenew,
            (Some(_), false) => Action::Renewed,
        });
        row.reason = kept.clone().or_else(|| due.map(|d| d.reason.clone()));
        row.kubeconfigs =
            due.map(|d| d.kubeconfigs.iter().map(|p| p.display().to_string()).collect()).unwrap_or_default();
        row.previous_not_after = due.map(|d| rfc3339(d.old.not_after));
    }
    for d in &plan.due {
        let until = rfc3339(d.old.not_after);
        if d.kubeconfigs.iter().any(|p| p.file_name().is_some_and(|n| n == "kubelet.conf")) {
            out.warnings.push(format!(
                "the kubelet reads kubelet.conf's certificate-authority-data only at start: restart it (systemctl \
                 restart kubelet) before {until}, when the old {} certificate it holds expires (until then it still \
                 verifies the apiserver: same key)",
                d.id.name()
            ));
        }
    }
}

/// What `msg` adds after a CA renewal, when something is to restart (`inuse::settle`): who holds the old
/// certificate and until when it keeps working.
pub fn restart_note(plan: &Plan) -> Option<String> {
    if plan.due.is_empty() {
        return None;
    }
    let until: Vec<String> = plan.due.iter().map(|d| format!("{} {}", d.id.name(), rfc3339(d.old.not_after))).collect();
    Some(format!(
        "a component that read a CA certificate only at start keeps the old one, which verifies the same \
         certificates (same key) until it expires ({}): restart them before then",
        until.join(", ")
    ))
}
