//! The holding dir: where a static pod manifest waits while its component stops. It is
//! `<manifests dir>/../tmp/kubeadm-certs-paused-manifests` (`/etc/kubernetes/tmp/kubeadm-certs-paused-manifests`
//! on a kubeadm node, where `kubeadm upgrade` keeps its own temporary manifests, and the dir the collection's
//! `control_plane_restart` and `schedule` roles have always used): near the manifests dir, so that moving a
//! manifest there and back is a rename on one filesystem, and outside it, because the kubelet runs every file
//! it finds in the manifests dir.
//!
//! A manifest found there belongs in the manifests dir: a run that was interrupted (killed, the node
//! rebooted) while holding it left the component down. Every run of every state puts it back first.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::inventory::Component;

pub const HELD_DIR: &str = "tmp/kubeadm-certs-paused-manifests";
/// kubeadm writes manifests 0600.
const MODE: u32 = 0o600;

pub fn held_dir(manifests_dir: &Path) -> PathBuf {
    let parent = manifests_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parent.join(HELD_DIR)
}

/// What the holding dir holds: the manifests to put back, and what is left where it is, with why.
#[derive(Debug, Default)]
pub struct Held {
    pub manifests: Vec<PathBuf>,
    pub ignored: Vec<String>,
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail
    unsafe { libc::geteuid() }
}

/// Whether only this user (root) can have put anything in `dir`: a directory, not a link, owned by us, mode 0700,
/// in a parent that is no link and that nobody else may write. Anything a run moves into the manifests dir the
/// kubelet runs as a privileged pod, so the holding dir is believed only when no other user could have written it.
fn trusted_dir(dir: &Path) -> std::result::Result<(), String> {
    let me = euid();
    let check = |d: &Path, exact_0700: bool| -> std::result::Result<(), String> {
        let m = fs::symlink_metadata(d).map_err(|e| format!("{}: {e}", d.display()))?;
        let mode = m.mode() & 0o7777;
        if m.file_type().is_symlink() || !m.is_dir() {
            return Err(format!("{} is not a directory but a link or a file", d.display()));
        }
        if m.uid() != me {
            return Err(format!("{} is owned by uid {}, not by uid {me} (root)", d.display(), m.uid()));
        }
        if (exact_0700 && mode != 0o700) || mode & 0o022 != 0 {
            return Err(format!("{} has mode {mode:04o}; it must be 0700", d.display()));
        }
        Ok(())
    };
    check(dir.parent().unwrap_or(Path::new("/")), false)?;
    check(dir, true)
}

/// The manifests an interrupted run left held (hidden temps excluded), sorted: only a control-plane component's
/// manifest, a regular file of ours, from a trusted holding dir ([`trusted_dir`]). Anything else is named in
/// `ignored` and left where it is.
pub fn left_held(manifests_dir: &Path) -> Held {
    let dir = held_dir(manifests_dir);
    let Ok(entries) = fs::read_dir(&dir) else { return Held::default() };
    if let Err(why) = trusted_dir(&dir) {
        return Held {
            manifests: vec![],
            ignored: vec![format!("{why}: nothing in it is put back, it is left as it is")],
        };
    }
    let mut held = Held::default();
    for e in entries.filter_map(|e| e.ok()) {
        let (path, name) = (e.path(), e.file_name().to_string_lossy().into_owned());
        if name.starts_with('.') {
            continue;
        }
        let component = name.strip_suffix(".yaml").and_then(Component::parse);
        let meta = fs::symlink_metadata(&path);
        let why = match (component, &meta) {
            (None, _) => {
                Some("is not the manifest of etcd, kube-apiserver, kube-controller-manager or kube-scheduler".into())
            }
            (_, Err(e)) => Some(e.to_string()),
            (_, Ok(m)) if !m.file_type().is_file() => Some("is not a regular file".into()),
            (_, Ok(m)) if m.uid() != euid() || m.mode() & 0o022 != 0 => Some(format!(
                "is owned by uid {} with mode {:04o}, not a file only root wrote",
                m.uid(),
                m.mode() & 0o7777
            )),
            _ => None,
        };
        match why {
            Some(why) => held.ignored.push(format!("{} {why}: left where it is", path.display())),
            None => held.manifests.push(path),
        }
    }
    held.manifests.sort();
    held.ignored.sort();
    held
}

/// What [`recover`] did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Each manifest put back, and when.
    pub back: Vec<(PathBuf, DateTime<Utc>)>,
    /// Held, but its name is back in the manifests dir (put back by hand): left held.
    pub conflicting: Vec<PathBuf>,
    /// Left where it is, and why (see [`left_held`]).
    pub ignored: Vec<String>,
}

/// Puts back every manifest an interrupted run left held. One whose name is already in the manifests dir again
/// (someone put it back by hand) stays held and is reported by the caller.
///
/// A static pod manifest goes back with the restart annotation set to `now`: put back unchanged it would be
/// the pod the kubelet just stopped (same UID), which inherits that pod's crash-loop backoff and can leave the
/// component down for minutes. One whose annotation cannot be set as text goes back byte for byte.
///
/// `before` is called with each manifest about to go back (not with one that stays held): the caller finishes
/// there what the interrupted run was doing, waiting until the component's old process is gone.
pub fn recover(manifests_dir: &Path, now: DateTime<Utc>, mut before: impl FnMut(&Path)) -> Result<Recovered> {
    let held = left_held(manifests_dir);
    let mut done = Recovered { ignored: held.ignored, ..Recovered::default() };
    for held in held.manifests {
        let target = manifests_dir.join(held.file_name().expect("a file in the holding dir"));
        if target.exists() {
            done.conflicting.push(held);
            continue;
        }
        before(&target);
        let annotated = fs::read(&held).ok().and_then(|bytes| super::static_pod::annotated(&held, &bytes, now).ok());
        let at = Utc::now();
        match annotated {
            Some(changed) => put_back_changed(&held, &target, &changed)?,
            None => fs::rename(&held, &target).map_err(|e| Error::write(&target, e))?,
        }
        done.back.push((target, at));
    }
    Ok(done)
}

/// The holding dir for `manifests_dir`, made (0700) where missing, and trusted ([`trusted_dir`]): a run never
/// holds a manifest where another user could swap it.
fn ensure_held_dir(manifests_dir: &Path) -> Result<PathBuf> {
    let dir = held_dir(manifests_dir);
    if !dir.exists() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| Error::write(&dir, e))?;
    }
    trusted_dir(&dir).map_err(|why| {
        Error::Restart(format!("cannot hold a manifest in {}: {why}; nothing was moved", dir.display()))
    })?;
    Ok(dir)
}

/// Moves `manifest` into the holding dir: the kubelet stops its pod.
pub fn hold(manifest: &Path) -> Result<PathBuf> {
    let dir = ensure_held_dir(manifest.parent().unwrap_or(Path::new(".")))?;
    let held = dir.join(manifest.file_name().expect("a manifest file"));
    if held.exists() {
        return Err(Error::Restart(format!(
            "{}: a manifest is already held there; put it back first (any kubeadm-certs run does)",
            held.display()
        )));
    }
    fs::rename(manifest, &held).map_err(|e| Error::write(manifest, e))?;
    Ok(held)
}

/// Replaces `manifest` in place with `contents` (a temp in the holding dir, renamed: the kubelet never sees half
/// a file, nor the temp, which is outside its directory).
pub fn replace(manifest: &Path, contents: &[u8]) -> Result<()> {
    let dir = ensure_held_dir(manifest.parent().unwrap_or(Path::new(".")))?;
    let tmp = dir.join(format!(".{}.new", manifest.file_name().unwrap_or_default().to_string_lossy()));
    let write = || -> std::io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(MODE).open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, manifest)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::write(manifest, e)
    })
}

/// Puts a held manifest back unchanged.
pub fn put_back(held: &Path, manifest: &Path) -> Result<()> {
    fs::rename(held, manifest).map_err(|e| Error::write(manifest, e))
}

/// Puts `contents` where the held manifest came from (as [`replace`] writes it), then drops the held original.
pub fn put_back_changed(held: &Path, manifest: &Path, contents: &[u8]) -> Result<()> {
    replace(manifest, contents)?;
    fs::remove_file(held).map_err(|e| Error::write(held, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holding_dir_is_beside_the_manifests_dir() {
        let want = Path::new("/etc/kubernetes/tmp/kubeadm-certs-paused-manifests");
        assert_eq!(held_dir(Path::new("/etc/kubernetes/manifests")), want);
        assert_eq!(held_dir(Path::new("/etc/kubernetes/manifests/")), want);
    }

    #[test]
    fn held_manifests_go_back_and_one_put_back_by_hand_stays() {
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests");
        fs::create_dir(&manifests).unwrap();
        fs::write(manifests.join("etcd.yaml"), "etcd").unwrap();
        fs::write(manifests.join("kube-apiserver.yaml"), "api").unwrap();
        let held = hold(&manifests.join("kube-apiserver.yaml")).unwrap();
        assert!(!manifests.join("kube-apiserver.yaml").exists());
        let held_etcd = hold(&manifests.join("etcd.yaml")).unwrap();
        fs::write(manifests.join("etcd.yaml"), "etcd by hand").unwrap();
        let done = recover(&manifests, Utc::now(), |_| {}).unwrap();
        let back: Vec<&PathBuf> = done.back.iter().map(|(p, _)| p).collect();
        assert_eq!(back, [&manifests.join("kube-apiserver.yaml")]);
        // not a static pod manifest: back byte for byte
        assert_eq!(fs::read_to_string(manifests.join("kube-apiserver.yaml")).unwrap(), "api");
        assert!(!held.exists());
        assert_eq!(done.conflicting, [held_etcd]);
        assert_eq!(fs::read_to_string(manifests.join("etcd.yaml")).unwrap(), "etcd by hand");
    }

    #[test]
    fn a_held_static_pod_goes_back_as_a_new_pod() {
        // put back unchanged, it would be the pod the kubelet just stopped: same UID, its crash backoff inherited
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests");
        fs::create_dir(&manifests).unwrap();
        let original = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\nspec:\n  containers:\n  - name: kube-apiserver\n";
        fs::write(manifests.join("kube-apiserver.yaml"), original).unwrap();
        hold(&manifests.join("kube-apiserver.yaml")).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z").unwrap().with_timezone(&Utc);
        let done = recover(&manifests, now, |_| {}).unwrap();
        assert_eq!(done.back.len(), 1);
        assert_eq!(done.back[0].0, manifests.join("kube-apiserver.yaml"));
        let doc: serde_norway::Value =
            serde_norway::from_slice(&fs::read(manifests.join("kube-apiserver.yaml")).unwrap()).unwrap();
        let orig: serde_norway::Value = serde_norway::from_str(original).unwrap();
        assert_eq!(
            doc["metadata"]["annotations"][super::super::static_pod::ANNOTATION],
            "2026-11-29T10:00:00.000000000Z"
        );
        assert_eq!(doc["spec"], orig["spec"]);
        assert!(left_held(&manifests).manifests.is_empty(), "nothing stays held");
        let mode = fs::metadata(manifests.join("kube-apiserver.yaml")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn only_the_four_manifests_from_a_dir_only_root_wrote_are_put_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests");
        fs::create_dir(&manifests).unwrap();
        fs::write(manifests.join("kube-scheduler.yaml"), "s").unwrap();
        let held = hold(&manifests.join("kube-scheduler.yaml")).unwrap();
        let holding = held.parent().unwrap().to_path_buf();
        // a privileged pod dropped beside it, and a link to a file elsewhere under a component's name
        fs::write(holding.join("backdoor.yaml"), "kind: Pod").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", holding.join("etcd.yaml")).unwrap();
        let found = left_held(&manifests);
        assert_eq!(found.manifests, std::slice::from_ref(&held));
        assert_eq!(found.ignored.len(), 2, "{:?}", found.ignored);
        assert!(
            found.ignored.iter().any(|w| w.contains("backdoor.yaml is not the manifest of etcd")),
            "{:?}",
            found.ignored
        );
        assert!(found.ignored.iter().any(|w| w.contains("etcd.yaml is not a regular file")), "{:?}", found.ignored);
        let done = recover(&manifests, Utc::now(), |_| {}).unwrap();
        assert_eq!(done.back.len(), 1);
        assert!(!manifests.join("backdoor.yaml").exists() && holding.join("backdoor.yaml").exists());
        assert!(!manifests.join("etcd.yaml").exists());

        // a holding dir others may write is not used at all, nor held into
        fs::set_permissions(&holding, fs::Permissions::from_mode(0o777)).unwrap();
        fs::write(holding.join("kube-apiserver.yaml"), "kind: Pod").unwrap();
        let found = left_held(&manifests);
        assert!(found.manifests.is_empty(), "{found:?}");
        assert!(found.ignored[0].contains("has mode 0777; it must be 0700"), "{found:?}");
        let e = hold(&manifests.join("kube-scheduler.yaml")).unwrap_err().to_string();
        assert!(e.contains("cannot hold a manifest in") && e.contains("nothing was moved"), "{e}");
        assert!(manifests.join("kube-scheduler.yaml").exists());
        // nor one that is a link to a dir of the same look
        fs::set_permissions(&holding, fs::Permissions::from_mode(0o700)).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::rename(&holding, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &holding).unwrap();
        let found = left_held(&manifests);
        assert!(found.manifests.is_empty() && found.ignored[0].contains("is not a directory but a link"), "{found:?}");
    }
}
