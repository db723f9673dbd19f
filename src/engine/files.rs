//! The files a new certificate and key become, per storage strategy: a PEM pair in the cert dir, or the
//! client credentials of a kubeconfig file.

use crate::commit::{FileWrite, MODE_PUBLIC, MODE_SECRET};
use crate::error::Result;
use crate::pki::cert::pem_encode;
use crate::pki::{Loaded, Location};

/// `cert_der` is the new certificate, followed by `chain` (intermediates, as the old file had them).
/// `ca_pem` refreshes a kubeconfig's embedded CA.
pub fn replacing(
    location: &Location,
    loaded: &Loaded,
    cert_der: &[u8],
    chain: &[Vec<u8>],
    key_pem: &str,
    ca_pem: &str,
) -> Result<Vec<FileWrite>> {
    let mut cert_pem = pem_encode("CERTIFICATE", cert_der);
    for extra in chain {
        cert_pem.push_str(&pem_encode("CERTIFICATE", extra));
    }
    Ok(match location {
        // key first, as kubeadm writes them
        Location::PemPair { cert, key } => vec![
            FileWrite { path: key.clone(), contents: key_pem.as_bytes().to_vec(), mode: MODE_SECRET },
            FileWrite { path: cert.clone(), contents: cert_pem.into_bytes(), mode: MODE_PUBLIC },
        ],
        Location::Kubeconfig { path } => {
            let kc = loaded.kubeconfig.as_ref().expect("a kubeconfig entry was read as one");
            vec![FileWrite {
                path: path.clone(),
                contents: kc.with_client(&cert_pem, key_pem, Some(ca_pem))?,
                mode: MODE_SECRET,
            }]
        }
    })
}
