//! A CA rotation as the files of one node show it. There is no state file to lose: where a rotation stands is
//! read off the CA file (one certificate, or a bundle of the old and the new), which certificate `<base>.key`
//! belongs to, and which key file lies beside it (docs/ca-rotation.md has the table):
//!
//! | state       | `<base>.crt`  | `<base>.key` | beside it                          | certificates here  |
//! |-------------|---------------|--------------|------------------------------------|--------------------|
//! | `single`    | [X]           | X            |                                    | by X               |
//! | `trusting`  | [OLD, NEW]    | OLD          | `<base>.next.key` (NEW's)          | by OLD             |
//! | `reissuing` | [NEW, OLD]    | NEW          | `<base>.previous.key` (OLD's)      | some still by OLD  |
//! | `reissued`  | [NEW, OLD]    | NEW          | `<base>.previous.key` (OLD's)      | all by NEW         |
//!
//! A node without the CA's key (a worker's `ca.crt`) is `trusting` with two certificates, `single` with one.
//! Everything else is `inconsistent`, with the reason. `engine::ca_rotate` moves a node from one state to the
//! next, one transaction each; `check` reports the state; the collection's `ca_rotation_plan` filter derives
//! from every node's state what the cluster does next. Nothing here writes.

use std::path::{Path, PathBuf};

use super::cert::{Certificate, sha256_hex};
use super::{Ca, Layout, Links, exists, key, read_file, verify};
use crate::inventory::CaSpec;

/// The key of the bundle's other certificate while a rotation is in progress: the new CA's while the nodes come
/// to trust it (phase a), the old CA's while the certificates are issued again under the new one (phase b).
pub fn next_key_path(layout: &Layout, ca: &CaSpec) -> PathBuf {
    layout.cert_dir.join(format!("{}.next.key", ca.base))
}

pub fn previous_key_path(layout: &Layout, ca: &CaSpec) -> PathBuf {
    layout.cert_dir.join(format!("{}.previous.key", ca.base))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Single,
    Trusting,
    Reissuing,
    Reissued,
    Inconsistent,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Single => "single",
            State::Trusting => "trusting",
            State::Reissuing => "reissuing",
            State::Reissued => "reissued",
            State::Inconsistent => "inconsistent",
        }
    }
}

/// A certificate on this node that one of the CA's certificates issued (or should have): kubeadm's, the
/// kubeconfigs' client certificates, the kubelet's client certificate.
pub struct Leaf {
    pub name: String,
    pub path: PathBuf,
    pub cert: Certificate,
}

/// Which certificate of the bundle a key file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFile {
    Absent,
    /// The index in the bundle.
    Of(usize),
    /// Present, but the key of none of the bundle's certificates.
    Stray,
    /// Present, but not readable here (check as a user other than root).
    Unreadable,
}

pub struct Rotation {
    pub spec: &'static CaSpec,
    pub path: PathBuf,
    pub state: State,
    pub reason: Option<String>,
    /// The CA file's certificates, in file order.
    pub bundle: Vec<Certificate>,
    pub key: KeyFile,
    pub next_key: KeyFile,
    pub previous_key: KeyFile,
    /// Per leaf, the index in the bundle of the certificate that issued it (`None`: none of them).
    pub leaves: Vec<(Leaf, Option<usize>)>,
}

impl Rotation {
    /// Leaves issued by a certificate of the bundle other than the first.
    pub fn issued_by_other(&self) -> impl Iterator<Item = &Leaf> {
        self.leaves.iter().filter(|(_, i)| matches!(i, Some(i) if *i > 0)).map(|(l, _)| l)
    }
    /// Leaves no certificate of the bundle issued: no component trusting this CA file accepts them.
    pub fn untrusted(&self) -> impl Iterator<Item = &Leaf> {
        self.leaves.iter().filter(|(_, i)| i.is_none()).map(|(l, _)| l)
    }
    pub fn sha256(&self, index: usize) -> Option<String> {
        self.bundle.get(index).map(|c| sha256_hex(&c.der))
    }
}

/// The rotation state of `ca` on this node, with `leaves` (what it issued here) sorted by issuer. `None` when the
/// CA certificate is not here.
pub fn read(layout: &Layout, ca: &Ca, leaves: Vec<Leaf>) -> Option<Rotation> {
    let first = ca.cert.as_ref()?;
    let mut bundle = vec![Certificate { chain_rest: Vec::new(), ..first.clone() }];
    let mut reasons = Vec::new();
    for der in &first.chain_rest {
        match Certificate::from_der(&ca.cert_path, der) {
            Ok(c) if c.is_ca() => bundle.push(c),
            Ok(c) => {
                reasons.push(format!("{} holds a certificate that is not a CA ({})", ca.cert_path.display(), c.subject))
            }
            Err(e) => reasons.push(e.to_string()),
        }
    }
    let key = if ca.has_key { key_file(&ca.key_path, &bundle) } else { KeyFile::Absent };
    let next_key = key_file(&next_key_path(layout, ca.spec), &bundle);
    let previous_key = key_file(&previous_key_path(layout, ca.spec), &bundle);
    let leaves = leaves
        .into_iter()
        .map(|leaf| {
            let by = bundle.iter().position(|c| verify::chains_to(&leaf.cert, c).is_ok());
            (leaf, by)
        })
        .collect();
    let mut r = Rotation {
        spec: ca.spec,
        path: ca.cert_path.clone(),
        state: State::Inconsistent,
        reason: None,
        bundle,
        key,
        next_key,
        previous_key,
        leaves,
    };
    match (reasons.is_empty(), state(layout, &r)) {
        (true, Ok(s)) => r.state = s,
        (_, Ok(_)) => r.reason = Some(reasons.join("; ")),
        (_, Err(why)) => {
            reasons.push(why);
            r.reason = Some(reasons.join("; "));
        }
    }
    Some(r)
}

fn key_file(path: &Path, bundle: &[Certificate]) -> KeyFile {
    match exists(path) {
        Ok(true) => {}
        Ok(false) => return KeyFile::Absent,
        Err(_) => return KeyFile::Unreadable,
    }
    let Ok(bytes) = read_file(path, Links::Refuse) else { return KeyFile::Unreadable };
    let Ok(public) = key::public_key_of(path, &bytes) else { return KeyFile::Stray };
    bundle.iter().position(|c| c.public_key_raw == public).map_or(KeyFile::Stray, KeyFile::Of)
}

/// The state the files make, or why they make none (the table at the top).
fn state(layout: &Layout, r: &Rotation) -> Result<State, String> {
    let crt = r.path.display();
    let next = next_key_path(layout, r.spec);
    let previous = previous_key_path(layout, r.spec);
    if r.key == KeyFile::Unreadable {
        return Err(format!("cannot read the key of {crt}: run as root"));
    }
    match r.bundle.len() {
        1 => {
            // a key file an interrupted swap or drop left behind is named, never a state of its own
            if let KeyFile::Stray = r.next_key {
                return Err(format!("{} is the key of no certificate in {crt}", next.display()));
            }
            Ok(State::Single)
        }
        2 if r.key == KeyFile::Absent => Ok(State::Trusting),
        2 => {
            if r.key != KeyFile::Of(0) {
                return Err(format!(
                    "the key beside {crt} belongs to {} of its two certificates: the signing certificate comes first",
                    if r.key == KeyFile::Of(1) { "the second" } else { "neither" }
                ));
            }
            match (r.next_key, r.previous_key) {
                (KeyFile::Of(1), KeyFile::Absent) => Ok(State::Trusting),
                // a next key equal to the signing key is what the swap to the new CA leaves before removing it
                (KeyFile::Absent | KeyFile::Of(0), KeyFile::Of(1)) => {
                    Ok(if r.issued_by_other().next().is_some() { State::Reissuing } else { State::Reissued })
                }
                _ => Err(format!(
                    "{crt} holds two CA certificates, but the key of the second is neither {} (the new CA's, while \
                     the nodes come to trust it) nor {} (the old CA's, while certificates are issued again)",
                    next.display(),
                    previous.display()
                )),
            }
        }
        n => Err(format!("{crt} holds {n} CA certificates: a rotation has two at most")),
    }
}
