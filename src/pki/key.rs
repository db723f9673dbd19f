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

    /// The algorithm of this key, told by its public key's encoding: RSA keys are DER sequences (their
    /// modulus gives the size), EC points start with 0x04 (their length gives the curve).
    pub fn algorithm(&self) -> Option<KeyAlgorithm> {
        let raw = self.public_key_raw();
        let kind = match raw.first() {
            Some(0x04) if raw.len() == 65 => KeyKind::EcP256,
            Some(0x04) if raw.len() == 97 => KeyKind::EcP384,
            Some(0x30) => KeyKind::Rsa(rsa_bits(raw)?),
            _ => return None,
        };
        KeyAlgorithm::of(kind)
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

/// Whether the PEM private key `bytes` belongs to the public key a certificate carries
/// (`cert_public_key_raw`, as [`PrivateKey::public_key_raw`] gives it). `check` asks this of every pair, so
/// it reads the public half straight off the key's encoding (RSA: n and e of PKCS#1; EC: the point SEC1
/// carries) instead of loading the key, which validates it with big-number arithmetic. An encoding
/// without its public half (SEC1 without the optional point, Ed25519) is loaded the full way.
pub fn belongs_to(path: &Path, bytes: &[u8], cert_public_key_raw: &[u8]) -> Result<bool> {
    let block = pem::parse(bytes).map_err(|e| Error::invalid(path, format!("corrupt PEM private key: {e}")))?;
    match key_der(&block).and_then(public_half) {
        Some(PublicHalf::Rsa { n, e }) => Ok(rsa_public(cert_public_key_raw) == Some((strip(n), strip(e)))),
        Some(PublicHalf::Ec(point)) => Ok(point == cert_public_key_raw),
        None => Ok(PrivateKey::from_pem_bytes(path, bytes)?.matches(cert_public_key_raw)),
    }
}

/// The public key of the PEM private key `bytes`, as a certificate's subjectPublicKey carries it (RSA: the
/// `RSAPublicKey` DER; EC: the point), read off the key's encoding as [`belongs_to`] does. For fingerprints that
/// compare keys across nodes (`engine::consistency`) without the private key ever leaving this function.
pub fn public_key_of(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let block = pem::parse(bytes).map_err(|e| Error::invalid(path, format!("corrupt PEM private key: {e}")))?;
    match key_der(&block).and_then(public_half) {
        // n and e are DER INTEGERs already (DER is canonical): the same bytes a certificate carries
        Some(PublicHalf::Rsa { n, e }) => {
            let mut seq = der::encode(0x02, n);
            seq.extend(der::encode(0x02, e));
            Ok(der::encode(0x30, &seq))
        }
        Some(PublicHalf::Ec(point)) => Ok(point.to_vec()),
        None => Ok(PrivateKey::from_pem_bytes(path, bytes)?.public_key_raw().to_vec()),
    }
}

/// The key inside a private key PEM block: PKCS#1 and SEC1 as they are, PKCS#8 unwrapped; `None` for anything else.
fn key_der(block: &pem::Pem) -> Option<&[u8]> {
    match block.tag() {
        "RSA PRIVATE KEY" | "EC PRIVATE KEY" => Some(block.contents()),
        "PRIVATE KEY" => der::pkcs8_inner(block.contents()),
        _ => None,
    }
}

enum PublicHalf<'a> {
    Rsa { n: &'a [u8], e: &'a [u8] },
    Ec(&'a [u8]),
}

/// PKCS#1 `RSAPrivateKey ::= SEQUENCE { version, n, e, d, ... }` or SEC1
/// `ECPrivateKey ::= SEQUENCE { version, privateKey OCTET STRING, [0] parameters, [1] publicKey BIT STRING }`.
fn public_half(der_key: &[u8]) -> Option<PublicHalf<'_>> {
    let (seq, _) = der::read(der_key)?;
    if seq.tag != 0x30 {
        return None;
    }
    let parts = der::elements(seq.value)?;
    match parts.as_slice() {
        [v, n, e, ..] if v.tag == 0x02 && n.tag == 0x02 && e.tag == 0x02 => {
            Some(PublicHalf::Rsa { n: n.value, e: e.value })
        }
        [v, k, rest @ ..] if v.tag == 0x02 && k.tag == 0x04 => {
            let public = rest.iter().find(|p| p.tag == 0xa1)?;
            let (bits, _) = der::read(public.value)?;
            // a BIT STRING: one byte of unused bits (0 for a point), then the point
            match bits.value.split_first() {
                Some((0, point)) if bits.tag == 0x03 => Some(PublicHalf::Ec(point)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `RSAPublicKey ::= SEQUENCE { n, e }` as a certificate carries it.
fn rsa_public(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let (seq, _) = der::read(raw)?;
    match der::elements(seq.value)?.as_slice() {
        [n, e] if seq.tag == 0x30 && n.tag == 0x02 && e.tag == 0x02 => Some((strip(n.value), strip(e.value))),
        _ => None,
    }
}

/// An unsigned INTEGER's value without DER's leading zero.
fn strip(int: &[u8]) -> &[u8] {
    let zeros = int.iter().take_while(|&&b| b == 0).count();
    &int[zeros..]
}

/// The size in bits of the modulus of an RSAPublicKey (DER).
fn rsa_bits(rsa_public_key_der: &[u8]) -> Option<u32> {
    let (seq, _) = super::der::read(rsa_public_key_der)?;
    let (modulus, _) = super::der::read(seq.value)?;
    let m = modulus.value;
    let start = m.iter().position(|&b| b != 0)?;
    let m = &m[start..];
    Some((m.len() * 8) as u32 - m[0].leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PKCS#8 straight from aws-lc, and the kubeadm encoding (PKCS#1 / SEC1) inside it.
    fn encodings(alg: KeyAlgorithm) -> [String; 2] {
        let pkcs8 = if alg.is_rsa() {
            aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).unwrap().as_der().unwrap().as_ref().to_vec()
        } else {
            let signing = if alg == KeyAlgorithm::EcdsaP256 {
                &ECDSA_P256_SHA256_ASN1_SIGNING
            } else {
                &ECDSA_P384_SHA384_ASN1_SIGNING
            };
            EcdsaKeyPair::generate(signing).unwrap().to_pkcs8v1().unwrap().as_ref().to_vec()
        };
        let tag = if alg.is_rsa() { "RSA PRIVATE KEY" } else { "EC PRIVATE KEY" };
        [pem_encode("PRIVATE KEY", &pkcs8), pem_encode(tag, der::pkcs8_inner(&pkcs8).unwrap())]
    }

    /// The cheap reading agrees with loading the key, for the algorithms kubeadm makes, in each encoding.
    #[test]
    fn belongs_to_agrees_with_the_full_parse() {
        let path = Path::new("test.key");
        let algs = [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384];
        let keys: Vec<[String; 2]> = algs.iter().map(|a| encodings(*a)).collect();
        let public: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| PrivateKey::from_pem_bytes(path, k[0].as_bytes()).unwrap().public_key_raw().to_vec())
            .collect();
        for (i, encoded) in keys.iter().enumerate() {
            for pem in encoded {
                let block = pem::parse(pem).unwrap();
                let inner = if block.tag() == "PRIVATE KEY" {
                    der::pkcs8_inner(block.contents())
                } else {
                    Some(block.contents())
                };
                assert!(inner.and_then(public_half).is_some(), "{} {}: read the cheap way", algs[i], block.tag());
                for (j, other) in public.iter().enumerate() {
                    assert_eq!(belongs_to(path, pem.as_bytes(), other).unwrap(), i == j, "{} vs {}", algs[i], algs[j]);
                }
            }
        }
        let corrupt = b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(belongs_to(path, corrupt, &public[0]).is_err());
    }

    /// What consistency fingerprints read off a key file is the public key the full parse gives, byte for byte.
    #[test]
    fn public_key_of_is_the_public_key_the_full_parse_gives() {
        let path = Path::new("test.key");
        for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384] {
            for pem in encodings(alg) {
                let full = PrivateKey::from_pem_bytes(path, pem.as_bytes()).unwrap().public_key_raw().to_vec();
                assert_eq!(public_key_of(path, pem.as_bytes()).unwrap(), full, "{alg}");
            }
        }
        let err = public_key_of(path, b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n");
        assert!(err.unwrap_err().to_string().starts_with("test.key: "));
    }
}
