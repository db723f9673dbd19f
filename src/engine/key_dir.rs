//! A directory the user names for private keys outside the PKI: the CSR directory of `csr` and `install`
//! (new keys waiting for their signed certificates) and the old CA's backup of `rotate --phase drop` (the
//! old CA's key, kept after it leaves the PKI). Three rules, because each was a way to lose or leak a key:
//!
//! - It is never a directory of the PKI. `csr` writes `NAME.key` there, `drop` `ca.key` (or `etcd/`'s,
//!   `front-proxy-ca`'s base name); in the cert dir those names *are* live keys, and replacing one
//!   breaks the pair the control plane loads. Paths are compared canonicalized (symbolic links, `..`),
//!   against the cert dir, its `etcd/`, the kubeconfig dir and every directory a file of the PKI really
//!   lives in (a PKI file may be a link to elsewhere).
//! - It holds private keys, so nobody else may write it: owned by the user running the tool, not group-
//!   or other-writable, and no directory above it that someone else could use to swap it (owned by root
//!   or us; writable by others only with the sticky bit, like /tmp). Someone who can write it can plant
//!   a link where a key is to be saved: `drop` would take the link for the saved key and delete the last
//!   copy of the old CA's key.
//! - The run creates it, and its parents, 0700, as kubeadm creates `--csr-dir` (kubeadm uses 0755; these
//!   files are private keys).

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::inventory::{CAS, CERTIFICATES};
use crate::pki::{Layout, Location};

unsafe extern "C" {
    /// POSIX `geteuid(2)`: always succeeds, no side effects (libc is linked by std already).
    safe fn geteuid() -> u32;
}

/// Which directory it is: for the messages, which name the option and what the directory holds.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyDir {
    noun: &'static str,
    option: &'static str,
    holds: &'static str,
    /// What writing into a PKI directory would do.
    harm: &'static str,
    example: &'static str,
}

impl KeyDir {
    /// `--csr-dir` of `csr`, `install` and the kubelet's CSR path.
    pub const CSR: KeyDir = KeyDir {
        noun: "CSR directory",
        option: "--csr-dir (csr_dir)",
        holds: "new private keys",
        harm: "a CSR run writes NAME.key there, which would replace a key the control plane uses",
        example: "/etc/kubernetes/kubeadm-certs/csr",
    };
    /// `--old-ca-backup` of `rotate --phase drop`.
    pub const OLD_CA_BACKUP: KeyDir = KeyDir {
        noun: "old CA backup directory",
        option: "--old-ca-backup (old_ca_backup)",
        holds: "the old CA's private key",
        harm: "the old CA's certificate and key are saved there under the CA's own file names, which would replace \
               the CA the control plane uses",
        example: "/root/kubeadm-ca-backup",
    };
}

/// The effective user id of this process: the owner every file it creates gets.
pub fn euid() -> u32 {
    geteuid()
}

/// `path` with symbolic links and `..` resolved: the longest existing ancestor canonicalized, then the
/// components that do not exist yet. A `..` after a missing component cannot be resolved honestly.
pub fn canonical(path: &Path, purpose: &KeyDir) -> Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| Error::read(path, e))?.join(path)
    };
    let mut existing = absolute.clone();
    let mut missing = Vec::new();
    loop {
        match std::fs::canonicalize(&existing) {
            Ok(c) => {
                let mut out = c;
                for part in missing.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::read(&existing, e)),
        }
        let last = existing.components().next_back();
        match last {
            Some(Component::Normal(name)) => missing.push(PathBuf::from(name)),
            Some(Component::CurDir) => {}
            _ => {
                return Err(Error::invalid(
                    path,
                    format!(
                        "contains `..` after a directory that does not exist; give the {} without `..`",
                        purpose.noun
                    ),
                ));
            }
        }
        existing.pop();
    }
}

/// The directories of the PKI, canonicalized, each with what it is (for the message).
fn pki_dirs(layout: &Layout) -> Vec<(PathBuf, String)> {
    let mut dirs = vec![
        (layout.cert_dir.clone(), "the cert dir".to_string()),
        (layout.cert_dir.join("etcd"), "the etcd cert dir".to_string()),
        (layout.kubeconfig_dir.clone(), "the kubeconfig dir".to_string()),
    ];
    let mut files: Vec<PathBuf> = Vec::new();
    for ca in CAS {
        let (crt, key) = layout.ca_paths(ca);
        files.extend([crt, key]);
    }
    for spec in CERTIFICATES {
        match layout.location(spec) {
            Location::PemPair { cert, key } => files.extend([cert, key]),
            Location::Kubeconfig { path } => files.push(path),
        }
    }
    for file in files {
        // a PKI file that is a link: the directory it points into holds the PKI too
        if let Ok(real) = std::fs::canonicalize(&file)
            && let Some(parent) = real.parent()
        {
            dirs.push((parent.to_path_buf(), format!("where {} really is", file.display())));
        }
    }
    dirs.into_iter().filter_map(|(d, what)| std::fs::canonicalize(&d).ok().map(|c| (c, what))).collect()
}

/// Refuses a key dir that is a directory of the PKI.
fn refuse_pki_dir(layout: &Layout, given: &Path, real: &Path, purpose: &KeyDir) -> Result<()> {
    if let Some((_, what)) = pki_dirs(layout).into_iter().find(|(d, _)| d == real) {
        let shown = if real == given { String::new() } else { format!(" (that is {})", real.display()) };
        return Err(Error::invalid(
            given,
            format!(
                "the {}{shown} is {what}: {}; give {} a directory of its own, e.g. {}",
                purpose.noun, purpose.harm, purpose.option, purpose.example
            ),
        ));
    }
    Ok(())
}

/// Whether someone other than us (and root) could change what is in `dir`.
fn foreign_writer(dir: &Path, meta: &std::fs::Metadata, me: u32, is_target: bool) -> Option<String> {
    let mode = meta.mode();
    if meta.uid() != me && (is_target || meta.uid() != 0) {
        return Some(format!(
            "{} is owned by uid {}, not by the user running kubeadm-certs (uid {me})",
            dir.display(),
            meta.uid()
        ));
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && (is_target || !sticky) {
        return Some(format!(
            "{} is writable by {} (mode {:o})",
            dir.display(),
            if mode & 0o002 != 0 { "other users" } else { "its group" },
            mode & 0o7777
        ));
    }
    None
}

/// Refuses a key dir that another user could write, or swap through a directory above it. `from` is the
/// key dir itself when it exists, else its nearest existing ancestor (the directory it will be made in).
fn refuse_foreign(given: &Path, from: &Path, from_is_target: bool, purpose: &KeyDir) -> Result<()> {
    let me = euid();
    for (i, d) in from.ancestors().enumerate() {
        let is_target = from_is_target && i == 0;
        let meta = std::fs::metadata(d).map_err(|e| Error::read(d, e))?;
        if is_target && !meta.is_dir() {
            return Err(Error::invalid(given, "is not a directory"));
        }
        if let Some(why) = foreign_writer(d, &meta, me, is_target) {
            return Err(Error::invalid(
                given,
                format!(
                    "refusing a {} another user could write or swap: {why}; it holds {} (chmod 0700 it, chown \
                     it to the user running kubeadm-certs, or pick another)",
                    purpose.noun, purpose.holds
                ),
            ));
        }
    }
    Ok(())
}

/// What a run learns about the key dir before touching anything.
pub struct Checked {
    pub path: PathBuf,
    pub exists: bool,
}

/// The checks that need no lock and change nothing: not a PKI dir, and, when it exists, ours alone.
pub fn check(layout: &Layout, given: &Path, purpose: &KeyDir) -> Result<Checked> {
    let real = canonical(given, purpose)?;
    refuse_pki_dir(layout, given, &real, purpose)?;
    let exists = match std::fs::symlink_metadata(&real) {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::read(given, e)),
    };
    if exists {
        refuse_foreign(given, &real, true, purpose)?;
    } else if let Some(parent) = real.ancestors().find(|a| a.exists()) {
        refuse_foreign(given, parent, false, purpose)?;
    }
    // the path as given is what the files are written through: a link on it lives in a directory whose
    // owner could point it elsewhere between this check and the write
    let absolute = std::path::absolute(given).map_err(|e| Error::read(given, e))?;
    if let Some(parent) = absolute.ancestors().skip(1).find(|a| a.exists()) {
        refuse_foreign(given, parent, false, purpose)?;
    }
    Ok(Checked { path: given.to_path_buf(), exists })
}

/// Creates the key dir and its parents 0700 (kubeadm creates `--csr-dir` too), then checks it again: someone may
/// have made it between the check and now.
pub fn create(given: &Path, purpose: &KeyDir) -> Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(given).map_err(|e| Error::write(given, e))?;
    refuse_foreign(given, &canonical(given, purpose)?, true, purpose)
}

/// `install` reads keys from the CSR dir: it must exist.
pub fn require_existing(dir: &Checked) -> Result<()> {
    if !dir.exists {
        return Err(Error::invalid(
            &dir.path,
            "the CSR directory does not exist; run `kubeadm-certs csr --csr-dir DIR` first, then install from the same DIR",
        ));
    }
    Ok(())
}
