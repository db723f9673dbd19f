//! Who we are to the apiserver and how we know it is the apiserver: the current context of a kubeconfig
//! (admin.conf by default). The server is verified against the cluster's CA and nothing else; a kubeconfig
//! that asks for less (`insecure-skip-tls-verify`) or for what this client does not do (`tls-server-name`,
//! `proxy-url`, credentials other than an embedded client certificate) is refused by name.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pki::kubeconfig::Kubeconfig;
use crate::pki::{Links, read_file};

pub struct Credentials {
    pub kubeconfig: PathBuf,
    /// `https://host:port`, without a trailing slash.
    pub server: String,
    pub ca_pem: Vec<u8>,
    pub client_cert_pem: Vec<u8>,
    /// Handed to the TLS stack only; never printed.
    pub client_key_pem: Vec<u8>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("kubeconfig", &self.kubeconfig)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn read(path: &Path) -> Result<Credentials> {
        let kc = Kubeconfig::read(path)?;
        Credentials::from_kubeconfig(path, &kc)
    }

    pub fn from_kubeconfig(path: &Path, kc: &Kubeconfig) -> Result<Credentials> {
        let bad = |problem: String| Error::invalid(path, problem);
        let cluster = &kc.cluster;
        let server = kc
            .cluster_str("server")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad(format!("cluster {cluster:?} of the current context has no server")))?;
        if !server.starts_with("https://") {
            return Err(bad(format!("server {server:?} is not https://: the certificates API is only used over TLS")));
        }
        if kc.cluster_bool("insecure-skip-tls-verify") {
            return Err(bad(format!(
                "cluster {cluster:?} sets insecure-skip-tls-verify; kubeadm-certs always verifies the apiserver"
            )));
        }
        for unsupported in ["tls-server-name", "proxy-url"] {
            if kc.cluster_str(unsupported).is_some() {
                return Err(bad(format!(
                    "cluster {cluster:?} sets {unsupported}, which kubeadm-certs does not support"
                )));
            }
        }
        let ca_pem = match (&kc.certificate_authority_pem, kc.cluster_str("certificate-authority")) {
            (Some(data), _) => data.clone(),
            (None, Some(file)) => {
                // read as every other file is: a regular file of at most 4 MiB (a FIFO there would block the
                // run, holding the lock, until someone writes to it)
                let file = path.parent().unwrap_or(Path::new(".")).join(file);
                read_file(&file, Links::Follow)?
            }
            (None, None) => {
                return Err(bad(format!(
                    "cluster {cluster:?} has no certificate-authority-data: the apiserver cannot be verified"
                )));
            }
        };
        Ok(Credentials {
            kubeconfig: path.to_path_buf(),
            server: server.trim_end_matches('/').to_string(),
            ca_pem,
            client_cert_pem: kc.client_certificate_pem.clone(),
            client_key_pem: kc.client_key_pem.clone(),
        })
    }
}
