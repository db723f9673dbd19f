//! What can go wrong talking to the certificates API, naming the CertificateSigningRequest, and what
//! became of the requests the run had created (deleted, or named so that a person can delete them).

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error("cannot talk to the apiserver at {server}: {cause}")]
    Unreachable { server: String, cause: String },

    #[error("the apiserver at {server} refused to {action}: HTTP {status}: {message}")]
    Refused { server: String, action: String, status: u16, message: String },

    #[error("certificate signing request {csr} ({certificate}) was denied: {reason}")]
    Denied { csr: String, certificate: String, reason: String },

    #[error("certificate signing request {csr} ({certificate}) failed: {reason}")]
    Failed { csr: String, certificate: String, reason: String },

    #[error("certificate signing request {csr} ({certificate}) was deleted before it was issued")]
    Vanished { csr: String, certificate: String },

    #[error("certificate signing request {csr} ({certificate}): {problem}")]
    BadAnswer { csr: String, certificate: String, problem: String },

    #[error("{certificate}: cannot build its certificate signing request: {problem}")]
    Request { certificate: String, problem: String },

    #[error("timed out after {waited}: {pending}")]
    Timeout { waited: String, pending: String },
}

/// The CertificateSigningRequest objects a failed run had created.
#[derive(Debug, Default)]
pub struct Cleanup {
    pub deleted: Vec<String>,
    /// Name and why it could not be deleted.
    pub left: Vec<(String, String)>,
}

impl fmt::Display for Cleanup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.deleted.is_empty() {
            write!(f, "; deleted the certificate signing requests it had created ({})", self.deleted.join(", "))?;
        }
        if !self.left.is_empty() {
            let names: Vec<&str> = self.left.iter().map(|(n, _)| n.as_str()).collect();
            let (_, why) = &self.left[0];
            write!(
                f,
                "; could not delete the certificate signing requests it had created ({why}): delete them with `kubectl delete csr {}`",
                names.join(" ")
            )?;
        }
        Ok(())
    }
}

/// A failed API renewal: the cause and the cleanup. Nothing on disk has changed when this is returned.
#[derive(Debug, thiserror::Error)]
#[error("{cause}{cleanup}; no file was changed")]
pub struct ApiError {
    #[source]
    pub cause: Cause,
    pub cleanup: Cleanup,
}

impl From<crate::kube::client::Unreachable> for Cause {
    fn from(e: crate::kube::client::Unreachable) -> Cause {
        Cause::Unreachable { server: e.server, cause: e.cause }
    }
}
