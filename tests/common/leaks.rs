//! Recognising private key material in a text, whatever the encoding it leaked in.
//!
//! A leak need not look like the key file: a PEM body wrapped differently or not at all, the key inside a
//! PKCS#8 wrapper, a kubeconfig's `client-key-data` (base64 of the whole PEM text), a hex dump of the
//! secret number. So the recognisers are built from the secret itself (RSA's private exponent, the EC
//! private scalar), not from the lines of the file: its hex, and its base64 at each of the three byte
//! alignments it can have inside a longer base64 stream; and a piece of the PEM body that lies inside the
//! secret, as it is and base64-encoded again (the `client-key-data` form).

use super::{Pki, base64_decode};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

/// Bytes of a secret a recogniser is made of: 24 bytes are 32 base64 characters, and 2^-192 of a chance.
const PIECE: usize = 24;

#[derive(Default)]
pub struct KeyMaterial {
    secrets: std::collections::BTreeSet<Vec<u8>>,
    recognisers: Vec<String>,
}

impl KeyMaterial {
    /// Adds every private key the PKI holds now: `pki/**/*.key` and each kubeconfig's `client-key-data`.
    /// Call it again after each run that makes new keys.
    pub fn add(&mut self, pki: &Pki) {
        for pem in key_pems(pki) {
            self.add_pem(&pem);
        }
    }

    fn add_pem(&mut self, pem_text: &str) {
        let block = ::pem::parse(pem_text).unwrap_or_else(|e| panic!("not a PEM key ({e})"));
        let der = block.contents();
        let secret = secret_of(block.tag(), der);
        if !self.secrets.insert(secret.to_vec()) {
            return;
        }
        // the secret in hex (lower, upper, OpenSSL's colon-separated form)
        let hex: String = secret[..PIECE].iter().map(|b| format!("{b:02x}")).collect();
        let colons: Vec<String> = secret[..PIECE].iter().map(|b| format!("{b:02x}")).collect();
        self.recognisers.extend([hex.clone(), hex.to_uppercase(), colons.join(":"), colons.join(":").to_uppercase()]);
        // the secret inside any base64 stream (PEM body, PKCS#8, JSON bytes), at its three alignments
        self.recognisers.extend(aligned_base64(secret));
        // a piece of the PEM body inside the secret: as it is, and base64 again (client-key-data)
        let body = STANDARD.encode(der);
        let offset = der.windows(secret.len()).position(|w| w == secret).expect("the secret is in the DER");
        let first = offset.div_ceil(3) * 4; // first base64 character made of secret bytes only
        let last = (offset + secret.len()) / 3 * 4;
        // within one 64-character PEM line, so that the PEM text holds it unbroken
        let start = (first..last.saturating_sub(PIECE + 2))
            .find(|c| c % 64 <= 64 - (PIECE + 2))
            .expect("a piece of the secret within one PEM line");
        let piece = &body.as_bytes()[start..start + PIECE + 2];
        self.recognisers.push(String::from_utf8(piece.to_vec()).unwrap());
        self.recognisers.extend(aligned_base64(piece));
    }

    /// Asserts that `text` holds none of the key material added, in any of the forms above (line
    /// breaks, indentation and JSON's `\n` escapes do not hide it).
    #[track_caller]
    pub fn assert_absent(&self, what: &str, text: &str) {
        assert!(!self.secrets.is_empty(), "no keys collected: the check would pass on anything");
        let joined: String = text.replace("\\n", "").replace("\\r", "").split_whitespace().collect();
        for r in &self.recognisers {
            assert!(!joined.contains(r.as_str()), "{what}: private key material in the output ({} chars)", r.len());
        }
    }

    /// How many different keys were added.
    pub fn keys(&self) -> usize {
        self.secrets.len()
    }
}

/// The secret part of a PKCS#1 (`RSA PRIVATE KEY`: the private exponent) or SEC1 (`EC PRIVATE KEY`: the
/// private scalar) key.
fn secret_of<'a>(tag: &str, der: &'a [u8]) -> &'a [u8] {
    let (_, obj) = x509_parser::der_parser::parse_der(der).expect("the key's DER parses");
    let fields = obj.as_sequence().expect("a key is a SEQUENCE");
    let field = match tag {
        "RSA PRIVATE KEY" => &fields[3], // version, modulus, publicExponent, privateExponent, ...
        "EC PRIVATE KEY" => &fields[1],  // version, privateKey, [0] parameters, [1] publicKey
        other => panic!("unexpected key type {other}"),
    };
    let bytes = field.as_slice().expect("the secret is an INTEGER or OCTET STRING");
    let bytes = if bytes[0] == 0 { &bytes[1..] } else { bytes };
    assert!(bytes.len() >= PIECE + 2, "a secret of {} bytes", bytes.len());
    bytes
}

/// How `bytes` show inside any base64 stream that contains them, whatever their offset modulo 3.
fn aligned_base64(bytes: &[u8]) -> Vec<String> {
    (0..3)
        .flat_map(|shift| {
            let piece = &bytes[shift..shift + PIECE];
            [STANDARD.encode(piece), URL_SAFE.encode(piece)]
        })
        .collect()
}

/// Every private key PEM in the PKI now.
fn key_pems(pki: &Pki) -> Vec<String> {
    let mut pems = Vec::new();
    let mut dirs = vec![pki.kube()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(".key") {
                pems.push(std::fs::read_to_string(&path).unwrap());
            } else if name.ends_with(".conf") {
                let kc: serde_norway::Value = serde_norway::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                for user in kc["users"].as_sequence().into_iter().flatten() {
                    if let Some(data) = user["user"]["client-key-data"].as_str() {
                        pems.push(String::from_utf8(base64_decode(data)).unwrap());
                    }
                }
            }
        }
    }
    pems
}
