//! `check`'s `consistency` section: what must be one truth across the control-plane nodes of a cluster, as this
//! node holds it, and what this node's certificates fail to cover.
//!
//! A node alone cannot see that its CAs or service-account key pair differ from another node's: it reports
//! fingerprints (SHA-256 of each CA certificate, of its public key, of the public key of the key file beside it;
//! of sa.pub's and sa.key's public key: never a byte of a private key) and whoever gathers every node's report
//! compares them (the collection's `consistency` filter, grouped by cluster). What a node can see alone is a
//! finding here: the apiserver certificate lacking the cluster's `controlPlaneEndpoint` host, this node's
//! advertise address or a `certSANs` entry; this node's etcd member registered with a peer or client URL its
//! etcd-peer or etcd-server certificate does not cover (etcd's own member list, asked as the cluster gate asks
//! it: `restart::cluster::member_list`). The cluster's configuration is `--config`, else the `kubeadm-config`
//! ConfigMap read through the apiserver with admin.conf, best effort and bounded: what could not be read is a
//! `reason`, never a failure.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::plan::has_san;
use crate::inuse::stale::Finding as Running;
use crate::inventory::Component;
use crate::kubeadm_config::KubeadmConfig;
use crate::pki::cert::Certificate;
use crate::pki::key::public_key_of;
use crate::pki::{Links, Pki, read_file};
use crate::report::{ConsistencyFinding, ConsistencyReport, EtcdMemberReport, IdentityReport};
use crate::request::{CheckRequest, San};
use crate::restart::cluster::{MemberListError, member_list};

/// The ConfigMap is asked for once, with these bounds: `check` must stay quick where the apiserver is down.
const API_CONNECT: Duration = Duration::from_secs(2);
const API_CALL: Duration = Duration::from_secs(4);
/// Bounds on what etcd's answer can make us hold (it is untrusted).
const MAX_URLS: usize = 16;
const MAX_TEXT: usize = 300;

pub fn gather(req: &CheckRequest, pki: &Pki, running: &[Running]) -> ConsistencyReport {
    let mut reasons = Vec::new();
    let mut out = ConsistencyReport { identity: identity(req, pki, &mut reasons), ..Default::default() };
    let cert =
        |name: &str| pki.entries.iter().find(|e| e.spec.name == name).and_then(|e| Some(&e.loaded.as_ref()?.cert));
    let path = |name: &str| {
        pki.entries.iter().find(|e| e.spec.name == name).map(|e| e.location.path().to_path_buf()).unwrap_or_default()
    };
    let (apiserver, etcd_server, etcd_peer) = (cert("apiserver"), cert("etcd-server"), cert("etcd-peer"));
    out.apiserver_sans = apiserver.map(Certificate::sans).unwrap_or_default();
    out.etcd_server_sans = etcd_server.map(Certificate::sans).unwrap_or_default();
    out.etcd_peer_sans = etcd_peer.map(Certificate::sans).unwrap_or_default();

    let manifests = crate::request::default_manifests_dir(&req.layout.kubeconfig_dir);
    let advertise = advertise_address(&manifests, running);
    out.advertise_address = advertise.as_ref().map(|(a, _)| a.clone());

    let config = match &req.config {
        Some(c) => Some((c.clone(), format!("--config {}", c.path.display()))),
        None => match config_map(&req.layout.kubeconfig_dir.join("admin.conf")) {
            Ok(c) => Some((c, CONFIG_MAP.to_string())),
            Err(why) => {
                reasons.push(format!("the cluster's kubeadm configuration: {why}"));
                None
            }
        },
    };
    if let Some((c, source)) = &config {
        out.control_plane_endpoint = c.control_plane_endpoint.clone();
        out.cert_sans = c.apiserver_sans.iter().map(San::to_string).collect();
        out.config_source = Some(source.clone());
    }

    if let Some(api) = apiserver {
        let file = path("apiserver");
        let mut lacks = |san: San, why: String| {
            if !has_san(api, &san) {
                out.findings.push(apiserver_finding(&file, &san, &why));
            }
        };
        if let Some((c, source)) = &config {
            if let Some(ep) = &c.control_plane_endpoint {
                match host_of(ep).map(|h| San::parse(&h)) {
                    Some(Ok(san)) => lacks(san, format!("the controlPlaneEndpoint host ({source}: {ep})")),
                    _ => reasons.push(format!("controlPlaneEndpoint {ep:?} ({source}): not a host[:port]")),
                }
            }
            for san in &c.apiserver_sans {
                lacks(san.clone(), format!("an apiServer.certSANs entry ({source})"));
            }
        }
        if let Some((address, from)) = &advertise {
            match address.parse::<IpAddr>() {
                Ok(ip) => lacks(San::Ip(ip), format!("this node's advertise address ({from})")),
                Err(_) => reasons.push(format!("advertise address {address:?} ({from}): not an IP address")),
            }
        }
    }

    match member_list(&req.layout, running) {
        Ok(members) => {
            let ours = local_member_name(&manifests, running);
            out.etcd_members = members.iter().map(|m| member(m, ours.as_deref())).collect();
            if ours.is_none() {
                reasons
                    .push("etcd's member list: no --name on this node's etcd: which member is ours is unknown".into());
            }
            if let Some(m) = out.etcd_members.iter().find(|m| m.local) {
                let checks = [
                    (etcd_peer, "etcd-peer", &m.peer_urls, "peer"),
                    (etcd_server, "etcd-server", &m.client_urls, "client"),
                ];
                for (cert, name, urls, kind) in checks {
                    let Some(cert) = cert else { continue };
                    for url in urls {
                        match host_of(url).map(|h| San::parse(&h)) {
                            Some(Ok(san)) if !has_san(cert, &san) => {
                                out.findings.push(etcd_finding(&path(name), name, &san, &m.name, kind, url))
                            }
                            Some(Ok(_)) => {}
                            _ => reasons.push(format!("etcd member {}: {kind} URL {url:?} names no host", m.name)),
                        }
                    }
                }
            }
        }
        Err(MemberListError::Unasked(why)) => reasons.push(format!("etcd's member list: not asked: {why}")),
        Err(MemberListError::Failed { who, error }) => reasons.push(format!("etcd's member list from {who}: {error}")),
    }
    out.reasons = reasons;
    out
}

const CONFIG_MAP: &str = "ConfigMap kube-system/kubeadm-config";

fn apiserver_finding(file: &Path, san: &San, why: &str) -> ConsistencyFinding {
    let bare = bare(san);
    ConsistencyFinding {
        file: file.display().to_string(),
        message: format!(
            "{}: lacks {san}, {why}: clients that reach the apiserver by it refuse its certificate \
             (`kubeadm-certs renew apiserver --extra-san {bare}` adds it)",
            file.display()
        ),
    }
}

fn etcd_finding(file: &Path, name: &str, san: &San, member: &str, kind: &str, url: &str) -> ConsistencyFinding {
    let field = if name == "etcd-peer" { "peerCertSANs" } else { "serverCertSANs" };
    ConsistencyFinding {
        file: file.display().to_string(),
        message: format!(
            "{}: lacks {san}, the host of etcd member {member}'s {kind} URL {url} (etcd's member list): \
             {} refuse its certificate (add {} to etcd.local.{field} and reissue {name}: `kubeadm init phase certs \
             {name} --config FILE` after moving the old pair away)",
            file.display(),
            if kind == "peer" { "its peers" } else { "etcd's clients" },
            bare(san)
        ),
    }
}

fn bare(san: &San) -> String {
    match san {
        San::Dns(d) => d.clone(),
        San::Ip(ip) => ip.to_string(),
    }
}

/// The host of `scheme://host:port/path`, `host:port`, `[v6]:port`, `host` or a bare IPv6 address.
fn host_of(s: &str) -> Option<String> {
    let s = s.trim();
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.parse::<IpAddr>().is_ok() {
        return Some(authority.to_string());
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty() && host.len() <= 253).then(|| host.to_string())
}

pub use crate::pki::cert::sha256_hex;

/// The public key of a private key file, fingerprinted; the key's bytes stay in this function.
fn key_fingerprint(path: &Path, reasons: &mut Vec<String>) -> Option<String> {
    let bytes = match read_file(path, Links::Refuse) {
        Ok(b) => b,
        Err(e) => {
            if crate::pki::exists(path).unwrap_or(true) {
                reasons.push(format!("{e}: its public key is not compared (run check as root)"));
            }
            return None;
        }
    };
    match public_key_of(path, &bytes) {
        Ok(public) => Some(sha256_hex(&public)),
        Err(e) => {
            reasons.push(e.to_string());
            None
        }
    }
}

/// sa.pub: a PEM `PUBLIC KEY` (SubjectPublicKeyInfo, as kubeadm writes it) or `RSA PUBLIC KEY`; its key as a
/// certificate would carry it.
fn public_key_file(path: &Path, reasons: &mut Vec<String>) -> Option<String> {
    let bytes = match read_file(path, Links::Follow) {
        Ok(b) => b,
        Err(e) => {
            if crate::pki::exists(path).unwrap_or(true) {
                reasons.push(e.to_string());
            }
            return None;
        }
    };
    let raw = pem::parse(&bytes).ok().and_then(|block| match block.tag() {
        "PUBLIC KEY" => {
            use x509_parser::prelude::FromDer;
            let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(block.contents()).ok()?;
            Some(spki.subject_public_key.data.to_vec())
        }
        "RSA PUBLIC KEY" => Some(block.contents().to_vec()),
        _ => None,
    });
    if raw.is_none() {
        reasons.push(format!("{}: not a PEM public key", path.display()));
    }
    raw.map(|r| sha256_hex(&r))
}

fn identity(req: &CheckRequest, pki: &Pki, reasons: &mut Vec<String>) -> Vec<IdentityReport> {
    let mut out: Vec<IdentityReport> = pki
        .cas
        .iter()
        .filter(|ca| !req.config.as_ref().is_some_and(|k| k.leaves_out(ca.spec.id)))
        .map(|ca| IdentityReport {
            name: ca.spec.name,
            path: ca.cert_path.display().to_string(),
            certificate_sha256: ca.cert.as_ref().map(|c| sha256_hex(&c.der)),
            public_key_sha256: ca.cert.as_ref().map(|c| sha256_hex(&c.public_key_raw)),
            key_path: ca.key_path.display().to_string(),
            key_public_key_sha256: if ca.has_key { key_fingerprint(&ca.key_path, reasons) } else { None },
        })
        .collect();
    let (public, key): (PathBuf, PathBuf) = (req.layout.cert_dir.join("sa.pub"), req.layout.cert_dir.join("sa.key"));
    out.push(IdentityReport {
        name: "sa",
        path: public.display().to_string(),
        certificate_sha256: None,
        public_key_sha256: public_key_file(&public, reasons),
        key_path: key.display().to_string(),
        key_public_key_sha256: key_fingerprint(&key, reasons),
    });
    out
}

/// A static pod manifest's command line (`command` then `args`).
fn manifest_argv(path: &Path) -> Option<Vec<String>> {
    let bytes = read_file(path, Links::Follow).ok()?;
    let doc: serde_norway::Value = serde_norway::from_slice(&bytes).ok()?;
    let container = doc.get("spec")?.get("containers")?.as_sequence()?.first()?;
    let strings = |key: &str| -> Vec<String> {
        container
            .get(key)
            .and_then(|v| v.as_sequence())
            .map(|s| s.iter().filter_map(|v| v.as_str()).take(512).map(String::from).collect())
            .unwrap_or_default()
    };
    let mut argv = strings("command");
    if argv.is_empty() {
        argv.push(String::new());
    }
    argv.extend(strings("args"));
    Some(argv)
}

/// This node's advertise address and where it was read: the kube-apiserver manifest's `--advertise-address`, else
/// the host of etcd's manifest's `--advertise-client-urls`, else the running kube-apiserver's flag.
fn advertise_address(manifests: &Path, running: &[Running]) -> Option<(String, String)> {
    let api = manifests.join("kube-apiserver.yaml");
    if let Some(a) =
        manifest_argv(&api).and_then(|argv| crate::inuse::proc::flag(&argv, "advertise-address").map(String::from))
    {
        return Some((a, format!("{} --advertise-address", api.display())));
    }
    let etcd = manifests.join("etcd.yaml");
    let urls = manifest_argv(&etcd)
        .and_then(|argv| crate::inuse::proc::flag(&argv, "advertise-client-urls").map(String::from));
    if let Some(host) = urls.as_deref().and_then(|u| u.split(',').next()).and_then(host_of) {
        return Some((host, format!("{} --advertise-client-urls", etcd.display())));
    }
    let process =
        running.iter().filter(|f| f.component == Component::KubeApiserver).find_map(|f| f.process.as_ref())?;
    let a = process.flag("advertise-address")?;
    Some((a.to_string(), format!("the running kube-apiserver (pid {}) --advertise-address", process.pid)))
}

/// This node's etcd member: the running etcd's `--name`, else its manifest's.
fn local_member_name(manifests: &Path, running: &[Running]) -> Option<String> {
    let process = running.iter().filter(|f| f.component == Component::Etcd).find_map(|f| f.process.as_ref());
    if let Some(name) = process.and_then(|p| p.flag("name")) {
        return Some(name.to_string());
    }
    manifest_argv(&manifests.join("etcd.yaml"))
        .and_then(|argv| crate::inuse::proc::flag(&argv, "name").map(String::from))
}

fn member(m: &Value, ours: Option<&str>) -> EtcdMemberReport {
    let text = |s: &str| s.chars().take(MAX_TEXT).collect::<String>();
    let urls = |key: &str| -> Vec<String> {
        m.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .take(MAX_URLS)
            .map(text)
            .collect()
    };
    let name = text(m.get("name").and_then(Value::as_str).unwrap_or_default());
    EtcdMemberReport {
        local: ours.is_some_and(|o| o == name),
        name,
        peer_urls: urls("peerURLs"),
        client_urls: urls("clientURLs"),
    }
}

/// The cluster's ClusterConfiguration from the `kubeadm-config` ConfigMap, asked with `admin_conf`'s credentials.
fn config_map(admin_conf: &Path) -> Result<KubeadmConfig, String> {
    let pass = "pass the cluster's configuration with --config";
    if !crate::pki::exists(admin_conf).unwrap_or(false) {
        return Err(format!("no {} to read the {CONFIG_MAP} with: {pass}", admin_conf.display()));
    }
    let creds = crate::kube::credentials::Credentials::read(admin_conf).map_err(|e| format!("{e}: {pass}"))?;
    let client = crate::kube::client::Client::with_timeouts(&creds, API_CONNECT, API_CALL)
        .map_err(|e| format!("{e}: {pass}"))?;
    let path = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config";
    let reply = client.get(path).map_err(|e| format!("GET {path}: {e}: {pass}"))?;
    if !reply.ok() {
        return Err(format!("GET {path}: HTTP {}: {}: {pass}", reply.status, reply.message()));
    }
    let text = reply
        .body
        .pointer("/data/ClusterConfiguration")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{CONFIG_MAP} has no data.ClusterConfiguration: {pass}"))?;
    KubeadmConfig::parse(Path::new(CONFIG_MAP), text.as_bytes()).map_err(|e| format!("{e}: {pass}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_from_urls_endpoints_and_bare_addresses() {
        assert_eq!(host_of("https://10.0.0.1:2380").as_deref(), Some("10.0.0.1"));
        assert_eq!(host_of("https://[fd00::1]:2379/").as_deref(), Some("fd00::1"));
        assert_eq!(host_of("lb.example.com:6443").as_deref(), Some("lb.example.com"));
        assert_eq!(host_of("lb.example.com").as_deref(), Some("lb.example.com"));
        assert_eq!(host_of("fd00::1").as_deref(), Some("fd00::1"));
        assert_eq!(host_of("https://:2379"), None);
    }

    #[test]
    fn a_member_is_bounded_and_marked_ours_by_name() {
        let long = "x".repeat(1000);
        let urls: Vec<String> = (0..100).map(|i| format!("https://10.0.0.{i}:2380")).collect();
        let m = serde_json::json!({"name": "cp1", "peerURLs": urls, "clientURLs": [long, 7]});
        let r = member(&m, Some("cp1"));
        assert!(r.local);
        assert_eq!(r.peer_urls.len(), MAX_URLS);
        assert_eq!(r.client_urls.len(), 1);
        assert_eq!(r.client_urls[0].len(), MAX_TEXT);
        assert!(!member(&m, Some("cp2")).local && !member(&m, None).local);
    }

    #[test]
    fn fingerprints_are_lowercase_hex_sha256() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn a_finding_names_the_file_the_san_and_the_command() {
        let f = apiserver_finding(
            Path::new("/pki/apiserver.crt"),
            &San::Dns("lb.example.com".into()),
            "the controlPlaneEndpoint host (--config c.yaml: lb.example.com:6443)",
        );
        assert_eq!(f.file, "/pki/apiserver.crt");
        assert!(f.message.starts_with("/pki/apiserver.crt: lacks DNS:lb.example.com, the controlPlaneEndpoint host"));
        assert!(f.message.contains("`kubeadm-certs renew apiserver --extra-san lb.example.com`"), "{}", f.message);
        let e = etcd_finding(
            Path::new("/pki/etcd/peer.crt"),
            "etcd-peer",
            &San::Ip("10.0.0.9".parse().unwrap()),
            "cp2",
            "peer",
            "https://10.0.0.9:2380",
        );
        assert!(e.message.contains("lacks IP:10.0.0.9, the host of etcd member cp2's peer URL https://10.0.0.9:2380"));
        assert!(e.message.contains("etcd.local.peerCertSANs"), "{}", e.message);
    }
}
