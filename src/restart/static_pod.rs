//! kubeadm's static pod restart (`kubeadm upgrade`'s), with its two traps avoided:
//!
//! - A manifest moved out and back unchanged is the same pod to the kubelet: it keeps the crash backoff of
//!   the old container, and the component can stay down for minutes. Put back with an annotation changed
//!   (`kubeadm-certs.k8s-pki.io/restartedAt`), the manifest is a new pod (new UID): no backoff, as when
//!   `kubeadm upgrade` changes a manifest.
//! - Anything failing while the manifest is held (the process does not stop, the write fails) puts it back
//!   at once, unchanged; an interrupted run's held manifest is put back by the next run (`held::recover`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_norway::Value;

use super::annotate::set_annotation;
use super::held;
use super::wait;
use crate::error::{Error, Result};
use crate::inuse::Scope;
use crate::inventory::Component;

pub const ANNOTATION: &str = "kubeadm-certs.k8s-pki.io/restartedAt";

pub fn manifest_path(manifests_dir: &Path, component: &str) -> PathBuf {
    manifests_dir.join(format!("{component}.yaml"))
}

/// The manifest with the restart annotation set to `now`, every other byte kept (`annotate`). Refused, naming
/// why, when it is no static pod manifest or the one line cannot be set as text; and checked: read back, the
/// document is the original with that one annotation set.
pub fn annotated(path: &Path, bytes: &[u8], now: DateTime<Utc>) -> Result<Vec<u8>> {
    let bad = |problem: String| Error::invalid(path, problem);
    let doc: Value =
        serde_norway::from_slice(bytes).map_err(|e| bad(format!("not a static pod manifest (YAML): {e}")))?;
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    if kind != "Pod" {
        return Err(bad(format!("not a static pod manifest: kind is {kind:?}, not \"Pod\"")));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    let value = now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let changed = set_annotation(text, ANNOTATION, &value)
        .map_err(|why| bad(format!("cannot set the restart annotation as one line ({why}); nothing was moved")))?;
    let mut expected = doc;
    let annotations = expected
        .get_mut("metadata")
        .and_then(Value::as_mapping_mut)
        .map(|m| m.entry(Value::from("annotations")).or_insert(Value::Null))
        .ok_or_else(|| bad("not a static pod manifest: no metadata".into()))?;
    if !annotations.is_mapping() {
        *annotations = Value::Mapping(Default::default());
    }
    if let Some(m) = annotations.as_mapping_mut() {
        m.insert(Value::from(ANNOTATION), Value::from(value));
    }
    let read_back: Option<Value> = serde_norway::from_str(&changed).ok();
    if read_back.as_ref() != Some(&expected) {
        return Err(bad("setting the restart annotation as text would change more than that annotation; nothing \
                        was moved"
            .into()));
    }
    Ok(changed.into_bytes())
}

/// Holds the manifest until no process of `component` runs on this PKI (the old pod's, a crash restart of it
/// included), then puts it back annotated: a new pod. Returns the time it went back, after which the new pod's
/// process must have started; the caller waits for it.
pub fn restart(
    manifest: &Path,
    scope: &Scope<'_>,
    component: Component,
    timeout: Duration,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    let name = component.name();
    let original = std::fs::read(manifest).map_err(|e| Error::read(manifest, e))?;
    // refused before anything moves: a manifest we could not put back changed
    let changed = annotated(manifest, &original, now)?;
    let held = held::hold(manifest)?;
    let undo = |why: String| -> Error {
        match held::put_back(&held, manifest) {
            Ok(()) => Error::Restart(format!("{name}: {why}; its manifest {} is back in place", manifest.display())),
            Err(e) => Error::Restart(format!(
                "{name}: {why}; putting its manifest back failed too ({e}): move {} to {} now (any \
                 kubeadm-certs run also does)",
                held.display(),
                manifest.display()
            )),
        }
    };
    if let Err(still) = wait::all_gone(scope, component, timeout) {
        return Err(undo(format!(
            "{still} after its manifest was moved out (is the kubelet running? `systemctl status kubelet`, \
             `journalctl -u kubelet`)"
        )));
    }
    let back = Utc::now();
    held::put_back_changed(&held, manifest, &changed)
        .map_err(|e| undo(format!("cannot write the new manifest: {e}")))?;
    Ok(back)
}

/// A component asked for that is not running but has its manifest here: between crash restarts (kube-controller-
/// manager and kube-scheduler exit when they lose their leader lease, as when the apiserver restarts under load),
/// where the kubelet's crash backoff may hold it back for minutes. The manifest is rewritten with the annotation
/// changed: a new pod, started at once, on the certificates on disk. Returns when it was rewritten; the caller
/// waits for a process started after.
pub fn restart_not_running(manifest: &Path, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let original = std::fs::read(manifest).map_err(|e| Error::read(manifest, e))?;
    let changed = annotated(manifest, &original, now)?;
    let at = Utc::now();
    held::replace(manifest, &changed)?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 10.0.0.5:6443\n  creationTimestamp: null\n  name: kube-apiserver\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --tls-cert-file=/etc/kubernetes/pki/apiserver.crt\n    name: kube-apiserver\n";

    #[test]
    fn the_annotation_changes_the_content_and_keeps_the_rest() {
        let p = Path::new("kube-apiserver.yaml");
        let t1 = DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z").unwrap().with_timezone(&Utc);
        let t2 = t1 + chrono::Duration::milliseconds(1);
        let a = annotated(p, MANIFEST.as_bytes(), t1).unwrap();
        let b = annotated(p, &a, t2).unwrap();
        assert_ne!(a, b, "a second restart must change the content again");
        let v: Value = serde_norway::from_slice(&b).unwrap();
        let orig: Value = serde_norway::from_slice(MANIFEST.as_bytes()).unwrap();
        assert_eq!(v["metadata"]["annotations"][ANNOTATION], "2026-11-29T10:00:00.001000000Z");
        assert_eq!(
            v["metadata"]["annotations"]["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"],
            "10.0.0.5:6443"
        );
        assert_eq!(v["spec"], orig["spec"]);
        assert_eq!(v["metadata"]["name"], "kube-apiserver");
    }

    #[test]
    fn what_is_not_a_static_pod_is_refused_by_name() {
        let p = Path::new("/m/x.yaml");
        let e = annotated(p, b"kind: Deployment\nmetadata: {}\n", Utc::now()).unwrap_err().to_string();
        assert!(e.starts_with("/m/x.yaml: ") && e.contains("\"Deployment\""), "{e}");
        let e = annotated(p, b"{{{", Utc::now()).unwrap_err().to_string();
        assert!(e.contains("YAML"), "{e}");
    }
}
