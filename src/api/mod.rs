//! Renewal through the Kubernetes certificates API (`signer: api`, `renew --use-api`), kubeadm's old
//! `--use-api` done over `certificates.k8s.io/v1`: one CertificateSigningRequest per certificate, approved
//! by someone (or by this run with `approve`), issued by the cluster's signer; the engine then checks each
//! certificate and installs them all like a local renewal.
//!
//! Read top-down: [`policy`] (which signer, and what it cannot issue), [`csr`] (the objects), [`signer`]
//! (create, approve, wait, clean up), [`error`]; the apiserver is reached through `kube`.
//!
//! Nothing here runs for a local renewal: the client exists only once `signer: api` is chosen and
//! something is due. Check mode builds it (a bad kubeconfig shows) but never connects.

pub mod csr;
pub mod error;
pub mod kubelet_serving;
pub mod kubelet_serving_policy;
pub mod policy;
pub mod signer;

pub use error::ApiError;

use crate::engine::signer::Signer;
use crate::error::Result;
use crate::request::ApiOptions;

/// The certificates API's signer for `renew` (an `engine::signer::ApiSigner`). Check mode builds it too (a bad
/// kubeconfig shows) but never connects.
pub fn new_signer(opts: &ApiOptions) -> Result<Box<dyn Signer>> {
    if let Some(name) = &opts.signer_name {
        policy::check_signer_name(name)?;
    }
    let creds = crate::kube::credentials::Credentials::read(&opts.kubeconfig)?;
    let client = crate::kube::client::Client::new(&creds)?;
    Ok(Box::new(signer::ApiSigner::new(client, opts.clone())))
}
