//! The one error type of the engine. Every variant that comes from a file names the file, so a
//! message read in an Ansible log on host 37 of 50 says which file on which path is wrong.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: io::Error },

    #[error("{path}: cannot write: {source}")]
    Write { path: PathBuf, source: io::Error },

    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },

    #[error("{path}: the private key does not match the certificate {cert}")]
    KeyMismatch { path: PathBuf, cert: PathBuf },

    #[error("{path}: not issued by the CA in {ca}: {why}")]
    NotIssuedByCa { path: PathBuf, ca: PathBuf, why: String },

    #[error("unknown certificate name {name:?}; known: {known}")]
    UnknownName { name: String, known: String },

    #[error("{name}: {path} does not exist")]
    MissingRequested { name: String, path: PathBuf },

    #[error("{path}: {name} cannot be renewed: {why}")]
    CannotRenew { name: String, path: PathBuf, why: String },

    #[error("{0}")]
    Usage(String),

    #[error("{path}: another kubeadm-certs run holds the lock (waited {waited_secs}s)")]
    Locked { path: PathBuf, waited_secs: u64 },

    #[error("{0}")]
    Crypto(String),

    /// The run settled a journal an interrupted run left (`done` says what), then failed: the PKI on disk
    /// changed all the same, and the components using it need a restart.
    #[error(
        "{source} (before that, this run {done}: the PKI on disk changed; `kubeadm-certs check` shows it, and the \
         control-plane components need a restart to use it)"
    )]
    AfterRecovery { done: String, source: Box<Error> },

    /// `restart`: which component, what failed, and what became of its manifest.
    #[error("{0}")]
    Restart(String),

    /// signer=api: what went wrong with which CertificateSigningRequest, and what became of the ones
    /// this run had created.
    #[error(transparent)]
    Api(#[from] Box<crate::api::ApiError>),
}

impl Error {
    pub fn read(path: &Path, source: io::Error) -> Self {
        Error::Read { path: path.to_path_buf(), source }
    }
    pub fn write(path: &Path, source: io::Error) -> Self {
        Error::Write { path: path.to_path_buf(), source }
    }
    /// Certificate `name` at `path` cannot be renewed (or its CSR built), and why.
    pub fn cannot_renew(name: &str, path: &Path, why: String) -> Self {
        Error::CannotRenew { name: name.into(), path: path.to_path_buf(), why }
    }
    pub fn invalid(path: &Path, problem: impl Into<String>) -> Self {
        Error::Invalid { path: path.to_path_buf(), problem: problem.into() }
    }
    /// Usage errors exit 2 on the command line; everything else is an operation failure (1, or 4 when
    /// [`Error::settled`]).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_) | Error::UnknownName { .. })
    }
    /// What the failed run changed before failing: it settled an interrupted run's journal (a warning for
    /// the module's `warnings`). `None`: nothing changed.
    pub fn settled(&self) -> Option<&str> {
        match self {
            Error::AfterRecovery { done, .. } => Some(done),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
