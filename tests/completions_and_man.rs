//! `kubeadm-certs completions SHELL` and `kubeadm-certs man`: what the schedule role installs next to the
//! binary on the nodes. The bash script is run by bash itself; the man page is checked against what each
//! command's `--help` says and linted by groff.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::bin;

const COMMANDS: [&str; 9] = ["check", "renew", "csr", "install", "sign", "approve", "restart", "completions", "man"];

fn stdout_of(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubeadm-certs {args:?} failed: {stderr}");
    assert!(stderr.is_empty(), "kubeadm-certs {args:?} wrote to stderr: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// What bash's programmable completion offers for `line` (the word being completed is its last, empty after
/// a trailing space), with the generated script loaded the way bash-completion loads it.
fn bash_completes(script: &str, line: &str) -> Vec<String> {
    let function = script
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("complete -F ")?.split_whitespace().next())
        .expect("the script registers a completion function with `complete -F`")
        .to_owned();
    let mut words: Vec<&str> = line.split(' ').collect();
    if line.ends_with(' ') {
        words.pop();
        words.push("");
    }
    let words_quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let probe = format!(
        "source /dev/stdin\nCOMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         {function} kubeadm-certs '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = words_quoted.join(" "),
        cur = words[cword],
    );
    let mut child = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "bash failed on the completion script: {stderr}");
    String::from_utf8(out.stdout).unwrap().lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

#[test]
fn bash_completes_the_commands_their_options_and_their_choices() {
    let script = stdout_of(&["completions", "bash"]);
    assert!(script.contains("renew") && script.contains("--cert-dir"), "{script}");
    let commands = bash_completes(&script, "kubeadm-certs re");
    assert_eq!(commands, ["renew", "restart"], "kubeadm-certs re<TAB>");
    let options = bash_completes(&script, "kubeadm-certs renew --cert");
    assert_eq!(options, ["--cert-dir"], "kubeadm-certs renew --cert<TAB>");
    let formats = bash_completes(&script, "kubeadm-certs check -o ");
    assert_eq!(formats, ["table", "json", "yaml"], "kubeadm-certs check -o <TAB>");
    let shells = bash_completes(&script, "kubeadm-certs completions ");
    let shells: Vec<&String> = shells.iter().filter(|w| !w.starts_with('-')).collect();
    assert_eq!(shells, ["bash", "zsh", "fish"], "kubeadm-certs completions <TAB>");
}

#[test]
fn zsh_and_fish_completions_name_every_command_and_the_cert_dir() {
    let zsh = stdout_of(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef kubeadm-certs\n"), "zsh finds a completion file by its #compdef line: {zsh}");
    let fish = stdout_of(&["completions", "fish"]);
    for command in COMMANDS {
        assert!(zsh.contains(&format!("'{command}:")), "zsh completion lacks the command {command}");
        assert!(fish.contains(&format!("-a \"{command}\"")), "fish completion lacks the command {command}");
    }
    assert!(zsh.contains("'--cert-dir=["), "zsh completion lacks --cert-dir");
    assert!(fish.contains("complete -c kubeadm-certs") && fish.contains("-l cert-dir"), "{fish}");
}

#[test]
fn an_unknown_shell_is_a_usage_error_naming_the_ones_there_are() {
    let out = bin().args(["completions", "tcsh"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid value 'tcsh'") && stderr.contains("bash, zsh, fish"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// Every long option `kubeadm-certs COMMAND --help` lists.
fn long_options_of(command: &str) -> BTreeSet<String> {
    let help = stdout_of(&[command, "--help"]);
    help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_man_page_is_roff_with_every_command_and_every_option() {
    let page = stdout_of(&["man"]);
    let title = page.lines().find(|l| l.starts_with(".TH")).expect("a .TH line");
    assert!(title.starts_with(".TH kubeadm-certs 1 "), "{title}");
    for command in COMMANDS {
        let heading = format!(".SS \"kubeadm-certs {command}\"");
        let at = page.find(&heading).unwrap_or_else(|| panic!("no {heading} in the man page"));
        let section = &page[at..];
        let end = [section.find("\n.SS "), section.find("\n.SH ")].into_iter().flatten().min();
        let section = &section[..end.unwrap_or(section.len())];
        for option in long_options_of(command) {
            let roff = option.replace('-', "\\-");
            assert!(section.contains(&roff), "the man page's {command} section lacks {option}");
        }
    }
    for code in 0..=4 {
        assert!(page.contains(&format!(".TP\n\\fB{code}\\fR\n")), "EXIT STATUS lacks {code}");
    }
    assert!(page.contains("k8s_pki.kubeadm.certs"), "the Ansible module mode is not described");
}

#[test]
fn groff_formats_the_man_page_without_a_warning() {
    let page = stdout_of(&["man"]);
    let mut groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("groff runs (Debian's groff-base; scripts/setup.sh all installs it)");
    groff.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = groff.wait_with_output().unwrap();
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && warnings.is_empty(), "groff: {warnings}");
}

#[test]
fn man_alone_beside_a_file_named_man_prints_the_page_not_a_module_result() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("man"), "{}").unwrap();
    let out = bin().current_dir(dir.path()).arg("man").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(".TH kubeadm-certs 1"), "ran as the module: {stdout}");
}
