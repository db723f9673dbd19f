//! `restart -o table`: what became of each component, then the components as they run now.

use super::tabwriter::TabWriter;
use crate::report::Outcome;

pub fn table(out: &Outcome) -> String {
    let mut s = String::from("COMPONENT\tACTION\tMETHOD\tPID\tREASON\n");
    for r in &out.restarts {
        let pid = match (r.pid_before, r.pid_after) {
            (Some(b), Some(a)) => format!("{b} -> {a}"),
            (Some(b), None) => b.to_string(),
            _ => "-".into(),
        };
        s.push_str(&format!("{}\t{}\t{}\t{pid}\t{}\n", r.name, r.action, r.method, r.reason));
    }
    let mut text = if out.restarts.is_empty() { String::new() } else { TabWriter::new(10, 3).format(&s) };
    for w in &out.warnings {
        text.push_str(&format!("[warning] {w}\n"));
    }
    text.push_str(&out.msg);
    text.push('\n');
    text
}
