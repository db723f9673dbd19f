//! Setting one annotation in a static pod manifest as text, every other byte kept.
//!
//! The kubelet reads manifests as YAML 1.1 (sigs.k8s.io/yaml over go-yaml v2): there, an unquoted `yes`, `on`
//! or `NO` is a boolean, `1_000` a number and `0600` octal. A YAML 1.2 serialiser writing the whole document back
//! turns quoted `"yes"` into bare `yes` (a boolean to the kubelet) and `defaultMode: 0600` into the string
//! `'0600'`, and drops comments: the pod then fails to start after a "successful" restart. So the manifest is
//! edited as lines: the annotation's line is replaced, or inserted with the indentation of its neighbours, and
//! a manifest where that cannot be done plainly (flow style, several documents, tabs) is refused, nothing moved.

/// The manifest `text` with `metadata.annotations[key]` set to `value` (written double-quoted), or why not.
/// `key` and `value` must need no quoting of their own (an annotation name; an RFC 3339 time).
pub fn set_annotation(text: &str, key: &str, value: &str) -> Result<String, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    refuse_what_lines_cannot_edit(&lines)?;

    let meta = top_level_key(&lines, "metadata")?;
    if !opens_block(value_after_key(lines[meta])) {
        return Err("metadata is not written as a block mapping (flow style, an alias or a tag)".into());
    }
    let meta_end = block_end(&lines, meta, 0);
    let child = first_content(&lines, meta + 1, meta_end)
        .map(|i| indent(lines[i]))
        .filter(|n| *n > 0)
        .ok_or("metadata is empty")?;
    let entry = |indent_of: usize| format!("{}{key}: \"{value}\"{eol}", " ".repeat(indent_of));

    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match key_at(&lines, meta + 1, meta_end, child, "annotations") {
        // no annotations yet: a new block right under `metadata:`
        None => {
            let block = format!("{}annotations:{eol}{}", " ".repeat(child), entry(child + 2));
            insert_after(&mut out, meta, &block, eol);
        }
        Some(a) => {
            let after = value_after_key(lines[a]).trim_start();
            if after.strip_prefix("{}").is_some_and(blank_or_comment) {
                // `annotations: {}`: the same key, as a block holding ours
                out[a] = format!("{}annotations:{eol}{}", " ".repeat(child), entry(child + 2));
            } else if !opens_block(after) {
                return Err("metadata.annotations is not written as a block mapping".into());
            } else {
                let end = block_end(&lines, a, child);
                let inner = first_content(&lines, a + 1, end).map(|i| indent(lines[i])).unwrap_or(child + 2);
                match key_at(&lines, a + 1, end, inner, key) {
                    Some(k) => {
                        let next = first_content(&lines, k + 1, end);
                        if next.is_some_and(|n| indent(lines[n]) > inner) || !single_line_value(lines[k]) {
                            return Err(format!("the annotation {key} spans several lines"));
                        }
                        out[k] = entry(inner);
                    }
                    None => insert_after(&mut out, a, &entry(inner), eol),
                }
            }
        }
    }
    Ok(out.concat())
}

fn blank_or_comment(s: &str) -> bool {
    let t = s.trim();
    t.is_empty() || t.starts_with('#')
}

/// One document, indented with spaces: what a line-wise edit can keep exact.
fn refuse_what_lines_cannot_edit(lines: &[&str]) -> Result<(), String> {
    let mut content_seen = false;
    for l in lines {
        let bare = l.trim_end_matches(['\n', '\r']);
        let lead = &bare[..bare.len() - bare.trim_start().len()];
        if lead.contains('\t') && !bare.trim().is_empty() {
            return Err("a line is indented with a tab".into());
        }
        let marker = |m: &str| bare == m || bare.starts_with(&format!("{m} "));
        if marker("---") || marker("...") {
            if content_seen {
                return Err("the file holds more than one YAML document".into());
            }
            continue;
        }
        if !blank_or_comment(bare) && !bare.starts_with('%') {
            content_seen = true;
        }
    }
    Ok(())
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A line that holds YAML content (not blank, not only a comment).
fn is_content(line: &str) -> bool {
    !blank_or_comment(line)
}

fn first_content(lines: &[&str], from: usize, to: usize) -> Option<usize> {
    (from..to).find(|i| is_content(lines[*i]))
}

/// The line after the block that `lines[at]` (a key at indentation `n`) opens: the next content line indented
/// `n` or less.
fn block_end(lines: &[&str], at: usize, n: usize) -> usize {
    (at + 1..lines.len()).find(|i| is_content(lines[*i]) && indent(lines[*i]) <= n).unwrap_or(lines.len())
}

/// The key a content line starts with (plain, or in single or double quotes), and the rest after its colon.
fn split_key(line: &str) -> Option<(String, &str)> {
    let body = line.trim_start_matches(' ');
    let (key, rest) = match body.chars().next()? {
        q @ ('"' | '\'') => {
            let close = body[1..].find(q)? + 1;
            (body[1..close].to_string(), &body[close + 1..])
        }
        _ => {
            let colon = body.char_indices().find(|(i, c)| {
                *c == ':' && body[i + 1..].chars().next().is_none_or(|n| n == ' ' || n == '\r' || n == '\n')
            })?;
            (body[..colon.0].trim_end().to_string(), &body[colon.0..])
        }
    };
    Some((key, rest.strip_prefix(':')?))
}

fn value_after_key(line: &str) -> &str {
    split_key(line).map_or("", |(_, rest)| rest)
}

/// Nothing after the colon but a comment: a block (mapping) follows, or nothing.
fn opens_block(after: &str) -> bool {
    blank_or_comment(after)
}

fn single_line_value(line: &str) -> bool {
    let v = value_after_key(line).trim();
    !(v.starts_with('|') || v.starts_with('>') || v.is_empty())
}

/// The one line in `from..to` at indentation `n` whose key is `key`.
fn key_at(lines: &[&str], from: usize, to: usize, n: usize, key: &str) -> Option<usize> {
    (from..to).find(|i| {
        let l = lines[*i];
        is_content(l) && indent(l) == n && split_key(l).is_some_and(|(k, _)| k == key)
    })
}

/// The line of the top-level `key`, exactly once.
fn top_level_key(lines: &[&str], key: &str) -> Result<usize, String> {
    let found: Vec<usize> = (0..lines.len()).filter(|i| indent(lines[*i]) == 0 && is_content(lines[*i])).collect();
    let hits: Vec<usize> = found.into_iter().filter(|i| split_key(lines[*i]).is_some_and(|(k, _)| k == key)).collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("no top-level {key}:")),
        _ => Err(format!("{key}: is written more than once")),
    }
}

fn insert_after(out: &mut Vec<String>, at: usize, text: &str, eol: &str) {
    if !out[at].ends_with('\n') {
        out[at].push_str(eol);
    }
    out.insert(at + 1, text.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "kubeadm-certs.k8s-pki.io/restartedAt";
    const T: &str = "2026-12-04T10:00:00.000000000Z";

    /// The lines of `after` not in `before`, and the other way round (a multiset difference, in order).
    fn changed_lines(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
        let (mut b, mut a): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
        let mut added = Vec::new();
        a.retain(|l| match b.iter().position(|x| x == l) {
            Some(i) => {
                b.remove(i);
                false
            }
            None => true,
        });
        added.extend(a.iter().map(|s| s.to_string()));
        (added, b.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn kubeadms_manifest_without_annotations_gets_a_block_and_keeps_every_other_line() {
        let m = "apiVersion: v1\nkind: Pod\nmetadata:\n  creationTimestamp: null\n  labels:\n    component: kube-scheduler\n  name: kube-scheduler\nspec:\n  containers:\n  - command:\n    - kube-scheduler\n";
        let out = set_annotation(m, KEY, T).unwrap();
        assert_eq!(
            out,
            "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    kubeadm-certs.k8s-pki.io/restartedAt: \"2026-12-04T10:00:00.000000000Z\"\n  creationTimestamp: null\n  labels:\n    component: kube-scheduler\n  name: kube-scheduler\nspec:\n  containers:\n  - command:\n    - kube-scheduler\n"
        );
    }

    #[test]
    fn an_existing_annotation_is_replaced_in_place_and_others_kept() {
        let m = "kind: Pod\nmetadata:\n  annotations:\n    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://10.0.0.5:2379\n    kubeadm-certs.k8s-pki.io/restartedAt: \"2026-11-29T10:00:00Z\"  \n    # a comment\n  name: etcd\n";
        let out = set_annotation(m, KEY, T).unwrap();
        let (added, removed) = changed_lines(m, &out);
        assert_eq!(added, [format!("    {KEY}: \"{T}\"")]);
        assert_eq!(removed, [format!("    {KEY}: \"2026-11-29T10:00:00Z\"  ")]);
        // a new annotation goes first in the block, with the block's own indentation
        let m4 = "kind: Pod\nmetadata:\n    annotations:\n        a: b\n    name: x\n";
        assert_eq!(
            set_annotation(m4, KEY, T).unwrap(),
            format!("kind: Pod\nmetadata:\n    annotations:\n        {KEY}: \"{T}\"\n        a: b\n    name: x\n")
        );
    }

    #[test]
    fn crlf_files_empty_flow_annotations_and_no_final_newline_are_kept_as_written() {
        let crlf = "kind: Pod\r\nmetadata:\r\n  name: x\r\n";
        assert_eq!(
            set_annotation(crlf, KEY, T).unwrap(),
            format!("kind: Pod\r\nmetadata:\r\n  annotations:\r\n    {KEY}: \"{T}\"\r\n  name: x\r\n")
        );
        let empty = "kind: Pod\nmetadata:\n  annotations: {}\n  name: x";
        assert_eq!(
            set_annotation(empty, KEY, T).unwrap(),
            format!("kind: Pod\nmetadata:\n  annotations:\n    {KEY}: \"{T}\"\n  name: x")
        );
        let null_at_end = "kind: Pod\nmetadata:\n  name: x\n  annotations:";
        assert_eq!(
            set_annotation(null_at_end, KEY, T).unwrap(),
            format!("kind: Pod\nmetadata:\n  name: x\n  annotations:\n    {KEY}: \"{T}\"\n")
        );
    }

    #[test]
    fn what_a_line_edit_cannot_keep_exact_is_refused_with_the_reason() {
        for (m, why) in [
            ("kind: Pod\nmetadata: {name: x}\n", "not written as a block mapping"),
            ("kind: Pod\nmetadata:\n  annotations: {a: b}\n", "annotations is not written as a block"),
            ("kind: Pod\nspec: {}\n", "no top-level metadata"),
            ("kind: Pod\nmetadata:\n  name: a\n---\nkind: Pod\nmetadata:\n  name: b\n", "more than one YAML document"),
            ("kind: Pod\nmetadata:\n\tname: a\n", "tab"),
            ("kind: Pod\nmetadata:\nspec: {}\n", "metadata is empty"),
            (
                "kind: Pod\nmetadata:\n  annotations:\n    kubeadm-certs.k8s-pki.io/restartedAt: |\n      x\n",
                "spans several lines",
            ),
        ] {
            let e = set_annotation(m, KEY, T).unwrap_err();
            assert!(e.contains(why), "{m:?}: {e}");
        }
        // a leading document marker is one document
        assert!(set_annotation("---\nkind: Pod\nmetadata:\n  name: x\n", KEY, T).is_ok());
    }
}
