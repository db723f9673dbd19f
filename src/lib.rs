//! kubeadm-certs: keeps the certificates of kubeadm-built control planes valid.
//!
//! Read top-down: [`inventory`] (the table of kubeadm's certificates), [`pki`] (reading and validating
//! what is on disk), [`engine`] (check, renew, csr, install: decide, build, check), [`commit`] (atomic,
//! all-or-nothing writes, with its [`journal`], under the PKI's [`lock`]), [`render`] (kubeadm's tables and documents,
//! as the node's [`kubeadm_version`] prints them). [`copies`] finds copies of the cluster's credentials
//! in users' homes and replaces them without following a link of theirs. [`frontend`] holds the two front
//! doors, the command line and the Ansible module; the engine knows neither.

pub mod api;
pub mod commit;
pub mod copies;
pub mod duration;
pub mod engine;
pub mod error;
pub mod frontend;
pub mod inuse;
pub mod inventory;
pub mod journal;
pub mod kube;
pub mod kubeadm_config;
pub mod kubeadm_version;
pub mod lock;
pub mod pki;
pub mod render;
pub mod report;
pub mod request;
pub mod restart;

/// Runs one request as of `now`: the engine, given the certificates API's signer for `signer: api` and its approver
/// of kubelet-serving requests for `approve`. The engine owns both seams and knows no certificates API; this is where
/// the two meet.
pub fn run(request: &request::Request, now: chrono::DateTime<chrono::Utc>) -> error::Result<report::Outcome> {
    engine::run(request, now, api::new_signer, api::kubelet_serving::approve)
}
