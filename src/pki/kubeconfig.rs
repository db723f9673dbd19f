//! The client certificate embedded in a kubeconfig file, the way kubeadm's kubeconfig read-writer sees
//! it: the current context's user holds `client-certificate-data` / `client-key-data`, the current
//! context's cluster `certificate-authority-data`. Rewriting replaces exactly those and keeps every other
//! field and the key order.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_norway::{Mapping, Value};

use crate::error::{Error, Result};

pub struct Kubeconfig {
    path: PathBuf,
    doc: Value,
    user_index: usize,
    cluster_index: Option<usize>,
    pub context: String,
    pub user: String,
    pub cluster: String,
    pub client_certificate_pem: Vec<u8>,
    pub client_key_pem: Vec<u8>,
    pub certificate_authority_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubeconfig")
            .field("path", &self.path)
            .field("context", &self.context)
            .field("user", &self.user)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

fn key(s: &str) -> Value {
    Value::String(s.to_string())
}

fn str_field<'a>(m: &'a Mapping, k: &str) -> Option<&'a str> {
    m.get(key(k)).and_then(Value::as_str)
}

/// Index of the entry `{name: NAME, <inner>: {...}}` in the named list.
fn find_named(doc: &Value, list: &str, name: &str) -> Option<usize> {
    doc.get(list)?.as_sequence()?.iter().position(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

/// Where a kubeconfig's current user keeps its client certificate. kubeadm embeds it; the kubelet's
/// `kubelet.conf` after kubeadm's kubelet-finalize phase (and after every rotation) names a file instead,
/// `/var/lib/kubelet/pki/kubelet-client-current.pem`, which holds the certificate and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCertificate {
    Embedded(Vec<u8>),
    /// As written in the kubeconfig, resolved against the kubeconfig's directory as client-go does.
    File(PathBuf),
}

/// The current context's names, and its user's fields.
struct Current<'a> {
    context: String,
    user: String,
    user_index: usize,
    cluster: String,
    fields: &'a Mapping,
}

/// The current context's user (and cluster name), or why there is none.
fn current<'a>(doc: &'a Value, bad: &dyn Fn(String) -> Error) -> Result<Current<'a>> {
    let context = doc
        .get("current-context")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("kubeconfig has no current-context".into()))?
        .to_string();
    let ctx_index = find_named(doc, "contexts", &context)
        .ok_or_else(|| bad(format!("current-context {context:?} is not in contexts")))?;
    let ctx = doc["contexts"][ctx_index]
        .get("context")
        .and_then(Value::as_mapping)
        .ok_or_else(|| bad(format!("context {context:?} has no context fields")))?;
    let user = str_field(ctx, "user").ok_or_else(|| bad(format!("context {context:?} names no user")))?.to_string();
    let cluster = str_field(ctx, "cluster").unwrap_or_default().to_string();
    let user_index = find_named(doc, "users", &user)
        .ok_or_else(|| bad(format!("user {user:?} of the current context is not in users")))?;
    let fields = doc["users"][user_index]
        .get("user")
        .and_then(Value::as_mapping)
        .ok_or_else(|| bad(format!("user {user:?} has no credentials")))?;
    Ok(Current { context, user, user_index, cluster, fields })
}

/// The client certificate of `path`'s current user, embedded or named (read through links: the kubelet's
/// `kubelet.conf` may itself be one).
pub fn client_certificate(path: &Path) -> Result<ClientCertificate> {
    let bytes = super::read_file(path, super::Links::Follow)?;
    let bad = |problem: String| Error::invalid(path, problem);
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not a kubeconfig: not UTF-8 text".into()))?;
    let doc: Value = serde_norway::from_str(text).map_err(|e| bad(format!("not a valid kubeconfig: {e}")))?;
    let Current { user, fields, .. } = current(&doc, &bad)?;
    if let Some(data) = str_field(fields, "client-certificate-data") {
        return B64
            .decode(data.trim())
            .map(ClientCertificate::Embedded)
            .map_err(|e| bad(format!("user {user:?}: client-certificate-data is not valid base64: {e}")));
    }
    match str_field(fields, "client-certificate").filter(|f| !f.is_empty()) {
        Some(file) => {
            let file = Path::new(file);
            let base = path.parent().unwrap_or(Path::new("/"));
            Ok(ClientCertificate::File(if file.is_absolute() { file.to_path_buf() } else { base.join(file) }))
        }
        None => Err(bad(format!("user {user:?} has neither client-certificate-data nor client-certificate"))),
    }
}

/// `bytes` (the kubeconfig at `path`) with its current user's client certificate and key taken from `file`
/// (`client-certificate`, `client-key`) instead of embedded data, as the kubelet's `kubelet.conf` is after
/// kubeadm's kubelet-finalize phase. Nothing else changes.
pub fn with_client_file(path: &Path, bytes: &[u8], file: &Path) -> Result<Vec<u8>> {
    let file = Value::String(file.display().to_string());
    with_user_fields(
        path,
        bytes,
        &["client-certificate-data", "client-key-data"],
        [("client-certificate", file.clone()), ("client-key", file)],
    )
}

/// The opposite of [`with_client_file`], in memory only: `bytes` with its current user's client certificate and
/// key embedded from `cert_pem` and `key_pem`, so that the kubelet's own credentials can be read as a client's
/// (`Kubeconfig::parse` reads embedded data only). Never written anywhere.
pub fn with_client_data(path: &Path, bytes: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<Vec<u8>> {
    with_user_fields(
        path,
        bytes,
        &["client-certificate", "client-key"],
        [
            ("client-certificate-data", Value::String(B64.encode(cert_pem))),
            ("client-key-data", Value::String(B64.encode(key_pem))),
        ],
    )
}

/// `bytes` (the kubeconfig at `path`) with the `remove` fields of its current user removed and `set` set; every
/// other field and the key order kept.
fn with_user_fields<const N: usize>(
    path: &Path,
    bytes: &[u8],
    remove: &[&str],
    set: [(&str, Value); N],
) -> Result<Vec<u8>> {
    let bad = |problem: String| Error::invalid(path, problem);
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not a kubeconfig: not UTF-8 text".into()))?;
    let mut doc: Value = serde_norway::from_str(text).map_err(|e| bad(format!("not a valid kubeconfig: {e}")))?;
    let user_index = current(&doc, &bad)?.user_index;
    let user = doc["users"][user_index].get_mut("user").and_then(Value::as_mapping_mut).expect("checked by current");
    for field in remove {
        user.remove(key(field));
    }
    for (field, value) in set {
        user.insert(key(field), value);
    }
    serde_norway::to_string(&doc).map(String::into_bytes).map_err(|e| bad(format!("cannot serialize kubeconfig: {e}")))
}

/// What [`with_ca_replaced`] found in a kubeconfig's clusters, by cluster name.
#[derive(Debug, Default)]
pub struct CaFollow {
    /// The file's new contents; `None` when no cluster embeds the CA certificate replaced.
    pub contents: Option<Vec<u8>>,
    /// Clusters whose `certificate-authority-data` held it (and now hold the new one in its place).
    pub replaced: Vec<String>,
    /// Clusters that name a CA file (`certificate-authority`) instead, with the path as written.
    pub files: Vec<(String, String)>,
    /// Clusters that embed other CA certificates only.
    pub others: Vec<String>,
}

/// `bytes` (the kubeconfig at `path`) with the CA certificate `old_der` replaced by `new_der` wherever a
/// cluster's `certificate-authority-data` holds it, alone or in a bundle (the bundle's other certificates kept,
/// in order). Every cluster is looked at, not only the current context's: each one that trusts the old
/// certificate is meant to trust its successor. Every other field and the key order are kept. Data that is not
/// base64 of PEM fails, naming the cluster: a file that cannot be read as kubeadm writes it is not rewritten
/// on a guess.
pub fn with_ca_replaced(path: &Path, bytes: &[u8], old_der: &[u8], new_der: &[u8]) -> Result<CaFollow> {
    // contents whenever a cluster holds the old certificate: a check-mode run (new = old) still finds the file
    rewrite_ca_data(path, bytes, old_der, true, |blocks| {
        blocks
            .iter()
            .map(|b| {
                let contents = if b.tag() == "CERTIFICATE" && b.contents() == old_der { new_der } else { b.contents() };
                super::cert::pem_encode(b.tag(), contents)
            })
            .collect()
    })
}

/// `bytes` (the kubeconfig at `path`) with every cluster whose `certificate-authority-data` holds `member` (a CA
/// certificate, DER) trusting exactly `bundle` (DER certificates, in order) instead: a CA rotation's trust set
/// (`engine::ca_rotate`). The rest as [`with_ca_replaced`].
pub fn with_ca_bundle(path: &Path, bytes: &[u8], member: &[u8], bundle: &[Vec<u8>]) -> Result<CaFollow> {
    let pem: String = bundle.iter().map(|der| super::cert::pem_encode("CERTIFICATE", der)).collect();
    rewrite_ca_data(path, bytes, member, false, |_| pem.clone())
}

/// Each cluster of the kubeconfig whose `certificate-authority-data` holds the certificate `member` gets the
/// PEM `make` returns for its blocks; `contents` is `None` when no cluster holds `member`, or (unless
/// `even_unchanged`) when that changes no byte of any cluster's data.
fn rewrite_ca_data(
    path: &Path,
    bytes: &[u8],
    member: &[u8],
    even_unchanged: bool,
    make: impl Fn(&[::pem::Pem]) -> String,
) -> Result<CaFollow> {
    let bad = |problem: String| Error::invalid(path, problem);
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not a kubeconfig: not UTF-8 text".into()))?;
    let mut doc: Value = serde_norway::from_str(text).map_err(|e| bad(format!("not a valid kubeconfig: {e}")))?;
    let mut found = CaFollow::default();
    let mut changed = false;
    let Some(clusters) = doc.get_mut("clusters").and_then(Value::as_sequence_mut) else { return Ok(found) };
    for entry in clusters {
        let name = entry.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(cluster) = entry.get_mut("cluster").and_then(Value::as_mapping_mut) else { continue };
        let Some(data) = str_field(cluster, "certificate-authority-data") else {
            if let Some(file) = str_field(cluster, "certificate-authority") {
                found.files.push((name, file.to_string()));
            }
            continue;
        };
        let pem_bytes = B64
            .decode(data.trim())
            .map_err(|e| bad(format!("cluster {name:?}: certificate-authority-data is not valid base64: {e}")))?;
        let blocks = ::pem::parse_many(&pem_bytes)
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| bad(format!("cluster {name:?}: certificate-authority-data is not PEM")))?;
        if !blocks.iter().any(|b| b.tag() == "CERTIFICATE" && b.contents() == member) {
            found.others.push(name);
            continue;
        }
        let bundle = make(&blocks);
        let parts =
            |b: &[::pem::Pem]| b.iter().map(|p| (p.tag().to_string(), p.contents().to_vec())).collect::<Vec<_>>();
        let same = ::pem::parse_many(bundle.as_bytes()).is_ok_and(|new| parts(&new) == parts(&blocks));
        if !same || even_unchanged {
            cluster.insert(key("certificate-authority-data"), Value::String(B64.encode(bundle)));
            changed = true;
        }
        found.replaced.push(name);
    }
    if changed {
        found.contents = Some(
            serde_norway::to_string(&doc)
                .map(String::into_bytes)
                .map_err(|e| bad(format!("cannot serialize kubeconfig: {e}")))?,
        );
    }
    Ok(found)
}

impl Kubeconfig {
    /// Reads a kubeconfig through links (the API credentials are often `~/.kube/config`, a link); the PKI's
    /// own kubeconfigs are read without following links when their key is used (`pki::load_entry`).
    pub fn read(path: &Path) -> Result<Kubeconfig> {
        let bytes = super::read_file(path, super::Links::Follow)?;
        Kubeconfig::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Kubeconfig> {
        let bad = |problem: String| Error::invalid(path, problem);
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not a kubeconfig: not UTF-8 text".into()))?;
        let doc: Value = serde_norway::from_str(text).map_err(|e| bad(format!("not a valid kubeconfig: {e}")))?;
        if !doc.is_mapping() {
            return Err(bad("not a valid kubeconfig: the document is not a mapping".into()));
        }
        let Current { context, user, user_index, cluster, fields: u } = current(&doc, &bad)?;
        let embedded = |field: &str, file_field: &str| -> Result<Vec<u8>> {
            match str_field(u, field) {
                Some(data) => {
                    B64.decode(data.trim()).map_err(|e| bad(format!("user {user:?}: {field} is not valid base64: {e}")))
                }
                None => Err(bad(match str_field(u, file_field) {
                    Some(file) => format!(
                        "user {user:?} has no embedded {field} ({file_field} points to {file}); only embedded client certificates are managed"
                    ),
                    None => format!("user {user:?} has no embedded {field}"),
                })),
            }
        };
        let client_certificate_pem = embedded("client-certificate-data", "client-certificate")?;
        let client_key_pem = embedded("client-key-data", "client-key")?;
        let cluster_index = find_named(&doc, "clusters", &cluster);
        let certificate_authority_pem = match cluster_index
            .and_then(|i| doc["clusters"][i].get("cluster"))
            .and_then(|c| c.get("certificate-authority-data"))
            .and_then(Value::as_str)
        {
            Some(data) => Some(B64.decode(data.trim()).map_err(|e| {
                bad(format!("cluster {cluster:?}: certificate-authority-data is not valid base64: {e}"))
            })?),
            None => None,
        };
        Ok(Kubeconfig {
            path: path.to_path_buf(),
            doc,
            user_index,
            cluster_index,
            context,
            user,
            cluster,
            client_certificate_pem,
            client_key_pem,
            certificate_authority_pem,
        })
    }

    /// A string field of the current context's cluster (`server`, `tls-server-name`, ...).
    pub fn cluster_str(&self, field: &str) -> Option<&str> {
        self.cluster_field(field).and_then(Value::as_str)
    }

    /// A boolean field of the current context's cluster (`insecure-skip-tls-verify`); absent is false.
    pub fn cluster_bool(&self, field: &str) -> bool {
        self.cluster_field(field).and_then(Value::as_bool).unwrap_or(false)
    }

    fn cluster_field(&self, field: &str) -> Option<&Value> {
        self.doc["clusters"][self.cluster_index?].get("cluster")?.get(field)
    }

    /// The file's new contents with the user's client certificate and key replaced and, where the
    /// cluster embeds its CA, the CA refreshed from disk. Nothing else changes.
    pub fn with_client(&self, cert_pem: &str, key_pem: &str, ca_pem: Option<&str>) -> Result<Vec<u8>> {
        let mut doc = self.doc.clone();
        let user =
            doc["users"][self.user_index].get_mut("user").and_then(Value::as_mapping_mut).expect("checked when parsed");
        user.insert(key("client-certificate-data"), Value::String(B64.encode(cert_pem)));
        user.insert(key("client-key-data"), Value::String(B64.encode(key_pem)));
        if let (Some(i), Some(ca)) = (self.cluster_index, ca_pem)
            && let Some(cluster) = doc["clusters"][i].get_mut("cluster").and_then(Value::as_mapping_mut)
            && cluster.contains_key(key("certificate-authority-data"))
        {
            cluster.insert(key("certificate-authority-data"), Value::String(B64.encode(ca)));
        }
        serde_norway::to_string(&doc)
            .map(String::into_bytes)
            .map_err(|e| Error::invalid(&self.path, format!("cannot serialize kubeconfig: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::cert::pem_encode;

    /// The CA certificate is swapped where a cluster holds it, alone or in a bundle whose other certificates stay in
    /// their order; a cluster naming a file and one holding another CA are reported, not changed.
    #[test]
    fn the_old_ca_is_swapped_in_every_cluster_that_holds_it_and_nothing_else_changes() {
        let (old, new, other) = (b"old ca".as_slice(), b"new ca".as_slice(), b"another ca".as_slice());
        let data = |pems: &[&[u8]]| B64.encode(pems.iter().map(|d| pem_encode("CERTIFICATE", d)).collect::<String>());
        let kubeconfig = |c: &str| {
            format!(
                "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://a:6443\n  name: a\n\
                 - cluster:\n    certificate-authority: /etc/x/ca.crt\n  name: b\n\
                 - cluster:\n    certificate-authority-data: {c}\n  name: c\n\
                 - cluster:\n    certificate-authority-data: {}\n  name: d\ncurrent-context: x\nkind: Config\n",
                data(&[other, old]),
                data(&[old])
            )
        };
        let text = kubeconfig(&data(&[other]));
        let path = Path::new("k.conf");
        let found = with_ca_replaced(path, text.as_bytes(), old, new).unwrap();
        assert_eq!(found.replaced, ["a", "d"]);
        assert_eq!(found.files, [("b".to_string(), "/etc/x/ca.crt".to_string())]);
        assert_eq!(found.others, ["c"]);
        let doc: Value = serde_norway::from_slice(&found.contents.unwrap()).unwrap();
        let ca = |i: usize| doc["clusters"][i]["cluster"]["certificate-authority-data"].as_str().map(String::from);
        assert_eq!(ca(0), Some(data(&[other, new])), "the bundle's order kept, the old one replaced");
        assert_eq!(ca(2), Some(data(&[other])));
        assert_eq!(ca(3), Some(data(&[new])));
        assert_eq!(doc["clusters"][0]["cluster"]["server"].as_str(), Some("https://a:6443"));
        assert_eq!(doc["current-context"].as_str(), Some("x"));
        // nothing holds it: no new contents
        assert!(with_ca_replaced(path, text.as_bytes(), b"absent", new).unwrap().contents.is_none());
        let bad = kubeconfig("not-base64");
        let e = with_ca_replaced(path, bad.as_bytes(), old, new).map(|f| f.replaced).unwrap_err().to_string();
        assert!(e.contains("cluster \"c\""), "{e}");
    }
}
