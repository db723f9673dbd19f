//! kubeadm's own configuration (`--config FILE`: the InitConfiguration/ClusterConfiguration documents a cluster
//! was made with, `kubeadm.k8s.io/v1beta2` to `v1beta4`), for what it says about certificates:
//!
//! - `etcd.external`: etcd is not kubeadm's; its certificates and CA are left out of `all`, as kubeadm's
//!   `certs check-expiration` and `certs renew all` leave them out (renewal `manager.go`: etcd entries only with
//!   `Etcd.Local`).
//! - `certificateValidityPeriod` and `encryptionAlgorithm` (v1beta4, kubeadm 1.31+): what `kubeadm certs renew`
//!   issues there, so the defaults of `--validity` and of the key algorithm of new keys;
//!   `caCertificateValidityPeriod` (v1beta4) the lifetime of a renewed CA (`renew ca`).
//! - `apiServer.certSANs`, `etcd.local.serverCertSANs` / `peerCertSANs`: SANs the certificates must carry; a
//!   certificate lacking one has drifted from the configuration (`check` says so; `renew` adds the apiserver's).
//! - `kubernetesVersion`: the version `check` prints as, where no kube-apiserver manifest says it
//!   (`kubeadm_version`).

use std::path::{Path, PathBuf};

use serde_norway::Value;

use crate::duration::{self, Span};
use crate::error::{Error, Result};
use crate::inventory::CaId;
use crate::pki::key::KeyAlgorithm;
use crate::request::{DEFAULT_VALIDITY, San, Selection};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeadmConfig {
    pub path: PathBuf,
    pub external_etcd: bool,
    pub validity: Option<Span>,
    pub ca_validity: Option<Span>,
    pub key_algorithm: Option<KeyAlgorithm>,
    pub apiserver_sans: Vec<San>,
    pub etcd_server_sans: Vec<San>,
    pub etcd_peer_sans: Vec<San>,
    /// `kubernetesVersion` as written (`v1.28.7`, or a label such as `stable-1.28`): what `check` goes by on a
    /// node without a kube-apiserver manifest (`kubeadm_version`).
    pub kubernetes_version: Option<String>,
    /// `controlPlaneEndpoint` as written (`host`, `host:port`, `[v6]:port`): every apiserver certificate of the
    /// cluster must name its host (`engine::consistency`).
    pub control_plane_endpoint: Option<String>,
}

impl KubeadmConfig {
    pub fn read(path: &Path) -> Result<KubeadmConfig> {
        let bytes = crate::pki::read_file(path, crate::pki::Links::Follow)?;
        KubeadmConfig::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<KubeadmConfig> {
        let bad = |problem: String| Error::invalid(path, problem);
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not a kubeadm configuration: not UTF-8 text".into()))?;
        let mut cluster = None;
        for doc in serde_norway::Deserializer::from_str(text) {
            let v: Value = serde::Deserialize::deserialize(doc)
                .map_err(|e| bad(format!("not a valid kubeadm configuration: {e}")))?;
            let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
            if v.get("kind").and_then(Value::as_str) == Some("ClusterConfiguration")
                && api.starts_with("kubeadm.k8s.io/")
            {
                cluster = Some(v);
            }
        }
        // kubeadm defaults a missing ClusterConfiguration: local etcd, one year, RSA 2048
        let Some(c) = cluster else { return Ok(KubeadmConfig { path: path.to_path_buf(), ..Default::default() }) };
        let sans = |v: Option<&Value>, field: &str| -> Result<Vec<San>> {
            let Some(list) = v else { return Ok(Vec::new()) };
            let list = list.as_sequence().ok_or_else(|| bad(format!("{field} is not a list")))?;
            list.iter()
                .map(|s| {
                    let s = s.as_str().ok_or_else(|| bad(format!("{field}: {s:?} is not a string")))?;
                    San::parse(s).map_err(|e| bad(format!("{field}: {e}")))
                })
                .collect()
        };
        let period = |field: &str| match c.get(field).and_then(Value::as_str) {
            None => Ok(None),
            Some(s) => duration::parse(s).map(Some).map_err(|e| bad(format!("{field}: {e}"))),
        };
        let validity = period("certificateValidityPeriod")?;
        let ca_validity = period("caCertificateValidityPeriod")?;
        let key_algorithm = match c.get("encryptionAlgorithm").and_then(Value::as_str) {
            None => None,
            Some(s) => Some(KeyAlgorithm::parse(s).ok_or_else(|| {
                bad(format!(
                    "encryptionAlgorithm {s:?} is not one of RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384"
                ))
            })?),
        };
        let local = c.get("etcd").and_then(|e| e.get("local"));
        Ok(KubeadmConfig {
            path: path.to_path_buf(),
            external_etcd: c.get("etcd").and_then(|e| e.get("external")).is_some_and(|x| !x.is_null()),
            validity,
            ca_validity,
            key_algorithm,
            apiserver_sans: sans(c.get("apiServer").and_then(|a| a.get("certSANs")), "apiServer.certSANs")?,
            etcd_server_sans: sans(local.and_then(|l| l.get("serverCertSANs")), "etcd.local.serverCertSANs")?,
            etcd_peer_sans: sans(local.and_then(|l| l.get("peerCertSANs")), "etcd.local.peerCertSANs")?,
            kubernetes_version: c.get("kubernetesVersion").and_then(Value::as_str).map(String::from),
            control_plane_endpoint: c
                .get("controlPlaneEndpoint")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        })
    }

    /// Whether what `ca` signs (and `ca` itself) is not kubeadm's here: the etcd CA with an external etcd.
    pub fn leaves_out(&self, ca: CaId) -> bool {
        self.external_etcd && ca == CaId::EtcdCa
    }

    /// The SANs the configuration asks `name` to carry.
    pub fn sans_for(&self, name: &str) -> &[San] {
        match name {
            "apiserver" => &self.apiserver_sans,
            "etcd-server" => &self.etcd_server_sans,
            "etcd-peer" => &self.etcd_peer_sans,
            _ => &[],
        }
    }
}

/// What a configuration changes in a request: applied by both front doors, so that `--config FILE` and the
/// module's `config` mean the same.
impl KubeadmConfig {
    /// `all` without what an external etcd makes not kubeadm's; names typed stay as typed.
    pub fn selection(config: Option<&KubeadmConfig>, selection: Selection) -> Selection {
        match config {
            Some(c) if !selection.explicit => Selection {
                specs: selection.specs.into_iter().filter(|s| !c.leaves_out(s.ca)).collect(),
                explicit: false,
            },
            _ => selection,
        }
    }

    /// `renew`'s validity, key algorithm and apiserver SANs: what was asked for, else the configuration's,
    /// else kubeadm's defaults (a year; keep each key's algorithm). The configuration's `apiServer.certSANs`
    /// are required SANs like `--extra-san`.
    pub fn renew_defaults(
        config: Option<&KubeadmConfig>,
        validity: Option<Span>,
        key_algorithm: Option<Option<KeyAlgorithm>>,
        mut extra_sans: Vec<San>,
    ) -> (Span, Option<KeyAlgorithm>, Vec<San>) {
        let validity = validity.or(config.and_then(|c| c.validity)).unwrap_or(DEFAULT_VALIDITY);
        let key_algorithm = key_algorithm.unwrap_or(config.and_then(|c| c.key_algorithm));
        for san in config.map(|c| c.apiserver_sans.as_slice()).unwrap_or_default() {
            if !extra_sans.contains(san) {
                extra_sans.push(san.clone());
            }
        }
        (validity, key_algorithm, extra_sans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1beta4_cluster_configuration_gives_validity_algorithm_external_etcd_and_sans() {
        let text = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\n\
                    apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
                    certificateValidityPeriod: 2160h0m0s\ncaCertificateValidityPeriod: 43800h0m0s\n\
                    encryptionAlgorithm: ECDSA-P256\n\
                    controlPlaneEndpoint: lb.example.com:6443\n\
                    apiServer:\n  certSANs: [api.example.com, 192.0.2.10]\n\
                    etcd:\n  external:\n    endpoints: [https://192.0.2.20:2379]\n";
        let c = KubeadmConfig::parse(Path::new("c.yaml"), text.as_bytes()).unwrap();
        assert!(c.external_etcd);
        assert_eq!(c.validity, Some(Span::days(90)));
        assert_eq!(c.ca_validity, Some(Span::days(1825)));
        assert_eq!(c.key_algorithm, Some(KeyAlgorithm::EcdsaP256));
        assert_eq!(c.sans_for("apiserver").len(), 2);
        assert_eq!(c.control_plane_endpoint.as_deref(), Some("lb.example.com:6443"));
        let none =
            KubeadmConfig::parse(Path::new("c.yaml"), b"apiVersion: kubeadm.k8s.io/v1beta2\nkind: InitConfiguration\n")
                .unwrap();
        assert!(!none.external_etcd && none.validity.is_none() && none.key_algorithm.is_none());
        assert!(none.ca_validity.is_none());
        let err = KubeadmConfig::parse(
            Path::new("c.yaml"),
            b"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nencryptionAlgorithm: DSA\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("c.yaml: encryptionAlgorithm \"DSA\""), "{err}");
    }
}
