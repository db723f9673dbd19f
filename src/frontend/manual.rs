//! `kubeadm-certs completions SHELL` and `kubeadm-certs man`: shell completions and the man page, generated
//! from the parser's own definitions (clap_complete, clap_mangen) by the binary that parses them. Subcommands,
//! not build-time files: the collection ships one binary per architecture to each node, and what the schedule
//! role installs next to it is asked of that very binary, so the help cannot describe another version's options.

use std::io::Write;

use clap::ValueEnum;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use super::cli::{EXIT_EXPIRING, EXIT_FAILED, EXIT_FAILED_CHANGED, EXIT_INCONSISTENT, EXIT_USAGE};

/// The shells whose completions the schedule role installs on the nodes.
#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// The completion script for `shell`, completing every subcommand, option and value choice of `cmd`.
pub fn completions(shell: Shell, mut cmd: clap::Command) -> Vec<u8> {
    let name = cmd.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell.generator(), &mut cmd, &name, &mut out);
    match shell {
        Shell::Bash => bash_states_spelled_alike(&name, out),
        Shell::Zsh | Shell::Fish => out,
    }
}

/// clap_complete's bash script names the state after a subcommand two ways when the program's name has a
/// hyphen: `kubeadm__certs__subcmd__renew` where it sets it, `kubeadm__subcmd__certs__subcmd__renew` where it
/// matches it, so no option after a subcommand completed (clap-rs/clap#6421, open as of clap_complete
/// 4.6.12). The matching side is spelled as the setting side; once clap_complete agrees with itself, this
/// finds nothing to change.
fn bash_states_spelled_alike(name: &str, script: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8(script).expect("clap_complete writes UTF-8");
    let (matched, set) = (name.replace('-', "__subcmd__"), name.replace('-', "__"));
    text.replace(&format!("{matched}__subcmd__"), &format!("{set}__subcmd__")).into_bytes()
}

/// What each exit code means (the command line's contract, README "The command line").
const EXIT_STATUS: [(u8, &str); 6] = [
    (0, "Success."),
    (
        EXIT_FAILED,
        "The operation failed and nothing changed, or check found the PKI broken (a key that does not match its certificate, a missing key or CA).",
    ),
    (EXIT_USAGE, "Usage error."),
    (
        EXIT_EXPIRING,
        "check --fail-within found a certificate or CA expiring within the window, or expired (1 wins over 3).",
    ),
    (
        EXIT_FAILED_CHANGED,
        "The operation failed after completing or rolling back an interrupted run's journal: the PKI changed, restart the components that use it.",
    ),
    (
        EXIT_INCONSISTENT,
        "check found this node's certificates not covering what the cluster asks of them (the controlPlaneEndpoint host, the advertise address, a certSANs entry, its etcd member's URLs; see consistency.findings) (1 and 3 win over 5).",
    ),
];

/// One man page, kubeadm-certs(1): clap_mangen's NAME, SYNOPSIS, DESCRIPTION and OPTIONS for the program,
/// then every command with its synopsis and options in a COMMANDS section (clap_mangen would instead point
/// to one page per command, kubeadm-certs-check(1) and so on, which would be eight files to install and keep
/// together), the Ansible module mode, the exit status and the version.
pub fn man_page(mut cmd: clap::Command) -> Vec<u8> {
    cmd.build();
    let page = Man::new(cmd.clone());
    let mut out = Vec::new();
    let io = "writing to a Vec cannot fail";
    page.render_title(&mut out).expect(io);
    page.render_name_section(&mut out).expect(io);
    page.render_synopsis_section(&mut out).expect(io);
    page.render_description_section(&mut out).expect(io);
    page.render_options_section(&mut out).expect(io);

    let mut commands = Roff::default();
    commands.control("SH", ["COMMANDS"]);
    commands.to_writer(&mut out).expect(io);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help" && !s.is_hide_set()) {
        let mut heading = Roff::default();
        heading.control("SS", [format!("{} {}", cmd.get_name(), sub.get_name()).as_str()]);
        if let Some(about) = sub.get_about() {
            heading.text([roman(about.to_string())]);
            heading.control("PP", []);
        }
        heading.to_writer(&mut out).expect(io);
        let sub_page = Man::new(sub.clone());
        out.extend(without_heading(&sub_page, Man::render_synopsis_section));
        out.extend(without_heading(&sub_page, Man::render_options_section));
    }

    let mut module = Roff::default();
    module.control("SH", ["ANSIBLE MODULE"]);
    module.to_writer(&mut out).expect(io);
    out.extend(without_heading(&page, Man::render_extra_section));

    let mut status = Roff::default();
    status.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_STATUS {
        status.control("TP", []);
        status.text([bold(code.to_string())]);
        status.text([roman(meaning)]);
    }
    status.to_writer(&mut out).expect(io);
    page.render_version_section(&mut out).expect(io);
    out
}

/// A section clap_mangen renders, without its `.SH` heading line: the synopsis and options of a command go
/// under that command's `.SS` heading instead, the program's extra text under ANSIBLE MODULE.
fn without_heading(page: &Man, render: fn(&Man, &mut dyn Write) -> std::io::Result<()>) -> Vec<u8> {
    let mut section = Vec::new();
    render(page, &mut section).expect("writing to a Vec cannot fail");
    let text = String::from_utf8(section).expect("clap_mangen writes UTF-8");
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    if let Some(heading) = lines.iter().position(|l| l.starts_with(".SH ")) {
        lines.remove(heading);
    }
    lines.concat().into_bytes()
}
