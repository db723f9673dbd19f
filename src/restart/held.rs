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
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

pub const HELD_DIR: &str = "tmp/kubeadm-certs-paused-manifests";
/// kubeadm writes manifests 0600.
const MODE: u32 = 0o600;

pub fn held_dir(manifests_dir: &Path) -> PathBuf {
    let parent = manifests_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parent.join(HELD_DIR)
}

/// Manifests left in the holding dir (hidden temps excluded), sorted.
pub fn left_held(manifests_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(held_dir(manifests_dir)) else { return Vec::new() };
    let mut held: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    held.sort();
    held
}

/// Puts back every manifest an interrupted run left held; returns what it put back. One whose name is
/// already in the manifests dir again (someone put it back by hand) stays held and is reported by the caller.
///
/// A static pod manifest goes back with the restart annotation set to `now`: put back unchanged it would be
/// the pod the kubelet just stopped (same UID), which inherits that pod's crash-loop backoff and can leave the
/// component down for minutes. A file that is not a static pod manifest goes back byte for byte.
///
/// `before` is called with each manifest about to go back (not with one that stays held): the caller finishes
/// there what the interrupted run was doing, waiting until the component's old process is gone.
pub fn recover(
    manifests_dir: &Path,
    now: DateTime<Utc>,
    mut before: impl FnMut(&Path),
) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut back = Vec::new();
    let mut conflicting = Vec::new();
    for held in left_held(manifests_dir) {
        let target = manifests_dir.join(held.file_name().expect("a file in the holding dir"));
        if target.exists() {
            conflicting.push(held);
            continue;
        }
        before(&target);
        let annotated = fs::read(&held).ok().and_then(|bytes| super::static_pod::annotated(&held, &bytes, now).ok());
        match annotated {
            Some(changed) => put_back_changed(&held, &target, &changed)?,
            None => fs::rename(&held, &target).map_err(|e| Error::write(&target, e))?,
        }
        back.push(target);
    }
    Ok((back, conflicting))
}

/// Moves `manifest` into the holding dir: the kubelet stops its pod.
pub fn hold(manifest: &Path) -> Result<PathBuf> {
    let dir = held_dir(manifest.parent().unwrap_or(Path::new(".")));
    fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
    let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
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
    let dir = held_dir(manifest.parent().unwrap_or(Path::new(".")));
    fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
    let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
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
        let (back, conflicting) = recover(&manifests, Utc::now(), |_| {}).unwrap();
        assert_eq!(back, [manifests.join("kube-apiserver.yaml")]);
        // not a static pod manifest: back byte for byte
        assert_eq!(fs::read_to_string(manifests.join("kube-apiserver.yaml")).unwrap(), "api");
        assert!(!held.exists());
        assert_eq!(conflicting, [held_etcd]);
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
        let (back, _) = recover(&manifests, now, |_| {}).unwrap();
        assert_eq!(back, [manifests.join("kube-apiserver.yaml")]);
        let doc: serde_norway::Value =
            serde_norway::from_slice(&fs::read(manifests.join("kube-apiserver.yaml")).unwrap()).unwrap();
        let orig: serde_norway::Value = serde_norway::from_str(original).unwrap();
        assert_eq!(
            doc["metadata"]["annotations"][super::super::static_pod::ANNOTATION],
            "2026-11-29T10:00:00.000000000Z"
        );
        assert_eq!(doc["spec"], orig["spec"]);
        assert!(left_held(&manifests).is_empty(), "nothing stays held");
        let mode = fs::metadata(manifests.join("kube-apiserver.yaml")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
