//! The private key reader (`PrivateKey::from_pem_bytes`: PKCS#1, SEC1, PKCS#8 PEM).
#![no_main]

#[path = "../props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::key(data));
