//! Talking to the apiserver: who we are and how to trust it, from a kubeconfig ([`credentials`]), and a
//! small HTTP/1.1 client over rustls ([`client`]). The certificates-API signer (`api`), restarts (Leases,
//! node and pod readiness) and the kubelet's wait for its node all use it; it knows none of them.

pub mod client;
pub mod credentials;
