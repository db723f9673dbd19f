//! Credential copies in `check` and `renew` ([`crate::copies`] finds and reads them).
//!
//! `check` reports each copy with its expiry and whether it carries the certificate admin.conf holds now; its
//! `--fail-within` covers them (an expiring copy is an outage the morning after for whoever uses it).
//!
//! `renew` looks at them when asked to refresh them (`--refresh-copies`), or when it renews admin.conf (to say
//! which copies keep the old certificate). A copy that is a former admin.conf is replaced, when asked, by
//! admin.conf as it is after the run, keeping its owner and mode; every other copy is left alone, and the report
//! says why. A user's former admin.conf whose certificate has expired is left alone too: its holder's
//! cluster-admin access ended with it, and a refresh would give it back unasked (root's copies are refreshed: root
//! holds admin.conf anyway). A refreshed copy other users may read is named in a warning. Copies are written after the PKI's transaction, one file at a time, each atomically
//! ([`crate::copies::fs`]), and never through the journal: they are other users' files outside the PKI, which a
//! journal replayed as root must never be able to name. A run killed between the PKI's commit and a copy leaves
//! that copy as it was, still a former admin.conf, which the next `renew --refresh-copies` refreshes (the old
//! certificate stays valid until it expires: a renewal revokes nothing).

use chrono::{DateTime, Utc};

use super::describe::residual_seconds;
use super::diff;
use crate::copies::{self, Copy, fs::users};
use crate::inventory::CaId;
use crate::pki::cert::Certificate;
use crate::pki::kubeconfig::Kubeconfig;
use crate::pki::{self, Layout, Links, Pki};
use crate::report::{Action, CopyReport, Outcome, rfc3339};
use crate::request::{CopySearch, RenewRequest};

/// `check`: a row per copy, and what the search could not see.
pub fn rows(search: &CopySearch, pki: &Pki, now: DateTime<Utc>) -> (Vec<CopyReport>, Vec<String>) {
    let Some(ca) = pki.ca(CaId::Ca).cert.as_ref() else { return (Vec::new(), Vec::new()) };
    let admin = admin_cert(&read_admin(&pki.layout));
    let found = copies::find(search, &pki.layout.kubeconfig_dir, ca);
    let rows = found
        .copies
        .iter()
        .map(|c| row(c, &c.cert, admin.as_ref().is_some_and(|a| a.der == c.cert.der), now))
        .collect();
    (rows, found.warnings)
}

fn row(copy: &Copy, cert: &Certificate, current: bool, now: DateTime<Utc>) -> CopyReport {
    CopyReport {
        path: copy.file.path.display().to_string(),
        expiration_date: rfc3339(cert.not_after),
        residual_time: residual_seconds(cert.not_after, now),
        current,
        subject: cert.subject.to_string(),
        user: copy.user.clone(),
        owner: users::name(copy.file.stat.uid),
        mode: format!("{:04o}", copy.file.stat.permissions()),
        action: None,
        reason: None,
    }
}

/// admin.conf's bytes as they are now; `None` when there is none (a worker) or it cannot be read.
pub(super) fn read_admin(layout: &Layout) -> Option<Vec<u8>> {
    pki::read_file(&layout.kubeconfig_dir.join("admin.conf"), Links::Follow).ok()
}

fn admin_cert(bytes: &Option<Vec<u8>>) -> Option<Certificate> {
    let path = std::path::Path::new("admin.conf");
    let kc = Kubeconfig::parse(path, bytes.as_deref()?).ok()?;
    Certificate::from_file_bytes(path, &kc.client_certificate_pem).ok()
}

/// What a copy is, against admin.conf before and after the run.
enum Verdict {
    /// It carries the certificate admin.conf holds after the run.
    Current,
    /// A former admin.conf: refreshed when asked. Why it is one.
    Former(String),
    /// Anything else: left alone, and why.
    Other(String),
}

fn judge(copy: &Copy, before: Option<&[u8]>, after: Option<&[u8]>, after_cert: Option<&Certificate>) -> Verdict {
    let bytes = copy.file.bytes.as_slice();
    if after_cert.is_some_and(|a| a.der == copy.cert.der) {
        return Verdict::Current;
    }
    if before == Some(bytes) {
        return Verdict::Former("byte for byte admin.conf as it was before this run".into());
    }
    for base in [before, after].into_iter().flatten() {
        let Some(base_cert) = admin_cert(&Some(base.to_vec())) else { continue };
        // the same identity to the apiserver (its CN and O, whatever string types encode them), and not a newer
        // certificate than admin.conf's: issued no later, or expiring no later. Either alone misjudges: an earlier
        // certificate may expire later (renewed with a longer --validity, then admin.conf with the default), and
        // one signed with a backdated expiry may carry a later notBefore
        let same = copy.cert.subject.to_string() == base_cert.subject.to_string();
        let older =
            same && (copy.cert.not_before <= base_cert.not_before || copy.cert.not_after <= base_cert.not_after);
        if older && copies::admin_with_credentials_of(base, bytes).as_deref() == Some(bytes) {
            return Verdict::Former(format!(
                "byte for byte admin.conf but for an older certificate and key of its user {} (expires {})",
                copy.user,
                rfc3339(copy.cert.not_after)
            ));
        }
    }
    let Some(admin) = after.or(before).and_then(|a| admin_cert(&Some(a.to_vec()))) else {
        return Verdict::Other("there is no admin.conf in the kubeconfig dir to refresh it from".into());
    };
    if copy.cert.subject.to_string() != admin.subject.to_string() {
        return Verdict::Other(format!(
            "it carries {}, not admin.conf's user ({}): renew it where it was made (kubeadm kubeconfig user)",
            copy.cert.subject, admin.subject
        ));
    }
    Verdict::Other(
        "not byte for byte a former admin.conf (edited: other users, contexts, clusters or fields): put admin.conf's \
         client-certificate-data and client-key-data in it yourself"
            .into(),
    )
}

/// admin.conf around a `renew` run, what its copies are judged against.
struct Admin {
    before: Option<Vec<u8>>,
    /// `None` in check mode when the run would change it (not written yet).
    after: Option<Vec<u8>>,
    after_cert: Option<Certificate>,
    /// The certificate a copy is current with in the report: after the run, or as it is in check mode.
    holds_now: Option<Certificate>,
    /// What admin.conf's certificate is (or would be) after the run, for the diffs.
    after_text: String,
}

/// `renew`: the copies after the PKI's commit; refreshes the former admin.confs when asked (see the module's
/// comment). `admin_before` is admin.conf as the run found it. Returns what the run's message should add.
pub(super) fn after_renew(
    req: &RenewRequest,
    pki: &Pki,
    admin_before: Option<Vec<u8>>,
    now: DateTime<Utc>,
    out: &mut Outcome,
) -> Option<String> {
    let admin_path = req.layout.kubeconfig_dir.join("admin.conf").display().to_string();
    let admin_changes = out.renewed.iter().any(|n| n == "admin.conf")
        || out.certificate_authorities.iter().any(|c| c.kubeconfigs.contains(&admin_path));
    if !req.refresh_copies && !admin_changes {
        return None;
    }
    let ca = pki.ca(CaId::Ca).cert.as_ref()?;
    let after = if req.check_mode && admin_changes { None } else { read_admin(&req.layout) };
    let after_cert = admin_cert(&after);
    let admin = Admin {
        holds_now: if req.check_mode { admin_cert(&admin_before) } else { after_cert.clone() },
        after_text: out
            .diff
            .iter()
            .find(|d| d.before_header == format!("{admin_path} (before)"))
            .map(|d| d.after.clone())
            .or_else(|| after_cert.as_ref().map(diff::describe))
            .unwrap_or_default(),
        before: admin_before,
        after,
        after_cert,
    };
    let found = copies::find(&req.copies, &req.layout.kubeconfig_dir, ca);
    out.warnings.extend(found.warnings);
    let mut refreshed = Vec::new();
    for copy in &found.copies {
        let r = settle(req, &admin, copy, now, out);
        if r.action.is_some_and(Action::changes) {
            out.diff.push(diff::entry(&r.path, diff::describe(&copy.cert), admin.after_text.clone()));
            out.changed = true;
            refreshed.push(r.path.clone());
        }
        out.copies.push(r);
    }
    (!refreshed.is_empty()).then(|| {
        let verb = if req.check_mode { "would refresh" } else { "refreshed" };
        let what = if refreshed.len() == 1 { "a copy" } else { "copies" };
        format!("{verb} {what} of admin.conf: {}", refreshed.join(", "))
    })
}

/// One copy's row after the run: judged, refreshed when it is a former admin.conf and that was asked for (and
/// allowed), or left alone saying why; what the user should know goes to the warnings.
fn settle(req: &RenewRequest, admin: &Admin, copy: &Copy, now: DateTime<Utc>, out: &mut Outcome) -> CopyReport {
    let mut r = row(copy, &copy.cert, admin.holds_now.as_ref().is_some_and(|a| a.der == copy.cert.der), now);
    let verdict = judge(copy, admin.before.as_deref(), admin.after.as_deref(), admin.after_cert.as_ref());
    let (action, reason) = match verdict {
        Verdict::Current => (Action::None, "carries admin.conf's certificate".to_string()),
        Verdict::Former(why) if !req.refresh_copies => {
            out.warnings.push(format!(
                "{}: a copy of admin.conf that keeps its old certificate (expires {}): `kubeadm-certs renew \
                 --refresh-copies` (module refresh_copies: true) replaces it with admin.conf",
                r.path, r.expiration_date
            ));
            (Action::None, format!("{why}; not asked to refresh it (--refresh-copies, refresh_copies)"))
        }
        // a holder whose access ended with the certificate gets none back unasked; root holds admin.conf anyway
        Verdict::Former(_) if copy.cert.not_after <= now && copy.file.stat.uid != 0 => {
            let why = format!(
                "a former admin.conf whose certificate expired {}: refreshing it would give {} back the cluster-admin \
                 access that ended then; copy admin.conf over it yourself if they should have it",
                r.expiration_date, r.owner
            );
            out.warnings.push(format!("{}: left alone: {why}", r.path));
            (Action::None, why)
        }
        Verdict::Former(why) if req.check_mode => (Action::WouldRefresh, why),
        Verdict::Former(why) => match admin.after.as_deref().map(|new| copy.file.replace(new)) {
            Some(Ok(())) => {
                if let Some(new) = &admin.after_cert {
                    r = row(copy, new, true, now);
                }
                if copy.file.stat.permissions() & 0o044 != 0 {
                    out.warnings.push(format!(
                        "{}: refreshed, and readable by other users than its owner (mode {}): whoever can read it is \
                         cluster-admin; chmod 600 it",
                        r.path, r.mode
                    ));
                }
                (Action::Refreshed, why)
            }
            Some(Err(e)) => {
                out.warnings.push(format!("{}: a former admin.conf, left alone: {e}", r.path));
                (Action::None, format!("a former admin.conf, left alone: {e}"))
            }
            None => (Action::None, "admin.conf cannot be read after the run: left alone".into()),
        },
        Verdict::Other(why) => {
            if !r.current {
                out.warnings.push(format!(
                    "{}: carries a certificate of this cluster ({}, expires {}) and is left alone: {why}",
                    r.path, r.subject, r.expiration_date
                ));
            }
            (Action::None, why)
        }
    };
    r.action = Some(action);
    r.reason = Some(reason);
    r
}
