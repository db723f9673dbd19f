//! Writing a renewal to disk so that a failure anywhere leaves every file as it was.
//!
//! 1. Stage: each new file is written to a temp file beside its target (O_EXCL, 0600 at creation,
//!    then the target's owner and mode), and fsynced. Any failure removes the temps: nothing changed.
//! 2. Backups (if asked; staged as temps too, renamed with the rest) and rollback links to the old files.
//! 3. Journal: the list of renames is written atomically into the cert dir (`journal`). From here on the
//!    new PKI is complete on disk; a crash is finished by the next run (`recover`), which rolls forward.
//! 4. Rename each temp over its target, fsync the directories, remove the journal.
//! 5. A rename that fails: the journal is first replaced (atomically) by a rollback journal of the renames
//!    done, then the files already replaced are put back, then the journal is removed. A crash meanwhile is
//!    finished by the next run in the same direction, backwards (a roll-forward journal left in place would
//!    have it roll forward over the files already put back: half of a pair each, and no journal left).
//!
//! A rename is atomic per file; nothing in POSIX makes two renames (a key and its certificate) atomic
//! together, which is why the journal exists. Runs take turns on the PKI's lock (`lock`).

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::journal::{self, ORIG, TMP};
use crate::pki::Layout;

/// kubeadm's modes: keys and kubeconfig files 0600, certificates 0644.
pub const MODE_SECRET: u32 = 0o600;
pub const MODE_PUBLIC: u32 = 0o644;

pub struct FileWrite {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
}

impl std::fmt::Debug for FileWrite {
    // contents may be a private key
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileWrite({}, {} bytes, {:o})", self.path.display(), self.contents.len(), self.mode)
    }
}

/// Test-only failure points (`--features fault-injection`): the step fails with an injected I/O error when
/// `KUBEADM_CERTS_FAIL_AT` names it, so the crash tests reach the rollback path.
fn fault_fails(_step: &str) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if std::env::var("KUBEADM_CERTS_FAIL_AT").is_ok_and(|v| v == _step) {
        return Err(io::Error::other(format!("injected failure at {_step}")));
    }
    Ok(())
}

/// Test-only crash points (`--features fault-injection`): the process kills itself with SIGKILL at the
/// named step when `KUBEADM_CERTS_KILL_AT` says so, so crash tests hit every step deterministically.
fn fault_point(_step: &str) {
    #[cfg(feature = "fault-injection")]
    if std::env::var("KUBEADM_CERTS_KILL_AT").is_ok_and(|v| v == _step) {
        let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
        std::thread::sleep(std::time::Duration::from_secs(10));
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::write(dir, e))
}

pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sibling(path: &Path, index: usize, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or(OsStr::new("file")).to_string_lossy();
    parent(path).join(format!(".{name}.{}.{index}{suffix}", std::process::id()))
}

use crate::journal::{Direction, Entry as Staged};

fn write_new_file(path: &Path, contents: &[u8], owner: Option<(u32, u32)>, mode: u32) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).mode(MODE_SECRET).open(path)?;
    f.write_all(contents)?;
    if let Some((uid, gid)) = owner {
        let meta = f.metadata()?;
        if meta.uid() != uid || meta.gid() != gid {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
    }
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.sync_all()
}

fn remove_quietly(paths: impl IntoIterator<Item = PathBuf>) {
    for p in paths {
        let _ = fs::remove_file(p);
    }
}

/// Writes every file or none. Returns the backup files made (when `backup`). The steps are the ones numbered
/// at the top of this file.
pub fn commit(layout: &Layout, writes: &[FileWrite], backup: bool, now: DateTime<Utc>) -> Result<Vec<PathBuf>> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    // 1–2. stage every file beside its target, with its backup and rollback link; an error on the way drops
    // `staging`, which removes what it made
    let mut staging = Staging::default();
    for (i, w) in writes.iter().enumerate() {
        staging.stage(i, w, backup, now)?;
    }
    let staged = staging.in_rename_order();
    for d in &dirs_of(&staged) {
        sync_dir(d)?;
    }
    // 3. journal: from here on the next run completes what this one leaves
    if let Err(e) = write_journal(layout, Direction::Forward, &staged) {
        let _ = fs::remove_file(journal::path(layout));
        return Err(e);
    }
    let backups = staging.journaled();
    fault_point("journal");
    // 4. replace each target; 5. a rename that fails puts back those already replaced
    for (i, s) in staged.iter().enumerate() {
        if let Err(e) = fault_fails(&format!("rename-{i}")).and_then(|_| fs::rename(&s.tmp, &s.target)) {
            return Err(undo(layout, &staged, i, e));
        }
        fault_point(&format!("renamed-{i}"));
    }
    settle(layout, &staged)?;
    Ok(backups)
}

/// Steps 1 and 2 of `commit`: the temp files, backups and rollback links made so far. Until `journaled`,
/// dropping it removes every one of them: a failure while staging changes nothing.
#[derive(Default)]
struct Staging {
    /// Each target's temp, with its rollback link once made.
    targets: Vec<Staged>,
    /// The backups' temps (their targets are the backup files).
    backups: Vec<Staged>,
    journaled: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.journaled {
            let staged = self.targets.iter().chain(&self.backups);
            remove_quietly(staged.flat_map(|s| [Some(s.tmp.clone()), s.orig.clone()]).flatten());
        }
    }
}

impl Staging {
    /// Stages write `i`: its temp file, and for a file it replaces a backup (when asked) and a rollback link.
    fn stage(&mut self, i: usize, w: &FileWrite, backup: bool, now: DateTime<Utc>) -> Result<()> {
        let existing = existing_file(&w.path)?;
        // never widen a mode someone narrowed; always keep the owner able to read and write
        let mode = match &existing {
            Some(m) => (w.mode & m.mode() & 0o777) | 0o600,
            None => w.mode,
        };
        let tmp = sibling(&w.path, i, TMP);
        write_temp(&tmp, w, existing.as_ref().map(|m| (m.uid(), m.gid())), mode)?;
        self.targets.push(Staged { target: w.path.clone(), tmp, orig: None });
        fault_point(&format!("staged-{i}"));
        if existing.is_none() {
            return Ok(());
        }
        if backup {
            self.stage_backup(i, &w.path, now)?;
        }
        let orig = rollback_link(i, &w.path)?;
        self.targets.last_mut().expect("just pushed").orig = Some(orig);
        Ok(())
    }

    /// A backup of `path` as it is now, staged as a temp like the others and renamed into place after them:
    /// a crash before the journal leaves no backup of a renewal that did not happen.
    fn stage_backup(&mut self, i: usize, path: &Path, now: DateTime<Utc>) -> Result<()> {
        let name = format!(
            "{}.{}.{}~",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id(),
            now.format("%Y-%m-%d@%H:%M:%S")
        );
        let b = parent(path).join(name);
        let b_tmp = sibling(path, i, &format!(".backup{TMP}"));
        let old = fs::read(path).map_err(|e| Error::read(path, e))?;
        if let Err(e) = write_new_file(&b_tmp, &old, None, MODE_SECRET) {
            let _ = fs::remove_file(&b_tmp);
            return Err(Error::write(&b, e));
        }
        self.backups.push(Staged { target: b, tmp: b_tmp, orig: None });
        Ok(())
    }

    /// Every staged file in rename order: the targets, then the backups (`renamed-N` numbers the targets as
    /// `staged-N` does).
    fn in_rename_order(&self) -> Vec<Staged> {
        self.targets.iter().chain(&self.backups).cloned().collect()
    }

    /// The journal names every staged file: they are the next run's to complete, no longer ours to remove.
    /// Returns the backup files the renames will make.
    fn journaled(mut self) -> Vec<PathBuf> {
        self.journaled = true;
        self.backups.iter().map(|s| s.target.clone()).collect()
    }
}

/// The file a write replaces, if any; never a link or anything but a regular file.
fn existing_file(path: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(Error::invalid(path, "is a symbolic link; refusing to replace it (a write never follows a link)"))
        }
        Ok(m) if !m.is_file() => Err(Error::invalid(path, "is not a regular file")),
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::read(path, e)),
    }
}

/// Writes `w` to `tmp` with the owner of the file it replaces (if any) and `mode`; removes `tmp` when that fails.
fn write_temp(tmp: &Path, w: &FileWrite, owner: Option<(u32, u32)>, mode: u32) -> Result<()> {
    let Err(e) = write_new_file(tmp, &w.contents, owner, mode) else { return Ok(()) };
    let _ = fs::remove_file(tmp);
    Err(if e.kind() == io::ErrorKind::PermissionDenied && owner.is_some() {
        Error::Write {
            path: w.path.clone(),
            source: io::Error::new(
                e.kind(),
                format!("{e} (creating {} with the owner and mode of the file it replaces)", tmp.display()),
            ),
        }
    } else {
        Error::write(tmp, e)
    })
}

/// A second name for the file at `path` as it is now, which a rollback renames back over it.
fn rollback_link(i: usize, path: &Path) -> Result<PathBuf> {
    let orig = sibling(path, i, ORIG);
    if fs::hard_link(path, &orig).is_err() {
        // filesystems without hard links: a copy serves the same purpose
        let old = fs::read(path).map_err(|e| Error::read(path, e))?;
        if let Err(e) = write_new_file(&orig, &old, None, MODE_SECRET) {
            let _ = fs::remove_file(&orig);
            return Err(Error::write(&orig, e));
        }
    }
    Ok(orig)
}

/// The directories holding `entries`' targets, each once.
fn dirs_of(entries: &[Staged]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = entries.iter().map(|s| parent(&s.target).to_path_buf()).collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Writes the journal atomically (a temp renamed over it, both synced): replacing a roll-forward journal
/// by a rollback one is one rename.
fn write_journal(layout: &Layout, direction: Direction, entries: &[Staged]) -> Result<()> {
    let journal = journal::path(layout);
    let tmp = sibling(&journal, 0, TMP);
    write_new_file(&tmp, journal::render(direction, entries).as_bytes(), None, MODE_SECRET)
        .and_then(|_| fs::rename(&tmp, &journal))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::write(&journal, e)
        })?;
    sync_dir(&layout.cert_dir)
}

/// Rename `failed` of `staged` failed with `cause`: puts back the files already replaced.
///
/// The journal is turned into a rollback journal first. Left as it was, a crash while putting files back
/// would have the next run roll forward over them: the files already put back would stay old, the others
/// become new, half of a pair each, with no journal left to tell. With the rollback journal, the next run
/// finishes putting them back instead.
fn undo(layout: &Layout, staged: &[Staged], failed: usize, cause: io::Error) -> Error {
    let target = &staged[failed].target;
    let fail = |more: String| Error::Write {
        path: target.clone(),
        source: io::Error::new(cause.kind(), format!("{cause}; {more}")),
    };
    let done = &staged[..failed];
    if let Err(e) = write_journal(layout, Direction::Back, done) {
        // a journal stays (the roll-forward one, or the rollback one if only syncing it failed): either way
        // the next run settles the PKI whole from it
        return fail(format!(
            "turning the journal into a rollback journal failed too ({e}); {failed} files were already replaced: the \
             next kubeadm-certs renew, csr or install settles them from the journal"
        ));
    }
    fault_point("rollback-journal");
    remove_quietly(staged[failed..].iter().map(|s| s.tmp.clone()));
    match put_back(done).map_err(|e| Error::write(target, e)).and_then(|()| settle(layout, staged)) {
        Ok(()) => Error::Write { path: target.clone(), source: cause },
        Err(e) => fail(format!(
            "putting back the files already replaced failed too: {e}; the rollback journal stays: the next \
             kubeadm-certs renew, csr or install finishes putting them back"
        )),
    }
}

/// Puts back what the renames of `done` replaced, last first: the rollback link over each target, or the
/// target removed when there was none (a backup, a new file). Done again after a crash, it skips what is
/// already back.
fn put_back(done: &[Staged]) -> io::Result<()> {
    let gone = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    for (j, s) in done.iter().enumerate().rev() {
        match &s.orig {
            Some(orig) => gone(fs::rename(orig, &s.target))?,
            None => gone(fs::remove_file(&s.target))?,
        }
        fault_point(&format!("rolled-back-{j}"));
    }
    Ok(())
}

/// The journal's work is done: syncs the directories, removes the journal and the rollback links.
fn settle(layout: &Layout, entries: &[Staged]) -> Result<()> {
    for d in &dirs_of(entries) {
        sync_dir(d)?;
    }
    let journal = journal::path(layout);
    fs::remove_file(&journal).map_err(|e| Error::write(&journal, e))?;
    sync_dir(&layout.cert_dir)?;
    remove_quietly(entries.iter().filter_map(|s| s.orig.clone()));
    Ok(())
}

pub fn journal_pending(layout: &Layout) -> bool {
    journal::path(layout).exists()
}

/// Settles a journal an interrupted run left, then removes temp files a crash during staging left behind.
/// Run under the lock, before reading the PKI. Returns what it did to the PKI, when it changed files.
///
/// A roll-forward journal is completed: every new file was complete and synced before it was written. A
/// rollback journal (a rename had failed) is finished: the files it lists are put back. A journal that is
/// not one `commit` could have written for this PKI is refused before anything is touched (`journal`).
pub fn recover(layout: &Layout, extra_dirs: &[&Path]) -> Result<Option<String>> {
    let mut did = None;
    if crate::pki::exists(&journal::path(layout))? {
        let (direction, entries) = journal::read(layout, extra_dirs)?;
        did = match direction {
            Direction::Forward => roll_forward(&entries)?,
            Direction::Back => {
                let n = entries.iter().filter(|e| e.orig.as_ref().is_none_or(|o| o.exists())).count();
                put_back(&entries).map_err(|e| Error::write(&journal::path(layout), e))?;
                (n > 0).then(|| {
                    format!(
                        "finished rolling back an interrupted renewal whose rename had failed: put back {n} files first"
                    )
                })
            }
        };
        settle(layout, &entries)?;
    }
    sweep(layout, extra_dirs);
    Ok(did)
}

fn roll_forward(entries: &[Staged]) -> Result<Option<String>> {
    let mut n = 0;
    for e in entries {
        if e.tmp.exists() {
            fs::rename(&e.tmp, &e.target).map_err(|err| Error::write(&e.target, err))?;
            n += 1;
        }
    }
    Ok((n > 0).then(|| format!("completed an interrupted renewal of {n} files first")))
}

/// Removes the leftovers of a run killed while staging (no journal: those were never part of the PKI).
fn sweep(layout: &Layout, extra_dirs: &[&Path]) {
    let etcd = layout.cert_dir.join("etcd");
    let mut dirs: Vec<&Path> = vec![&layout.cert_dir, &etcd, &layout.kubeconfig_dir];
    dirs.extend_from_slice(extra_dirs);
    for dir in dirs {
        let Ok(rd) = fs::read_dir(dir) else { continue };
        for entry in rd.flatten() {
            let name = entry.file_name();
            let name = name.as_bytes();
            if name.starts_with(b".") && (name.ends_with(TMP.as_bytes()) || name.ends_with(ORIG.as_bytes())) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}
