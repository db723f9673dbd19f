//! `check`: kubeadm's `certs check-expiration` as the node's own kubeadm prints it (`kubeadm_version`), plus
//! `--at` and `--fail-within`, what dates do not show (a key that does not match its certificate, a CA certificate
//! missing under what it signed), and what kubeadm leaves out: the kubelet's certificates and the copies of this
//! cluster's credentials outside the kubeconfig dir (`super::copies`).

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::describe::{ca_row, cert_row};
use crate::commit;
use crate::duration::Span;
use crate::error::Result;
use crate::kubeadm_version::{self, Dialect};
use crate::pki::{Finding, Keys, Pki};
use crate::report::{Action, Outcome};
use crate::request::{CheckRequest, DEFAULT_LOCK_TIMEOUT};

/// The PKI as read, and what is wrong with it beyond dates.
fn read(req: &CheckRequest) -> Result<(Pki, Vec<Finding>)> {
    let pki = Pki::read(&req.layout, &req.selection.specs, req.selection.explicit, Keys::Skip)?;
    // a CA file holding a rotation's two CA certificates trusts what either issued (`ca_rotation` says which)
    pki.validate_with(true)?;
    let findings = pki.integrity();
    Ok((pki, findings))
}

/// A renewal renames a new key and then its certificate: a read between the two renames sees a pair that
/// does not match, and a healthy PKI would fail check. So a broken finding is judged again once no run holds
/// the PKI lock (writers hold it exclusively for their whole run; this takes it shared, and only here: a
/// healthy PKI is checked without any lock or wait). Waits at most the default lock timeout; after that, or
/// when the lock cannot be taken at all, the first reading stands.
fn read_settled(req: &CheckRequest) -> Result<(Pki, Vec<Finding>)> {
    let first = read(req)?;
    if !first.1.iter().any(|f| f.broken) {
        return Ok(first);
    }
    match shared_lock(&req.layout.cert_dir, DEFAULT_LOCK_TIMEOUT) {
        Some(_lock) => read(req),
        None => Ok(first),
    }
}

fn shared_lock(dir: &Path, timeout: Span) -> Option<File> {
    let file = File::open(dir).ok()?;
    let start = Instant::now();
    loop {
        match file.try_lock_shared() {
            Ok(()) => return Some(file),
            Err(TryLockError::WouldBlock) if start.elapsed().as_secs() < timeout.seconds().max(0) as u64 => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => return None,
        }
    }
}

pub fn check(req: &CheckRequest, now: DateTime<Utc>) -> Result<Outcome> {
    let now = req.at.unwrap_or(now);
    let (pki, findings) = read_settled(req)?;
    // the rows and formats of this node's own kubeadm (`kubeadm_version`)
    let version = kubeadm_version::detect(&req.layout.kubeconfig_dir, req.config.as_ref());
    let dialect = Dialect::of(version.as_ref());
    let running = crate::inuse::stale::look(&crate::inuse::Scope::kubeadm(&req.layout));
    let mut out = Outcome {
        certificates: pki
            .entries
            .iter()
            .filter(|e| e.loaded.is_some() || dialect.lists_missing(e.spec))
            .map(|e| cert_row(&pki, e, e.loaded.as_ref().map(|l| &l.cert), now, Action::None))
            .collect(),
        certificate_authorities: pki
            .cas
            .iter()
            .filter(|ca| !req.config.as_ref().is_some_and(|k| k.leaves_out(ca.spec.id)))
            .map(|ca| ca_row(ca, now))
            .collect(),
        components: crate::inuse::reports(&running),
        kubernetes_version: version,
        dialect,
        ..Outcome::default()
    };
    for c in &mut out.certificates {
        c.residual = c.residual_seconds.map(|s| dialect.residual(s));
    }
    for c in &mut out.certificate_authorities {
        c.residual = c.residual_seconds.map(|s| dialect.residual(s));
    }
    if !req.selection.explicit {
        let (kubelet, warnings) = super::kubelet::certificates(&req.kubelet_dir, &req.layout.kubeconfig_dir, now);
        out.kubelet = kubelet;
        out.warnings.extend(warnings);
        let (copies, warnings) = super::copies::rows(&req.copies, &pki, now);
        out.copies = copies;
        out.warnings.extend(warnings);
        // where a CA rotation stands here (`pki::rotation`)
        for ca in &pki.cas {
            if let Some(r) = super::ca_rotate::state(&req.layout, &pki, ca.spec.id, &mut out.warnings) {
                out.ca_rotation.push(super::ca_rotate::describe(&r));
            }
        }
        // what must be one truth across the cluster's nodes, and what this node fails to cover
        let consistency = super::consistency::gather(req, &pki, &running);
        out.inconsistent = !consistency.findings.is_empty();
        out.consistency = Some(consistency);
    }
    if commit::journal_pending(&req.layout) {
        out.warnings.push(format!(
            "an interrupted renewal left a journal in {}; the next renew, csr or install completes it",
            req.layout.cert_dir.display()
        ));
    }
    if let Some(config) = &req.config {
        out.warnings.extend(drifted_sans(&pki, config));
    }
    let broken = findings.iter().filter(|f| f.broken).count();
    let first_broken = findings.iter().find(|f| f.broken).map(|f| f.message.clone()).unwrap_or_default();
    out.pki_broken = broken > 0;
    out.warnings.extend(findings.into_iter().map(|f| f.message));
    let missing: Vec<_> = out.certificates.iter().filter(|c| c.missing).map(|c| c.name.clone()).collect();
    if let Some(window) = req.fail_within {
        let within = |r: Option<i64>| r.is_some_and(|r| r < window.seconds());
        out.expiring = out
            .certificates
            .iter()
            .filter(|c| within(c.residual_seconds))
            .map(|c| c.name.clone())
            .chain(
                out.certificate_authorities.iter().filter(|c| within(c.residual_seconds)).map(|c| c.name.to_string()),
            )
            .chain(
                out.kubelet
                    .iter()
                    .filter(|k| within((!k.missing).then_some(k.residual_time)))
                    .map(|k| k.name.to_string()),
            )
            // a copy that expires is an outage for whoever uses it: named by its path
            .chain(out.copies.iter().filter(|c| within(Some(c.residual_time))).map(|c| c.path.clone()))
            .collect();
        out.threshold_failed = !out.expiring.is_empty();
    }
    let present = out.certificates.len() - missing.len();
    out.msg = if out.pki_broken {
        format!(
            "the PKI is broken ({broken} {}, see warnings): {}",
            if broken == 1 { "problem" } else { "problems" },
            first_broken
        )
    } else if out.threshold_failed {
        format!(
            "{} expire within {}: {}",
            out.expiring.len(),
            req.fail_within.unwrap_or_default(),
            out.expiring.join(", ")
        )
    } else {
        let mut m = format!("{present} certificates checked");
        if !missing.is_empty() {
            m.push_str(&format!("; missing: {}", missing.join(", ")));
        }
        if let Some(first) = out.consistency.as_ref().and_then(|c| c.findings.first()) {
            let n = out.consistency.as_ref().map_or(0, |c| c.findings.len());
            m.push_str(&format!(
                "; {n} consistency {} (see consistency.findings): {}",
                if n == 1 { "finding" } else { "findings" },
                first.message
            ));
        }
        m
    };
    Ok(out)
}

/// A certificate lacking a SAN the configuration asks for: what a renewal with it would add (`renew
/// --config` adds the apiserver's; kubeadm adds them all when it issues anew).
fn drifted_sans(pki: &Pki, config: &crate::kubeadm_config::KubeadmConfig) -> Vec<String> {
    pki.entries
        .iter()
        .filter_map(|e| {
            let cert = &e.loaded.as_ref()?.cert;
            let want = config.sans_for(e.spec.name);
            let missing: Vec<String> =
                want.iter().filter(|san| !super::plan::has_san(cert, san)).map(|san| san.to_string()).collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "{}: lacks SANs {} asks for: {} (`kubeadm-certs renew {} --config {}` issues it with them)",
                    e.spec.name,
                    config.path.display(),
                    missing.join(", "),
                    e.spec.name,
                    config.path.display()
                )
            })
        })
        .collect()
}
