//! `renew kubelet-serving`: the kubelet's self-signed serving certificate, which nothing renews. The kubelet
//! writes `kubelet.crt` and `kubelet.key` once, at its first start without `tlsCertFile` or `serverTLSBootstrap`
//! (v1.20 `cmd/kubelet/app/server.go` `InitializeTLS`), valid a year; kubeadm never touches them
//! (kubernetes/kubernetes#99418), and after a year port 10250 serves an expired certificate.
//!
//! 1. read: where the serving certificate comes from ([`kubelet::Serving`]). `tlsCertFile` (someone's own) and
//!    `serverTLSBootstrap` (the cluster's, rotated by the kubelet) are refused with the way to renew them; the
//!    pair itself must be the kubelet's own make ([`kubelets_own`]), else it is someone's too.
//! 2. decide: expired, within `renew_before`, forced, or a key the kubelet cannot serve with (missing, or not the
//!    certificate's); else nothing to do.
//! 3. build what client-go v1.20's `cert.GenerateSelfSignedCertKeyWithFixtures` builds, which is what the kubelet
//!    itself would write if the files were gone: a throwaway CA `CN=HOST-ca@UNIX` (RSA 2048; its key is never
//!    written, as the kubelet's is not) signing a leaf `CN=HOST@UNIX` with the old leaf's DNS and IP SANs and
//!    usages, a new key of the old key's algorithm (the kubelet's is RSA 2048), valid from an hour ago (the
//!    kubelet's backdating) until `validity` from now; the file holds the leaf, then the CA. What differs, on
//!    purpose: random serials (the kubelet gives every CA serial 1 and every leaf serial 2, so a serial could never
//!    tell a new one from the old) and the validity's end (`validity`, default the kubelet's year). The result is
//!    checked (the leaf verifies under the CA, matches the key, keeps the SANs) before anything is written.
//! 4. write the key (0600) and the certificate (0644, the kubelet's modes) in one transaction (`commit`): a crash
//!    between the two renames is completed by the next run, never left as a pair the kubelet cannot start with.
//! 5. restart the kubelet (it reads the pair only at start) and wait ([`super::kubelet_restart`]): healthy, serving
//!    exactly the new certificate on its port, its node back in the cluster.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use super::diff;
use super::kubelet::{self, SELF_SIGNED_CERT, Serving};
use super::kubelet_client::{due_by, node_name, residual};
use super::kubelet_restart::{Back, kubelet_conf_credentials, restart_and_wait};
use super::plan::Desired;
use super::sign::{self_signed_ca, sign_local};
use crate::commit::{FileWrite, MODE_PUBLIC, MODE_SECRET};
use crate::duration;
use crate::error::{Error, Result};
use crate::pki::cert::{Certificate, EKU_SERVER_AUTH, Name, NameAttr, OID_CN, pem_encode};
use crate::pki::key::{self, KeyAlgorithm, PrivateKey};
use crate::pki::{self, Links};
use crate::report::{Action, CertReport, Outcome, rfc3339};
use crate::request::{KUBELET_SERVING, KubeletServingRequest};

/// The kubelet's own backdating of its self-signed certificate ("valid an hour earlier to avoid flakes due to
/// clock skew").
const BACKDATE: Duration = Duration::hours(1);
/// What `check`'s and the report's `ca` says of it: no CA of the cluster issued it.
const ISSUER: &str = "self-signed";

pub fn renew(req: &KubeletServingRequest, now: DateTime<Utc>) -> Result<Outcome> {
    // 1. read
    let (serving, port) = kubelet::serving(&req.kubelet_dir)?;
    let Serving::SelfSigned { cert: cert_path, key: key_path } = serving else {
        return Err(refusal(&req.kubelet_dir, &serving, now));
    };
    if !pki::exists(&cert_path)? {
        return Err(Error::invalid(
            &cert_path,
            "does not exist: there are no SANs to keep. The kubelet makes its self-signed serving certificate when it \
             starts without one (systemctl restart kubelet); or check --kubelet-dir (kubelet_dir)",
        ));
    }
    let cert = Certificate::read(&cert_path)?;
    let host = kubelets_own(&cert).map_err(|why| {
        Error::invalid(
            &cert_path,
            format!(
                "{why}: it is not the certificate the kubelet made itself, and kubeadm-certs renews only that one. \
                 Renew it where it was issued; or, to have the kubelet make a new self-signed one, move {} and {} \
                 away and restart the kubelet",
                cert_path.display(),
                key_path.display()
            ),
        )
    })?;
    // 2. decide
    let reason = match unusable_key(&key_path, &cert)? {
        Some(why) => Some(why),
        None => due_by(Some(&cert), req.force, req.renew_before, now),
    };
    let mut out = Outcome { changed: reason.is_some(), ..Outcome::default() };
    let shown = cert_path.display();
    let Some(reason) = reason else {
        out.certificates.push(row(&cert_path, &cert, now, Action::None, None));
        out.msg = format!(
            "the kubelet's self-signed serving certificate {shown} is not due ({})",
            residual(Some(&cert), now)
        );
        return Ok(with_kubelet_rows(out, req, now));
    };
    // the node's name is needed to wait for it after the restart: missing, the run stops before writing
    let node = match req.restart_kubelet {
        true => Some(node_of(req)?),
        false => None,
    };
    // 3. build
    let desired = desired(&cert, &host, req, now)?;
    if req.check_mode {
        out.certificates.push(row(&cert_path, &cert, now, Action::WouldRenew, Some(&reason)));
        out.diff.push(diff::entry(&shown.to_string(), diff::describe(&cert), diff::describe_desired(&desired)));
        let restart = if req.restart_kubelet { " and restart the kubelet" } else { "" };
        out.msg = format!("would renew the kubelet's self-signed serving certificate {shown} ({reason}){restart}");
        return Ok(with_kubelet_rows(out, req, now));
    }
    let (file_pem, leaf, key) = issue(&cert, &desired, &host, now)?;
    // 4. write
    let writes = [
        FileWrite { path: key_path.clone(), contents: key.pem().as_bytes().to_vec(), mode: MODE_SECRET },
        FileWrite { path: cert_path.clone(), contents: file_pem.into_bytes(), mode: MODE_PUBLIC },
    ];
    out.backup_files = super::finish::commit(&req.layout, &writes, req.backup, now)?;
    out.renewed = vec![KUBELET_SERVING.to_string()];
    out.certificates.push(row(&cert_path, &leaf, now, Action::Renewed, Some(&reason)));
    out.diff.push(diff::entry(&shown.to_string(), diff::describe(&cert), diff::describe(&leaf)));
    let what = format!(
        "renewed the kubelet's self-signed serving certificate {shown} ({reason}) until {}",
        rfc3339(leaf.not_after)
    );
    // 5. restart and wait
    match &node {
        Some(node) => {
            let conf = req.layout.kubeconfig_dir.join("kubelet.conf");
            let back = Back {
                kubeconfig_dir: &req.layout.kubeconfig_dir,
                node,
                since: now,
                timeout: req.timeout,
                own: &|| kubelet_conf_credentials(&conf),
                serves: Some((port, &leaf.der)),
            };
            restart_and_wait(&back)
                .map_err(|e| Error::Restart(format!("{e} ({what}: it is in place, and a rerun finds it not due)")))?;
            out.msg = format!("{what}; the kubelet restarted, serves it on {port} and node {node} is back");
        }
        None => {
            out.warnings.push(
                "the kubelet was not restarted (restart_kubelet: false): it serves the new certificate from its next \
                 start"
                    .into(),
            );
            out.msg = what;
        }
    }
    Ok(with_kubelet_rows(out, req, now))
}

/// Why a serving certificate that is not the kubelet's self-signed one is not renewed here, and what renews it.
fn refusal(kubelet_dir: &Path, serving: &Serving, now: DateTime<Utc>) -> Error {
    let config = kubelet_dir.join("config.yaml");
    let state = |path: &Path| match Certificate::read(path) {
        Ok(c) => format!("{} {}", path.display(), residual(Some(&c), now)),
        Err(_) => format!("{} missing", path.display()),
    };
    match serving {
        Serving::Given(path) => Error::invalid(
            &config,
            format!(
                "sets tlsCertFile: the kubelet serves a certificate of someone's own ({}), which kubeadm-certs does \
                 not issue. Renew it where it was issued, put it in place and restart the kubelet (systemctl restart \
                 kubelet)",
                state(path)
            ),
        ),
        Serving::Bootstrap(path) => Error::invalid(
            &config,
            format!(
                "sets serverTLSBootstrap: the kubelet requests its serving certificate from the cluster and renews it \
                 itself ({}). What it needs is someone to approve its kubernetes.io/kubelet-serving requests: \
                 `kubeadm-certs approve kubelet-serving` on a control-plane node (module state approve; the schedule \
                 role's schedule_approve_kubelet_serving)",
                state(path)
            ),
        ),
        Serving::SelfSigned { .. } => unreachable!("the self-signed pair is renewed, not refused"),
    }
}

/// The host the kubelet named its certificate after, when `cert` is the kubelet's own make: a leaf `CN=HOST@UNIX`
/// issued by the `CN=HOST-ca@UNIX` CA the file carries after it (client-go since 2017), or a certificate `CN=HOST@UNIX`
/// signed by itself (older kubelets). Anything else was put there by someone; why, when so.
fn kubelets_own(cert: &Certificate) -> std::result::Result<String, String> {
    let Some(host) = cert.subject.common_name().and_then(|cn| stamped(cn, "")) else {
        return Err(format!("its subject is \"{}\", not the kubelet's CN=HOST@UNIX-TIME", cert.subject));
    };
    if cert.issuer_raw == cert.subject_raw {
        return crate::pki::verify::issued_by(cert, cert)
            .map(|_| host.to_string())
            .map_err(|e| format!("it names itself as its issuer, but {e}"));
    }
    let ca = cert.chain_rest.first().and_then(|der| Certificate::from_der(Path::new("kubelet.crt"), der).ok());
    let Some(ca) =
        ca.filter(|ca| ca.is_ca() && ca.subject.common_name().and_then(|cn| stamped(cn, "-ca")) == Some(host))
    else {
        return Err(format!(
            "it is issued by \"{}\", not by the kubelet's own CN={host}-ca@UNIX-TIME carried after it",
            cert.issuer
        ));
    };
    crate::pki::verify::issued_by(cert, &ca)
        .and_then(|_| crate::pki::verify::issued_by(&ca, &ca))
        .map(|_| host.to_string())
        .map_err(|e| format!("its chain does not verify: {e}"))
}

/// `HOST` of `HOST{suffix}@DIGITS`.
fn stamped<'a>(cn: &'a str, suffix: &str) -> Option<&'a str> {
    let (name, time) = cn.rsplit_once('@')?;
    let host = name.strip_suffix(suffix)?;
    (!host.is_empty() && !time.is_empty() && time.bytes().all(|b| b.is_ascii_digit())).then_some(host)
}

/// Why the kubelet could not serve with `key_path` and `cert` (it would fail to start), or `None`.
fn unusable_key(key_path: &Path, cert: &Certificate) -> Result<Option<String>> {
    if !pki::exists(key_path)? {
        return Ok(Some(format!("{} is missing", key_path.display())));
    }
    let bytes = pki::read_file(key_path, Links::Refuse)?;
    Ok(match key::belongs_to(key_path, &bytes, &cert.public_key_raw) {
        Ok(true) => None,
        Ok(false) => Some(format!("{} is not the certificate's key", key_path.display())),
        Err(e) => Some(format!("{e}")),
    })
}

/// The leaf to issue: the old one's subject with the host stamped now, its SANs and usages, a key of its
/// algorithm (or the one asked for).
fn desired(cert: &Certificate, host: &str, req: &KubeletServingRequest, now: DateTime<Utc>) -> Result<Desired> {
    let key_algorithm = match req.key_algorithm {
        Some(a) => a,
        None => KeyAlgorithm::of(cert.key_kind).ok_or_else(|| {
            Error::Usage(format!(
                "the kubelet's serving key is {}, which kubeadm-certs does not make: choose --key-algorithm \
                 (key_algorithm: {})",
                cert.key_kind,
                KeyAlgorithm::NAMES
            ))
        })?,
    };
    let ext_key_usage =
        if cert.ext_key_usage.is_empty() { vec![EKU_SERVER_AUTH.to_string()] } else { cert.ext_key_usage.clone() };
    Ok(Desired {
        subject: stamped_name(&cert.subject, host, "", now),
        dns_names: cert.dns_names.clone(),
        ip_addresses: cert.ip_addresses.clone(),
        ext_key_usage,
        key_algorithm,
        basic_constraints: cert.basic_constraints.is_some(),
        not_before: now - BACKDATE,
        not_after: now + req.validity.as_chrono(),
        clamped_to_ca: false,
    })
}

/// `name` with its common name `HOST{suffix}@UNIX` as of `now`, its string type kept (Go writes a UTF8String:
/// `@` is no PrintableString character); a name without one gets only the common name.
fn stamped_name(name: &Name, host: &str, suffix: &str, now: DateTime<Utc>) -> Name {
    let value = format!("{host}{suffix}@{}", now.timestamp());
    let tag = name.0.iter().find(|a| a.oid == OID_CN).map(|a| a.tag).unwrap_or(12);
    Name(vec![NameAttr { oid: OID_CN.to_string(), tag, value }])
}

/// Step 3: the throwaway CA and the leaf it signs, as the kubelet's file holds them (leaf, then CA), the leaf
/// parsed back, and the leaf's key. The CA's key is dropped here: nothing can sign with it again.
fn issue(
    old: &Certificate,
    desired: &Desired,
    host: &str,
    now: DateTime<Utc>,
) -> Result<(String, Certificate, PrivateKey)> {
    let path = Path::new(SELF_SIGNED_CERT);
    let bad = |why: String| Error::Crypto(format!("{KUBELET_SERVING}: {why}; nothing was written"));
    let mut keys = PrivateKey::generate_many(&[KeyAlgorithm::Rsa2048, desired.key_algorithm])?.into_iter();
    let (ca_key, key) = (keys.next().expect("two keys"), keys.next().expect("two keys"));
    let ca_subject = stamped_name(&old.subject, host, "-ca", now);
    let ca_der = self_signed_ca(&ca_subject, &ca_key, desired.not_before, desired.not_after).map_err(&bad)?;
    let ca = Certificate::from_der(path, &ca_der)?;
    let leaf_der = sign_local(desired, key.pair(), &ca, &ca_key).map_err(&bad)?;
    let leaf = Certificate::from_der(path, &leaf_der)?;
    crate::pki::verify::issued_by(&leaf, &ca).map_err(|e| bad(format!("the new certificate does not verify: {e}")))?;
    if !key.matches(&leaf.public_key_raw)
        || leaf.sans() != old.sans()
        || kubelets_own(&leaf_with(&leaf, &ca_der)).is_err()
    {
        return Err(bad("the new certificate is not what was asked for".into()));
    }
    let pem = pem_encode("CERTIFICATE", &leaf_der) + &pem_encode("CERTIFICATE", &ca_der);
    Ok((pem, leaf_with(&leaf, &ca_der), key))
}

/// `leaf` as read back from the file it goes to: the CA after it.
fn leaf_with(leaf: &Certificate, ca_der: &[u8]) -> Certificate {
    Certificate { chain_rest: vec![ca_der.to_vec()], ..leaf.clone() }
}

/// The node whose Lease and Ready condition prove the kubelet back: asked for, or `kubelet.conf`'s.
fn node_of(req: &KubeletServingRequest) -> Result<String> {
    let mut warnings = Vec::new();
    let found = kubelet::client(&req.layout.kubeconfig_dir, &mut warnings);
    node_name(req.node_name.as_ref(), found.cert.as_ref(), &req.layout.kubeconfig_dir.join("kubelet.conf"))
}

/// The report's row for the serving certificate, as renew's rows are.
fn row(path: &Path, cert: &Certificate, now: DateTime<Utc>, action: Action, reason: Option<&str>) -> CertReport {
    let residual = (cert.not_after - now).num_seconds();
    CertReport {
        name: KUBELET_SERVING.to_string(),
        kind: "cert",
        path: path.display().to_string(),
        subject: Some(cert.subject.to_string()),
        sans: cert.sans(),
        serial: Some(cert.serial_hex.clone()),
        not_before: Some(rfc3339(cert.not_before)),
        not_after: Some(rfc3339(cert.not_after)),
        residual_seconds: Some(residual),
        residual: Some(duration::human(residual)),
        ca: ISSUER,
        key_algorithm: Some(cert.key_kind.to_string()),
        externally_managed: false,
        missing: false,
        action,
        reason: reason.map(String::from),
    }
}

/// `out` with the kubelet's certificates as `check` reports them after the run.
fn with_kubelet_rows(mut out: Outcome, req: &KubeletServingRequest, now: DateTime<Utc>) -> Outcome {
    let (rows, warnings) = kubelet::certificates(&req.kubelet_dir, &req.layout.kubeconfig_dir, now);
    out.kubelet = rows;
    out.warnings.extend(warnings);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelets_stamp_is_host_at_unix_time() {
        assert_eq!(stamped("cp1@1700000000", ""), Some("cp1"));
        assert_eq!(stamped("cp1-ca@1700000000", "-ca"), Some("cp1"));
        assert_eq!(stamped("10.0.0.5@1", ""), Some("10.0.0.5"));
        assert_eq!(stamped("user@example.com@17", ""), Some("user@example.com"));
        for no in ["cp1", "cp1@", "@17", "cp1@17x"] {
            assert_eq!(stamped(no, ""), None, "{no}");
        }
        assert_eq!(stamped("cp1@17", "-ca"), None, "a leaf's name is no CA's");
    }

    #[test]
    fn a_new_pair_is_what_the_kubelet_makes_with_the_old_sans_and_a_later_end() {
        let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        let old_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["cp1".to_string()]).unwrap();
        p.subject_alt_names.push(rcgen::SanType::IpAddress("10.0.0.5".parse().unwrap()));
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, "cp1@1600000000");
        let old_der = p.self_signed(old_key.pair()).unwrap().der().to_vec();
        let old = Certificate::from_der(Path::new("old"), &old_der).unwrap();
        assert_eq!(kubelets_own(&old).unwrap(), "cp1", "an older kubelet's: signed by itself");
        let req = KubeletServingRequest {
            layout: crate::pki::Layout::new("/nonexistent/pki", "/nonexistent"),
            kubelet_dir: "/nonexistent/kubelet".into(),
            node_name: None,
            renew_before: crate::duration::Span::days(90),
            force: true,
            validity: crate::duration::Span::days(365),
            key_algorithm: None,
            backup: false,
            check_mode: false,
            lock_timeout: crate::duration::Span(1),
            restart_kubelet: false,
            timeout: crate::duration::Span(1),
        };
        let d = desired(&old, "cp1", &req, now).unwrap();
        assert_eq!(d.key_algorithm, KeyAlgorithm::EcdsaP256, "the old key's algorithm");
        let (pem_text, leaf, key) = issue(&old, &d, "cp1", now).unwrap();
        assert_eq!(leaf.subject.to_string(), format!("CN=cp1@{}", now.timestamp()));
        assert_eq!(leaf.issuer.to_string(), format!("CN=cp1-ca@{}", now.timestamp()));
        assert_eq!(leaf.sans(), ["DNS:cp1", "IP:10.0.0.5"]);
        assert_eq!(leaf.ext_key_usage, [EKU_SERVER_AUTH]);
        assert_eq!(leaf.not_before, now - BACKDATE);
        assert_eq!(leaf.not_after, now + Duration::days(365));
        assert!(key.matches(&leaf.public_key_raw) && !old_key.matches(&leaf.public_key_raw), "a new key");
        let blocks = pem::parse_many(pem_text.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 2, "the leaf, then its CA");
        let read_back = Certificate::from_file_bytes(Path::new("kubelet.crt"), pem_text.as_bytes()).unwrap();
        assert_eq!(kubelets_own(&read_back).unwrap(), "cp1", "the kubelet's own shape, as a rerun reads it");
        assert!(!pem_text.contains("PRIVATE KEY"));
    }
}
