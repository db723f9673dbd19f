//! The duration parser (`--renew-before 90d`, `validity: 8760h0m0s`) and kubeadm's residual-time text.
#![no_main]

#[path = "../props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::duration(data));
