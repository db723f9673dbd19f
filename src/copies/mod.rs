//! Credential copies: kubeconfigs outside the kubeconfig dir that carry a client certificate this cluster's `ca`
//! issued. `kubeadm init` tells users to `cp /etc/kubernetes/admin.conf $HOME/.kube/config`; kubespray copies it
//! to root's `~/.kube/config`. A renewal replaces admin.conf's certificate, and every copy keeps the old one, which
//! fails the morning it expires (m-lab/k8s-support#446, kubespray#9182).
//!
//! - Where: `/root/.kube/config`, `/home/*/.kube/config` and any other paths asked for (`*` stands for every name
//!   of one directory, dot-names aside), read as [`fs`] reads a file a user controls: no link of theirs followed.
//! - What: a kubeconfig (YAML with `users`) one of whose users embeds a `client-certificate-data` that chains to
//!   `ca` (the CA's key verifies its signature: a certificate of another cluster's CA of the same name is not
//!   ours). A file in the kubeconfig dir is kubeadm's own, never a copy.
//! - A former admin.conf (`engine::copies` refreshes those): byte for byte admin.conf as it was before this run,
//!   or admin.conf as it is with its user's `client-certificate-data` and `client-key-data` (and its cluster's
//!   `certificate-authority-data`) put back to the copy's, an older certificate of the same subject: exactly
//!   what a renewal leaves behind in a `cp` of admin.conf. A copy a user edited (another context, a namespace, a
//!   merged kubeconfig) is neither, and is left alone with the reason.

pub mod fs;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_norway::Value;

use crate::pki::cert::Certificate;
use crate::request::CopySearch;

/// A credential copy found: the file as read, and the user in it whose certificate `ca` issued.
#[derive(Debug)]
pub struct Copy {
    pub file: fs::Opened,
    /// The kubeconfig user holding it.
    pub user: String,
    pub cert: Certificate,
}

/// What a search found besides copies: said as warnings (a link not followed, a file not readable), only where
/// it could hide a copy.
#[derive(Debug, Default)]
pub struct Search {
    pub copies: Vec<Copy>,
    pub warnings: Vec<String>,
}

/// A path to look at, and how it came to be looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    /// From a path the user gave (not a default place).
    pub asked: bool,
    /// Named exactly, without `*`: what is there was meant to be a copy.
    pub exact: bool,
}

/// The paths `search` names, `*` expanded (sorted, each once, the first way it came).
pub fn candidates(search: &CopySearch) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    let defaults = search.patterns().len() - search.paths.len();
    for (i, pattern) in search.patterns().into_iter().enumerate() {
        let exact = !pattern.components().any(|c| c.as_os_str() == "*");
        for path in expand(&pattern) {
            if !out.iter().any(|c| c.path == path) {
                out.push(Candidate { path, asked: i >= defaults, exact: exact && i >= defaults });
            }
        }
    }
    out
}

/// `pattern` with each `*` component replaced by every name in the directory before it (not dot-names), listed
/// only where no link a user could have made leads (`fs::names`).
fn expand(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for part in pattern.components() {
        let part = part.as_os_str();
        if part != "*" {
            found.iter_mut().for_each(|p| p.push(part));
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            // listed as a file is read: a user's link on the way is not followed, so it lists nothing of theirs
            let mut names: Vec<_> =
                fs::names(dir).into_iter().filter(|n| !n.as_encoded_bytes().starts_with(b".")).collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found
}

/// Every copy of this cluster's credentials at the paths `search` names, outside `kubeconfig_dir`, issued by
/// `ca`. A path named exactly says why it is not one; the others stay quiet unless what is there could hide one:
/// a link not followed, or a file that cannot be read, which is said for a path the user gave, or when the run is
/// root's (a user's check may not read other homes: that says nothing; root that cannot, as on an NFS home
/// squashing root, does not see a copy there).
pub fn find(search: &CopySearch, kubeconfig_dir: &Path, ca: &Certificate) -> Search {
    let mut out = Search::default();
    let own = std::fs::canonicalize(kubeconfig_dir).unwrap_or_else(|_| kubeconfig_dir.to_path_buf());
    let root = crate::engine::key_dir::euid() == 0;
    for Candidate { path, asked, exact: explicit } in candidates(search) {
        match fs::open(&path) {
            Ok(fs::Found::File(file)) => {
                if file.real.parent() == Some(own.as_path()) {
                    continue;
                }
                match credential(&file.bytes, ca) {
                    Some((user, cert)) => out.copies.push(Copy { file, user, cert }),
                    None if explicit => out.warnings.push(format!(
                        "{}: not a kubeconfig with a client certificate of this cluster's CA: not a credential copy",
                        path.display()
                    )),
                    None => {}
                }
            }
            Ok(fs::Found::Absent) => {
                if explicit {
                    out.warnings.push(format!("{}: does not exist: no credential copy there", path.display()));
                }
            }
            Ok(fs::Found::Link { at, to }) => {
                let resolved = std::fs::canonicalize(&at).ok();
                // a link to kubeadm's own file is that file: it follows every renewal
                if resolved.as_deref().is_some_and(|r| r.parent() == Some(own.as_path())) {
                    continue;
                }
                let link = if at == path {
                    format!("is a symbolic link (to {})", to.display())
                } else {
                    format!("{} on its way is a symbolic link (to {})", at.display(), to.display())
                };
                out.warnings.push(format!(
                    "{}: {link} that someone other than root could have made: not followed, so a copy there is not \
                     seen; name the file itself (--copies, copies) if it is one",
                    path.display()
                ));
            }
            Ok(fs::Found::NotRead(why)) => {
                if explicit {
                    out.warnings.push(format!("{}: {why}: not read", path.display()));
                }
            }
            Err(e) if asked || root || e.kind() != std::io::ErrorKind::PermissionDenied => out.warnings.push(format!(
                "{}: cannot read ({e}): whether it is a copy of this cluster's credentials is not known",
                path.display()
            )),
            Err(_) => {}
        }
    }
    out
}

/// The user of a kubeconfig (`bytes`) whose embedded client certificate `ca` issued, with the certificate; the
/// current context's user first, then the others in order. `None`: not a kubeconfig, or none of its certificates
/// is this cluster's. Nothing of the file is ever quoted: it may hold a private key.
pub fn credential(bytes: &[u8], ca: &Certificate) -> Option<(String, Certificate)> {
    let doc: Value = serde_norway::from_slice(bytes).ok()?;
    let users = doc.get("users")?.as_sequence()?;
    let current_user = current_user(&doc);
    let mut order: Vec<&Value> = users.iter().collect();
    order.sort_by_key(|u| u.get("name").and_then(Value::as_str) != current_user.as_deref());
    order.into_iter().find_map(|u| {
        let name = u.get("name")?.as_str()?;
        let data = u.get("user")?.get("client-certificate-data")?.as_str()?;
        let pem = B64.decode(data.trim()).ok()?;
        let cert = Certificate::from_file_bytes(Path::new("copy"), &pem).ok()?;
        crate::pki::verify::chains_to(&cert, ca).ok()?;
        Some((name.to_string(), cert))
    })
}

fn current_user(doc: &Value) -> Option<String> {
    let context = doc.get("current-context")?.as_str()?;
    let ctx =
        doc.get("contexts")?.as_sequence()?.iter().find(|c| c.get("name").and_then(Value::as_str) == Some(context))?;
    Some(ctx.get("context")?.get("user")?.as_str()?.to_string())
}

/// The embedded credential fields of a kubeconfig's current context, as written in the file.
struct Fields {
    user: String,
    cert: String,
    key: String,
    ca: Option<String>,
}

fn fields(bytes: &[u8]) -> Option<Fields> {
    let doc: Value = serde_norway::from_slice(bytes).ok()?;
    let context = doc.get("current-context")?.as_str()?;
    let ctx =
        doc.get("contexts")?.as_sequence()?.iter().find(|c| c.get("name").and_then(Value::as_str) == Some(context))?;
    let user_name = ctx.get("context")?.get("user")?.as_str()?;
    let cluster_name = ctx.get("context")?.get("cluster").and_then(Value::as_str);
    let named = |list: &str, name: &str| {
        doc.get(list)?.as_sequence()?.iter().find(|e| e.get("name").and_then(Value::as_str) == Some(name)).cloned()
    };
    let user = named("users", user_name)?;
    let user = user.get("user")?;
    let ca = cluster_name
        .and_then(|c| named("clusters", c))
        .and_then(|c| c.get("cluster")?.get("certificate-authority-data")?.as_str().map(String::from));
    Some(Fields {
        user: user_name.to_string(),
        cert: user.get("client-certificate-data")?.as_str()?.to_string(),
        key: user.get("client-key-data")?.as_str()?.to_string(),
        ca,
    })
}

/// `admin` (admin.conf's bytes) with its current user's client certificate and key, and its cluster's CA data,
/// replaced by `copy`'s, in the text itself (each value found exactly once): what admin.conf was before a
/// renewal replaced them, when that is what `copy` holds. `None` when either is not such a kubeconfig, the users
/// differ, or a value is not written once as a plain string.
pub fn admin_with_credentials_of(admin: &[u8], copy: &[u8]) -> Option<Vec<u8>> {
    let (a, c) = (fields(admin)?, fields(copy)?);
    if a.user != c.user {
        return None;
    }
    let mut text = String::from_utf8(admin.to_vec()).ok()?;
    let mut swaps = vec![(a.cert, c.cert), (a.key, c.key)];
    if let (Some(from), Some(to)) = (a.ca, c.ca) {
        swaps.push((from, to));
    }
    for (from, to) in swaps {
        if from == to {
            continue;
        }
        if from.is_empty() || text.matches(from.as_str()).count() != 1 {
            return None;
        }
        text = text.replacen(from.as_str(), &to, 1);
    }
    Some(text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0FORVc=\n    server: \
                         https://192.0.2.1:6443\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    \
                         user: kubernetes-admin\n  name: kubernetes-admin@kubernetes\ncurrent-context: \
                         kubernetes-admin@kubernetes\nkind: Config\npreferences: {}\nusers:\n- name: kubernetes-admin\n  \
                         user:\n    client-certificate-data: Q0VSVE5FVw==\n    client-key-data: S0VZTkVX\n";

    #[test]
    fn admin_conf_with_a_copys_older_credentials_is_that_copy_and_an_edit_is_not() {
        let old = ADMIN.replace("Q0VSVE5FVw==", "Q0VSVE9MRA==").replace("S0VZTkVX", "S0VZT0xE");
        assert_eq!(admin_with_credentials_of(ADMIN.as_bytes(), old.as_bytes()).unwrap(), old.as_bytes());
        let old_ca = old.replace("Q0FORVc=", "Q0FPTEQ=");
        assert_eq!(admin_with_credentials_of(ADMIN.as_bytes(), old_ca.as_bytes()).unwrap(), old_ca.as_bytes());
        // a namespace added: the credentials put back do not make it the copy
        let edited = old.replace("    user: kubernetes-admin\n", "    namespace: dev\n    user: kubernetes-admin\n");
        assert_ne!(admin_with_credentials_of(ADMIN.as_bytes(), edited.as_bytes()).unwrap(), edited.as_bytes());
        // another user
        let other = old.replace("kubernetes-admin", "alice");
        assert!(admin_with_credentials_of(ADMIN.as_bytes(), other.as_bytes()).is_none());
        assert!(admin_with_credentials_of(ADMIN.as_bytes(), b"not: [a kubeconfig").is_none());
    }

    #[test]
    fn a_star_stands_for_every_name_of_one_directory_but_dot_names() {
        let d = tempfile::tempdir().unwrap();
        for u in ["bob", "alice", ".hidden"] {
            std::fs::create_dir_all(d.path().join("home").join(u).join(".kube")).unwrap();
        }
        let got = expand(&d.path().join("home/*/.kube/config"));
        let want: Vec<PathBuf> =
            ["alice", "bob"].iter().map(|u| d.path().join("home").join(u).join(".kube/config")).collect();
        assert_eq!(got, want);
        assert!(expand(Path::new("/nonexistent/*/config")).is_empty());
    }
}
