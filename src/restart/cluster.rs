//! What the cluster gate looks at, asked with nothing installed on the node: etcd's members from etcd's
//! own v3 JSON gateway (`POST /v3/cluster/member/list`, etcd 3.4; `api/etcdserverpb/rpc.proto`), each
//! member's `/health` with the healthcheck-client certificate; every apiserver from the `kubernetes`
//! Endpoints in `default` (what the apiservers publish of themselves), kubeadm's `ClusterStatus` in the
//! `kubeadm-config` ConfigMap (v1.20: every control-plane node, even one that is down) and the server
//! the kubeconfig names, each `/readyz` verified against the cluster CA. What comes back is untrusted:
//! bounded, and only `https://` URLs are dialled.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::cluster_gate::{Apiserver, Member, Observed};
use crate::inuse::probe::{self, Endpoint, Health};
use crate::inuse::proc::Process;
use crate::inuse::stale::Finding;
use crate::inventory::{Component, Listener};
use crate::kube::client::Client;
use crate::pki::Layout;

/// Far above any control plane; a bound on what an answer can make us dial.
const MAX_PEERS: usize = 64;

/// Looks at the cluster; `notes` says what could not be looked at and why (not refusals).
/// `restarting`: the components this run restarts (their own health does not refuse).
pub fn observe(
    layout: &Layout,
    client: &Client,
    findings: &[Finding],
    restarting: &[Component],
    notes: &mut Vec<String>,
) -> Observed {
    let mut ours = Vec::new();
    if restarting.contains(&Component::Etcd) {
        ours.extend(running(findings, Component::Etcd).and_then(|p| p.flag("name")).map(String::from));
    }
    if restarting.contains(&Component::KubeApiserver) {
        let api = running(findings, Component::KubeApiserver);
        ours.extend(api.and_then(|p| probe::endpoint(p, Listener::ApiserverSecurePort)).map(|e| e.to_string()));
    }
    Observed {
        etcd: etcd(layout, findings, notes),
        apiservers: apiservers(layout, client, findings, notes),
        restarting: ours,
    }
}

fn running(findings: &[Finding], c: Component) -> Option<&Process> {
    findings.iter().filter(|f| f.component == c).find_map(|f| f.process.as_ref())
}

struct EtcdFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// This node's etcd member to ask for the list: the local etcd, else the local apiserver's first
/// `--etcd-servers`; named as the refusal would name it.
fn local_etcd(findings: &[Finding]) -> Option<(String, Endpoint)> {
    if let Some(p) = running(findings, Component::Etcd) {
        let ep = probe::endpoint(p, Listener::EtcdClientUrls)?;
        let name = p.flag("name").unwrap_or("(unnamed)");
        return Some((format!("etcd member {name} (https://{ep})"), ep));
    }
    let api = running(findings, Component::KubeApiserver)?;
    let ep = probe::first_url(api.flag("etcd-servers")?, "https")?;
    Some((format!("etcd at https://{ep} (the apiserver's --etcd-servers)"), ep))
}

/// Why etcd's member list was not had: nothing to ask it with or of (`Unasked`), or the one asked failed.
pub enum MemberListError {
    Unasked(String),
    Failed { who: String, error: String },
}

/// etcd's member list (at most `MAX_PEERS` raw entries: untrusted, each reader bounds what it takes), asked of
/// this node's etcd member (`local_etcd`) with the healthcheck-client certificate; also what `check`'s
/// consistency section reads the members' URLs from (`engine::consistency`).
pub fn member_list(layout: &Layout, findings: &[Finding]) -> Result<Vec<Value>, MemberListError> {
    let files = etcd_files(layout);
    if !files.ca.exists() || !files.cert.exists() {
        return Err(MemberListError::Unasked(format!("no {} here (external etcd?)", files.cert.display())));
    }
    let Some((who, ep)) = local_etcd(findings) else {
        return Err(MemberListError::Unasked("neither etcd nor kube-apiserver runs on this PKI".into()));
    };
    let url = format!("https://{ep}/v3/cluster/member/list");
    let list = probe::post_json(&url, &json!({}), &files.ca, (&files.cert, &files.key))
        .map_err(|error| MemberListError::Failed { who: who.clone(), error })?;
    let Some(members) = list.get("members").and_then(Value::as_array) else {
        return Err(MemberListError::Failed { who, error: format!("{url}: no members in the answer") });
    };
    Ok(members.iter().take(MAX_PEERS).cloned().collect())
}

fn etcd_files(layout: &Layout) -> EtcdFiles {
    let d = layout.cert_dir.join("etcd");
    EtcdFiles { ca: d.join("ca.crt"), cert: d.join("healthcheck-client.crt"), key: d.join("healthcheck-client.key") }
}

fn etcd(
    layout: &Layout,
    findings: &[Finding],
    notes: &mut Vec<String>,
) -> Option<Result<Vec<Member>, (String, String)>> {
    let files = etcd_files(layout);
    match member_list(layout, findings) {
        Ok(members) => Some(Ok(members.iter().map(|m| member(m, &files)).collect())),
        Err(MemberListError::Failed { who, error }) => Some(Err((who, error))),
        Err(MemberListError::Unasked(why)) => {
            let tail = if files.ca.exists() && files.cert.exists() {
                "etcd is not gated"
            } else {
                "etcd is not gated from this node"
            };
            notes.push(format!("cluster gate: {why}: {tail}"));
            None
        }
    }
}

fn member(m: &Value, files: &EtcdFiles) -> Member {
    let name = m.get("name").and_then(Value::as_str).unwrap_or_default().chars().take(253).collect::<String>();
    let client_url = m
        .get("clientURLs")
        .and_then(Value::as_array)
        .and_then(|urls| urls.iter().filter_map(Value::as_str).find(|u| u.starts_with("https://")))
        .map(|u| u.trim_end_matches('/').chars().take(300).collect::<String>());
    let health = match &client_url {
        None => Err("no https client URL".to_string()),
        Some(u) => probe::check_health(&Health {
            url: format!("{u}/health"),
            ca: Some(&files.ca),
            client: Some((&files.cert, &files.key)),
            expect: "\"health\":\"true\"",
        }),
    };
    Member { name, client_url, health }
}

/// `host:port` as dialled (IPv6 in brackets).
fn address(host: &str, port: u64) -> Option<String> {
    let port = u16::try_from(port).ok().filter(|p| *p != 0)?;
    if host.is_empty() || host.len() > 253 || host.contains(['/', '@', ' ']) {
        return None;
    }
    Some(Endpoint { host: host.trim_start_matches('[').trim_end_matches(']').to_string(), port }.to_string())
}

/// The apiservers the `kubernetes` Endpoints lists (`resourceVersion=0`: from the apiserver's cache, so
/// a hung etcd does not hang this too).
fn from_endpoints(client: &Client, notes: &mut Vec<String>) -> Vec<String> {
    let path = "/api/v1/namespaces/default/endpoints/kubernetes?resourceVersion=0";
    let reply = match client.get(path) {
        Ok(r) if r.ok() => r,
        Ok(r) => {
            notes.push(format!("cluster gate: GET {path}: HTTP {}: {}", r.status, r.message()));
            return vec![];
        }
        Err(e) => {
            notes.push(format!("cluster gate: GET {path}: {e}"));
            return vec![];
        }
    };
    let mut out = Vec::new();
    for subset in reply.body.get("subsets").and_then(Value::as_array).into_iter().flatten().take(MAX_PEERS) {
        let ports = subset.get("ports").and_then(Value::as_array);
        let port = ports
            .and_then(|ps| ps.iter().find(|p| p.get("name").and_then(Value::as_str) == Some("https")).or(ps.first()))
            .and_then(|p| p.get("port"))
            .and_then(Value::as_u64);
        let Some(port) = port else { continue };
        for a in subset.get("addresses").and_then(Value::as_array).into_iter().flatten().take(MAX_PEERS) {
            out.extend(a.get("ip").and_then(Value::as_str).and_then(|ip| address(ip, port)));
        }
    }
    out
}

/// kubeadm's record of its control-plane nodes (v1.20 `ClusterStatus.apiEndpoints`; gone from 1.22,
/// where this finds nothing).
fn from_kubeadm_config(client: &Client) -> Vec<String> {
    let path = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config?resourceVersion=0";
    let Ok(reply) = client.get(path) else { return vec![] };
    let Some(text) = reply.body.pointer("/data/ClusterStatus").and_then(Value::as_str) else { return vec![] };
    let Ok(status) = serde_norway::from_str::<Value>(text) else { return vec![] };
    let mut out = Vec::new();
    for ep in status.get("apiEndpoints").and_then(Value::as_object).into_iter().flat_map(|m| m.values()).take(MAX_PEERS)
    {
        let host = ep.get("advertiseAddress").and_then(Value::as_str);
        let port = ep.get("bindPort").and_then(Value::as_u64).unwrap_or(6443);
        out.extend(host.and_then(|h| address(h, port)));
    }
    out
}

fn apiservers(layout: &Layout, client: &Client, findings: &[Finding], notes: &mut Vec<String>) -> Vec<Apiserver> {
    let mut addresses = from_endpoints(client, notes);
    addresses.extend(from_kubeadm_config(client));
    // the one the kubeconfig names (a load balancer, or this node on a loopback test cluster whose
    // Endpoints cannot hold a loopback address) and this node's own
    addresses.extend(client.server().strip_prefix("https://").map(String::from));
    if let Some(ep) =
        running(findings, Component::KubeApiserver).and_then(|p| probe::endpoint(p, Listener::ApiserverSecurePort))
    {
        addresses.push(ep.to_string());
    }
    let mut seen: Vec<String> = Vec::new();
    for a in addresses {
        if !seen.contains(&a) {
            seen.push(a);
        }
    }
    let ca = layout.cert_dir.join("ca.crt");
    seen.into_iter()
        .map(|address| {
            let ready = probe::check_health(&Health {
                url: format!("https://{address}/readyz"),
                ca: Some(&ca),
                client: None,
                expect: "ok",
            });
            Apiserver { address, ready }
        })
        .collect()
}
