//! The certificate reader (`Certificate::from_file_bytes`: PEM with a chain, text before the block, or raw
#![no_main]

#[path = "../props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::cert(data));
