//! The ways to restart a component other than kubeadm's static pod dance (`static_pod.rs`): through the
//! container runtime (`crictl`), systemd, or a command of the user's. Each needs a tool; a missing one is
//! said before anything is restarted.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::inuse::proc::Process;

/// The tool's path, searched in PATH as a shell would.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Fails fast, naming the tool and what to do, when `tool` is not installed.
pub fn require(tool: &str, method: &str, hint: &str) -> Result<PathBuf> {
    find_tool(tool).ok_or_else(|| {
        Error::Restart(format!(
            "method {method} needs {tool}, which is not in PATH ({}); {hint}; nothing was restarted",
            std::env::var("PATH").unwrap_or_default()
        ))
    })
}

fn run(name: &str, cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| Error::Restart(format!("{name}: cannot run {shown}: {e}")))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        let tail: String = text.trim().chars().rev().take(600).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(Error::Restart(format!("{name}: {shown} failed ({}): {tail}", out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `crictl stop` every running container of the component; the kubelet starts a new one.
pub fn crictl(crictl: &Path, p: &Process) -> Result<()> {
    let name = p.component.name();
    let ids =
        run(name, Command::new(crictl).args(["ps", "-q", "--state", "running", "--name"]).arg(format!("^{name}$")))?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Err(Error::Restart(format!(
            "{name}: `crictl ps --name ^{name}$` finds no running container, but pid {} runs it: not a \
             container of this runtime? choose --method systemd or command",
            p.pid
        )));
    }
    run(name, Command::new(crictl).arg("stop").args(&ids)).map(drop)
}

/// `systemctl restart COMPONENT`.
pub fn systemd(systemctl: &Path, p: &Process) -> Result<()> {
    let name = p.component.name();
    run(name, Command::new(systemctl).args(["restart", name])).map(drop)
}

/// `sh -c COMMAND`, with `KUBEADM_CERTS_COMPONENT` and `KUBEADM_CERTS_PID` in its environment.
pub fn command(command: &str, p: &Process) -> Result<()> {
    let name = p.component.name();
    run(
        name,
        Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("KUBEADM_CERTS_COMPONENT", name)
            .env("KUBEADM_CERTS_PID", p.pid.to_string())
            .stdin(std::process::Stdio::null()),
    )
    .map(drop)
}
