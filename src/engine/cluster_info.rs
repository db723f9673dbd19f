//! `renew ca --cluster-info`: the `cluster-info` ConfigMap in `kube-public` is what `kubeadm join` trusts before
//! it has any credentials; its kubeconfig carries the cluster CA certificate (`certificate-authority-data`). After
//! `ca` is renewed or installed it gets the certificate on disk, through the apiserver (no kubectl on the node).
//! Only a certificate of the same CA (the same subject and public key) is replaced, as in the kubeconfigs
//! (`pki::kubeconfig::with_ca_replaced`); a ConfigMap trusting another CA is left alone and said so.
//! kube-controller-manager's bootstrap signer signs the new content again for each bootstrap token
//! (`jws-kubeconfig-*` keys). Whatever happens here happens after the PKI's transaction: it never fails the run,
//! it is reported (`cluster_info.action`: `failed` or `refused`, with the reason), and the next run converges it.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::Value;

use crate::kube::client::Client;
use crate::kube::credentials::Credentials;
use crate::pki::cert::Certificate;
use crate::pki::kubeconfig::with_ca_replaced;

const PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
const WHERE: &str = "the cluster-info ConfigMap (kube-public)";
const CONNECT: std::time::Duration = std::time::Duration::from_secs(10);
const CALL: std::time::Duration = std::time::Duration::from_secs(30);

/// What became of `cluster-info`: `action` is `none`, `updated`, `would_update`, `refused` (it trusts another CA)
/// or `failed` (the apiserver could not be asked or refused the update); `reason` says why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClusterInfoReport {
    pub action: &'static str,
    pub reason: String,
}

impl ClusterInfoReport {
    fn new(action: &'static str, reason: impl Into<String>) -> Self {
        ClusterInfoReport { action, reason: reason.into() }
    }
    pub fn failed(why: String) -> Self {
        ClusterInfoReport::new("failed", format!("{WHERE} was not updated: {why}"))
    }
    /// Whether the run changed it (or, in check mode, would).
    pub fn changed(&self) -> bool {
        matches!(self.action, "updated" | "would_update")
    }
    /// Whether the operator must look (`warnings`).
    pub fn trouble(&self) -> bool {
        matches!(self.action, "refused" | "failed")
    }
}

/// What the kubeconfig text of `cluster-info` holds of the CA `ca`.
#[derive(Debug, PartialEq)]
enum Holds {
    /// `ca` itself (every cluster that embeds a certificate of this CA embeds this one).
    Current,
    /// An older certificate of the same CA (same subject and public key), to be replaced: its DER.
    Older(Vec<u8>),
    /// No certificate of this CA: what it holds instead.
    Other(String),
}

/// Reads the certificates every cluster of `kubeconfig` embeds and finds those of `ca`'s CA.
fn holds(kubeconfig: &str, ca: &Certificate) -> Result<Holds, String> {
    let held = held_certificates(kubeconfig)?;
    let same_ca = |c: &&Certificate| c.public_key_raw == ca.public_key_raw && c.subject_raw == ca.subject_raw;
    let older = held.iter().filter(|c| c.der != ca.der).find(same_ca).map(|c| c.der.clone());
    let others: Vec<String> = held
        .iter()
        .filter(|c| c.der != ca.der && !same_ca(c))
        .map(|c| format!("\"{}\" (serial {})", c.subject, c.serial_hex))
        .collect();
    let current = held.iter().any(|c| c.der == ca.der);
    Ok(match (older, current) {
        (Some(der), _) => Holds::Older(der),
        (None, true) => Holds::Current,
        (None, false) if others.is_empty() => Holds::Other("no certificate-authority-data".into()),
        (None, false) => Holds::Other(others.join(", ")),
    })
}

/// What `cluster-info` is now: the client that read it, the object, and its kubeconfig text.
struct Fetched {
    client: Client,
    body: Value,
    text: String,
}

fn next_command(credentials: &Path) -> String {
    format!(
        "kubectl --kubeconfig {} -n kube-public get configmap cluster-info -o yaml shows it; run again once it can \
         be reached",
        credentials.display()
    )
}

/// Reads `cluster-info` with `credentials`; the report to return instead when it cannot (or does not exist).
fn fetch(credentials: &Path) -> Result<Fetched, ClusterInfoReport> {
    let next = next_command(credentials);
    let failed = |why: String| ClusterInfoReport::new("failed", format!("{WHERE} was not updated: {why}; {next}"));
    let client = Credentials::read(credentials)
        .and_then(|c| Client::with_timeouts(&c, CONNECT, CALL))
        .map_err(|e| failed(e.to_string()))?;
    let reply = client.get(PATH).map_err(|e| failed(format!("GET {PATH}: {e}")))?;
    if reply.status == 404 {
        return Err(ClusterInfoReport::new(
            "none",
            format!("{WHERE} does not exist (a cluster not made by kubeadm init)"),
        ));
    }
    if !reply.ok() {
        return Err(failed(format!("GET {PATH}: {} {}", reply.status, reply.message())));
    }
    let Some(text) = reply.body.pointer("/data/kubeconfig").and_then(Value::as_str).map(str::to_string) else {
        return Err(failed("it has no data.kubeconfig".into()));
    };
    Ok(Fetched { client, body: reply.body, text })
}

/// Writes `contents` as `cluster-info`'s kubeconfig; `done` says what it now holds.
fn store(credentials: &Path, fetched: Fetched, contents: Vec<u8>, done: String) -> ClusterInfoReport {
    let failed = |why: String| {
        ClusterInfoReport::new("failed", format!("{WHERE} was not updated: {why}; {}", next_command(credentials)))
    };
    let Ok(contents) = String::from_utf8(contents) else { return failed("its new kubeconfig is not text".into()) };
    let mut body = fetched.body;
    body["data"]["kubeconfig"] = Value::String(contents);
    // metadata.resourceVersion stays: a concurrent change makes this a 409, never a lost update
    match fetched.client.put(PATH, &body) {
        Ok(r) if r.ok() => {
            ClusterInfoReport::new("updated", format!("{WHERE} {done} (its bootstrap signatures follow)"))
        }
        Ok(r) => failed(format!("PUT {PATH}: {} {}", r.status, r.message())),
        Err(e) => failed(format!("PUT {PATH}: {e}")),
    }
}

/// Brings `cluster-info` to `ca` (the certificate on disk after the run; in check mode, with `due`, the one a
/// renewal would replace). `credentials`: a kubeconfig allowed to update ConfigMaps in `kube-public`.
pub fn converge(credentials: &Path, ca: &Certificate, due: bool, check_mode: bool) -> ClusterInfoReport {
    let fetched = match fetch(credentials) {
        Ok(f) => f,
        Err(report) => return report,
    };
    let failed = |why: String| {
        ClusterInfoReport::new("failed", format!("{WHERE} was not updated: {why}; {}", next_command(credentials)))
    };
    let old_der = match holds(&fetched.text, ca) {
        Err(why) => return failed(why),
        Ok(Holds::Other(what)) => {
            return ClusterInfoReport::new(
                "refused",
                format!(
                    "{WHERE} trusts another CA than {} (it holds {what}): left alone; kubeadm join trusts what it \
                     holds. Compare it with ca.crt ({})",
                    ca.subject,
                    next_command(credentials)
                ),
            );
        }
        Ok(Holds::Current) if due && check_mode => ca.der.clone(),
        Ok(Holds::Current) => {
            return ClusterInfoReport::new(
                "none",
                format!("{WHERE} holds the CA certificate (serial {})", ca.serial_hex),
            );
        }
        Ok(Holds::Older(der)) => der,
    };
    if check_mode {
        return ClusterInfoReport::new("would_update", format!("{WHERE} would get the renewed CA certificate"));
    }
    let follow = match with_ca_replaced(Path::new(WHERE), fetched.text.as_bytes(), &old_der, &ca.der) {
        Ok(f) => f,
        Err(e) => return failed(e.to_string()),
    };
    let Some(contents) = follow.contents else {
        return failed("no cluster of its kubeconfig embeds the CA certificate replaced".into());
    };
    store(credentials, fetched, contents, format!("got the CA certificate serial {}", ca.serial_hex))
}

/// During a rotation of `ca` (`engine::ca_rotate`): `cluster-info` comes to trust exactly `bundle` (the CA file's
/// certificates after this node's step: both while the nodes trust both, so that a node joining meanwhile verifies
/// either; the new one alone at the end). Only when every CA certificate it holds now is one of `known` (the
/// rotation's two): a ConfigMap trusting anything else is left alone and said so.
pub fn follow_rotation(
    credentials: &Path,
    known: &[Vec<u8>],
    bundle: &[Vec<u8>],
    check_mode: bool,
) -> ClusterInfoReport {
    let fetched = match fetch(credentials) {
        Ok(f) => f,
        Err(report) => return report,
    };
    let contents = match rotation_follow(&fetched.text, known, bundle, &next_command(credentials)) {
        Ok(Some(contents)) => contents,
        Ok(None) => {
            return ClusterInfoReport::new(
                "none",
                format!("{WHERE} trusts the CA file's {} certificate(s)", bundle.len()),
            );
        }
        Err(report) => return report,
    };
    if check_mode {
        return ClusterInfoReport::new(
            "would_update",
            format!("{WHERE} would trust the CA file's {} certificate(s)", bundle.len()),
        );
    }
    store(credentials, fetched, contents, format!("trusts the CA file's {} certificate(s)", bundle.len()))
}

/// `cluster-info`'s kubeconfig text trusting exactly `bundle`, None when it does already; the report instead when
/// it holds a certificate outside `known` (or none): the decision of [`follow_rotation`], without the API. `next`:
/// how the operator looks at it.
fn rotation_follow(
    text: &str,
    known: &[Vec<u8>],
    bundle: &[Vec<u8>],
    next: &str,
) -> Result<Option<Vec<u8>>, ClusterInfoReport> {
    let held = held_certificates(text).map_err(ClusterInfoReport::failed)?;
    if let Some(other) = held.iter().find(|c| !known.contains(&c.der)) {
        return Err(ClusterInfoReport::new(
            "refused",
            format!(
                "{WHERE} trusts a CA certificate that is neither the old nor the new one of this rotation (\"{}\", \
                 serial {}): left alone; kubeadm join trusts what it holds ({next})",
                other.subject, other.serial_hex
            ),
        ));
    }
    let Some(member) = held.first() else {
        return Err(ClusterInfoReport::new(
            "refused",
            format!("{WHERE} holds no certificate-authority-data: left alone"),
        ));
    };
    crate::pki::kubeconfig::with_ca_bundle(Path::new(WHERE), text.as_bytes(), &member.der, bundle)
        .map(|follow| follow.contents)
        .map_err(|e| ClusterInfoReport::failed(e.to_string()))
}

/// Every CA certificate the clusters of `kubeconfig` embed.
fn held_certificates(kubeconfig: &str) -> Result<Vec<Certificate>, String> {
    let doc: serde_norway::Value =
        serde_norway::from_str(kubeconfig).map_err(|e| format!("its kubeconfig is not valid YAML: {e}"))?;
    let mut out: Vec<Certificate> = Vec::new();
    for entry in doc.get("clusters").and_then(|c| c.as_sequence()).into_iter().flatten() {
        let Some(data) =
            entry.get("cluster").and_then(|c| c.get("certificate-authority-data")).and_then(|d| d.as_str())
        else {
            continue;
        };
        let pem_bytes =
            B64.decode(data.trim()).map_err(|e| format!("certificate-authority-data is not base64: {e}"))?;
        let blocks =
            ::pem::parse_many(&pem_bytes).map_err(|e| format!("certificate-authority-data is not PEM: {e}"))?;
        for block in blocks.iter().filter(|b| b.tag() == "CERTIFICATE") {
            let cert = Certificate::from_der(Path::new(WHERE), block.contents()).map_err(|e| e.to_string())?;
            if !out.iter().any(|c| c.der == cert.der) {
                out.push(cert);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(days: i64) -> (Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        (issue(&key, days, "kubernetes"), key)
    }

    fn issue(key: &rcgen::KeyPair, days: i64, cn: &str) -> Certificate {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_after = rcgen::date_time_ymd(2030, 1, 1) + time::Duration::days(days);
        let cert = params.self_signed(key).unwrap();
        Certificate::from_der(Path::new("t"), cert.der()).unwrap()
    }

    fn kubeconfig(certs: &[&Certificate]) -> String {
        let pem: String = certs.iter().map(|c| c.pem()).collect();
        format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://k8s-api:6443\n  name: \"\"\n\
             contexts: null\ncurrent-context: \"\"\nkind: Config\npreferences: {{}}\nusers: null\n",
            B64.encode(pem)
        )
    }

    #[test]
    fn an_older_certificate_of_the_same_ca_is_replaced_and_the_current_one_kept() {
        let (old, key) = ca(0);
        let new = issue(&key, 3650, "kubernetes");
        assert_eq!(holds(&kubeconfig(&[&old]), &new), Ok(Holds::Older(old.der.clone())));
        assert_eq!(holds(&kubeconfig(&[&new]), &new), Ok(Holds::Current));
    }

    #[test]
    fn another_ca_is_never_replaced() {
        let (other, _) = ca(0);
        let (mine, _) = ca(0);
        assert!(matches!(holds(&kubeconfig(&[&other]), &mine), Ok(Holds::Other(what)) if what.contains("kubernetes")));
        let (_, key) = ca(0);
        let renamed = issue(&key, 0, "not-kubernetes");
        let same_key = issue(&key, 10, "kubernetes");
        assert!(matches!(holds(&kubeconfig(&[&renamed]), &same_key), Ok(Holds::Other(_))));
    }

    #[test]
    fn data_that_is_not_base64_of_pem_fails_naming_the_field() {
        let (mine, _) = ca(0);
        let bad = "clusters:\n- cluster:\n    certificate-authority-data: '%%%'\n  name: x\n";
        assert!(holds(bad, &mine).unwrap_err().contains("certificate-authority-data is not base64"));
    }

    /// The CA certificates `cluster-info`'s kubeconfig text trusts, in order.
    fn trusted(text: &[u8]) -> Vec<Vec<u8>> {
        held_certificates(std::str::from_utf8(text).unwrap()).unwrap().into_iter().map(|c| c.der).collect()
    }

    #[test]
    fn during_a_rotation_cluster_info_trusts_the_ca_files_bundle_and_only_the_rotations_cas_are_replaced() {
        let (old, _) = ca(0);
        let (new, _) = ca(3650);
        let known = [old.der.clone(), new.der.clone()];
        let both = [old.der.clone(), new.der.clone()];
        // phase a: OLD alone becomes OLD and NEW (a node joining meanwhile verifies either)
        let text = rotation_follow(&kubeconfig(&[&old]), &known, &both, "n").unwrap().expect("a change");
        assert_eq!(trusted(&text), both.to_vec());
        // run again: nothing to do
        assert_eq!(rotation_follow(std::str::from_utf8(&text).unwrap(), &known, &both, "n").unwrap(), None);
        // phase c: NEW alone
        let text =
            rotation_follow(&kubeconfig(&[&old, &new]), &known, std::slice::from_ref(&new.der), "n").unwrap().unwrap();
        assert_eq!(trusted(&text), vec![new.der.clone()]);
        // the server and the rest of the kubeconfig are kept
        assert!(std::str::from_utf8(&text).unwrap().contains("server: https://k8s-api:6443"));
    }

    #[test]
    fn a_cluster_info_trusting_another_ca_or_none_is_left_alone_and_said_so() {
        let (old, _) = ca(0);
        let (new, _) = ca(3650);
        let (foreign, _) = ca(1);
        let known = [old.der.clone(), new.der.clone()];
        let refused = rotation_follow(&kubeconfig(&[&old, &foreign]), &known, &known, "kubectl shows it").unwrap_err();
        assert_eq!(refused.action, "refused");
        assert!(refused.reason.contains("neither the old nor the new") && refused.reason.contains("kubectl shows it"));
        assert!(refused.reason.contains(&foreign.serial_hex), "{}", refused.reason);
        let none =
            "apiVersion: v1\nclusters:\n- cluster:\n    server: https://k8s-api:6443\n  name: \"\"\nkind: Config\n";
        let refused = rotation_follow(none, &known, &known, "n").unwrap_err();
        assert!(refused.reason.contains("holds no certificate-authority-data"), "{}", refused.reason);
    }
}
