//! The commit journal, `CERT_DIR/.kubeadm-certs.journal`: the renames a commit has left to do, one line per
//! file, `TARGET TEMP ORIG` (each path hex-encoded as bytes, so any path survives; ORIG is `-` when there is
//! no rollback link). `commit` writes it before its first rename; the next run (`recover`) replays it. When
//! a rename fails, `commit` replaces it (atomically) by a rollback journal: a first line `rollback`, then the
//! renames already done, which the next run undoes if the rollback itself was interrupted.
//!
//! Replaying renames files over the PKI, so a journal is trusted only as far as it is one `commit` could
//! have written for this PKI: every target must be a file kubeadm-certs writes (a certificate, key or
//! kubeconfig of kubeadm's inventory in the cert, etcd or kubeconfig dir, a CA certificate (never a CA key),
//! a kubeconfig whose CA data follows a renewed CA, a CSR or its key in this run's CSR dir, the kubelet's
//! client CSR, key and signed certificate there, the kubelet's self-signed serving pair in this run's kubelet
//! certificate dir or kubeadm's `/var/lib/kubelet/pki`, or a backup of one of them), every temp and rollback link must carry the name `commit` gives them
//! beside their target, and the file is at most [`crate::pki::MAX_FILE_BYTES`]. Anything else (a `../` out of the PKI, a
//! CA key, bytes that are not a journal line) refuses the whole journal before anything is renamed.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::engine::kubelet::{SELF_SIGNED_CERT, SELF_SIGNED_KEY};
use crate::error::{Error, Result};
use crate::inventory::{CAS, CERTIFICATES};
use crate::pki::{Layout, Links, read_file};
use crate::request::DEFAULT_KUBELET_DIR;

/// The kubelet's files a journal may list in a run's own directory (see `Names::of`).
const KUBELET_FILES: [&str; 5] =
    ["kubelet-client.csr", "kubelet-client.key", "kubelet-client.crt", SELF_SIGNED_CERT, SELF_SIGNED_KEY];

/// The suffixes of `commit`'s temp files and rollback links: the only names, besides the targets, a journal
/// may list.
pub(crate) const TMP: &str = ".kubeadm-certs-tmp";
pub(crate) const ORIG: &str = ".kubeadm-certs-orig";

pub const JOURNAL: &str = ".kubeadm-certs.journal";

/// Which way an interrupted commit is finished.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// Rename every temp that is still there over its target.
    Forward,
    /// Put back the rollback link over each target (or remove a target that had none).
    Back,
}

const ROLLBACK: &[u8] = b"rollback";

/// One rename left to do, and the rollback link to remove once done.
#[derive(Clone)]
pub struct Entry {
    pub target: PathBuf,
    pub tmp: PathBuf,
    pub orig: Option<PathBuf>,
}

pub fn path(layout: &Layout) -> PathBuf {
    layout.cert_dir.join(JOURNAL)
}

pub fn render(direction: Direction, entries: &[Entry]) -> String {
    let header = match direction {
        Direction::Forward => String::new(),
        Direction::Back => format!("{}\n", String::from_utf8_lossy(ROLLBACK)),
    };
    header
        + &entries
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}\n",
                    hex(&e.target),
                    hex(&e.tmp),
                    e.orig.as_deref().map(hex).unwrap_or_else(|| "-".into())
                )
            })
            .collect::<String>()
}

/// Reads and checks the journal. `extra_dirs`: the CSR dir of a `csr` run, or the kubelet's certificate dir of a
/// `renew kubelet-serving` run, whose files a journal may list.
pub fn read(layout: &Layout, extra_dirs: &[&Path]) -> Result<(Direction, Vec<Entry>)> {
    let journal = path(layout);
    let refuse = |problem: String| {
        Error::invalid(
            &journal,
            format!(
                "{problem}; refusing to replay this journal (it was not written by kubeadm-certs for this PKI, or is \
                 damaged): nothing was changed. See what state the PKI is in (`kubeadm-certs check`, and the files \
                 it names), then move the journal away and run again"
            ),
        )
    };
    let bytes = read_file(&journal, Links::Refuse).map_err(|e| match e {
        Error::Invalid { problem, .. } => refuse(problem),
        other => other,
    })?;
    let names = Names::of(layout, extra_dirs);
    let mut entries = Vec::new();
    let mut direction = Direction::Forward;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if i == 0 && line == ROLLBACK {
            direction = Direction::Back;
            continue;
        }
        let at = |problem: String| refuse(format!("line {}: {problem}", i + 1));
        let entry = parse_line(line).ok_or_else(|| {
            at("not a journal line (three hex-encoded paths, or two and `-`, separated by spaces)".into())
        })?;
        names.check(&entry).map_err(at)?;
        entries.push(entry);
    }
    Ok((direction, entries))
}

fn parse_line(line: &[u8]) -> Option<Entry> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let [target, tmp, orig] = fields.as_slice() else { return None };
    let orig = if *orig == b"-" { None } else { Some(unhex(orig)?) };
    Some(Entry { target: unhex(target)?, tmp: unhex(tmp)?, orig })
}

fn hex(p: &Path) -> String {
    p.as_os_str().as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &[u8]) -> Option<PathBuf> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes: Option<Vec<u8>> = s.chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect();
    Some(PathBuf::from(OsStr::from_bytes(&bytes?)))
}

/// The files kubeadm-certs writes: (directory, resolved through links, and file name).
struct Names {
    files: Vec<(PathBuf, String)>,
}

impl Names {
    fn of(layout: &Layout, extra_dirs: &[&Path]) -> Names {
        let mut files = Vec::new();
        let mut add = |path: &Path| {
            if let (Some(dir), Some(name)) = (resolved_parent(path), path.file_name()) {
                files.push((dir, name.to_string_lossy().into_owned()));
            }
        };
        for spec in CERTIFICATES {
            let location = layout.location(spec);
            add(location.path());
            add(location.key_path());
            for dir in extra_dirs {
                add(&dir.join(format!("{}.csr", spec.name)));
                add(&dir.join(format!("{}.key", spec.name)));
            }
        }
        // the kubelet's files a run writes beside the PKI: a worker's kubelet-client CSR and key (`csr`), the
        // certificate signed for it (`sign`), in the CSR dir; the self-signed serving pair (`renew
        // kubelet-serving`) in the kubelet's certificate dir
        for dir in extra_dirs {
            for name in KUBELET_FILES {
                add(&dir.join(name));
            }
        }
        // and where kubeadm's kubelet keeps that pair, so that whichever run comes next (the timer's `renew`)
        // completes an interrupted renewal of it there
        let kubelet_pki = Path::new(DEFAULT_KUBELET_DIR).join("pki");
        add(&kubelet_pki.join(SELF_SIGNED_CERT));
        add(&kubelet_pki.join(SELF_SIGNED_KEY));
        // a CA renewal: the CA certificate (its key is never written) and the kubeconfigs embedding it
        for ca in CAS {
            add(&layout.ca_paths(ca).0);
            for file in ca.kubeconfigs {
                add(&layout.kubeconfig_dir.join(file));
            }
        }
        files.sort();
        files.dedup();
        Names { files }
    }

    /// Whether `e` is a line `commit` writes for one of these files.
    fn check(&self, e: &Entry) -> Result<(), String> {
        let shown = e.target.display();
        let (base, backup) = self.base_of(&e.target).ok_or_else(|| {
            format!(
                "{shown} is not a file kubeadm-certs writes (the certificates, keys and kubeconfigs of kubeadm's PKI \
                 in the cert, etcd and kubeconfig dirs, its CA certificates but never a CA key, CSRs in this run's --csr-dir, the kubelet's \
                 self-signed serving pair, and their backups; a journal of an interrupted `csr` run is completed by `csr` with the same \
                 --csr-dir, one of `renew kubelet-serving` by the same with the same --kubelet-dir)"
            )
        })?;
        let beside = |p: &Path| p.parent() == e.target.parent();
        let named = |p: &Path, suffix: &str| {
            beside(p) && p.file_name().is_some_and(|n| tool_name(n.as_bytes(), base.as_bytes(), suffix.as_bytes()))
        };
        let tmp_suffix = if backup { format!(".backup{TMP}") } else { TMP.to_string() };
        if !named(&e.tmp, &tmp_suffix) {
            return Err(format!("{} is not the temp file kubeadm-certs names beside {shown}", e.tmp.display()));
        }
        match &e.orig {
            Some(o) if backup || !named(o, ORIG) => {
                return Err(format!("{} is not the rollback link kubeadm-certs names beside {shown}", o.display()));
            }
            _ => {}
        }
        for (p, what) in [(&e.tmp, "temp file"), (&e.target, "target")] {
            if let Ok(m) = fs::symlink_metadata(p)
                && !m.is_file()
            {
                return Err(format!("the {what} {} is not a regular file", p.display()));
            }
        }
        Ok(())
    }

    /// The file `target` is (its name, false) or a backup of (its name, true), when it is one of ours.
    fn base_of(&self, target: &Path) -> Option<(String, bool)> {
        let dir = resolved_parent(target)?;
        let name = target.file_name()?.as_bytes();
        self.files.iter().filter(|(d, _)| *d == dir).find_map(|(_, base)| {
            if name == base.as_bytes() {
                Some((base.clone(), false))
            } else {
                let stamp = name.strip_prefix(base.as_bytes())?.strip_prefix(b".")?.strip_suffix(b"~")?;
                is_backup_stamp(stamp).then(|| (base.clone(), true))
            }
        })
    }
}

/// The directory holding `path`, with links resolved (the journal holds the paths the run that wrote it was
/// given; this run may reach the same directories by other paths).
fn resolved_parent(path: &Path) -> Option<PathBuf> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::canonicalize(parent).ok()
}

/// `.BASE.PID.N` + `suffix`, as `commit::sibling` names a temp file or rollback link.
fn tool_name(name: &[u8], base: &[u8], suffix: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b".").and_then(|n| n.strip_prefix(base)).and_then(|n| n.strip_suffix(suffix))
    else {
        return false;
    };
    let numbers: Vec<&[u8]> = rest.split(|&b| b == b'.').collect();
    matches!(numbers.as_slice(), [b"", pid, n] if all_digits(pid) && all_digits(n))
}

/// `PID.YYYY-MM-DD@HH:MM:SS`, as `commit` stamps a backup.
fn is_backup_stamp(s: &[u8]) -> bool {
    let Some(dot) = s.iter().position(|&b| b == b'.') else { return false };
    let (pid, date) = (&s[..dot], &s[dot + 1..]);
    all_digits(pid)
        && date.len() == 19
        && date.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'@',
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        })
}

fn all_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_ones_commit_gives() {
        assert!(tool_name(b".apiserver.key.123.4.kubeadm-certs-tmp", b"apiserver.key", TMP.as_bytes()));
        assert!(tool_name(
            b".apiserver.key.123.4.backup.kubeadm-certs-tmp",
            b"apiserver.key",
            b".backup.kubeadm-certs-tmp"
        ));
        assert!(!tool_name(b".apiserver.key.123.kubeadm-certs-tmp", b"apiserver.key", TMP.as_bytes()));
        assert!(!tool_name(b".apiserver.key.1/../x.4.kubeadm-certs-tmp", b"apiserver.key", TMP.as_bytes()));
        assert!(!tool_name(b"apiserver.key.123.4.kubeadm-certs-tmp", b"apiserver.key", TMP.as_bytes()));
        assert!(is_backup_stamp(b"4242.2026-11-29@18:30:04"));
        assert!(!is_backup_stamp(b"4242.2026-11-29@18:30"));
        assert!(!is_backup_stamp(b".2026-11-29@18:30:04"));
    }

    #[test]
    fn the_kubelets_files_are_listed_in_the_run_s_own_directory_only() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::new(root.path().join("pki"), root.path());
        let (kubelet_pki, csr_dir) = (root.path().join("kubelet/pki"), root.path().join("csr"));
        for d in [&layout.cert_dir, &kubelet_pki, &csr_dir] {
            fs::create_dir_all(d).unwrap();
        }
        let entry = |dir: &Path, name: &str| Entry {
            target: dir.join(name),
            tmp: dir.join(format!(".{name}.4242.0{TMP}")),
            orig: Some(dir.join(format!(".{name}.4242.0{ORIG}"))),
        };
        let journal = |entries: &[Entry]| fs::write(path(&layout), render(Direction::Forward, entries)).unwrap();
        journal(&[entry(&kubelet_pki, "kubelet.key"), entry(&kubelet_pki, "kubelet.crt")]);
        assert_eq!(read(&layout, &[&kubelet_pki]).unwrap().1.len(), 2, "renew kubelet-serving's own pair");
        let e = read(&layout, &[]).err().unwrap().to_string();
        assert!(e.contains("kubelet.key is not a file kubeadm-certs writes") && e.contains("--kubelet-dir"), "{e}");
        journal(&[entry(&csr_dir, "kubelet-client.key"), entry(&csr_dir, "kubelet-client.csr")]);
        assert_eq!(read(&layout, &[&csr_dir]).unwrap().1.len(), 2, "csr kubelet-client's key and CSR");
        journal(&[entry(&csr_dir, "kubelet-client.crt")]);
        assert_eq!(read(&layout, &[&csr_dir]).unwrap().1.len(), 1, "sign kubelet-client's certificate");
        journal(&[entry(&kubelet_pki, "kubelet-client-current.pem")]);
        assert!(read(&layout, &[&kubelet_pki]).is_err(), "only the files named");
    }

    #[test]
    fn lines_round_trip_and_garbage_is_no_line() {
        let e = Entry { target: "/a/b\u{e9}".into(), tmp: PathBuf::from(OsStr::from_bytes(b"/a/\xff")), orig: None };
        let text = render(Direction::Forward, &[e]);
        let back = parse_line(text.trim_end().as_bytes()).unwrap();
        assert_eq!(back.target, Path::new("/a/b\u{e9}"));
        assert_eq!(back.tmp.as_os_str().as_bytes(), b"/a/\xff");
        assert!(back.orig.is_none());
        for bad in [&b"\xc3\xa9\xc3\xa9 61 -"[..], b"61 62", b"6 62 -", b"61 62 63 64", b" 61 -", b"zz 61 -"] {
            assert!(parse_line(bad).is_none(), "{bad:?}");
        }
    }
}
