//! The kubeconfig reader (`Kubeconfig::parse`) and the rewrite a renewal makes of what it read.
#![no_main]

#[path = "../props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::kubeconfig(data));
