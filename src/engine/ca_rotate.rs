//! `rotate ca|etcd-ca|front-proxy-ca --phase trust|reissue|drop`: one node's step of a rotation to a new CA (a new
//! key), the collection's `rotate_ca` playbook running it node by node, phase by phase (docs/ca-rotation.md). Where a
//! node stands is read off its files each time (`pki::rotation`), so a step stopped anywhere is finished by running
//! it again, and a step already done changes nothing:
//!
//! - a, [`trust`]: the CA file becomes [OLD, NEW] and NEW's key `<base>.next.key` (made here with `--generate`, or
//!   given: the same NEW on every node); kubeconfigs' CA data follow. OLD still signs: every component comes to
//!   trust NEW before anything presents a certificate NEW issued.
//! - b, [`reissue`]: [NEW, OLD], `<base>.key` NEW's, `<base>.previous.key` OLD's (one transaction), then every
//!   certificate of the CA here still issued by OLD is issued again under NEW (`renew --resign-old-issuer`, a second
//!   transaction), for `ca` the kubelet's client certificate too.
//! - c, [`drop_old`]: OLD's certificate and key copied into the backup directory the caller names, then [NEW]
//!   (kubeconfigs following), then `<base>.previous.key` removed. Refused while anything here is issued by OLD.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::key_dir::{self, KeyDir};
use super::plan::BACKDATE;
use super::signer::ApiSigner;
use super::{diff, finish, sign};
use crate::commit::{FileWrite, MODE_PUBLIC, MODE_SECRET};
use crate::error::{Error, Result};
use crate::inventory::{CERTIFICATES, CaId, CertSpec};
use crate::pki::cert::{Certificate, pem_encode, sha256_hex};
use crate::pki::key::{KeyAlgorithm, PrivateKey};
use crate::pki::rotation::{self, KeyFile, Leaf, Rotation, State};
use crate::pki::{self, Keys, Layout, Links, Pki, kubeconfig, verify};
use crate::report::{CaRotationReport, Outcome, RotationCertReport, RotationLeafReport, RotationReport, Settle};
use crate::request::{
    CaRenewal, CopySearch, KubeletClientRequest, KubeletClientStep, NewCa, RenewRequest, RotatePhase, RotateRequest,
    Selection, SignerChoice,
};

/// The certificates `id` issues, as the inventory lists them.
fn specs_of(id: CaId) -> Vec<&'static CertSpec> {
    CERTIFICATES.iter().filter(|s| s.ca == id).collect()
}

/// `id`'s rotation state on this node: its CA file, key files and what it issued here (kubeadm's certificates, the
/// kubeconfigs' client certificates and, for `ca`, the kubelet's client certificate).
pub fn state(layout: &Layout, pki: &Pki, id: CaId, warnings: &mut Vec<String>) -> Option<Rotation> {
    let mut leaves: Vec<Leaf> = pki
        .entries
        .iter()
        .filter(|e| e.spec.ca == id)
        .filter_map(|e| {
            let loaded = e.loaded.as_ref()?;
            Some(Leaf {
                name: e.spec.name.to_string(),
                path: e.location.path().to_path_buf(),
                cert: loaded.cert.clone(),
            })
        })
        .collect();
    // kubelet.conf's client certificate (embedded, or the file it names in the kubelet's directory)
    if id == CaId::Ca {
        let found = super::kubelet::client(&layout.kubeconfig_dir, warnings);
        if let Some(cert) = found.cert {
            leaves.push(Leaf { name: super::kubelet::CLIENT.to_string(), path: found.path, cert });
        }
    }
    rotation::read(layout, pki.ca(id), leaves)
}

/// What `check` and the module report of a rotation state.
pub fn describe(r: &Rotation) -> CaRotationReport {
    let leaf = |l: &Leaf| RotationLeafReport {
        name: l.name.clone(),
        path: l.path.display().to_string(),
        issuer: l.cert.issuer.to_string(),
    };
    CaRotationReport {
        name: r.spec.name,
        path: r.path.display().to_string(),
        state: r.state.as_str(),
        reason: r.reason.clone(),
        certificates: r
            .bundle
            .iter()
            .enumerate()
            .map(|(i, c)| RotationCertReport {
                sha256: sha256_hex(&c.der),
                spki_sha256: sha256_hex(&c.public_key_raw),
                subject: c.subject.to_string(),
                serial: c.serial_hex.clone(),
                not_before: crate::report::rfc3339(c.not_before),
                not_after: crate::report::rfc3339(c.not_after),
                signing: r.key == KeyFile::Of(i),
            })
            .collect(),
        next_key: r.next_key != KeyFile::Absent,
        previous_key: r.previous_key != KeyFile::Absent,
        issued_by_other: r.issued_by_other().map(leaf).collect(),
        untrusted: r.untrusted().map(leaf).collect(),
    }
}

/// One node's step (the module's comment above), under the PKI lock (`engine::run`).
pub fn rotate(req: &RotateRequest, now: DateTime<Utc>, api_signer: ApiSigner) -> Result<Outcome> {
    let mut out = Outcome::default();
    let before = read(req, &mut out.warnings)?;
    let state_before = before.state;
    let mut known: Vec<Vec<u8>> = before.bundle.iter().map(|c| c.der.clone()).collect();
    let (phase, written) = match &req.phase {
        RotatePhase::Trust(new) => ("trust", trust(req, &before, new, now, &mut out)?),
        RotatePhase::Reissue => ("reissue", reissue(req, &before, now, api_signer, &mut out)?),
        RotatePhase::Drop { old_ca_backup } => {
            ("drop", drop_old(req, &before, old_ca_backup.as_deref(), now, &mut out)?)
        }
    };
    let after = if req.check_mode { before } else { read(req, &mut out.warnings)? };
    out.changed |= !written.is_empty();
    if let Some(credentials) = &req.cluster_info {
        known.extend(after.bundle.iter().map(|c| c.der.clone()));
        if let RotatePhase::Drop { old_ca_backup: Some(dir) } = &req.phase
            && let Ok(old) = Certificate::read(&dir.join(format!("{}.crt", after.spec.base)))
        {
            known.push(old.der);
        }
        let bundle: Vec<Vec<u8>> = after.bundle.iter().map(|c| c.der.clone()).collect();
        let report = super::cluster_info::follow_rotation(credentials, &known, &bundle, req.check_mode);
        out.changed |= report.changed();
        if report.trouble() {
            out.warnings.push(report.reason.clone());
        }
        out.msg.push_str(&format!("; cluster-info: {}", report.action.replace('_', " ")));
        out.cluster_info = Some(report);
    }
    let report = describe(&after);
    out.rotation = Some(RotationReport {
        name: req.ca.name(),
        phase,
        state_before: state_before.as_str(),
        state_after: report.state,
        certificates: report.certificates,
        written: written.iter().map(|p| p.display().to_string()).collect(),
    });
    // what reads the CA (and the certificates issued again) restarts: named once the lock is released
    let mut settle = out.settle.take().unwrap_or_default();
    if !written.is_empty() || (req.check_mode && !out.diff.is_empty()) {
        settle.cas.push(req.ca);
    }
    settle.check_mode = req.check_mode;
    settle.name_restarts = true;
    out.settle = Some(settle);
    Ok(out)
}

fn read(req: &RotateRequest, warnings: &mut Vec<String>) -> Result<Rotation> {
    let pki = Pki::read(&req.layout, &specs_of(req.ca), false, Keys::Skip)?;
    let ca = pki.ca(req.ca);
    let r = state(&req.layout, &pki, req.ca, warnings)
        .ok_or_else(|| Error::MissingRequested { name: req.ca.name().into(), path: ca.cert_path.clone() })?;
    if r.state == State::Inconsistent {
        return Err(refused(req, &r.path, r.reason.clone().unwrap_or_default()));
    }
    Ok(r)
}

fn refused(req: &RotateRequest, path: &Path, why: String) -> Error {
    Error::cannot_renew(req.ca.name(), path, format!("not rotated: {why}"))
}

/// Phase a. Single on OLD: [OLD, NEW] with NEW made here or given. Trusting: the kubeconfigs brought along (a
/// kubeconfig replaced since), nothing else. Past it: nothing.
fn trust(
    req: &RotateRequest,
    r: &Rotation,
    new: &NewCa,
    now: DateTime<Utc>,
    out: &mut Outcome,
) -> Result<Vec<PathBuf>> {
    let ca_key_here = r.key != KeyFile::Absent;
    match r.state {
        State::Single => {}
        State::Trusting => {
            if let NewCa::Given { cert, .. } = new {
                let given = Certificate::read(cert)?;
                if given.der != r.bundle[1].der {
                    return Err(refused(
                        req,
                        &r.path,
                        format!(
                            "it trusts another new CA already (SHA-256 {}) than {} (SHA-256 {}): one rotation has one \
                             new CA on every node",
                            sha256_hex(&r.bundle[1].der),
                            cert.display(),
                            sha256_hex(&given.der)
                        ),
                    ));
                }
            }
            out.msg = format!("{} trusts both CA certificates already", r.path.display());
            return follow(req, r, &[r.bundle[0].der.clone(), r.bundle[1].der.clone()], Vec::new(), now, out);
        }
        State::Reissuing | State::Reissued => {
            out.msg = format!("{} is past phase trust here ({})", r.path.display(), r.state.as_str());
            return Ok(Vec::new());
        }
        State::Inconsistent => unreachable!("refused by read"),
    }
    let old = &r.bundle[0];
    let (new_cert, new_key) = match new {
        NewCa::Generate => {
            if !ca_key_here {
                return Err(refused(
                    req,
                    &r.path,
                    "its key is not on this node: generate the new CA on a control-plane node that holds it".into(),
                ));
            }
            let alg = KeyAlgorithm::of(old.key_kind).unwrap_or(KeyAlgorithm::Rsa2048);
            let key = PrivateKey::generate(alg)?;
            let now_s = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
            let der = sign::self_signed_ca(&old.subject, &key, now_s - BACKDATE, now_s + req.ca_validity.as_chrono())
                .map_err(|why| refused(req, &r.path, format!("the new CA certificate: {why}")))?;
            (Certificate::from_der(&r.path, &der)?, Some(key.pem().to_string()))
        }
        NewCa::Given { cert, key } => {
            let new = read_new(req, cert, old, now)?;
            if new.der == old.der {
                out.msg = format!("{} holds the new CA alone already (phase drop done here)", r.path.display());
                return Ok(Vec::new());
            }
            let key = match (key, ca_key_here) {
                (Some(k), true) => {
                    let key = PrivateKey::read(k)?;
                    if !key.matches(&new.public_key_raw) {
                        return Err(Error::KeyMismatch { path: k.clone(), cert: cert.clone() });
                    }
                    Some(key.pem().to_string())
                }
                (None, true) => {
                    return Err(refused(
                        req,
                        &r.path,
                        format!(
                            "this node holds the CA's key, so it needs the new CA's key too (--next-ca-key, module \
                         next_ca_key) to sign with it in phase reissue; given only {}",
                            cert.display()
                        ),
                    ));
                }
                (Some(k), false) => {
                    return Err(refused(
                        req,
                        &r.path,
                        format!(
                            "this node holds no CA key (a worker): give the new CA certificate alone, not {}",
                            k.display()
                        ),
                    ));
                }
                (None, false) => None,
            };
            (new, key)
        }
    };
    let bundle = [old.der.clone(), new_cert.der.clone()];
    let mut writes = vec![FileWrite { path: r.path.clone(), contents: pem_bundle(&bundle), mode: MODE_PUBLIC }];
    if let Some(key) = new_key {
        writes.push(FileWrite {
            path: rotation::next_key_path(&req.layout, r.spec),
            contents: key.into_bytes(),
            mode: MODE_SECRET,
        });
    }
    out.diff.push(diff::entry(&r.path.display().to_string(), bundle_text(&[old]), bundle_text(&[old, &new_cert])));
    out.msg = format!(
        "{} trusts the new CA beside the old one (new SHA-256 {}); the old one still signs",
        r.path.display(),
        sha256_hex(&new_cert.der)
    );
    follow(req, r, &bundle, writes, now, out)
}

/// A new CA certificate given for phase a: one self-signed CA certificate with the old one's subject and
/// another key, valid now.
fn read_new(req: &RotateRequest, file: &Path, old: &Certificate, now: DateTime<Utc>) -> Result<Certificate> {
    let new = Certificate::read(file)?;
    let refuse = |why: String| Error::invalid(file, format!("not a new {} CA to trust: {why}", req.ca.name()));
    if !new.chain_rest.is_empty() {
        return Err(refuse("it holds more than one certificate; give the new CA certificate alone".into()));
    }
    if new.der == old.der {
        return Ok(new);
    }
    if !new.is_ca() {
        return Err(refuse("it is not a CA certificate".into()));
    }
    verify::issued_by(&new, &new).map_err(|e| refuse(format!("it is not self-signed: {e}")))?;
    if new.subject_raw != old.subject_raw {
        return Err(refuse(format!("its subject is \"{}\", the CA's is \"{}\"", new.subject, old.subject)));
    }
    if new.public_key_raw == old.public_key_raw {
        return Err(refuse("it has the old CA's key: that is a renewal (renew ca --ca-cert), not a rotation".into()));
    }
    if new.not_before > now + BACKDATE || new.not_after <= now {
        return Err(refuse(format!(
            "it is not valid now ({} to {})",
            crate::report::rfc3339(new.not_before),
            crate::report::rfc3339(new.not_after)
        )));
    }
    Ok(new)
}

/// Phase b. Trusting with the CA key here: swap (one transaction), then issue again what OLD issued (a second).
/// Reissuing: the second only. Reissued, or a node without the CA key: nothing here.
fn reissue(
    req: &RotateRequest,
    r: &Rotation,
    now: DateTime<Utc>,
    api_signer: ApiSigner,
    out: &mut Outcome,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    match (r.state, r.key) {
        (State::Single, _) => {
            return Err(refused(
                req,
                &r.path,
                "it holds one CA certificate: phase trust comes first (or the rotation is over)".into(),
            ));
        }
        (State::Trusting, KeyFile::Absent) => {
            out.msg = format!(
                "{} trusts both CA certificates; this node holds no CA key: its kubelet's client certificate is issued \
                 again through a control-plane node (csr, sign, install)",
                r.path.display()
            );
            return Ok(written);
        }
        (State::Trusting, _) => {
            let old_key = pki::read_file(&ca_key_path(req, r), Links::Refuse)?;
            let next_path = rotation::next_key_path(&req.layout, r.spec);
            let new_key = pki::read_file(&next_path, Links::Refuse)?;
            let bundle = [r.bundle[1].der.clone(), r.bundle[0].der.clone()];
            let writes = vec![
                FileWrite { path: r.path.clone(), contents: pem_bundle(&bundle), mode: MODE_PUBLIC },
                FileWrite { path: ca_key_path(req, r), contents: new_key, mode: MODE_SECRET },
                FileWrite {
                    path: rotation::previous_key_path(&req.layout, r.spec),
                    contents: old_key,
                    mode: MODE_SECRET,
                },
            ];
            out.diff.push(diff::entry(
                &r.path.display().to_string(),
                bundle_text(&[&r.bundle[0], &r.bundle[1]]),
                bundle_text(&[&r.bundle[1], &r.bundle[0]]),
            ));
            written = follow(req, r, &bundle, writes, now, out)?;
            if req.check_mode {
                let pending: Vec<&str> = r.leaves.iter().map(|(l, _)| l.name.as_str()).collect();
                out.msg = format!(
                    "would sign with the new CA ({}) and issue again under it: {}",
                    sha256_hex(&r.bundle[1].der),
                    pending.join(", ")
                );
                return Ok(written);
            }
        }
        (State::Reissuing | State::Reissued, _) => {}
        (State::Inconsistent, _) => unreachable!("refused by read"),
    }
    remove_leftover(&rotation::next_key_path(&req.layout, r.spec), &ca_key_path(req, r))?;
    let renewed = resign(req, now, api_signer, out)?;
    written.extend(renewed);
    let kubelet = kubelet_client(req, now, out)?;
    written.extend(kubelet);
    out.msg = format!(
        "{} signs with the new CA; issued again under it: {}",
        r.path.display(),
        if out.renewed.is_empty() { "nothing (all were already)".to_string() } else { out.renewed.join(", ") }
    );
    Ok(written)
}

fn ca_key_path(req: &RotateRequest, r: &Rotation) -> PathBuf {
    req.layout.ca_paths(r.spec).1
}

/// `renew --resign-old-issuer` of every certificate of the CA on this node: what the old CA issued, issued again.
fn resign(req: &RotateRequest, now: DateTime<Utc>, api_signer: ApiSigner, out: &mut Outcome) -> Result<Vec<PathBuf>> {
    let renew = RenewRequest {
        layout: req.layout.clone(),
        selection: Selection { specs: specs_of(req.ca), explicit: false },
        renew_before: crate::duration::Span(0),
        force: false,
        validity: req.validity,
        extra_sans: Vec::new(),
        key_algorithm: None,
        backup: false,
        check_mode: req.check_mode,
        at: None,
        signer: SignerChoice::Local,
        lock_timeout: req.lock_timeout,
        ca: CaRenewal::default(),
        copies: CopySearch { paths: Vec::new(), defaults: false },
        refresh_copies: false,
        resign_old_issuer: true,
    };
    let done = super::renew::renew(&renew, now, api_signer)?;
    let written = done.certificates.iter().filter(|c| c.action.changes()).map(|c| PathBuf::from(&c.path)).collect();
    out.renewed.extend(done.renewed);
    out.diff.extend(done.diff);
    out.certificates = done.certificates;
    out.certificate_authorities = done.certificate_authorities;
    out.warnings.extend(done.warnings);
    if let Some(done) = done.settle {
        out.settle.get_or_insert_with(Settle::default).changed.extend(done.changed);
    }
    Ok(written)
}

/// For `ca` on a control-plane node: the kubelet's client certificate, when the old CA issued it, issued again
/// under the new one here (`renew kubelet-client`, which restarts the kubelet and waits for it where one runs: a
/// node with the kubelet's directory).
fn kubelet_client(req: &RotateRequest, now: DateTime<Utc>, out: &mut Outcome) -> Result<Vec<PathBuf>> {
    if req.ca != CaId::Ca || req.check_mode {
        return Ok(Vec::new());
    }
    let current = read(req, &mut out.warnings)?;
    let Some((leaf, _)) = current.leaves.iter().find(|(l, by)| l.name == super::kubelet::CLIENT && *by != Some(0))
    else {
        return Ok(Vec::new());
    };
    let path = leaf.path.clone();
    let done = super::kubelet_client::renew(
        &KubeletClientRequest {
            layout: req.layout.clone(),
            kubelet_dir: req.kubelet_dir.clone(),
            node_name: None,
            renew_before: crate::duration::Span(0),
            force: true,
            validity: req.validity,
            key_algorithm: None,
            check_mode: false,
            lock_timeout: req.lock_timeout,
            restart_kubelet: req.kubelet_dir.is_dir(),
            timeout: crate::duration::Span(180),
            step: KubeletClientStep::Issue,
        },
        now,
    )?;
    out.renewed.push(super::kubelet::CLIENT.to_string());
    out.diff.extend(done.diff);
    out.warnings.extend(done.warnings);
    Ok(vec![path])
}

/// Phase c. Reissued (or a worker trusting both, its kubelet's client certificate by NEW): OLD's pair copied to
/// `backup` (where OLD's key is here), then [NEW], then `<base>.previous.key` removed. Single: only a leftover
/// `<base>.previous.key` removed (once the backup holds it).
fn drop_old(
    req: &RotateRequest,
    r: &Rotation,
    backup: Option<&Path>,
    now: DateTime<Utc>,
    out: &mut Outcome,
) -> Result<Vec<PathBuf>> {
    let previous = rotation::previous_key_path(&req.layout, r.spec);
    let (keep, old) = match (r.state, r.key) {
        (State::Single, _) => {
            if r.previous_key != KeyFile::Absent {
                let backup = backup_dir(req, r, backup)?;
                let key = pki::read_file(&previous, Links::Refuse)?;
                if saved(&backup.join(format!("{}.key", r.spec.base)))?.as_deref() == Some(&key[..]) {
                    if !req.check_mode {
                        remove(&previous)?;
                    }
                    out.msg = format!("removed {}, which {} holds", previous.display(), backup.display());
                    return Ok(vec![previous]);
                }
            }
            out.msg = format!("{} holds one CA certificate: nothing to drop", r.path.display());
            return Ok(Vec::new());
        }
        (State::Reissued, _) => (&r.bundle[0], &r.bundle[1]),
        (State::Trusting, KeyFile::Absent) => {
            // a worker: the CA its kubelet's client certificate comes from is the one kept
            let by: Vec<usize> = r.leaves.iter().filter_map(|(_, by)| *by).collect();
            match by.as_slice() {
                [1] => (&r.bundle[1], &r.bundle[0]),
                _ => {
                    return Err(refused(
                        req,
                        &r.path,
                        format!(
                            "the kubelet's client certificate here is not issued by the new CA (the second of {}): issue it \
                         again through a control-plane node first (phase reissue)",
                            r.path.display()
                        ),
                    ));
                }
            }
        }
        (State::Reissuing, _) => {
            let names: Vec<String> =
                r.issued_by_other().map(|l| format!("{} ({})", l.name, l.path.display())).collect();
            return Err(refused(
                req,
                &r.path,
                format!("still issued by the old CA here: {}; finish phase reissue first", names.join(", ")),
            ));
        }
        (State::Trusting, _) => {
            return Err(refused(
                req,
                &r.path,
                "it trusts both CAs but the old one still signs: phase reissue comes first".into(),
            ));
        }
        (State::Inconsistent, _) => unreachable!("refused by read"),
    };
    if let Some(l) = r.untrusted().next() {
        return Err(refused(req, &r.path, format!("{} ({}) is issued by neither CA", l.name, l.path.display())));
    }
    let mut written = Vec::new();
    if r.previous_key != KeyFile::Absent {
        let dir = backup_dir(req, r, backup)?;
        written.extend(save_old(req, r, old, &previous, &dir)?);
    }
    let bundle = [keep.der.clone()];
    let writes = vec![FileWrite { path: r.path.clone(), contents: pem_bundle(&bundle), mode: MODE_PUBLIC }];
    out.diff.push(diff::entry(
        &r.path.display().to_string(),
        bundle_text(&r.bundle.iter().collect::<Vec<_>>()),
        bundle_text(&[keep]),
    ));
    written.extend(follow_member(req, r, &old.der, &bundle, writes, now, out)?);
    if !req.check_mode && r.previous_key != KeyFile::Absent {
        remove(&previous)?;
        written.push(previous);
    }
    out.msg = format!(
        "{} trusts the new CA alone (SHA-256 {}); the old one dropped{}",
        r.path.display(),
        sha256_hex(&keep.der),
        backup.map(|b| format!(", kept in {}", b.display())).unwrap_or_default()
    );
    Ok(written)
}

fn backup_dir(req: &RotateRequest, r: &Rotation, backup: Option<&Path>) -> Result<PathBuf> {
    let dir = backup.ok_or_else(|| {
        refused(
            req,
            &r.path,
            format!(
                "the old CA's key is here ({}): name the directory it is kept in (--old-ca-backup DIR, module \
             old_ca_backup); it is never deleted unsaved",
                rotation::previous_key_path(&req.layout, r.spec).display()
            ),
        )
    })?;
    if !dir.is_absolute() {
        return Err(Error::Usage(format!("old CA backup {}: not an absolute path", dir.display())));
    }
    key_dir::check(&req.layout, dir, &KeyDir::OLD_CA_BACKUP)?;
    Ok(dir.to_path_buf())
}

/// What the backup directory holds under `path`: None when nothing. A link is refused, not followed: a link to
/// `<base>.previous.key` would read as the saved key, and the drop would then delete the only copy.
fn saved(path: &Path) -> Result<Option<Vec<u8>>> {
    if !pki::exists(path)? {
        return Ok(None);
    }
    pki::read_file(path, Links::Refuse).map(Some)
}

/// OLD's certificate and key into `dir` (0700; the key 0600, written whole under a temporary name, then renamed), or
/// nothing when `dir` holds them already; refused when it holds another pair of that name.
fn save_old(req: &RotateRequest, r: &Rotation, old: &Certificate, previous: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let key = pki::read_file(previous, Links::Refuse)?;
    let files = [
        (dir.join(format!("{}.crt", r.spec.base)), pem_encode("CERTIFICATE", &old.der).into_bytes(), MODE_PUBLIC),
        (dir.join(format!("{}.key", r.spec.base)), key, MODE_SECRET),
    ];
    // what is there is judged first, so a refusal writes nothing
    let mut missing = Vec::new();
    for (path, contents, mode) in files {
        match saved(&path)? {
            Some(have) if have == contents => {}
            Some(_) => {
                return Err(refused(
                    req,
                    &r.path,
                    format!("{} holds another file than the old CA's: name an empty backup directory", path.display()),
                ));
            }
            None => missing.push((path, contents, mode)),
        }
    }
    if !req.check_mode && !missing.is_empty() {
        // etcd-ca's base is etcd/ca: its pair goes to DIR/etcd/, made and checked as DIR is
        let parent = dir.join(r.spec.base).parent().map(Path::to_path_buf).unwrap_or_else(|| dir.to_path_buf());
        key_dir::create(&parent, &KeyDir::OLD_CA_BACKUP)?;
    }
    let mut written = Vec::new();
    for (path, contents, mode) in missing {
        if !req.check_mode {
            write_private(&path, &contents, mode)?;
        }
        written.push(path);
    }
    Ok(written)
}

/// A file written whole (0600 while written, then `mode`), fsynced, renamed into place in its (checked) directory.
fn write_private(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().expect("a file in a directory");
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(MODE_SECRET)
        .open(&tmp)
        .map_err(|e| Error::write(&tmp, e))?;
    f.write_all(contents).and_then(|_| f.sync_all()).map_err(|e| Error::write(&tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(|e| Error::write(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::write(path, e))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::write(dir, e))
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::write(path, e)),
        _ => Ok(()),
    }
}

/// `<base>.next.key` left by a swap that stopped before removing it: the same key as `<base>.key` now.
fn remove_leftover(next: &Path, key: &Path) -> Result<()> {
    if pki::exists(next)? && std::fs::read(next).ok() == std::fs::read(key).ok() {
        remove(next)?;
    }
    Ok(())
}

/// The kubeconfigs whose CA data hold the bundle's first certificate trust exactly `bundle`, written with
/// `writes` in one transaction.
fn follow(
    req: &RotateRequest,
    r: &Rotation,
    bundle: &[Vec<u8>],
    writes: Vec<FileWrite>,
    now: DateTime<Utc>,
    out: &mut Outcome,
) -> Result<Vec<PathBuf>> {
    follow_member(req, r, &r.bundle[0].der, bundle, writes, now, out)
}

/// [`follow`] for the kubeconfigs holding `member`.
fn follow_member(
    req: &RotateRequest,
    r: &Rotation,
    member: &[u8],
    bundle: &[Vec<u8>],
    mut writes: Vec<FileWrite>,
    now: DateTime<Utc>,
    out: &mut Outcome,
) -> Result<Vec<PathBuf>> {
    let mut rewritten = Vec::new();
    for file in r.spec.kubeconfigs {
        let path = req.layout.kubeconfig_dir.join(file);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::read(&path, e)),
            Ok(m) if m.file_type().is_symlink() => {
                out.warnings
                    .push(format!("{}: a symbolic link, not rewritten: give it the CA bundle by hand", path.display()));
                continue;
            }
            Ok(_) => {}
        }
        let bytes = pki::read_file(&path, Links::Refuse)?;
        let found = kubeconfig::with_ca_bundle(&path, &bytes, member, bundle)?;
        let Some(contents) = found.contents else { continue };
        out.diff.push(diff::entry(
            &path.display().to_string(),
            format!("certificate-authority-data: {}\n", r.spec.name),
            format!("certificate-authority-data: {} ({} certificates)\n", r.spec.name, bundle.len()),
        ));
        rewritten.extend(
            CERTIFICATES
                .iter()
                .filter(|s| matches!(s.storage, crate::inventory::Storage::Kubeconfig { file: f } if f == *file)),
        );
        writes.push(FileWrite { path, contents, mode: MODE_SECRET });
    }
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let paths: Vec<PathBuf> = writes.iter().map(|w| w.path.clone()).collect();
    if !req.check_mode {
        finish::commit(&req.layout, &writes, false, now)?;
    }
    let settle = out.settle.get_or_insert_with(Settle::default);
    settle.changed.extend(rewritten);
    Ok(paths)
}

fn pem_bundle(ders: &[Vec<u8>]) -> Vec<u8> {
    ders.iter().map(|d| pem_encode("CERTIFICATE", d)).collect::<String>().into_bytes()
}

/// What a diff shows of a CA file: each certificate's subject, serial, validity and fingerprint (never a key).
fn bundle_text(certs: &[&Certificate]) -> String {
    certs
        .iter()
        .map(|c| format!("{}SHA-256: {}\n", diff::describe(c), sha256_hex(&c.der)))
        .collect::<Vec<_>>()
        .join("---\n")
}
