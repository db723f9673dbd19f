//! `install`: the last step of the external-CA workflow. Takes the key `csr` wrote and the certificate
//! the external CA signed, checks each (matches the key, chains to the CA on this node, keeps the subject,
//! SANs and usages of the certificate it replaces, not expired), then installs them all in one
//! transaction: PEM pairs into the cert dir, kubeconfig credentials embedded.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::describe::cert_row;
use super::key_dir::{self, KeyDir};
use super::{csr::csr_paths, diff, files, finish, issued};
use crate::error::{Error, Result};
use crate::inventory::CertSpec;
use crate::pki::cert::Certificate;
use crate::pki::key::PrivateKey;
use crate::pki::{self, Keys, Pki};
use crate::report::{Action, Outcome};
use crate::request::InstallRequest;

pub fn install(req: &InstallRequest, now: DateTime<Utc>) -> Result<Outcome> {
    // under the lock, a pending journal settled (`super::run`)
    let mut out = Outcome::default();
    let dir = key_dir::check(&req.layout, &req.csr_dir, &KeyDir::CSR)?;
    key_dir::require_existing(&dir)?;
    let pki = Pki::read(&req.layout, &req.selection.specs, req.selection.explicit, Keys::Skip)?;
    pki.validate()?;

    let mut actions = vec![(Action::None, None::<String>); pki.entries.len()];
    let mut new_certs: Vec<Option<Certificate>> = vec![None; pki.entries.len()];
    let mut writes = Vec::new();
    for (index, entry) in pki.entries.iter().enumerate() {
        let Some(loaded) = &entry.loaded else { continue };
        let crt_path = req.signed_dir.join(format!("{}.crt", entry.spec.name));
        let (_, key_path) = csr_paths(&req.csr_dir, entry.spec);
        if !pki::exists(&crt_path)? {
            if req.selection.explicit {
                return Err(Error::MissingRequested { name: entry.spec.name.into(), path: crt_path });
            }
            actions[index].1 = Some(format!("no signed certificate {}", crt_path.display()));
            continue;
        }
        let cert = Certificate::read(&crt_path)?;
        if cert.der == loaded.cert.der {
            actions[index].1 = Some("already installed".into());
            continue;
        }
        refuse_foreign_key(&key_path)?;
        let key = PrivateKey::read(&key_path)?;
        let ca = pki.ca(entry.spec.ca);
        let ca_cert = ca
            .cert
            .as_ref()
            .ok_or_else(|| Error::invalid(&ca.cert_path, format!("missing: the CA of {}", entry.spec.name)))?;
        let old = &loaded.cert;
        let expect = issued::Expect {
            subject: &old.subject.kubeadm_kept(),
            dns_names: &old.dns_names,
            ip_addresses: &old.ip_addresses,
        };
        issued::fit_to_replace(entry.spec, &cert, &key, ca_cert, &expect)
            .map_err(|why| Error::invalid(&crt_path, why))?;
        if cert.not_after <= now {
            return Err(Error::invalid(&crt_path, "the signed certificate has already expired"));
        }
        writes.extend(files::replacing(
            &entry.location,
            loaded,
            &cert.der,
            &cert.chain_rest,
            key.pem(),
            &ca_cert.pem(),
        )?);
        actions[index].0 = if req.check_mode { Action::WouldInstall } else { Action::Installed };
        new_certs[index] = Some(cert);
    }
    if !req.check_mode {
        out.backup_files = finish::commit(&req.layout, &writes, req.backup, now)?;
    }
    let changed = report(&pki, &actions, &new_certs, now, &mut out);
    finish::close(&mut out, &pki, &changed, req.check_mode, now);
    out.msg = match (out.renewed.is_empty(), req.check_mode) {
        (true, _) => "nothing to install".into(),
        (false, true) => format!("would install {}", out.renewed.join(", ")),
        (false, false) => format!("installed {}", out.renewed.join(", ")),
    };
    Ok(out)
}

/// A row per entry: what was installed (or would be) named with its diff. Returns the certificates replaced.
fn report(
    pki: &Pki,
    actions: &[(Action, Option<String>)],
    new_certs: &[Option<Certificate>],
    now: DateTime<Utc>,
    out: &mut Outcome,
) -> Vec<&'static CertSpec> {
    let mut changed = Vec::new();
    for (index, entry) in pki.entries.iter().enumerate() {
        let (action, reason) = actions[index].clone();
        let shown = if action == Action::Installed {
            new_certs[index].as_ref()
        } else {
            entry.loaded.as_ref().map(|l| &l.cert)
        };
        let mut row = cert_row(pki, entry, shown, now, action);
        row.reason = reason;
        if action.changes() {
            let after = new_certs[index].as_ref().map(diff::describe).unwrap_or_default();
            finish::changed(out, &row, entry.loaded.as_ref().map(|l| &l.cert), after);
            changed.push(entry.spec);
        }
        out.certificates.push(row);
    }
    changed
}

/// `csr` writes keys owned by the user running it; a key another user owns was not written by it, and
/// installing it would give the control plane a key someone else chose.
pub(super) fn refuse_foreign_key(key_path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(key_path).map_err(|e| Error::read(key_path, e))?;
    if meta.uid() != key_dir::euid() {
        return Err(Error::invalid(
            key_path,
            format!(
                "is owned by uid {}, not by the user running kubeadm-certs (uid {}): `csr` did not write this \
                 key; run `kubeadm-certs csr --force` again and have the new CSR signed",
                meta.uid(),
                key_dir::euid()
            ),
        ));
    }
    Ok(())
}
