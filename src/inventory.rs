//! Every certificate kubeadm manages, in one declarative table (kubeadm's `renewal.Manager` keeps the
//! same list as a table of handlers). Everything else (check, renew, csr, install) walks this table;
//! supporting a new kubeadm certificate is one row.

/// The three CAs of a kubeadm control plane. kubeadm never renews them (10-year lifetime); `renew ca` issues
/// one again with its own key (`engine::ca_renew`), only when named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CaId {
    Ca,
    EtcdCa,
    FrontProxyCa,
}

#[derive(Debug)]
pub struct CaSpec {
    pub id: CaId,
    pub name: &'static str,
    /// `<cert dir>/<base>.crt` and `.key`
    pub base: &'static str,
    /// The components whose command line names the CA certificate file (kubeadm's flags: kube-apiserver
    /// `--client-ca-file`, `--requestheader-client-ca-file`, `--etcd-cafile`; kube-controller-manager
    /// `--client-ca-file`, `--requestheader-client-ca-file`, `--root-ca-file`, `--cluster-signing-cert-file`;
    /// etcd `--trusted-ca-file`, `--peer-trusted-ca-file`).
    pub used_by: &'static [Component],
    /// Of `used_by`, those that read it again while running, for every use they make of it (the rest hold
    /// the CA certificate they read at start). See docs/in-use.md, "After a CA renewal", for the sources.
    pub reloaded_by: &'static [Component],
    /// kubeadm's kubeconfig files (in the kubeconfig dir) that embed this CA as `certificate-authority-data`:
    /// a renewal of the CA rewrites them in the same transaction.
    pub kubeconfigs: &'static [&'static str],
}

/// Sorted by name, as kubeadm prints them.
pub const CAS: &[CaSpec] = &[
    CaSpec {
        id: CaId::Ca,
        name: "ca",
        base: "ca",
        used_by: &[Component::KubeApiserver, Component::KubeControllerManager],
        // kube-controller-manager's --client-ca-file and its CSR signer reload, its --root-ca-file does not
        reloaded_by: &[Component::KubeApiserver],
        kubeconfigs: &["admin.conf", "controller-manager.conf", "kubelet.conf", "scheduler.conf", "super-admin.conf"],
    },
    CaSpec {
        id: CaId::EtcdCa,
        name: "etcd-ca",
        base: "etcd/ca",
        used_by: &[Component::Etcd, Component::KubeApiserver],
        reloaded_by: &[],
        kubeconfigs: &[],
    },
    CaSpec {
        id: CaId::FrontProxyCa,
        name: "front-proxy-ca",
        base: "front-proxy-ca",
        used_by: &[Component::KubeApiserver, Component::KubeControllerManager],
        reloaded_by: &[Component::KubeApiserver, Component::KubeControllerManager],
        kubeconfigs: &[],
    },
];

impl CaId {
    pub fn spec(self) -> &'static CaSpec {
        CAS.iter().find(|c| c.id == self).expect("every CaId has a row")
    }
    pub fn name(self) -> &'static str {
        self.spec().name
    }
    /// The CA of a name as typed (`ca`, `etcd-ca`, `front-proxy-ca`).
    pub fn parse(name: &str) -> Option<CaId> {
        CAS.iter().find(|c| c.name == name).map(|c| c.id)
    }
    pub fn known_names() -> String {
        CAS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
    }
}

/// Where a certificate and its key live: the strategy the renewal logic never branches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// `<cert dir>/<base>.crt` + `<cert dir>/<base>.key`
    PemPair { base: &'static str },
    /// `client-certificate-data` / `client-key-data` of the current context's user in
    /// `<kubeconfig dir>/<file>`
    Kubeconfig { file: &'static str },
}

/// Extended key usages kubeadm sets. A CSR carries none (the CA decides), so signers (the external-CA
/// role, the certificates API) are told these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    ServerAuth,
    ClientAuth,
}

/// The control-plane components that read a certificate and must restart to use a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    Etcd,
    KubeApiserver,
    KubeControllerManager,
    KubeScheduler,
}

/// Where a component serves a certificate, so that a TLS handshake can show which one it has loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// kube-apiserver: `--bind-address` (or `--advertise-address` when it binds every address) and
    /// `--secure-port` (default 6443).
    ApiserverSecurePort,
    /// etcd: the first `https://` URL of `--listen-client-urls`.
    EtcdClientUrls,
    /// etcd: the first `https://` URL of `--listen-peer-urls`.
    EtcdPeerUrls,
}

impl Component {
    /// Every component, in the order reports list them.
    pub const ALL: [Component; 4] = [Etcd, KubeApiserver, KubeControllerManager, KubeScheduler];

    /// The name as typed on the command line (`restart etcd`) or in a module's `components`.
    pub fn parse(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn known_names() -> String {
        Component::ALL.map(|c| c.name()).join(", ")
    }

    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::KubeApiserver => "kube-apiserver",
            Component::KubeControllerManager => "kube-controller-manager",
            Component::KubeScheduler => "kube-scheduler",
        }
    }
}

#[derive(Debug)]
pub struct CertSpec {
    pub name: &'static str,
    pub long_name: &'static str,
    pub storage: Storage,
    pub ca: CaId,
    pub usages: &'static [Usage],
    pub used_by: &'static [Component],
    /// Of `used_by`, the components that read the file again while running (the rest read it only at
    /// start): kube-apiserver 1.20 its serving certificate and the front-proxy client certificate
    /// (dynamiccertificates), etcd 3.4 its server and peer certificates on every handshake. See
    /// docs/in-use.md for the sources.
    pub reloaded_by: &'static [Component],
    /// Where a component serves this certificate (a handshake there shows the one it has loaded).
    pub served_on: Option<Listener>,
    /// Only in clusters made by kubeadm 1.29+; absent on follower control-plane nodes.
    pub optional: bool,
}

use Component::*;
use Usage::*;

/// Sorted by name, as kubeadm prints them.
pub const CERTIFICATES: &[CertSpec] = &[
    CertSpec {
        name: "admin.conf",
        long_name: "certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself",
        storage: Storage::Kubeconfig { file: "admin.conf" },
        ca: CaId::Ca,
        usages: &[ClientAuth],
        used_by: &[],
        reloaded_by: &[],
        served_on: None,
        optional: false,
    },
    CertSpec {
        name: "apiserver",
        long_name: "certificate for serving the Kubernetes API",
        storage: Storage::PemPair { base: "apiserver" },
        ca: CaId::Ca,
        usages: &[ServerAuth],
        used_by: &[KubeApiserver],
        reloaded_by: &[KubeApiserver],
        served_on: Some(Listener::ApiserverSecurePort),
        optional: false,
    },
    CertSpec {
        name: "apiserver-etcd-client",
        long_name: "certificate the apiserver uses to access etcd",
        storage: Storage::PemPair { base: "apiserver-etcd-client" },
        ca: CaId::EtcdCa,
        usages: &[ClientAuth],
        used_by: &[KubeApiserver],
        reloaded_by: &[],
        served_on: None,
        optional: false,
    },
    CertSpec {
        name: "apiserver-kubelet-client",
        long_name: "certificate for the API server to connect to kubelet",
        storage: Storage::PemPair { base: "apiserver-kubelet-client" },
        ca: CaId::Ca,
        usages: &[ClientAuth],
        used_by: &[KubeApiserver],
        reloaded_by: &[],
        served_on: None,
        optional: false,
    },
    CertSpec {
        name: "controller-manager.conf",
        long_name: "certificate embedded in the kubeconfig file for the controller manager to use",
        storage: Storage::Kubeconfig { file: "controller-manager.conf" },
        ca: CaId::Ca,
        usages: &[ClientAuth],
        used_by: &[KubeControllerManager],
        reloaded_by: &[],
        served_on: None,
        optional: false,
    },
    CertSpec {
        name: "etcd-healthcheck-client",
        long_name: "certificate for liveness probes to healthcheck etcd",
        storage: Storage::PemPair { base: "etcd/healthcheck-client" },
        ca: CaId::EtcdCa,
        usages: &[ClientAuth],
        used_by: &[],
        reloaded_by: &[],
        served_on: None,
        optional: false,
    },
    CertSpec {
        name: "etcd-peer",
        long_name: "certificate for etcd nodes to communicate with each other",
        storage: Storage::PemPair { base: "etcd/peer" },
        ca: CaId::EtcdCa,
        usages: &[ServerAuth, ClientAuth],
        used_by: &[Etcd],
        reloaded_by: &[Etcd],
        served_on: Some(Listener::EtcdPeerUrls),
        optional: false,
    },
    CertSpec {
        name: "etcd-server",
        long_name: "certificate for serving etcd",
        storage: Storage::PemPair { base: "etcd/server" },
        ca: CaId::EtcdCa,
        usages: &[ServerAuth, ClientAuth],
        used_by: &[Etcd],
        reloaded_by: &[Etcd],
        served_on: Some(Listener::EtcdClientUrls),
        optional: false,
    },
    CertSpec {
        name: "front-proxy-client",
        long_name: "certificate for the front proxy client",
        storage: Storage::PemPair { base: "front-proxy-client" },
        ca: CaId::FrontProxyCa,
        usages: &[ClientAuth],
        used_by: &[KubeApiserver],
        reloaded_by: &[KubeApiserver],
        served_on: None,
        optional: false,
    },
    CertSpec {
        name: "scheduler.conf",
        long_name: "certificate embedded in the kubeconfig file for the scheduler manager to use",
        storage: Storage::Kubeconfig { file: "scheduler.conf" },
        ca: CaId::Ca,
        usages: &[ClientAuth],
        used_by: &[KubeScheduler],
        reloaded_by: &[],
        served_on: None,
        optional: false,
    },
    CertSpec {
        name: "super-admin.conf",
        long_name: "certificate embedded in the kubeconfig file for the super-admin",
        storage: Storage::Kubeconfig { file: "super-admin.conf" },
        ca: CaId::Ca,
        usages: &[ClientAuth],
        used_by: &[],
        reloaded_by: &[],
        served_on: None,
        optional: true,
    },
];

pub fn find(name: &str) -> Option<&'static CertSpec> {
    CERTIFICATES.iter().find(|c| c.name == name)
}

pub fn known_names() -> String {
    CERTIFICATES.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique_as_kubeadm_prints_them() {
        let names: Vec<_> = CERTIFICATES.iter().map(|c| c.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        let cas: Vec<_> = CAS.iter().map(|c| c.name).collect();
        assert_eq!(cas, ["ca", "etcd-ca", "front-proxy-ca"]);
    }
}
