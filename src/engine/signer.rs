//! Who signs a renewal: the seam between the engine and a signer. The engine owns it and signs with the CA
//! keys on disk itself ([`LocalSigner`]); the certificates API's signer lives in `api`, which depends on
//! the engine, and reaches `renew` as an [`ApiSigner`] from whoever runs the engine (`crate::run`).

use std::collections::BTreeSet;
use std::path::Path;

use super::plan::Desired;
use super::sign;
use crate::error::{Error, Result};
use crate::inventory::{CaId, CertSpec};
use crate::pki::key::PrivateKey;
use crate::pki::{Ca, Pki};
use crate::report::Outcome;
use crate::request::ApiOptions;

/// Builds the certificates API's signer from the request's options (`api::new_signer`).
pub type ApiSigner = fn(&ApiOptions) -> Result<Box<dyn Signer>>;

/// One certificate to issue.
pub struct IssueRequest<'a> {
    pub spec: &'static CertSpec,
    pub path: &'a Path,
    pub desired: &'a Desired,
    pub key: &'a PrivateKey,
    pub ca: &'a Ca,
}

/// Who signs: the CA key on disk, or the cluster's certificates API.
pub trait Signer {
    /// Why this signer cannot issue `desired` correctly, asked before anything is generated or sent.
    fn cannot_issue(&self, _spec: &'static CertSpec, _desired: &Desired, _ca: &Ca) -> Option<String> {
        None
    }
    /// Issues the whole batch (DER certificates, in order). A batch lets a remote signer submit every
    /// request before waiting for any.
    fn issue(&mut self, batch: &[IssueRequest<'_>]) -> Result<Vec<Vec<u8>>>;
    /// Called once what `issue` returned is committed: a remote signer reports what it created (CSR
    /// names, warnings). A signer dropped without it knows the run failed.
    fn finish(&mut self, _out: &mut Outcome) {}
}

/// Signs with the CA keys on disk, each loaded once and checked against its certificate.
pub struct LocalSigner {
    keys: Vec<(CaId, PrivateKey)>,
}

impl LocalSigner {
    pub fn new(pki: &Pki, cas: &BTreeSet<CaId>) -> Result<LocalSigner> {
        let keys = cas.iter().map(|&id| Ok((id, pki.ca(id).load_key()?))).collect::<Result<_>>()?;
        Ok(LocalSigner { keys })
    }
}

impl Signer for LocalSigner {
    fn issue(&mut self, batch: &[IssueRequest<'_>]) -> Result<Vec<Vec<u8>>> {
        batch
            .iter()
            .map(|r| {
                let ca_cert = r.ca.cert.as_ref().expect("due entries have their CA");
                let (_, ca_key) =
                    self.keys.iter().find(|(id, _)| *id == r.ca.spec.id).expect("loaded for every due CA");
                sign::sign_local(r.desired, r.key.pair(), ca_cert, ca_key)
                    .map_err(|why| Error::cannot_renew(r.spec.name, r.path, why))
            })
            .collect()
    }
}
