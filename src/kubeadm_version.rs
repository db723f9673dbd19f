//! Which Kubernetes version runs the control plane, and what that changes in kubeadm's own `certs
//! check-expiration` there, so that `check` on a node prints what that node's kubeadm prints.
//!
//! The version is the image tag of the node's kube-apiserver static pod (`KUBECONFIG_DIR/manifests/
//! kube-apiserver.yaml`, `image: registry.k8s.io/kube-apiserver:v1.28.7`, any registry or `imageRepository`),
//! else `kubernetesVersion` of the `--config` ClusterConfiguration, else unknown: current kubeadm. A worker has
//! no manifests: it goes by `--config`, else by current kubeadm (its rows are `!MISSING!` there either way, and
//! the kubelet's table after them is not kubeadm's).
//!
//! What depends on it, read off kubeadm's source (`cmd/kubeadm/app/cmd/certs.go`, `phases/certs/renewal/
//! manager.go`) and its changelogs:
//!
//! - `super-admin.conf` is a row from 1.29: kubernetes/kubernetes#121305 ("kubeadm: add support for separate
//!   super-admin.conf kubeconfig file", KEP 4214, graduated directly in 1.29) added it to the renewal manager's
//!   kubeconfig list, which check-expiration walks; kubeadm 1.28 has no such row. Below 1.29 the row is left out
//!   when the file is absent (the false `!MISSING! super-admin.conf` of issue 21), and kept when a file is there
//!   (made by hand: a credential that expires all the same).
//! - RESIDUAL TIME: `duration.ShortHumanDuration` up to 1.30 (certs.go's printer calls it for both tables, also
//!   in 1.30's `certTextPrinter`, the first version with `-o json`), `duration.HumanDuration` from 1.31:
//!   kubernetes/kubernetes#124652 ("add support for custom cert validity period in v1beta4": `In "certs
//!   show-expiration" use HumanDuration() to print more detailed durations instead of ShortHumanDuration()`).
//! - CERTIFICATE AUTHORITY of kubeconfig rows: blank until kubernetes/kubernetes#106891 set the handlers'
//!   `CAName` to `ca` (kubeadm 1.24), cherry-picked to 1.20–1.23 (#106923, #106924, #106925, #106926): in 1.21.8
//!   and 1.22.5 by their changelogs; 1.20.14 and 1.23.1 are the patch releases of the same December 2021 batch.
//!
//! `-o json|yaml` is kubeadm's `output.kubeadm.k8s.io/v1alpha3` document, which kubeadm prints from 1.30 on
//! (kubernetes/kubernetes#123372); older kubeadm has none. Its rows follow the version as the table's do (no
//! absent `super-admin.conf` below 1.29), its fields are the one document's (`caName: ca` on every row).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::duration;
use crate::inventory::CertSpec;
use crate::kubeadm_config::KubeadmConfig;

/// `major.minor.patch`, compared in that order. Pre-release and build suffixes (`-rc.1`, `+k3s1`, `-eks-…`) are
/// dropped: what changed kubeadm's output changed in a minor or patch release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version { major, minor, patch }
    }

    /// `v1.28.7`, `1.28.7`, `v1.29.0-rc.1`; `None` for anything else (`stable-1.28`, `latest`, a digest).
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let core = s.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let mut next = || -> Option<u32> {
            let p = parts.next()?;
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse().ok())?
        };
        let v = Version::new(next()?, next()?, next()?);
        parts.next().is_none().then_some(v)
    }

    /// The tag of a container image reference (`REGISTRY/PATH/NAME:TAG`, `…@sha256:…` has none).
    pub fn of_image(image: &str) -> Option<Version> {
        let image = image.trim();
        if image.contains('@') {
            return None;
        }
        let name = image.rsplit('/').next()?;
        let (_, tag) = name.split_once(':')?;
        Version::parse(tag)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The version found, and where: what `check` goes by, in the module's result as `kubernetes_version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Found {
    #[serde(serialize_with = "as_string")]
    pub version: Version,
    /// The manifest or configuration file it was read from.
    pub source: PathBuf,
}

fn as_string<S: serde::Serializer>(v: &Version, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The control plane's version on the node whose kubeconfig dir is `kubeconfig_dir`: its kube-apiserver
/// manifest's image tag, else the configuration's `kubernetesVersion`, else `None` (current kubeadm).
pub fn detect(kubeconfig_dir: &Path, config: Option<&KubeadmConfig>) -> Option<Found> {
    let manifest = kubeconfig_dir.join("manifests").join("kube-apiserver.yaml");
    if let Some(version) = of_manifest(&manifest) {
        return Some(Found { version, source: manifest });
    }
    let config = config?;
    Some(Found { version: Version::parse(config.kubernetes_version.as_deref()?)?, source: config.path.clone() })
}

/// The image tag of the manifest's kube-apiserver container (the first container when none has that name).
/// Reading it only chooses a format: a manifest that cannot be read or parsed is no version, never an error.
fn of_manifest(path: &Path) -> Option<Version> {
    let bytes = crate::pki::read_file(path, crate::pki::Links::Follow).ok()?;
    let doc: serde_norway::Value = serde_norway::from_slice(&bytes).ok()?;
    let containers = doc.get("spec")?.get("containers")?.as_sequence()?;
    let named = |c: &&serde_norway::Value| c.get("name").and_then(|n| n.as_str()) == Some("kube-apiserver");
    let container = containers.iter().find(named).or_else(|| containers.first())?;
    Version::of_image(container.get("image")?.as_str()?)
}

/// What kubeadm's `certs check-expiration` of a version prints; the default is current kubeadm's (1.31+).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dialect {
    version: Option<Version>,
}

const SUPER_ADMIN: Version = Version::new(1, 29, 0);
const HUMAN_DURATION: Version = Version::new(1, 31, 0);
/// The first release of each minor with kubeconfig rows' CA named (#106891 and its cherry-picks).
const KUBECONFIG_CA: [Version; 4] =
    [Version::new(1, 20, 14), Version::new(1, 21, 8), Version::new(1, 22, 5), Version::new(1, 23, 1)];

impl Dialect {
    pub fn of(found: Option<&Found>) -> Dialect {
        Dialect { version: found.map(|f| f.version) }
    }

    fn at_least(self, v: Version) -> bool {
        self.version.is_none_or(|have| have >= v)
    }

    /// Whether kubeadm lists `spec` when its files are absent (`!MISSING! NAME`): `super-admin.conf` only from
    /// 1.29, where kubeadm knows it. A present file is always listed.
    pub fn lists_missing(self, spec: &CertSpec) -> bool {
        spec.name != "super-admin.conf" || self.at_least(SUPER_ADMIN)
    }

    /// RESIDUAL TIME as kubeadm prints it for `seconds` left.
    pub fn residual(self, seconds: i64) -> String {
        if self.at_least(HUMAN_DURATION) { duration::human(seconds) } else { duration::short_human(seconds) }
    }

    /// Whether the table names `ca` as the CERTIFICATE AUTHORITY of kubeconfig rows (blank before).
    pub fn names_kubeconfig_ca(self) -> bool {
        let Some(v) = self.version else { return true };
        v >= Version::new(1, 24, 0)
            || KUBECONFIG_CA.iter().any(|first| first.major == v.major && first.minor == v.minor && v >= *first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags_of_any_registry_give_the_version_and_digests_none() {
        let v = |s| Version::of_image(s);
        assert_eq!(v("registry.k8s.io/kube-apiserver:v1.28.7"), Some(Version::new(1, 28, 7)));
        assert_eq!(v("k8s.gcr.io/kube-apiserver:v1.20.2"), Some(Version::new(1, 20, 2)));
        assert_eq!(v("local-k8s/kube-apiserver:v1.20.2"), Some(Version::new(1, 20, 2)));
        assert_eq!(v("registry.example:5000/k8s/kube-apiserver:v1.29.0-rc.1"), Some(Version::new(1, 29, 0)));
        assert_eq!(v("registry.example:5000/kube-apiserver"), None, "the port is not a tag");
        assert_eq!(v("registry.k8s.io/kube-apiserver@sha256:0123abcd"), None);
        assert_eq!(v("kube-apiserver:latest"), None);
        assert_eq!(Version::parse("stable-1.28"), None);
        assert_eq!(Version::parse("v1.28"), None);
        assert_eq!(Version::parse("v1.28.7.1"), None);
    }

    #[test]
    fn each_version_prints_as_its_kubeadm() {
        let at = |major, minor, patch| Dialect { version: Some(Version::new(major, minor, patch)) };
        let super_admin = crate::inventory::find("super-admin.conf").unwrap();
        let admin = crate::inventory::find("admin.conf").unwrap();
        assert!(!at(1, 28, 7).lists_missing(super_admin) && at(1, 28, 7).lists_missing(admin));
        assert!(at(1, 29, 0).lists_missing(super_admin) && Dialect::default().lists_missing(super_admin));
        let d = 86_400;
        assert_eq!(at(1, 28, 7).residual(399 * d), "1y");
        assert_eq!(at(1, 30, 2).residual(399 * d), "1y");
        assert_eq!(at(1, 31, 0).residual(399 * d), "399d");
        assert_eq!(Dialect::default().residual(1057 * d), "2y327d");
        assert!(!at(1, 20, 2).names_kubeconfig_ca() && at(1, 20, 14).names_kubeconfig_ca());
        assert!(!at(1, 22, 4).names_kubeconfig_ca() && at(1, 22, 5).names_kubeconfig_ca());
        assert!(!at(1, 23, 0).names_kubeconfig_ca() && at(1, 24, 0).names_kubeconfig_ca());
        assert!(!at(1, 19, 16).names_kubeconfig_ca() && Dialect::default().names_kubeconfig_ca());
    }
}
