//! The PKI's lock: `renew`, `csr` and `install` on one PKI (two Ansible runs, a timer and a human) take
//! turns, holding an exclusive `flock` on `CERT_DIR/.kubeadm-certs.lock` from before they settle a journal
//! until their commit is done.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::commit::MODE_SECRET;
use crate::duration::Span;
use crate::error::{Error, Result};

/// The lock file, beside the journal in the cert dir.
///
/// Why a file, and why here: a `flock` on the cert directory itself (what this was) can be taken by any
/// local user, since anyone may open `/etc/kubernetes/pki` (0755), and would then block every renewal until
/// the certificates expire. A file only its owner may open cannot be. Not under `/run`: only root may create
/// files there (a non-root user renewing a PKI of their own, as the tests do, could not), and a name there
/// derived from the cert dir's path would give one PKI reached by two paths (a linked directory) two locks.
/// The file beside the journal is one file for every path to the PKI, and whoever may renew (write the
/// journal into the cert dir) may create it.
const LOCK: &str = ".kubeadm-certs.lock";

/// An exclusive lock on the PKI: two renewals at once (two Ansible runs, a timer and a human) take turns.
/// Held until dropped; the kernel releases it when the process dies, even by SIGKILL (the file a killed run
/// leaves is taken over by the next run). A run removes the lock file before releasing it, so a run leaves
/// the directory as it found it (see [`lock`] for why that is safe).
pub struct Lock {
    path: PathBuf,
    file: File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // still holding the lock: a run waiting on this file sees it gone once it gets it, and starts over
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Takes the lock of the PKI in `dir`, waiting up to `timeout` for another run to release it.
///
/// A lock taken on a file that its holder removed meanwhile locks nothing (the next run creates a new file):
/// after taking it, the file must still be the one at the path, or it is opened again.
pub fn lock(dir: &Path, timeout: Span) -> Result<Lock> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Error::invalid(dir, "is not a directory")),
        Err(e) => return Err(Error::read(dir, e)),
    }
    let path = dir.join(LOCK);
    let limit = Duration::from_secs(timeout.seconds().max(0) as u64);
    let start = Instant::now();
    let mut said = false;
    loop {
        let file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) if same_file(&file, &path)? => return Ok(Lock { path, file }),
            Ok(()) => continue,
            Err(fs::TryLockError::WouldBlock) => {
                if start.elapsed() >= limit {
                    return Err(Error::Locked { path, waited_secs: start.elapsed().as_secs() });
                }
                if !said {
                    // for whoever watches a run that seems stuck (a terminal, the timer's journal)
                    eprintln!(
                        "kubeadm-certs: waiting for the lock {} (another run holds it), up to {}s",
                        path.display(),
                        limit.as_secs()
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::write(&path, e)),
        }
    }
}

/// Opens (creating it 0600 when absent) the lock file, never through a link, and checks it is a file only
/// the user running this may open: one that someone else can open, they can hold forever.
fn open_lock_file(path: &Path) -> Result<File> {
    use std::os::unix::fs::MetadataExt;
    let open = |write: bool| {
        OpenOptions::new()
            .read(true)
            .write(write)
            .create(write)
            .mode(MODE_SECRET)
            // O_NONBLOCK: a FIFO planted there must not block the open (it is refused below)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
    };
    let refuse = |what: String| {
        Error::invalid(
            path,
            format!("{what}; refusing to use it as the lock file: check who made it, remove it, and run again"),
        )
    };
    let file = match open(true) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refuse("is a symbolic link".into())),
        // a read-only filesystem (a directory this user may not write) can still be locked through an
        // existing lock file; the run then fails where it writes, saying why
        Err(e) if matches!(e.raw_os_error(), Some(libc::EROFS | libc::EACCES)) => {
            open(false).map_err(|_| cannot_create(path, e))?
        }
        Err(e) => return Err(cannot_create(path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::read(path, e))?;
    // SAFETY: geteuid has no preconditions and cannot fail
    let me = unsafe { libc::geteuid() };
    if !meta.is_file() {
        return Err(refuse("is not a regular file".into()));
    }
    if meta.uid() != me {
        return Err(refuse(format!(
            "belongs to uid {}, not to the user running kubeadm-certs (uid {me}), who could then hold it and block every renewal",
            meta.uid()
        )));
    }
    if meta.nlink() != 1 {
        return Err(refuse(format!("has {} hard links (a lock file has one)", meta.nlink())));
    }
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(MODE_SECRET)).map_err(|e| Error::write(path, e))?;
    }
    Ok(file)
}

fn cannot_create(path: &Path, e: io::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source: io::Error::new(
            e.kind(),
            format!(
                "{e} (creating the lock file: renew, csr and install write into the cert dir; run them as the user who may)"
            ),
        ),
    }
}

/// Whether `file` is still the file at `path`.
fn same_file(file: &File, path: &Path) -> Result<bool> {
    let open = file.metadata().map_err(|e| Error::read(path, e))?;
    match fs::symlink_metadata(path) {
        Ok(now) => Ok((now.dev(), now.ino()) == (open.dev(), open.ino())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::read(path, e)),
    }
}
