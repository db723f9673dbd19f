//! Reading a kubeadm PKI from disk: where each file lives, what is there, and whether it holds together
//! (certificates parse, keys match, each certificate was issued by the CA on disk). Nothing here writes.

pub mod cert;
pub mod der;
pub mod key;
pub mod kubeconfig;
pub mod verify;

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::inventory::{CAS, CaId, CaSpec, CertSpec, Storage};
use cert::Certificate;
use key::PrivateKey;
use kubeconfig::Kubeconfig;

/// The two directories kubeadm uses (`/etc/kubernetes/pki` and `/etc/kubernetes`).
#[derive(Clone, Debug)]
pub struct Layout {
    pub cert_dir: PathBuf,
    pub kubeconfig_dir: PathBuf,
}

/// Where one entry's files are: the storage strategy resolved to paths.
#[derive(Clone, Debug)]
pub enum Location {
    PemPair { cert: PathBuf, key: PathBuf },
    Kubeconfig { path: PathBuf },
}

impl Location {
    /// The file whose presence decides whether the entry exists, and that reports name.
    pub fn path(&self) -> &Path {
        match self {
            Location::PemPair { cert, .. } => cert,
            Location::Kubeconfig { path } => path,
        }
    }
    pub fn key_path(&self) -> &Path {
        match self {
            Location::PemPair { key, .. } => key,
            Location::Kubeconfig { path } => path,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Location::PemPair { .. } => "cert",
            Location::Kubeconfig { .. } => "kubeconfig",
        }
    }
}

impl Layout {
    pub fn new(cert_dir: impl Into<PathBuf>, kubeconfig_dir: impl Into<PathBuf>) -> Layout {
        Layout { cert_dir: cert_dir.into(), kubeconfig_dir: kubeconfig_dir.into() }
    }
    pub fn ca_paths(&self, ca: &CaSpec) -> (PathBuf, PathBuf) {
        (self.cert_dir.join(format!("{}.crt", ca.base)), self.cert_dir.join(format!("{}.key", ca.base)))
    }
    pub fn location(&self, spec: &CertSpec) -> Location {
        match spec.storage {
            Storage::PemPair { base } => Location::PemPair {
                cert: self.cert_dir.join(format!("{base}.crt")),
                key: self.cert_dir.join(format!("{base}.key")),
            },
            Storage::Kubeconfig { file } => Location::Kubeconfig { path: self.kubeconfig_dir.join(file) },
        }
    }
}

/// Whether a file is there. Absent is an answer; "cannot tell" (permissions, I/O) is an error.
pub fn exists(path: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::read(path, e)),
    }
}

pub struct Ca {
    pub spec: &'static CaSpec,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub cert: Option<Certificate>,
    pub has_key: bool,
}

impl Ca {
    /// kubeadm's "external CA": the CA certificate is there, its key is not. Nothing it signs can be
    /// renewed here.
    pub fn externally_managed(&self) -> bool {
        self.cert.is_some() && !self.has_key
    }

    /// Loads the CA key and checks it belongs to the CA certificate: signing with a stray key would make
    /// certificates no component trusts.
    pub fn load_key(&self) -> Result<PrivateKey> {
        let cert = self.cert.as_ref().expect("callers check the CA is present");
        let key = PrivateKey::read(&self.key_path)?;
        if !key.matches(&cert.public_key_raw) {
            return Err(Error::KeyMismatch { path: self.key_path.clone(), cert: self.cert_path.clone() });
        }
        Ok(key)
    }
}

/// What was read for one present entry.
pub struct Loaded {
    pub cert: Certificate,
    pub kubeconfig: Option<Kubeconfig>,
    /// Only read when the caller asked for keys (renew, csr, install): check never touches them.
    pub key: Option<PrivateKey>,
}

pub struct Entry {
    pub spec: &'static CertSpec,
    pub location: Location,
    /// `None`: the entry's files are absent (external etcd, a follower without super-admin.conf).
    pub loaded: Option<Loaded>,
}

pub struct Pki {
    pub layout: Layout,
    pub cas: Vec<Ca>,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    Skip,
    Read,
}

impl Pki {
    /// Reads the CAs and the given entries. `explicit` entries must exist; the others may be missing.
    pub fn read(layout: &Layout, specs: &[&'static CertSpec], explicit: bool, keys: Keys) -> Result<Pki> {
        // a mistyped directory must not read as "everything missing"
        for dir in [&layout.cert_dir, &layout.kubeconfig_dir] {
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(Error::invalid(dir, "is not a directory")),
                Err(e) => return Err(Error::read(dir, e)),
            }
        }
        let mut cas = Vec::new();
        for spec in CAS {
            let (cert_path, key_path) = layout.ca_paths(spec);
            let cert = if exists(&cert_path)? {
                let c = Certificate::read(&cert_path)?;
                if !c.is_ca() {
                    return Err(Error::invalid(
                        &cert_path,
                        "is not a CA certificate (basic constraints CA:FALSE or absent)",
                    ));
                }
                Some(c)
            } else {
                None
            };
            let has_key = exists(&key_path)?;
            cas.push(Ca { spec, cert_path, key_path, cert, has_key });
        }
        let mut entries = Vec::new();
        for &spec in specs {
            let location = layout.location(spec);
            let loaded = if exists(location.path())? {
                Some(load_entry(&location, keys)?)
            } else if explicit {
                return Err(Error::MissingRequested { name: spec.name.into(), path: location.path().to_path_buf() });
            } else {
                None
            };
            entries.push(Entry { spec, location, loaded });
        }
        if cas.iter().all(|c| c.cert.is_none()) && entries.iter().all(|e| e.loaded.is_none()) {
            return Err(Error::invalid(
                &layout.cert_dir,
                format!(
                    "no kubeadm PKI here: neither a CA certificate nor any certificate (kubeconfig dir {})",
                    layout.kubeconfig_dir.display()
                ),
            ));
        }
        Ok(Pki { layout: layout.clone(), cas, entries })
    }

    pub fn ca(&self, id: CaId) -> &Ca {
        self.cas.iter().find(|c| c.spec.id == id).expect("all CAs are read")
    }

    /// Every present certificate must have been issued by its CA on disk, and (when keys were read)
    /// match its key. Renewing on top of a PKI that does not hold together would hide the fault.
    pub fn validate(&self) -> Result<()> {
        for entry in &self.entries {
            let Some(loaded) = &entry.loaded else { continue };
            let ca = self.ca(entry.spec.ca);
            if let Some(ca_cert) = &ca.cert {
                verify::issued_by(&loaded.cert, ca_cert).map_err(|why| Error::NotIssuedByCa {
                    path: entry.location.path().to_path_buf(),
                    ca: ca.cert_path.clone(),
                    why,
                })?;
            }
            if let Some(key) = &loaded.key
                && !key.matches(&loaded.cert.public_key_raw)
            {
                return Err(match &entry.location {
                    Location::PemPair { cert, key } => Error::KeyMismatch { path: key.clone(), cert: cert.clone() },
                    Location::Kubeconfig { path } => {
                        Error::invalid(path, "client-key-data does not match client-certificate-data")
                    }
                });
            }
        }
        Ok(())
    }
}

fn load_entry(location: &Location, keys: Keys) -> Result<Loaded> {
    match location {
        Location::PemPair { cert, key } => {
            let c = Certificate::read(cert)?;
            let k = match keys {
                Keys::Read => {
                    if !exists(key)? {
                        return Err(Error::invalid(key, format!("missing: the private key of {}", cert.display())));
                    }
                    Some(PrivateKey::read(key)?)
                }
                Keys::Skip => None,
            };
            Ok(Loaded { cert: c, kubeconfig: None, key: k })
        }
        Location::Kubeconfig { path } => {
            let kc = Kubeconfig::read(path)?;
            let c = Certificate::from_file_bytes(path, &kc.client_certificate_pem)
                .map_err(|e| Error::invalid(path, format!("client-certificate-data: {}", strip_path(&e, path))))?;
            let k = match keys {
                Keys::Read => Some(
                    PrivateKey::from_pem_bytes(path, &kc.client_key_pem)
                        .map_err(|e| Error::invalid(path, format!("client-key-data: {}", strip_path(&e, path))))?,
                ),
                Keys::Skip => None,
            };
            Ok(Loaded { cert: c, kubeconfig: Some(kc), key: k })
        }
    }
}

/// An inner error's message without its leading `path: ` (the outer error names the path once).
fn strip_path(e: &Error, path: &Path) -> String {
    let s = e.to_string();
    let prefix = format!("{}: ", path.display());
    s.strip_prefix(&prefix).map(str::to_string).unwrap_or(s)
}
