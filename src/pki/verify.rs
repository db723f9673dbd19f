//! "Was this certificate issued by that CA?": the issuer name must be the CA's subject, byte for byte (Go
//! and kube-apiserver compare raw names), and the CA's public key must verify the signature. Directly, or
//! through intermediate CAs the files carry after the first certificate (kubeadm 1.21+ accepts a leaf signed
//! by an intermediate in its external-CA mode, the chain in the leaf's file; a `ca.crt` bundle may hold them too).

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

use super::cert::{Certificate, KeyKind};

pub fn issued_by(cert: &Certificate, ca: &Certificate) -> Result<(), String> {
    if cert.issuer_raw != ca.subject_raw {
        return Err(format!("its issuer is \"{}\", the CA is \"{}\"", cert.issuer, ca.subject));
    }
    signed_with(&cert.signature_oid, &cert.tbs_raw, &cert.signature, ca.key_kind, &ca.public_key_raw)
        .map_err(|e| e.replace("the key", "the CA's key"))
}

/// `signature` over `signed` (DER) verifies with the public key `key_raw` (a SubjectPublicKeyInfo's bits) of
/// kind `key_kind`, by the algorithm `sig_oid`: a certificate's issuer, or a CSR's own key (proof of possession).
pub fn signed_with(
    sig_oid: &str,
    signed: &[u8],
    signature: &[u8],
    key_kind: KeyKind,
    key_raw: &[u8],
) -> Result<(), String> {
    let alg = verification_alg(sig_oid, key_kind)
        .ok_or_else(|| format!("unsupported signature algorithm {sig_oid} for a {key_kind} key"))?;
    UnparsedPublicKey::new(alg, key_raw)
        .verify(signed, signature)
        .map_err(|_| "the key does not verify its signature".to_string())
}

/// The longest chain followed: kubeadm's PKIs have none, real ones one or two.
const MAX_DEPTH: usize = 4;

/// `cert` chains to `ca`: issued by it, or by an intermediate CA (from `cert`'s file or `ca`'s) that chains
/// to it, each link verified like [`issued_by`]. The error is the direct one, and says intermediates did not
/// help when there were some.
pub fn chains_to(cert: &Certificate, ca: &Certificate) -> Result<(), String> {
    let direct = match issued_by(cert, ca) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let pool: Vec<Certificate> = cert
        .chain_rest
        .iter()
        .chain(&ca.chain_rest)
        .filter_map(|der| Certificate::from_der(std::path::Path::new("chain"), der).ok())
        .filter(Certificate::is_ca)
        .collect();
    if pool.is_empty() {
        return Err(direct);
    }
    let mut current = cert;
    for _ in 0..MAX_DEPTH {
        let Some(next) = pool.iter().find(|i| !std::ptr::eq(*i, current) && issued_by(current, i).is_ok()) else {
            break;
        };
        if issued_by(next, ca).is_ok() {
            return Ok(());
        }
        current = next;
    }
    Err(format!("{direct} (nor through the {} intermediate CA certificate(s) in the files)", pool.len()))
}

/// `cert` chains to one of the CA certificates of a CA file: `ca` itself (index 0), else a CA certificate after it
/// in the file (index 1..), as a component given that file as a bundle trusts each of them (Go's `CertPool`). What
/// `renew --resign-old-issuer` accepts during a CA rotation (`engine::ca_rotate`): certificates still issued by
/// the old CA beside the new one.
pub fn trusted_by(cert: &Certificate, ca: &Certificate) -> Result<usize, String> {
    let direct = match chains_to(cert, ca) {
        Ok(()) => return Ok(0),
        Err(e) => e,
    };
    for (i, der) in ca.chain_rest.iter().enumerate() {
        let Ok(other) = Certificate::from_der(std::path::Path::new("bundle"), der) else { continue };
        if other.is_ca() && chains_to(cert, &other).is_ok() {
            return Ok(i + 1);
        }
    }
    Err(direct)
}

fn verification_alg(sig_oid: &str, ca_key: KeyKind) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match (sig_oid, ca_key) {
        ("1.2.840.113549.1.1.11", KeyKind::Rsa(_)) => &signature::RSA_PKCS1_2048_8192_SHA256,
        ("1.2.840.113549.1.1.12", KeyKind::Rsa(_)) => &signature::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", KeyKind::Rsa(_)) => &signature::RSA_PKCS1_2048_8192_SHA512,
        ("1.2.840.113549.1.1.5", KeyKind::Rsa(_)) => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        ("1.2.840.10045.4.3.2", KeyKind::EcP256) => &signature::ECDSA_P256_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", KeyKind::EcP256) => &signature::ECDSA_P256_SHA384_ASN1,
        ("1.2.840.10045.4.3.2", KeyKind::EcP384) => &signature::ECDSA_P384_SHA256_ASN1,
        ("1.2.840.10045.4.3.3", KeyKind::EcP384) => &signature::ECDSA_P384_SHA384_ASN1,
        ("1.2.840.10045.4.3.4", KeyKind::EcP521) => &signature::ECDSA_P521_SHA512_ASN1,
        ("1.3.101.112", KeyKind::Ed25519) => &signature::ED25519,
        _ => return None,
    })
}
