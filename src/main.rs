use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use kubeadm_certs::frontend::{ansible, cli};

/// Ansible runs a binary module with exactly one argument, the path of its args file.
fn module_args_file(args: &[OsString]) -> Option<&Path> {
    match args {
        [_, only] => {
            let path = Path::new(only);
            let name = only.to_string_lossy();
            let subcommand = cli::is_subcommand(&name);
            (!name.starts_with('-') && !subcommand && path.is_file()).then_some(path)
        }
        _ => None,
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    match module_args_file(&args) {
        Some(file) => ansible::main(file),
        None => cli::main(args),
    }
}
