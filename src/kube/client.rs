//! A small blocking JSON client for the apiserver: HTTP/1.1 (ureq) over rustls with the aws-lc-rs
//! provider. The server must present a certificate for the kubeconfig's host that chains to the
//! kubeconfig's CA (no system roots, no proxies from the environment, no redirects); we present the
//! kubeconfig's client certificate.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use super::credentials::Credentials;
use crate::error::{Error, Result};

/// The apiserver did not answer: no connection, TLS refused, or the request timed out.
#[derive(Debug)]
pub struct Unreachable {
    pub server: String,
    pub cause: String,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot talk to the apiserver at {}: {}", self.server, self.cause)
    }
}

/// Far above any CertificateSigningRequest; a bound, so a confused server cannot exhaust memory.
const MAX_BODY: u64 = 8 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One request, start to end. Waiting for approval is many short requests, never one long one.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    server: String,
}

/// An answer of the apiserver: its status and JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The message of a `Status` object, or the start of whatever else came back.
    pub fn message(&self) -> String {
        match self.body.get("message").and_then(Value::as_str) {
            Some(m) => m.to_string(),
            None if self.body.is_null() => "(no JSON body)".to_string(),
            None => self.body.to_string().chars().take(300).collect(),
        }
    }
}

/// The certificates of PEM data as the TLS client takes them (also the in-use probe's).
pub(crate) fn pem_certificates(bytes: &[u8]) -> std::result::Result<Vec<Certificate<'static>>, String> {
    let blocks = pem::parse_many(bytes).map_err(|e| format!("corrupt PEM: {e}"))?;
    let certs: Vec<_> = blocks
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| Certificate::from_der(b.contents()).to_owned())
        .collect();
    if certs.is_empty() {
        return Err("no CERTIFICATE in it".into());
    }
    Ok(certs)
}

/// What rustls will be given, checked the way it checks it when the first connection is made (ureq turns a
/// refusal there into a panic): the CA data must hold a certificate it can parse, the key must be one it
/// can sign with, and it must match the client certificate.
fn usable_by_rustls(
    roots: &[Certificate<'static>],
    chain: &[Certificate<'static>],
    key_pem: &[u8],
) -> std::result::Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut store = rustls::RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(roots.iter().map(|c| CertificateDer::from(c.der())));
    if added == 0 {
        return Err("the cluster's CA data: no certificate in it can be parsed".into());
    }
    // the same PEM reader ureq uses (rustls-pki-types); its errors never echo key bytes
    let key_der = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("client-key-data: cannot load the private key: {e}"))?;
    let chain: Vec<CertificateDer<'static>> =
        chain.iter().map(|c| CertificateDer::from(c.der()).into_owned()).collect();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("the TLS client cannot be set up: {e}"))?
        .with_root_certificates(store);
    // rustls's messages name the problem, never key bytes
    match builder.with_client_auth_cert(chain, key_der) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err("client-key-data does not match client-certificate-data".into()),
        Err(rustls::Error::General(e)) => {
            Err(format!("client-key-data: not a private key the TLS client can use ({e})"))
        }
        Err(e) => Err(format!("client-certificate-data and client-key-data cannot be used for TLS: {e}")),
    }
}

impl Client {
    /// Builds the TLS configuration from the credentials; connects to nothing.
    pub fn new(creds: &Credentials) -> Result<Client> {
        Client::with_timeouts(creds, CONNECT_TIMEOUT, CALL_TIMEOUT)
    }

    /// As [`Client::new`], each request bounded by `connect` and `call` (a best-effort read that must not hold
    /// up `check` where the apiserver is down: `engine::consistency`).
    pub fn with_timeouts(creds: &Credentials, connect: Duration, call: Duration) -> Result<Client> {
        let bad = |problem: String| Error::invalid(&creds.kubeconfig, problem);
        let roots = pem_certificates(&creds.ca_pem).map_err(|e| bad(format!("the cluster's CA data: {e}")))?;
        let chain =
            pem_certificates(&creds.client_cert_pem).map_err(|e| bad(format!("client-certificate-data: {e}")))?;
        // ureq's own PEM reader takes PKCS#1, SEC1 and PKCS#8; its error never echoes key bytes
        let key = PrivateKey::from_pem(&creds.client_key_pem)
            .map_err(|e| bad(format!("client-key-data: cannot load the private key: {e}")))?;
        usable_by_rustls(&roots, &chain, &creds.client_key_pem).map_err(|e| {
            bad(format!(
                "{e}: fix the kubeconfig's user (`kubectl --kubeconfig {} get --raw /version` tries it), or name \
                 another with --api-kubeconfig / api_kubeconfig",
                creds.kubeconfig.display()
            ))
        })?;
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .root_certs(RootCerts::new_with_certs(&roots))
            .client_cert(Some(ClientCert::new_with_certs(&chain, key)))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .https_only(true)
            .proxy(None)
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_connect(Some(connect))
            .timeout_global(Some(call))
            .user_agent(concat!("kubeadm-certs/", env!("CARGO_PKG_VERSION")))
            .accept("application/json")
            .build()
            .new_agent();
        Ok(Client { agent, server: creds.server.clone() })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn get(&self, path: &str) -> Result<Reply, Unreachable> {
        self.finish(self.agent.get(self.url(path)).call())
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Reply, Unreachable> {
        self.finish(self.agent.post(self.url(path)).content_type("application/json").send(body.to_string()))
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Reply, Unreachable> {
        self.finish(self.agent.put(self.url(path)).content_type("application/json").send(body.to_string()))
    }

    pub fn delete(&self, path: &str) -> Result<Reply, Unreachable> {
        self.finish(self.agent.delete(self.url(path)).call())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> Unreachable {
        Unreachable { server: self.server.clone(), cause: e.to_string() }
    }

    fn finish(
        &self,
        sent: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, Unreachable> {
        let mut response = sent.map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        let bytes = response.body_mut().with_config().limit(MAX_BODY).read_to_vec().map_err(|e| self.unreachable(e))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }
}
