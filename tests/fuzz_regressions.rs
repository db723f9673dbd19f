//! The fuzz targets' properties (fuzz/props.rs) on every input of the committed corpus (fuzz/corpus/TARGET)
//! and on every crash the fuzzer found (tests/fixtures/fuzz/TARGET/), in plain `cargo test`: no nightly, no
//! libFuzzer. A change that makes any of them panic fails here, naming the input file.

#[path = "../fuzz/props.rs"]
mod props;

use std::path::PathBuf;

fn replay(target: &str, property: fn(&[u8])) -> usize {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut inputs: Vec<PathBuf> = Vec::new();
    for dir in [repo.join("fuzz/corpus").join(target), repo.join("tests/fixtures/fuzz").join(target)] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            inputs.extend(rd.flatten().map(|e| e.path()));
        }
    }
    inputs.sort();
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| property(&data)).is_err() {
            panic!("{target}: {} breaks a property (see the panic above)", path.display());
        }
    }
    inputs.len()
}

#[test]
fn cert() {
    assert!(replay("cert", props::cert) >= 50, "the cert corpus is missing");
}

#[test]
fn key() {
    assert!(replay("key", props::key) >= 20, "the key corpus is missing");
}

#[test]
fn kubeconfig() {
    assert!(replay("kubeconfig", props::kubeconfig) >= 20, "the kubeconfig corpus is missing");
}

#[test]
fn duration() {
    assert!(replay("duration", props::duration) >= 20, "the duration corpus is missing");
}

#[test]
fn module_args() {
    assert!(replay("module_args", props::module_args) >= 50, "the module_args corpus is missing");
}
