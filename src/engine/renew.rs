//! `renew`: read and validate everything, decide what is due, build every new certificate, check each,
//! then write them all in one transaction. A failure at any step before the commit changes nothing. CAs named
//! (`renew ca`) go through the same steps ([`ca_renew`]) and the same transaction, before the certificates they
//! sign in the run. Copies of admin.conf elsewhere are looked at after the commit ([`super::copies`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::describe::cert_row;
use super::plan::{self, Decision, Desired, Policy};
use super::signer::{ApiSigner, IssueRequest, LocalSigner, Signer};
use super::{ca_renew, diff, files, finish, issued};
use crate::commit::FileWrite;
use crate::error::{Error, Result};
use crate::inventory::{CaId, CertSpec};
use crate::pki::cert::Certificate;
use crate::pki::key::PrivateKey;
use crate::pki::{Entry, Keys, Pki};
use crate::report::{Action, Outcome};
use crate::request::{RenewRequest, SignerChoice};

/// The signer the request asks for: the CA keys on disk, or the one `api_signer` builds.
fn make_signer(req: &RenewRequest, pki: &Pki, due: &[Due], api_signer: ApiSigner) -> Result<Box<dyn Signer>> {
    let cas: BTreeSet<CaId> = due.iter().map(|d| pki.entries[d.index].spec.ca).collect();
    match &req.signer {
        SignerChoice::Local => Ok(Box::new(LocalSigner::new(pki, &cas)?)),
        SignerChoice::Api(opts) => api_signer(opts),
    }
}

/// A certificate that is due: entry `index` of the PKI, why, and what its replacement must be.
struct Due {
    index: usize,
    reason: String,
    desired: Desired,
}

/// What steps 2 and 3 decided: a decision per entry of the PKI, the certificates to issue, and those the
/// signer cannot issue (entry index, why).
struct Plan {
    decisions: Vec<Decision>,
    due: Vec<Due>,
    refused: Vec<(usize, String)>,
}

/// Renews what is due: 1. read and validate the PKI, 2. decide (the CAs named first: a certificate signed by
/// a CA renewed in the same run may live as long as the new CA certificate), 3. hear what the signer cannot
/// issue, 4. build and check every new certificate (the CAs' first; the certificates are then signed and checked
/// against the new CA certificate, which has the same subject and key, and the kubeconfigs embedding a renewed
/// CA follow it), 5. commit them in one transaction, 6. report. A failure at any step before 5 changes nothing;
/// check mode stops after 3.
pub fn renew(req: &RenewRequest, now: DateTime<Utc>, api_signer: ApiSigner) -> Result<Outcome> {
    let now = req.at.unwrap_or(now);
    // under the lock, a pending journal settled (`super::run`)
    let mut out = Outcome::default();
    let mut pki = Pki::read(&req.layout, &req.selection.specs, req.selection.explicit, Keys::Read)?;
    pki.validate_with(req.resign_old_issuer)?;
    // what copies of admin.conf are judged against once the run is done (`copies`)
    let admin_before = super::copies::read_admin(&req.layout);
    let mut cas = ca_renew::decide(&req.ca, req.force, &pki, now)?;
    let mut plan = decide(req, &pki, &cas, now, &mut out.warnings)?;
    let mut signer = if plan.due.is_empty() { None } else { Some(make_signer(req, &pki, &plan.due, api_signer)?) };
    if let Some(s) = &signer {
        refuse(s.as_ref(), &pki, &mut plan, req.selection.explicit, &mut out.warnings)?;
    }
    let mut issued: Vec<Option<Certificate>> = vec![None; pki.entries.len()];
    let mut writes = Vec::new();
    if !req.check_mode {
        writes = ca_renew::build(&mut cas, &pki)?;
        ca_renew::adopt(&cas, &mut pki);
    }
    let mut leaves = signer.as_mut().filter(|_| !req.check_mode && !plan.due.is_empty());
    if let Some(signer) = leaves.as_mut() {
        writes.extend(build(&pki, &plan.due, signer.as_mut(), &mut issued)?);
    }
    ca_renew::follow(&mut cas, &req.layout, &mut writes, &mut out.warnings)?;
    if !req.check_mode {
        out.backup_files = finish::commit(&req.layout, &writes, req.backup, now)?;
    }
    if let Some(signer) = leaves {
        signer.finish(&mut out);
    }
    let (changed_cas, followed) = ca_renew::report(&cas, &mut out);
    let mut changed = report(&pki, &plan, &issued, req.check_mode, now, &mut out);
    changed.extend(followed);
    finish::close_with_cas(&mut out, &pki, &changed, &changed_cas, req.check_mode, now);
    ca_renew::annotate(&cas, req.check_mode, &mut out);
    let copies = super::copies::after_renew(req, &pki, admin_before, now, &mut out);
    out.msg = summary(req.check_mode, &out);
    if let Some(said) = copies {
        out.msg.push_str(&format!("; {said}"));
    }
    if let Some(credentials) = &req.ca.cluster_info {
        cluster_info(credentials, &pki, &cas, req.check_mode, &mut out);
    }
    // what to restart is said once the lock is released and the components are looked at (`inuse::settle`)
    if let Some(s) = out.settle.as_mut() {
        s.name_restarts = true;
        s.restart_note = ca_renew::restart_note(&cas);
    }
    Ok(out)
}

/// After the transaction: `cluster-info` follows the `ca` certificate on disk (`engine::cluster_info`); what
/// becomes of it is reported, never a failure of the run (the PKI changed already).
fn cluster_info(credentials: &std::path::Path, pki: &Pki, cas: &ca_renew::Plan, check_mode: bool, out: &mut Outcome) {
    let path = &pki.ca(CaId::Ca).cert_path;
    let due = cas.due.iter().any(|d| d.id == CaId::Ca);
    let report = match Certificate::read(path) {
        Ok(ca) => super::cluster_info::converge(credentials, &ca, due, check_mode),
        Err(e) => super::cluster_info::ClusterInfoReport::failed(format!("cannot read the CA certificate: {e}")),
    };
    out.changed |= report.changed();
    if report.trouble() {
        out.warnings.push(report.reason.clone());
    }
    out.msg.push_str(&format!("; cluster-info: {}", report.action.replace('_', " ")));
    out.cluster_info = Some(report);
}

/// `--resign-old-issuer`: a certificate issued by another CA certificate of its CA file than the first is due.
fn resign(cert: &Certificate, ca_cert: &Certificate) -> Option<Decision> {
    match crate::pki::verify::trusted_by(cert, ca_cert) {
        Ok(0) | Err(_) => None,
        Ok(i) => Some(Decision::Renew(format!(
            "issued by the CA file's certificate {} (serial {}), not its first (serial {}): issued again under the \
             first (resign_old_issuer)",
            i + 1,
            crate::pki::cert::Certificate::from_der(std::path::Path::new("bundle"), &ca_cert.chain_rest[i - 1])
                .map(|c| c.serial_hex)
                .unwrap_or_default(),
            ca_cert.serial_hex
        ))),
    }
}

fn cannot_renew(entry: &Entry, why: String) -> Error {
    Error::cannot_renew(entry.spec.name, entry.location.path(), why)
}

/// Step 2: the decision for every entry, and for each that is due the certificate that replaces it (validity
/// cut to its CA's expiry, with a warning).
fn decide(
    req: &RenewRequest,
    pki: &Pki,
    cas: &ca_renew::Plan,
    now: DateTime<Utc>,
    warnings: &mut Vec<String>,
) -> Result<Plan> {
    let policy = Policy {
        renew_before: req.renew_before,
        force: req.force,
        extra_sans: &req.extra_sans,
        key_algorithm: req.key_algorithm,
        validity: req.validity,
    };
    let mut plan = Plan { decisions: Vec::new(), due: Vec::new(), refused: Vec::new() };
    for (index, entry) in pki.entries.iter().enumerate() {
        let cert = entry.loaded.as_ref().map(|l| &l.cert);
        let ca = pki.ca(entry.spec.ca);
        let decision = match (req.resign_old_issuer, cert, &ca.cert) {
            (true, Some(cert), Some(ca_cert)) if !ca.externally_managed() => {
                resign(cert, ca_cert).unwrap_or_else(|| plan::decide(entry.spec, Some(cert), false, &policy, now))
            }
            _ => plan::decide(entry.spec, cert, ca.externally_managed(), &policy, now),
        };
        if let (Decision::Renew(reason), Some(cert)) = (&decision, cert) {
            let ca_cert = ca.cert.as_ref().ok_or_else(|| {
                cannot_renew(entry, format!("its CA certificate {} is missing", ca.cert_path.display()))
            })?;
            let ca_not_after = cas.not_after_of(entry.spec.ca).unwrap_or(ca_cert.not_after);
            let desired =
                plan::desired(entry.spec, cert, ca_not_after, &policy, now).map_err(|why| cannot_renew(entry, why))?;
            if desired.clamped_to_ca {
                warnings.push(format!(
                    "{}: validity cut to the {} CA's expiry {} (a certificate cannot outlive its CA)",
                    entry.spec.name,
                    ca.spec.name,
                    crate::report::rfc3339(ca_not_after)
                ));
            }
            plan.due.push(Due { index, reason: reason.clone(), desired });
        }
        plan.decisions.push(decision);
    }
    Ok(plan)
}

/// Step 3: what the signer cannot issue is said before anything is generated or sent. A certificate named
/// on the command line fails the run; one the run chose is skipped with a warning.
fn refuse(signer: &dyn Signer, pki: &Pki, plan: &mut Plan, explicit: bool, warnings: &mut Vec<String>) -> Result<()> {
    for d in &plan.due {
        let entry = &pki.entries[d.index];
        let Some(why) = signer.cannot_issue(entry.spec, &d.desired, pki.ca(entry.spec.ca)) else { continue };
        if explicit {
            return Err(cannot_renew(entry, why));
        }
        warnings.push(format!("{}: skipped: {why}", entry.spec.name));
        plan.refused.push((d.index, why));
    }
    let refused = &plan.refused;
    plan.due.retain(|d| !refused.iter().any(|(i, _)| *i == d.index));
    Ok(())
}

/// Step 4: a new key per due certificate, the batch signed, each new certificate checked against what was
/// asked (`issued::fit_to_replace`) and rendered into the files that hold it. Fills `issued` by entry index.
fn build(
    pki: &Pki,
    due: &[Due],
    signer: &mut dyn Signer,
    issued: &mut [Option<Certificate>],
) -> Result<Vec<FileWrite>> {
    let keys = PrivateKey::generate_many(&due.iter().map(|d| d.desired.key_algorithm).collect::<Vec<_>>())?;
    let batch: Vec<IssueRequest<'_>> = due
        .iter()
        .zip(&keys)
        .map(|(d, key)| {
            let entry = &pki.entries[d.index];
            IssueRequest {
                spec: entry.spec,
                path: entry.location.path(),
                desired: &d.desired,
                key,
                ca: pki.ca(entry.spec.ca),
            }
        })
        .collect();
    let ders = signer.issue(&batch)?;
    let mut writes = Vec::new();
    for ((d, key), der) in due.iter().zip(&keys).zip(ders) {
        let entry = &pki.entries[d.index];
        let ca_cert = pki.ca(entry.spec.ca).cert.as_ref().expect("due entries have their CA");
        let new = Certificate::from_der(entry.location.path(), &der)?;
        let expect = issued::Expect {
            subject: &d.desired.subject,
            dns_names: &d.desired.dns_names,
            ip_addresses: &d.desired.ip_addresses,
        };
        issued::fit_to_replace(entry.spec, &new, key, ca_cert, &expect)
            .map_err(|why| cannot_renew(entry, format!("the new certificate is wrong: {why}")))?;
        let loaded = entry.loaded.as_ref().expect("due entries are present");
        writes.extend(files::replacing(
            &entry.location,
            loaded,
            &der,
            &loaded.cert.chain_rest,
            key.pem(),
            &ca_cert.pem(),
        )?);
        issued[d.index] = Some(new);
    }
    Ok(writes)
}

/// Step 6: a row per entry, what changed (or would) named with its diff. Returns the certificates replaced.
fn report(
    pki: &Pki,
    plan: &Plan,
    issued: &[Option<Certificate>],
    check_mode: bool,
    now: DateTime<Utc>,
    out: &mut Outcome,
) -> Vec<&'static CertSpec> {
    let mut changed = Vec::new();
    for (index, entry) in pki.entries.iter().enumerate() {
        let old = entry.loaded.as_ref().map(|l| &l.cert);
        let due = plan.due.iter().find(|d| d.index == index);
        let (action, shown, reason) = match (&plan.decisions[index], due) {
            (Decision::Missing, _) => (Action::None, None, None),
            (Decision::SkipExternal, _) => (
                Action::SkippedExternallyManaged,
                old,
                Some(format!("the {} CA key is not on this node (externally managed)", entry.spec.ca.name())),
            ),
            (Decision::Keep(why), _) => (Action::None, old, Some(why.clone())),
            (Decision::Renew(_), None) => {
                let why = plan.refused.iter().find(|(i, _)| *i == index).map(|(_, w)| w.clone());
                (Action::None, old, why)
            }
            (Decision::Renew(_), Some(d)) if check_mode => (Action::WouldRenew, old, Some(d.reason.clone())),
            (Decision::Renew(_), Some(d)) => (Action::Renewed, issued[index].as_ref(), Some(d.reason.clone())),
        };
        let mut row = cert_row(pki, entry, shown, now, action);
        row.reason = reason;
        if let Some(d) = due.filter(|_| action.changes()) {
            let after = match &issued[index] {
                Some(new) => diff::describe(new),
                None => diff::describe_desired(&d.desired),
            };
            finish::changed(out, &row, old, after);
            changed.push(entry.spec);
        }
        out.certificates.push(row);
    }
    changed
}

fn summary(check_mode: bool, out: &Outcome) -> String {
    let skipped: Vec<_> = out
        .certificates
        .iter()
        .filter(|c| c.action == Action::SkippedExternallyManaged)
        .map(|c| c.name.as_str())
        .collect();
    let mut msg = match (out.renewed.is_empty(), check_mode) {
        (true, _) => "nothing to renew".to_string(),
        (false, true) => format!("would renew {}", out.renewed.join(", ")),
        (false, false) => format!("renewed {}", out.renewed.join(", ")),
    };
    if !skipped.is_empty() {
        msg.push_str(&format!("; externally managed, not renewed: {}", skipped.join(", ")));
    }
    // what to restart is added once the lock is released (`inuse::settle`, `Settle::name_restarts`)
    msg
}
