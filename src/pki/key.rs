//! Private keys: loading kubeadm's encodings, generating new ones, writing them back the way kubeadm
//! does (RSA as PKCS#1 `RSA PRIVATE KEY`, ECDSA as SEC1 `EC PRIVATE KEY`). Key material never reaches a
//! `Debug` or `Display` output.

use std::fmt;
use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair};

use super::cert::{KeyKind, pem_encode};
use super::der;
use crate::error::{Error, Result};

/// The algorithms a renewed key may have: kubeadm's `encryptionAlgorithm` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcdsaP256,
    EcdsaP384,
}

impl KeyAlgorithm {
    pub const NAMES: &'static str = "rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384";

    pub fn parse(s: &str) -> Option<KeyAlgorithm> {
        Some(match s.to_ascii_lowercase().as_str() {
            "rsa-2048" | "rsa2048" | "rsa" => KeyAlgorithm::Rsa2048,
            "rsa-3072" | "rsa3072" => KeyAlgorithm::Rsa3072,
            "rsa-4096" | "rsa4096" => KeyAlgorithm::Rsa4096,
            "ecdsa-p256" | "ecdsa-p-256" | "ecdsa" => KeyAlgorithm::EcdsaP256,
            "ecdsa-p384" | "ecdsa-p-384" => KeyAlgorithm::EcdsaP384,
            _ => return None,
        })
    }

    /// The algorithm of an existing certificate's key, when it is one kubeadm can make.
    pub fn of(kind: KeyKind) -> Option<KeyAlgorithm> {
        Some(match kind {
            KeyKind::Rsa(2048) => KeyAlgorithm::Rsa2048,
            KeyKind::Rsa(3072) => KeyAlgorithm::Rsa3072,
            KeyKind::Rsa(4096) => KeyAlgorithm::Rsa4096,
            KeyKind::EcP256 => KeyAlgorithm::EcdsaP256,
            KeyKind::EcP384 => KeyAlgorithm::EcdsaP384,
            _ => return None,
        })
    }

    pub fn kind(self) -> KeyKind {
        match self {
            KeyAlgorithm::Rsa2048 => KeyKind::Rsa(2048),
            KeyAlgorithm::Rsa3072 => KeyKind::Rsa(3072),
            KeyAlgorithm::Rsa4096 => KeyKind::Rsa(4096),
            KeyAlgorithm::EcdsaP256 => KeyKind::EcP256,
            KeyAlgorithm::EcdsaP384 => KeyKind::EcP384,
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096)
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind().fmt(f)
    }
}

/// A private key with its kubeadm on-disk encoding.
pub struct PrivateKey {
    pair: rcgen::KeyPair,
    pem: String,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl PrivateKey {
    /// Parses a PEM private key (PKCS#1, SEC1 or PKCS#8). The file's own bytes are kept as its encoding.
    pub fn from_pem_bytes(path: &Path, bytes: &[u8]) -> Result<PrivateKey> {
        let block = pem::parse(bytes).map_err(|e| Error::invalid(path, format!("corrupt PEM private key: {e}")))?;
        match block.tag() {
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => return Err(Error::invalid(path, "encrypted private keys are not supported")),
            other => return Err(Error::invalid(path, format!("expected a private key PEM block, found {other}"))),
        }
        let pair = rcgen::KeyPair::try_from(block.contents())
            .map_err(|e| Error::invalid(path, format!("cannot load private key: {e}")))?;
        let pem = String::from_utf8_lossy(bytes).into_owned();
        Ok(PrivateKey { pair, pem })
    }

    /// Reads a key file; a symbolic link is refused (see [`super::read_file`]).
    pub fn read(path: &Path) -> Result<PrivateKey> {
        let bytes = super::read_file(path, super::Links::Refuse)?;
        PrivateKey::from_pem_bytes(path, &bytes)
    }

    /// A fresh key, encoded as kubeadm encodes it.
    pub fn generate(alg: KeyAlgorithm) -> Result<PrivateKey> {
        let crypto = |what: &str| Error::Crypto(format!("cannot generate a {alg} key: {what}"));
        let (tag, der) = match alg {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let size = match alg {
                    KeyAlgorithm::Rsa2048 => KeySize::Rsa2048,
                    KeyAlgorithm::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let kp = aws_lc_rs::rsa::KeyPair::generate(size).map_err(|_| crypto("key generation failed"))?;
                let pkcs8 = kp.as_der().map_err(|_| crypto("PKCS#8 encoding failed"))?;
                let pkcs1 = der::pkcs8_inner(pkcs8.as_ref()).ok_or_else(|| crypto("unexpected PKCS#8 layout"))?;
                ("RSA PRIVATE KEY", pkcs1.to_vec())
            }
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
                let signing = if alg == KeyAlgorithm::EcdsaP256 {
                    &ECDSA_P256_SHA256_ASN1_SIGNING
                } else {
                    &ECDSA_P384_SHA384_ASN1_SIGNING
                };
                let kp = EcdsaKeyPair::generate(signing).map_err(|_| crypto("key generation failed"))?;
                let sec1 = kp.private_key().as_der().map_err(|_| crypto("SEC1 encoding failed"))?;
                ("EC PRIVATE KEY", sec1.as_ref().to_vec())
            }
        };
        let pair = rcgen::KeyPair::try_from(der.as_slice()).map_err(|e| crypto(&e.to_string()))?;
        Ok(PrivateKey { pair, pem: pem_encode(tag, &der) })
    }

    /// Generates one key per entry, spread over the machine's cores: RSA generation dominates a renewal.
    pub fn generate_many(algs: &[KeyAlgorithm]) -> Result<Vec<PrivateKey>> {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(algs.len().max(1));
        let next = AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<Result<PrivateKey>>>> = algs.iter().map(|_| Mutex::new(None)).collect();
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= algs.len() {
                            break;
                        }
                        let key = PrivateKey::generate(algs[i]);
                        *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
                    }
                });
            }
        });
        slots
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()).expect("every slot filled"))
            .collect()
    }

    /// The public key as it appears in a certificate's subjectPublicKey bit string.
    pub fn public_key_raw(&self) -> &[u8] {
        self.pair.public_key_raw()
    }

    pub fn matches(&self, cert_public_key_raw: &[u8]) -> bool {
        self.public_key_raw() == cert_public_key_raw
    }

    /// The PEM text to write to disk. Callers put it in files only, never in output.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn pair(&self) -> &rcgen::KeyPair {
        &self.pair
    }
}
