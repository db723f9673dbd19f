//! Reading and replacing a file in a directory another user controls (`~/.kube/config` in a user's home), as
//! root, so that nothing that user plants makes root read or write anything else.
//!
//! - **No link is followed that a user could have made.** The path is walked from `/` one component at a time,
//!   each opened relative to the directory before it with `O_NOFOLLOW` (`openat`). A symbolic link on the way is
//!   followed only when root owns it and it sits in a directory root owns and nobody else may write (only root
//!   could have made it or can change it: `/home -> /srv/home`); any other link, the file's own name included,
//!   is reported and not followed. So `~/.kube/config -> /etc/shadow`, or `~/.kube -> /etc/kubernetes`, is
//!   never read or written through.
//! - **Only a regular file**, opened without blocking (a FIFO would hang the run), at most
//!   [`crate::pki::MAX_FILE_BYTES`], and the file opened must be the one `fstatat` saw.
//! - **A write stays in the directory walked.** The replacement is made through the directory's descriptor: a
//!   temp file created there `O_CREAT|O_EXCL|O_NOFOLLOW` 0600, given the file's owner, group and mode, synced,
//!   then renamed over the file (`renameat`, which replaces the name and never follows a link at it), and the
//!   directory synced. Moving the directory meanwhile moves the write with it, inside what the user owned.
//! - **Nobody but the file's owner and root may write a directory on the way**, or the file is left alone: each
//!   directory is owned by root or by the file's owner, and writable by no one else (no write bit for others; for
//!   the group only when it is the owner's private group, as `pam_umask`'s usergroups makes `~/.kube` 0775 with
//!   umask 002; a directory above the file's own may be root's with the sticky bit, like `/tmp`, where nobody may
//!   move what is not theirs). A third user who may write there could swap the file under the write. A file with other hard
//!   links is left alone too: replacing one name would leave the others as they were.
//! - **A temp file a killed run left** beside a copy (`.NAME.kubeadm-certs.PID.tmp`) is removed by the next
//!   replacement there, by name through the directory's descriptor.
//! - **The file must still be what was judged**: read again right before the rename, same inode and bytes, or
//!   the write is abandoned (the user edited it meanwhile). The window left is between that read and the rename,
//!   and all it can cost is the user's own edit of their own file.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::pki::MAX_FILE_BYTES;

/// What `fstat` says of a file or directory, as far as the rules above need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub uid: u32,
    pub gid: u32,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    pub nlink: u64,
}

impl Stat {
    // st_nlink is a u64 on x86_64 and a u32 on aarch64, both of which the collection ships
    #[allow(clippy::unnecessary_cast)]
    fn of(st: &libc::stat) -> Stat {
        Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode,
            nlink: st.st_nlink as u64,
        }
    }
    fn kind(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    pub fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }
    fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }
    fn is_link(&self) -> bool {
        self.kind() == libc::S_IFLNK
    }
    pub fn permissions(&self) -> u32 {
        self.mode & 0o777
    }
}

/// A directory on the way to the file: where it is (as walked) and who may write it.
#[derive(Clone, Debug)]
pub struct Dir {
    pub path: PathBuf,
    pub stat: Stat,
}

/// A file read without following a link anyone but root made.
#[derive(Debug)]
pub struct Opened {
    /// The path asked for.
    pub path: PathBuf,
    /// The path as walked: root's links resolved.
    pub real: PathBuf,
    pub stat: Stat,
    pub bytes: Vec<u8>,
    /// Every directory from `/` to the file's own, in order; the last is its own.
    pub dirs: Vec<Dir>,
    dir: OwnedFd,
    name: CString,
}

/// What is at a path.
#[derive(Debug)]
pub enum Found {
    File(Opened),
    Absent,
    /// A symbolic link that is not root's to trust: not followed. `at` is the link, `to` what it says.
    Link {
        at: PathBuf,
        to: PathBuf,
    },
    /// Something that is not read: a directory, a FIFO, a file too large; why.
    NotRead(String),
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a name"))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

fn fstatat(dir: &OwnedFd, name: &CStr) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid descriptor, a NUL-terminated name, and a buffer of the size fstatat writes
    check(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
    // SAFETY: fstatat succeeded, so it filled the buffer
    Ok(Stat::of(&unsafe { st.assume_init() }))
}

fn fstat(fd: &OwnedFd) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid descriptor and a buffer of the size fstat writes
    check(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded
    Ok(Stat::of(&unsafe { st.assume_init() }))
}

fn openat(dir: Option<&OwnedFd>, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let at = dir.map(|d| d.as_raw_fd()).unwrap_or(libc::AT_FDCWD);
    // SAFETY: a valid descriptor (or AT_FDCWD) and a NUL-terminated name
    let fd = check(unsafe { libc::openat(at, name.as_ptr(), flags | libc::O_CLOEXEC, libc::c_uint::from(mode)) })?;
    // SAFETY: openat returned a new descriptor that nothing else owns
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn readlinkat(dir: &OwnedFd, name: &CStr) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: a valid descriptor, a NUL-terminated name, and a buffer of the length given
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(OsStr::from_bytes(&buf).to_os_string()))
}

/// Only root could have made this link or can change it: root's, in a directory root owns and nobody else
/// may write.
fn root_made(link: &Stat, dir: &Stat) -> bool {
    link.uid == 0 && dir.uid == 0 && dir.mode & 0o022 == 0
}

/// The longest chain of root's links followed (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// What is at `path` (absolute), read as the module's comment says.
pub fn open(path: &Path) -> io::Result<Found> {
    Ok(match walk(path, Want::File)? {
        Walked::File(f) => Found::File(f),
        Walked::Dir(_) => Found::NotRead("names a directory".into()),
        Walked::Not(found) => found,
    })
}

/// The names in directory `dir` (absolute), reached as [`open`] reaches a file: what `*` in a path to look at
/// stands for. Nothing when it is not there, or behind a link that is not root's to trust.
pub fn names(dir: &Path) -> Vec<OsString> {
    let Ok(Walked::Dir(fd)) = walk(dir, Want::Dir) else { return Vec::new() };
    // the directory opened, not whatever is at its path by now
    let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd())) else { return Vec::new() };
    entries.flatten().map(|e| e.file_name()).collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    File,
    Dir,
}

enum Walked {
    File(Opened),
    Dir(OwnedFd),
    Not(Found),
}

/// `path`, one component at a time from `/` (see the module's comment), ending in what `want` asks for.
fn walk(path: &Path, want: Want) -> io::Result<Walked> {
    use Walked::Not;
    if !path.is_absolute() {
        return Ok(Not(Found::NotRead("not an absolute path".into())));
    }
    let root = openat(None, c"/", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let root_stat = fstat(&root)?;
    // the directories walked, `/` first; `..` goes back one
    let mut stack: Vec<(OwnedFd, Dir)> = vec![(root, Dir { path: PathBuf::from("/"), stat: root_stat })];
    let mut rest: Vec<OsString> = components(path);
    rest.reverse();
    let mut links = 0;
    while let Some(name) = rest.pop() {
        if name == "." {
            continue;
        }
        if name == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let (dir, here) = stack.last().expect("/ stays");
        let at = here.path.join(&name);
        let c = cstr(&name)?;
        let stat = match fstatat(dir, &c) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Not(Found::Absent)),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(Not(Found::Absent)),
            Err(e) => return Err(e),
        };
        if stat.is_link() {
            let to = readlinkat(dir, &c)?;
            if !root_made(&stat, &here.stat) || links >= MAX_LINKS {
                return Ok(Not(Found::Link { at, to }));
            }
            links += 1;
            if to.is_absolute() {
                stack.truncate(1);
            }
            let mut more = components(&to);
            more.reverse();
            rest.extend(more);
            continue;
        }
        if !rest.is_empty() || want == Want::Dir {
            if !stat.is_dir() {
                return Ok(Not(Found::Absent));
            }
            let fd = openat(Some(dir), &c, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)?;
            let opened = fstat(&fd)?;
            if (opened.dev, opened.ino) != (stat.dev, stat.ino) {
                return Ok(Not(Found::NotRead(format!("{} was replaced while being opened", at.display()))));
            }
            stack.push((fd, Dir { path: at, stat: opened }));
            continue;
        }
        if !stat.is_file() {
            return Ok(Not(Found::NotRead("not a regular file".into())));
        }
        let (bytes, stat) = match read_at(dir, &c, stat)? {
            Contents::Bytes(b, s) => (b, s),
            Contents::Not(why) => return Ok(Not(Found::NotRead(why))),
        };
        let dirs = stack.iter().map(|(_, d)| d.clone()).collect();
        let (dir, _) = stack.pop().expect("/ stays");
        return Ok(Walked::File(Opened { path: path.to_path_buf(), real: at, stat, bytes, dirs, dir, name: c }));
    }
    // every component walked: the last directory is what was asked for (`/` itself, or a path ending in `..`)
    let (fd, _) = stack.pop().expect("/ stays");
    Ok(if want == Want::Dir { Walked::Dir(fd) } else { Not(Found::NotRead("names a directory".into())) })
}

fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

enum Contents {
    Bytes(Vec<u8>, Stat),
    Not(String),
}

/// The file `name` in `dir`, which `fstatat` saw as `seen`: opened without following a link or waiting on a
/// FIFO, and only if it is still that file.
fn read_at(dir: &OwnedFd, name: &CStr, seen: Stat) -> io::Result<Contents> {
    let fd = match openat(Some(dir), name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK, 0) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Contents::Not("became a link".into())),
        Err(e) => return Err(e),
    };
    let stat = fstat(&fd)?;
    if (stat.dev, stat.ino) != (seen.dev, seen.ino) || !stat.is_file() {
        return Ok(Contents::Not("was replaced while being opened".into()));
    }
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    (&mut file).take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Ok(Contents::Not(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(Contents::Bytes(bytes, stat))
}

impl Opened {
    /// Why this file may not be replaced in place (see the module's comment), or `None` when it may.
    pub fn unsafe_to_replace(&self) -> Option<String> {
        if self.stat.nlink > 1 {
            return Some(format!(
                "it has {} hard links: replacing this name would leave the others as they are",
                self.stat.nlink
            ));
        }
        let owner = self.stat.uid;
        let last = self.dirs.len().saturating_sub(1);
        for (i, d) in self.dirs.iter().enumerate() {
            let s = d.stat;
            // a directory above it that root owns with the sticky bit (/tmp): nobody else may move what is in it
            if i < last && s.uid == 0 && s.mode & libc::S_ISVTX != 0 {
                continue;
            }
            if s.uid != 0 && s.uid != owner {
                return Some(format!(
                    "{} belongs to uid {}, neither root nor the file's owner: they could swap the file while it is \
                     written",
                    d.path.display(),
                    s.uid
                ));
            }
            let others = s.mode & 0o002 != 0;
            let group = s.mode & 0o020 != 0 && !users::private_group(s.gid, s.uid);
            if others || group {
                return Some(format!(
                    "{} is writable by {} (mode {:04o}): another user could swap the file while it is written; \
                     chmod go-w it, then run again",
                    d.path.display(),
                    if others { "every user" } else { "its group" },
                    s.permissions()
                ));
            }
        }
        None
    }

    /// Replaces the file with `contents`, keeping its owner, group and mode, as the module's comment says;
    /// refused (nothing written) when [`Opened::unsafe_to_replace`] says why or the file is no longer the one read.
    pub fn replace(&self, contents: &[u8]) -> Result<(), String> {
        if let Some(why) = self.unsafe_to_replace() {
            return Err(why);
        }
        let prefix = format!(".{}.kubeadm-certs.", OsStr::from_bytes(self.name.as_bytes()).to_string_lossy());
        self.remove_leftovers(&prefix);
        let tmp_name = OsString::from(format!("{prefix}{}.tmp", std::process::id()));
        let tmp = cstr(&tmp_name).map_err(|e| e.to_string())?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let fd = openat(Some(&self.dir), &tmp, flags, 0o600)
            .map_err(|e| format!("cannot create {} beside it: {e}", tmp_name.to_string_lossy()))?;
        let written = self.fill(fd, contents).and_then(|()| self.still_as_read()).and_then(|()| {
            // SAFETY: valid descriptors and NUL-terminated names; renameat never follows a link at either name
            check(unsafe {
                libc::renameat(self.dir.as_raw_fd(), tmp.as_ptr(), self.dir.as_raw_fd(), self.name.as_ptr())
            })
            .map(drop)
            .map_err(|e| format!("cannot rename the new file into place: {e}"))
        });
        if written.is_err() {
            // SAFETY: a valid descriptor and a NUL-terminated name; only our temp file has that name
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), tmp.as_ptr(), 0) };
            return written;
        }
        // SAFETY: a valid descriptor
        check(unsafe { libc::fsync(self.dir.as_raw_fd()) })
            .map(drop)
            .map_err(|e| format!("replaced, but syncing its directory failed: {e}"))
    }

    /// Temp files a run killed between creating and renaming one left beside the copy (`PREFIX<pid>.tmp`):
    /// removed by name through the directory's descriptor (a link of that name is removed itself, never followed).
    fn remove_leftovers(&self, prefix: &str) {
        let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", self.dir.as_raw_fd())) else { return };
        for name in entries.flatten().map(|e| e.file_name()) {
            let text = name.to_string_lossy();
            let pid = text.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(".tmp"));
            if pid.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                && let Ok(c) = cstr(&name)
            {
                // SAFETY: a valid descriptor and a NUL-terminated name
                unsafe { libc::unlinkat(self.dir.as_raw_fd(), c.as_ptr(), 0) };
            }
        }
    }

    /// The new file's contents, owner, group and mode, synced.
    fn fill(&self, fd: OwnedFd, contents: &[u8]) -> Result<(), String> {
        let mut file = std::fs::File::from(fd);
        let fail = |what: &str, e: io::Error| format!("cannot {what} the new file: {e}");
        file.write_all(contents).map_err(|e| fail("write", e))?;
        std::os::unix::fs::fchown(&file, Some(self.stat.uid), Some(self.stat.gid)).map_err(|e| fail("chown", e))?;
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(self.stat.permissions())).map_err(|e| fail("chmod", e))?;
        file.sync_all().map_err(|e| fail("sync", e))
    }

    /// The name still holds the file read, byte for byte: not edited or replaced since.
    fn still_as_read(&self) -> Result<(), String> {
        let changed = || "it changed since it was read (edited meanwhile?); left as it is now".to_string();
        let seen = fstatat(&self.dir, &self.name).map_err(|_| changed())?;
        match read_at(&self.dir, &self.name, seen).map_err(|e| e.to_string())? {
            Contents::Bytes(bytes, stat)
                if stat.ino == self.stat.ino && stat.dev == self.stat.dev && bytes == self.bytes =>
            {
                Ok(())
            }
            _ => Err(changed()),
        }
    }
}

/// The accounts of `/etc/passwd` and `/etc/group`, for names and private groups.
pub mod users {
    /// The name of `uid` in `/etc/passwd`, or the number.
    pub fn name(uid: u32) -> String {
        passwd().into_iter().find(|(_, u, _)| *u == uid).map(|(n, _, _)| n).unwrap_or_else(|| uid.to_string())
    }

    /// `gid` is `owner`'s private group: `owner`'s primary group in `/etc/passwd`, the primary group of no other
    /// account, and with no members listed in `/etc/group`. What cannot be read is no proof.
    pub fn private_group(gid: u32, owner: u32) -> bool {
        let accounts = passwd();
        let primary = accounts.iter().any(|(_, u, g)| *u == owner && *g == gid);
        let shared = accounts.iter().any(|(_, u, g)| *u != owner && *g == gid);
        let members = std::fs::read_to_string("/etc/group").ok().and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && f[2].parse() == Ok(gid)).then(|| f[3].trim().is_empty())
            })
        });
        primary && !shared && members == Some(true)
    }

    /// (name, uid, gid) of every account in `/etc/passwd`.
    fn passwd() -> Vec<(String, u32, u32)> {
        let Ok(text) = std::fs::read_to_string("/etc/passwd") else { return Vec::new() };
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((f.first()?.to_string(), f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_users_link_is_never_followed_and_a_plain_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("secret"), "not for you").unwrap();
        std::fs::write(d.join("config"), "apiVersion: v1").unwrap();
        symlink(d.join("secret"), d.join("link")).unwrap();
        // a user's link (as root the test's own would be root's, which is followed in a directory only root may
        // write)
        let _ = std::os::unix::fs::lchown(d.join("link"), Some(65534), Some(65534));
        match open(&d.join("config")).unwrap() {
            Found::File(f) => assert_eq!(f.bytes, b"apiVersion: v1"),
            other => panic!("{other:?}"),
        }
        // a temp dir is not root's sticky-free directory: the link is reported, never read
        match open(&d.join("link")).unwrap() {
            Found::Link { to, .. } => assert_eq!(to, d.join("secret")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(open(&d.join("absent")).unwrap(), Found::Absent));
        assert!(matches!(open(&d.join("config/below")).unwrap(), Found::Absent));
        assert!(matches!(open(d).unwrap(), Found::NotRead(_)));
        assert!(matches!(open(Path::new("relative/config")).unwrap(), Found::NotRead(_)));
    }
}
