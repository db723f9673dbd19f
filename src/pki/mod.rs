//! Reading a kubeadm PKI from disk: where each file lives, what is there, and whether it holds together
//! (certificates parse, keys match, each certificate was issued by the CA on disk). Nothing here writes.

pub mod cert;
pub mod csr;
pub mod der;
pub mod key;
pub mod kubeconfig;
pub mod rotation;
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

/// The largest file read as a certificate, private key, CSR or kubeconfig. kubeadm's are a few KiB; a
/// bigger file is refused with a clear error instead of being read into memory.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// How [`read_file`] treats a symbolic link at the path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Links {
    /// Certificates and kubeconfigs that are only reported: read where the link points.
    Follow,
    /// Private keys, and kubeconfigs whose key is used: a link is refused. A link can point anywhere, and
    /// the file at the path is what a renewal replaces (never through a link, see `commit`).
    Refuse,
}

/// Reads a PKI file: a regular file (never a FIFO or device, which could block or never end) of at most
/// [`MAX_FILE_BYTES`], without following a symbolic link when `links` is [`Links::Refuse`].
pub fn read_file(path: &Path, links: Links) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let lstat = std::fs::symlink_metadata(path).map_err(|e| Error::read(path, e))?;
    if lstat.file_type().is_symlink() && links == Links::Refuse {
        let target = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_else(|_| "?".into());
        return Err(Error::invalid(
            path,
            format!(
                "is a symbolic link (to {target}); a file holding a private key is never read or replaced \
                 through a link: put the file itself here, or point the directory option at where the files are"
            ),
        ));
    }
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below as not a regular file).
    // 0o4000 on every Linux architecture this is built for (x86_64, aarch64)
    #[cfg(target_os = "linux")]
    const O_NONBLOCK: i32 = 0o4000;
    #[cfg(not(target_os = "linux"))]
    const O_NONBLOCK: i32 = 0;
    let mut file =
        std::fs::OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open(path).map_err(|e| Error::read(path, e))?;
    let meta = file.metadata().map_err(|e| Error::read(path, e))?;
    if links == Links::Refuse && (meta.dev(), meta.ino()) != (lstat.dev(), lstat.ino()) {
        return Err(Error::invalid(path, "was replaced while being opened; refusing to read it"));
    }
    if !meta.is_file() {
        return Err(Error::invalid(path, "is not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Error::invalid(
            path,
            format!(
                "is {} bytes; refusing to read more than {MAX_FILE_BYTES} bytes (kubeadm's files are a few KiB)",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&mut file).take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::read(path, e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::invalid(path, format!("grew past {MAX_FILE_BYTES} bytes while being read")));
    }
    Ok(bytes)
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
        self.validate_with(false)
    }

    /// [`Pki::validate`]; with `bundle`, a certificate issued by any CA certificate of its CA file passes (a CA
    /// rotation's old CA beside the new one: `renew --resign-old-issuer` issues them again under the first).
    pub fn validate_with(&self, bundle: bool) -> Result<()> {
        for entry in &self.entries {
            let Some(loaded) = &entry.loaded else { continue };
            let ca = self.ca(entry.spec.ca);
            if let Some(ca_cert) = &ca.cert {
                let verdict = if bundle {
                    verify::trusted_by(&loaded.cert, ca_cert).map(drop)
                } else {
                    verify::chains_to(&loaded.cert, ca_cert)
                };
                verdict.map_err(|why| Error::NotIssuedByCa {
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

/// Something `check` finds wrong beyond dates. `broken`: a component loading these files fails, whatever
/// the dates say; otherwise the finding is only worth saying (a key this user may not read).
#[derive(Debug)]
pub struct Finding {
    pub broken: bool,
    pub message: String,
}

impl Pki {
    /// What `validate` cannot see without keys: each present certificate's private key belongs to it, each
    /// CA's key to the CA, and the CA of every present certificate is there. Cheap (a public-key comparison
    /// per pair: `check` stays a few milliseconds). A CA without its key is kubeadm's external CA, not a
    /// fault; a key that cannot be read for lack of permission (check as a non-root user) is a warning.
    pub fn integrity(&self) -> Vec<Finding> {
        let mut found = Vec::new();
        for ca in &self.cas {
            let signed: Vec<&str> = self
                .entries
                .iter()
                .filter(|e| e.loaded.is_some() && e.spec.ca == ca.spec.id)
                .map(|e| e.spec.name)
                .collect();
            match &ca.cert {
                None if !signed.is_empty() => found.push(Finding {
                    broken: true,
                    message: format!(
                        "{}: {} is missing, but {} it signed {} here: nothing can verify {} (components fail \
                         TLS with it); restore the CA certificate",
                        ca.spec.name,
                        ca.cert_path.display(),
                        signed.join(", "),
                        if signed.len() == 1 { "is" } else { "are" },
                        if signed.len() == 1 { "it" } else { "them" },
                    ),
                }),
                Some(cert) if ca.has_key => {
                    found.extend(pair_finding(ca.spec.name, &ca.key_path, &ca.cert_path, &cert.public_key_raw))
                }
                _ => {}
            }
        }
        for entry in &self.entries {
            let Some(loaded) = &entry.loaded else { continue };
            let name = entry.spec.name;
            match (&entry.location, &loaded.kubeconfig) {
                (Location::Kubeconfig { path }, Some(kc)) => {
                    match key::belongs_to(path, &kc.client_key_pem, &loaded.cert.public_key_raw) {
                        Ok(true) => {}
                        Ok(false) => found.push(Finding {
                            broken: true,
                            message: format!(
                                "{name}: {}: client-key-data does not match client-certificate-data: whoever uses \
                                 this kubeconfig is refused; restore the file from a backup",
                                path.display()
                            ),
                        }),
                        Err(e) => {
                            found.push(Finding { broken: true, message: format!("{name}: client-key-data: {e}") })
                        }
                    }
                }
                (location, _) => {
                    found.extend(pair_finding(name, location.key_path(), location.path(), &loaded.cert.public_key_raw))
                }
            }
        }
        found
    }
}

/// The key file of a PEM pair against its certificate's public key.
fn pair_finding(name: &str, key_path: &Path, cert_path: &Path, public: &[u8]) -> Option<Finding> {
    let broken = |message: String| Some(Finding { broken: true, message });
    let bytes = match read_file(key_path, Links::Follow) {
        Ok(b) => b,
        Err(Error::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return broken(format!(
                "{name}: the private key {} is missing: the certificate {} cannot be used without it",
                key_path.display(),
                cert_path.display()
            ));
        }
        Err(Error::Read { source, .. }) if source.kind() == io::ErrorKind::PermissionDenied => {
            return Some(Finding {
                broken: false,
                message: format!(
                    "{name}: cannot read {} ({source}): whether it matches {} is not checked; run check as root",
                    key_path.display(),
                    cert_path.display()
                ),
            });
        }
        Err(e) => return broken(format!("{name}: {e}")),
    };
    match key::belongs_to(key_path, &bytes, public) {
        Ok(true) => None,
        Ok(false) => broken(format!(
            "{name}: the private key {} does not match the certificate {} (their public keys differ): a \
             component loading this pair cannot start; restore the key that belongs to the certificate (a \
             backup NAME.key.*~), then renew",
            key_path.display(),
            cert_path.display()
        )),
        Err(e) => broken(format!("{name}: {e}")),
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
            // the key inside is only used when keys are read: then the file is a key file
            let links = if keys == Keys::Read { Links::Refuse } else { Links::Follow };
            let kc = Kubeconfig::parse(path, &read_file(path, links)?)?;
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
