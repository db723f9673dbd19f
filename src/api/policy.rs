//! Which signer a certificate's request names, and what a signer cannot issue correctly: said before a
//! key is generated or a request created. The built-in signer for kubeadm's client certificates is
//! `kubernetes.io/kube-apiserver-client` (kube-controller-manager, `--cluster-signing-cert-file`): it
//! issues client certificates only, signs with the cluster CA only, and kube-apiserver's
//! CertificateSubjectRestriction admission refuses it any request for the `system:masters` group.
//! Another signer (cert-manager, a custom one) is the user's to name; whatever it returns, the engine
//! checks the certificate chains to the right CA on disk before installing it.

use crate::error::{Error, Result};
use crate::inventory::{CaId, CertSpec, Usage};
use crate::pki::cert::OID_O;
use crate::pki::key::KeyAlgorithm;

pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
const KUBELET_SIGNERS: &[&str] = &["kubernetes.io/kube-apiserver-client-kubelet", "kubernetes.io/kubelet-serving"];
const LEGACY_UNKNOWN: &str = "kubernetes.io/legacy-unknown";

/// A signerName as the apiserver accepts it: `DOMAIN/PATH`, the domain a DNS subdomain.
pub fn check_signer_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Usage(format!("invalid signer_name {name:?}: {why}")));
    let Some((domain, path)) = name.split_once('/') else {
        return bad("a signer name is DOMAIN/PATH, e.g. kubernetes.io/kube-apiserver-client");
    };
    if !crate::request::is_dns_subdomain(domain) {
        return bad("its domain part must be a lowercase DNS name");
    }
    if path.is_empty() || path.chars().any(char::is_whitespace) {
        return bad("its path part must be non-empty, without spaces");
    }
    Ok(())
}

/// The signerName for `spec`, or why that signer cannot issue it correctly.
pub fn signer_name(spec: &CertSpec, organizations: &[&str], chosen: Option<&str>) -> Result<String, String> {
    let name = chosen.unwrap_or(KUBE_APISERVER_CLIENT);
    if name == KUBE_APISERVER_CLIENT {
        if spec.usages.contains(&Usage::ServerAuth) {
            return Err(format!(
                "it is a serving certificate: {KUBE_APISERVER_CLIENT} issues client certificates only and no \
                 built-in signer issues serving certificates; renew it locally, or give signer_name of a signer \
                 that issues them with {}",
                ca_phrase(spec.ca)
            ));
        }
        if spec.ca != CaId::Ca {
            return Err(format!(
                "it is signed by {ca}, and {KUBE_APISERVER_CLIENT} signs with the cluster CA (ca) only; \
                 renew it locally, or give signer_name of a signer that uses {ca}",
                ca = ca_phrase(spec.ca)
            ));
        }
        if organizations.contains(&"system:masters") {
            return Err(format!(
                "its subject has O=system:masters, and kube-apiserver refuses {KUBE_APISERVER_CLIENT} requests \
                 for that group (CertificateSubjectRestriction admission); renew it locally"
            ));
        }
    } else if KUBELET_SIGNERS.contains(&name) {
        return Err(format!("{name} issues kubelet certificates only (CN system:node:NAME, O system:nodes)"));
    } else if name == LEGACY_UNKNOWN {
        return Err(format!("{name} cannot be requested through certificates.k8s.io/v1"));
    } else if name.starts_with("kubernetes.io/") {
        return Err(format!(
            "Kubernetes has no signer {name} (built in: {KUBE_APISERVER_CLIENT}, {})",
            KUBELET_SIGNERS.join(", ")
        ));
    }
    Ok(name.to_string())
}

fn ca_phrase(ca: CaId) -> String {
    match ca {
        CaId::Ca => "the cluster CA (ca)".into(),
        other => format!("the {} CA", other.name()),
    }
}

/// The subject's organizations, for [`signer_name`].
pub fn organizations(subject: &crate::pki::cert::Name) -> Vec<&str> {
    subject.0.iter().filter(|a| a.oid == OID_O).map(|a| a.value.as_str()).collect()
}

/// `spec.usages` as kubeadm would set them: digital signature, key encipherment for RSA keys (newer
/// kubeadm drops it for ECDSA), and the extended key usages of the inventory.
pub fn usages(spec: &CertSpec, key: KeyAlgorithm) -> Vec<&'static str> {
    let mut u = vec!["digital signature"];
    if key.is_rsa() {
        u.push("key encipherment");
    }
    for usage in spec.usages {
        u.push(match usage {
            Usage::ServerAuth => "server auth",
            Usage::ClientAuth => "client auth",
        });
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::find;

    fn refusal(name: &str, orgs: &[&str], chosen: Option<&str>) -> String {
        signer_name(find(name).unwrap(), orgs, chosen).unwrap_err()
    }

    #[test]
    fn the_built_in_signer_takes_kubeadm_client_certificates_of_the_cluster_ca() {
        for name in ["controller-manager.conf", "scheduler.conf"] {
            assert_eq!(signer_name(find(name).unwrap(), &[], None).unwrap(), KUBE_APISERVER_CLIENT);
        }
        let orgs = ["kubeadm:cluster-admins"];
        assert_eq!(signer_name(find("admin.conf").unwrap(), &orgs, None).unwrap(), KUBE_APISERVER_CLIENT);
    }

    #[test]
    fn what_the_built_in_signer_cannot_issue_is_said_with_the_reason() {
        assert!(refusal("admin.conf", &["system:masters"], None).contains("system:masters"));
        assert!(refusal("apiserver-kubelet-client", &["system:masters"], None).contains("system:masters"));
        assert!(refusal("front-proxy-client", &[], None).contains("front-proxy-ca CA"));
        assert!(refusal("apiserver-etcd-client", &["system:masters"], None).contains("etcd-ca CA"));
        assert!(refusal("apiserver", &[], None).contains("serving certificate"));
        assert!(refusal("etcd-server", &[], None).contains("serving certificate"));
        // naming the built-in signer explicitly changes nothing
        assert!(refusal("front-proxy-client", &[], Some(KUBE_APISERVER_CLIENT)).contains("front-proxy-ca"));
    }

    #[test]
    fn other_kubernetes_signers_are_refused_and_custom_ones_are_trusted_to_the_chain_check() {
        assert!(refusal("scheduler.conf", &[], Some("kubernetes.io/kubelet-serving")).contains("kubelet"));
        assert!(refusal("scheduler.conf", &[], Some("kubernetes.io/legacy-unknown")).contains("v1"));
        assert!(refusal("scheduler.conf", &[], Some("kubernetes.io/nope")).contains("no signer"));
        let custom = signer_name(find("etcd-server").unwrap(), &[], Some("example.com/etcd")).unwrap();
        assert_eq!(custom, "example.com/etcd");
    }

    #[test]
    fn signer_names_are_domain_slash_path() {
        assert!(check_signer_name("example.com/etcd-ca").is_ok());
        assert!(check_signer_name(KUBE_APISERVER_CLIENT).is_ok());
        for bad in ["", "no-slash", "/path", "Example.com/x", "example.com/", "a..b/x", "example.com/a b"] {
            assert!(check_signer_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn usages_are_kubeadms() {
        let s = find("scheduler.conf").unwrap();
        assert_eq!(usages(s, KeyAlgorithm::Rsa2048), ["digital signature", "key encipherment", "client auth"]);
        assert_eq!(usages(s, KeyAlgorithm::EcdsaP256), ["digital signature", "client auth"]);
        let e = find("etcd-peer").unwrap();
        assert_eq!(
            usages(e, KeyAlgorithm::Rsa2048),
            ["digital signature", "key encipherment", "server auth", "client auth"]
        );
    }
}
