//! The Ansible module's argument parsing (`frontend::ansible::parse_request`): JSON, Ansible's coercions,
#![no_main]

#[path = "../props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::module_args(data));
