//! Which pending CertificateSigningRequests `approve kubelet-serving` approves: a kubelet's request for its serving
//! certificate (`serverTLSBootstrap`) that asks for exactly what its node may have, and nothing else. Everything in
//! a request is the requester's to choose, so nothing in it is believed but what the apiserver sets itself (who
//! asked: `spec.username`, `spec.groups`) and what is checked here against the cluster's Node objects.
//!
//! A request is approved when, in this order (the first that fails is its [`Refusal`], named in the report):
//! its signer is `kubernetes.io/kubelet-serving` (any other signer's requests are left to that signer's approver,
//! untouched); it was made by a node (`system:node:NAME`, in the group `system:nodes`); it is a PKCS#10 request whose
//! signature its own key verifies; its subject is exactly `O=system:nodes, CN=system:node:NAME` for that same node;
//! its key is one a kubelet makes; it requests no extension but its SANs, no SAN but DNS names and IP addresses, and
//! at least one of those; its usages are digital signature and server auth, with key encipherment or without, and no
//! other; a Node NAME exists; every DNS name is one of that Node's names, every IP address one of its addresses,
//! both by the kubelet's own rule for what it asks (v1.20 `pkg/kubelet/certificate/kubelet.go`
//! `addressesToHostnamesAndIPs`: Hostname, InternalDNS, ExternalDNS are names, a Hostname that is an IP address and
//! InternalIP, ExternalIP are addresses); and no other Node lists any of them.
//!
//! The apiserver's own check of the signer (v1.20 `pkg/apis/certificates/helpers.go` `ValidateKubeletServingCSR`)
//! only asks for `O=system:nodes`, a CN starting `system:node:` and its usages: any node could be issued a
//! certificate for another node's name or any address. kubelet-csr-approver (postfinance) adds a DNS-name regex, DNS
//! resolution and IP prefixes; here the cluster's own Node objects are the reference. What a Node lists is the
//! kubelet's own report (a node may set its own addresses), so this proves a request is for its requester's own
//! Node, not that the Node's addresses are true; the last check keeps a node from claiming one another Node lists.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use crate::pki::cert::{KeyKind, OID_CN, OID_O, san_strings};
use crate::pki::csr::Csr;

pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
const NODE_PREFIX: &str = "system:node:";
const NODES_GROUP: &str = "system:nodes";
/// The usages the kubelet asks for (v1.20 `pkg/kubelet/certificate/kubelet.go`); key encipherment is optional, as
/// newer kubelets leave it out for ECDSA keys.
const REQUIRED_USAGES: [&str; 2] = ["digital signature", "server auth"];
const OPTIONAL_USAGES: [&str; 1] = ["key encipherment"];

/// Why a pending request is not approved. Each has a name the report carries and tests assert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Another signer's request: left to that signer's approver.
    Signer,
    /// Not made by a node (`system:node:NAME` in `system:nodes`).
    Requester,
    /// `spec.request` is not a PKCS#10 request its own key signed.
    Unreadable,
    /// Its subject names another node than the one that asked.
    OtherNode,
    /// Its subject is not exactly `O=system:nodes, CN=system:node:NAME`.
    Subject,
    /// A key no kubelet makes.
    Key,
    /// It requests extensions besides its SANs.
    Extensions,
    /// It asks for an email, URI or other SAN.
    OtherSan,
    /// It asks for no DNS name and no IP address.
    NoSan,
    /// Its usages are not the kubelet's.
    Usages,
    /// No Node of the requester's name.
    NoSuchNode,
    /// A DNS name that is not one of its Node's names.
    DnsName,
    /// An IP address that is not one of its Node's addresses.
    IpAddress,
    /// A name or address another Node lists too.
    SanOfOtherNode,
}

impl Refusal {
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Signer => "signer",
            Refusal::Requester => "requester",
            Refusal::Unreadable => "unreadable",
            Refusal::OtherNode => "other_node",
            Refusal::Subject => "subject",
            Refusal::Key => "key",
            Refusal::Extensions => "extensions",
            Refusal::OtherSan => "other_san",
            Refusal::NoSan => "no_san",
            Refusal::Usages => "usages",
            Refusal::NoSuchNode => "no_such_node",
            Refusal::DnsName => "dns_name",
            Refusal::IpAddress => "ip_address",
            Refusal::SanOfOtherNode => "san_of_other_node",
        }
    }
}

/// A Node as the checks see it: its name, and the names and addresses its kubelet may ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
}

impl Node {
    /// A Node object's `metadata.name` and `status.addresses`, sorted into names and addresses by the kubelet's
    /// rule; `None` without a name.
    pub fn from_object(obj: &Value) -> Option<Node> {
        let name = obj.pointer("/metadata/name")?.as_str()?.to_string();
        let mut node = Node { name, dns_names: Vec::new(), ip_addresses: Vec::new() };
        for a in obj.pointer("/status/addresses").and_then(Value::as_array).into_iter().flatten() {
            let (Some(kind), Some(address)) = (a["type"].as_str(), a["address"].as_str()) else { continue };
            let ip = address.parse::<IpAddr>().ok();
            match (kind, ip) {
                ("Hostname" | "InternalIP" | "ExternalIP", Some(ip)) => node.ip_addresses.push(ip),
                ("Hostname" | "InternalDNS" | "ExternalDNS", None) if !address.is_empty() => {
                    node.dns_names.push(address.to_ascii_lowercase())
                }
                _ => {}
            }
        }
        Some(node)
    }

    fn has_dns(&self, name: &str) -> bool {
        self.dns_names.iter().any(|d| d.eq_ignore_ascii_case(name))
    }

    /// Its names (`dns`) or its addresses, as SANs are written, for a message.
    fn listed(&self, dns: bool) -> String {
        let all = match dns {
            true => san_strings(&self.dns_names, &[]),
            false => san_strings(&[], &self.ip_addresses),
        };
        if all.is_empty() { "none".into() } else { all.join(", ") }
    }
}

/// One pending request judged.
#[derive(Debug)]
pub struct Judged {
    pub signer_name: String,
    pub requester: String,
    /// The node it was made by, when a node made it.
    pub node: Option<String>,
    /// What it asks for (empty when it cannot be read).
    pub sans: Vec<String>,
    /// `Ok` with what was found, or the refusal and what was found.
    pub verdict: Result<String, (Refusal, String)>,
}

/// Judges the CertificateSigningRequest object `csr` against the cluster's `nodes`.
pub fn judge(csr: &Value, nodes: &[Node]) -> Judged {
    let spec = &csr["spec"];
    let text = |k: &str| spec[k].as_str().unwrap_or_default().to_string();
    let mut judged = Judged {
        signer_name: text("signerName"),
        requester: text("username"),
        node: None,
        sans: Vec::new(),
        verdict: Ok(String::new()),
    };
    judged.verdict = verdict(spec, nodes, &mut judged);
    judged
}

fn verdict(spec: &Value, nodes: &[Node], judged: &mut Judged) -> Result<String, (Refusal, String)> {
    let refuse = |r: Refusal, why: String| Err((r, why));
    if judged.signer_name != KUBELET_SERVING {
        return refuse(
            Refusal::Signer,
            format!("its signer is {:?}, not {KUBELET_SERVING}: left to that signer's approver", judged.signer_name),
        );
    }
    let groups: Vec<&str> =
        spec["groups"].as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>();
    let node_name = judged.requester.strip_prefix(NODE_PREFIX).filter(|n| crate::request::is_dns_subdomain(n));
    let Some(node_name) = node_name.filter(|_| groups.contains(&NODES_GROUP)) else {
        return refuse(
            Refusal::Requester,
            format!(
                "it was made by {:?} (groups {}), not by a node's kubelet ({NODE_PREFIX}NAME in {NODES_GROUP}), which \
                 asks for its serving certificate with its own credentials",
                judged.requester,
                groups.join(", ")
            ),
        );
    };
    judged.node = Some(node_name.to_string());
    let csr = match read_request(spec) {
        Ok(c) => c,
        Err(why) => return refuse(Refusal::Unreadable, format!("spec.request {why}")),
    };
    judged.sans = san_strings(&csr.dns_names, &csr.ip_addresses);
    subject(&csr, node_name)?;
    let key_ok = matches!(csr.key_kind, KeyKind::EcP256 | KeyKind::EcP384)
        || matches!(csr.key_kind, KeyKind::Rsa(bits) if (2048..=8192).contains(&bits));
    if !key_ok {
        return refuse(
            Refusal::Key,
            format!("its key is {}: a kubelet's is ECDSA P-256 or P-384, or RSA of 2048 bits or more", csr.key_kind),
        );
    }
    let san_count = csr.dns_names.len() + csr.ip_addresses.len() + csr.other_names;
    let extensions = csr.extensions - usize::from(san_count > 0).min(csr.extensions);
    if extensions > 0 {
        return refuse(
            Refusal::Extensions,
            format!("it requests {extensions} extension(s) besides its SANs: a kubelet requests none"),
        );
    }
    if csr.other_names > 0 {
        return refuse(
            Refusal::OtherSan,
            format!(
                "it asks for {} email, URI or other SAN(s): a kubelet asks for DNS names and IP addresses only",
                csr.other_names
            ),
        );
    }
    if csr.dns_names.is_empty() && csr.ip_addresses.is_empty() {
        return refuse(Refusal::NoSan, "it asks for no DNS name and no IP address".into());
    }
    usages(spec)?;
    let Some(node) = nodes.iter().find(|n| n.name == node_name) else {
        return refuse(Refusal::NoSuchNode, format!("there is no Node {node_name:?}"));
    };
    for d in &csr.dns_names {
        if !node.has_dns(d) {
            return refuse(
                Refusal::DnsName,
                format!(
                    "it asks for DNS:{d}, which is not a name of Node {node_name} (its Hostname, InternalDNS, \
                     ExternalDNS addresses: {})",
                    node.listed(true)
                ),
            );
        }
    }
    for ip in &csr.ip_addresses {
        if !node.ip_addresses.contains(ip) {
            return refuse(
                Refusal::IpAddress,
                format!(
                    "it asks for IP:{ip}, which is not an address of Node {node_name} (its InternalIP, ExternalIP \
                     addresses: {})",
                    node.listed(false)
                ),
            );
        }
    }
    for other in nodes.iter().filter(|n| n.name != node_name) {
        let shared: Vec<String> = csr
            .dns_names
            .iter()
            .filter(|d| other.has_dns(d))
            .map(|d| format!("DNS:{d}"))
            .chain(csr.ip_addresses.iter().filter(|ip| other.ip_addresses.contains(ip)).map(|ip| format!("IP:{ip}")))
            .collect();
        if !shared.is_empty() {
            return refuse(
                Refusal::SanOfOtherNode,
                format!("it asks for {}, which Node {} lists too", shared.join(", "), other.name),
            );
        }
    }
    Ok(format!("Node {node_name}'s own names and addresses: {}", judged.sans.join(", ")))
}

/// `spec.request`: base64 of one PEM `CERTIFICATE REQUEST` whose signature its own key verifies.
fn read_request(spec: &Value) -> Result<Csr, String> {
    let b64 = spec["request"].as_str().ok_or("is missing")?;
    let pem = B64.decode(b64.trim()).map_err(|e| format!("is not base64: {e}"))?;
    crate::pki::csr::parse(&pem)
}

/// Exactly `O=system:nodes, CN=system:node:NODE`, in any order.
fn subject(csr: &Csr, node: &str) -> Result<(), (Refusal, String)> {
    let attr = |oid: &str| csr.subject.iter().filter(|(o, _)| o == oid).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    let (cns, orgs) = (attr(OID_CN), attr(OID_O));
    let exact = csr.subject.len() == 2 && orgs == [NODES_GROUP] && cns.len() == 1;
    let shown = || {
        let parts: Vec<String> = csr
            .subject
            .iter()
            .map(|(oid, v)| match oid.as_str() {
                OID_CN => format!("CN={v}"),
                OID_O => format!("O={v}"),
                other => format!("{other}={v}"),
            })
            .collect();
        parts.join(", ")
    };
    match cns.first().and_then(|cn| cn.strip_prefix(NODE_PREFIX)) {
        Some(named) if exact && named == node => Ok(()),
        Some(named) if named != node => Err((
            Refusal::OtherNode,
            format!(
                "it asks for CN={NODE_PREFIX}{named}, and was made by node {node}: a certificate for another node's \
                 name would let {node} serve as {named}"
            ),
        )),
        _ => Err((
            Refusal::Subject,
            format!(
                "it asks for subject {{{}}}; a kubelet asks for exactly O={NODES_GROUP}, CN={NODE_PREFIX}{node}",
                shown()
            ),
        )),
    }
}

/// The kubelet's usages and no others.
fn usages(spec: &Value) -> Result<(), (Refusal, String)> {
    let asked: Vec<&str> = spec["usages"].as_array().into_iter().flatten().map(|u| u.as_str().unwrap_or("?")).collect();
    let extra: Vec<&str> =
        asked.iter().copied().filter(|u| !REQUIRED_USAGES.contains(u) && !OPTIONAL_USAGES.contains(u)).collect();
    let lacking: Vec<&str> = REQUIRED_USAGES.iter().copied().filter(|u| !asked.contains(u)).collect();
    if extra.is_empty() && lacking.is_empty() {
        return Ok(());
    }
    Err((
        Refusal::Usages,
        format!(
            "it asks for the usages [{}]; a kubelet asks for digital signature, server auth and key encipherment (or \
             not), nothing more{}{}",
            asked.join(", "),
            if extra.is_empty() { String::new() } else { format!(" (not: {})", extra.join(", ")) },
            if lacking.is_empty() { String::new() } else { format!(" (lacking: {})", lacking.join(", ")) }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::key::{KeyAlgorithm, PrivateKey};
    use serde_json::json;

    fn node(name: &str, addresses: &[(&str, &str)]) -> Value {
        let addresses: Vec<Value> = addresses.iter().map(|(t, a)| json!({"type": t, "address": a})).collect();
        json!({"metadata": {"name": name}, "status": {"addresses": addresses}})
    }

    fn nodes() -> Vec<Node> {
        [
            node("w1", &[("InternalIP", "10.0.0.1"), ("Hostname", "w1"), ("ExternalDNS", "w1.example.com")]),
            node("w2", &[("InternalIP", "10.0.0.2"), ("Hostname", "w2")]),
        ]
        .iter()
        .filter_map(Node::from_object)
        .collect()
    }

    /// A CSR object as the apiserver shows it: made by `username`, asking for `cn`, `dns`, `ips`.
    fn csr(username: &str, o: &str, cn: &str, dns: &[&str], ips: &[&str], usages: &[&str], signer: &str) -> Value {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let attr = |oid: &str, v: &str| crate::pki::cert::NameAttr { oid: oid.into(), tag: 12, value: v.into() };
        let subject = crate::pki::cert::Name(vec![attr(OID_O, o), attr(OID_CN, cn)]);
        let dns: Vec<String> = dns.iter().map(|d| d.to_string()).collect();
        let ips: Vec<IpAddr> = ips.iter().map(|i| i.parse().unwrap()).collect();
        let pem = crate::engine::sign::request_pem(&subject, &dns, &ips, &key).unwrap();
        json!({"metadata": {"name": "csr-x"}, "spec": {
            "request": B64.encode(pem), "signerName": signer, "usages": usages,
            "username": username, "groups": ["system:nodes", "system:authenticated"]}})
    }

    const KUBELET: [&str; 3] = ["digital signature", "key encipherment", "server auth"];

    fn good(dns: &[&str], ips: &[&str]) -> Value {
        csr("system:node:w1", "system:nodes", "system:node:w1", dns, ips, &KUBELET, KUBELET_SERVING)
    }

    fn refusal(obj: &Value) -> &'static str {
        match judge(obj, &nodes()).verdict {
            Ok(why) => panic!("approved: {why}"),
            Err((r, why)) => {
                assert!(!why.is_empty());
                r.name()
            }
        }
    }

    #[test]
    fn a_kubelets_request_for_its_own_nodes_names_and_addresses_is_approved() {
        let j = judge(&good(&["w1", "W1.example.com"], &["10.0.0.1"]), &nodes());
        assert!(j.verdict.is_ok(), "{:?}", j.verdict);
        assert_eq!(j.node.as_deref(), Some("w1"));
        assert_eq!(j.sans, ["DNS:w1", "DNS:W1.example.com", "IP:10.0.0.1"]);
        let no_encipherment = csr(
            "system:node:w1",
            "system:nodes",
            "system:node:w1",
            &[],
            &["10.0.0.1"],
            &["digital signature", "server auth"],
            KUBELET_SERVING,
        );
        assert!(judge(&no_encipherment, &nodes()).verdict.is_ok(), "key encipherment is optional");
    }

    #[test]
    fn each_refusal_is_named() {
        let made_by =
            |user: &str, cn: &str| csr(user, "system:nodes", cn, &["w1"], &["10.0.0.1"], &KUBELET, KUBELET_SERVING);
        let wrong_signer = csr(
            "system:node:w1",
            "system:nodes",
            "system:node:w1",
            &["w1"],
            &[],
            &KUBELET,
            "kubernetes.io/kube-apiserver-client",
        );
        assert_eq!(refusal(&wrong_signer), "signer");
        assert_eq!(refusal(&made_by("kubernetes-admin", "system:node:w1")), "requester");
        let mut not_in_group = made_by("system:node:w1", "system:node:w1");
        not_in_group["spec"]["groups"] = json!(["system:authenticated"]);
        assert_eq!(refusal(&not_in_group), "requester");
        let mut garbage = good(&["w1"], &[]);
        garbage["spec"]["request"] = json!(B64.encode("not a request"));
        assert_eq!(refusal(&garbage), "unreadable");
        assert_eq!(refusal(&made_by("system:node:w1", "system:node:w2")), "other_node");
        let masters =
            csr("system:node:w1", "system:masters", "system:node:w1", &["w1"], &[], &KUBELET, KUBELET_SERVING);
        assert_eq!(refusal(&masters), "subject");
        assert_eq!(refusal(&good(&[], &[])), "no_san");
        let client_too = csr(
            "system:node:w1",
            "system:nodes",
            "system:node:w1",
            &["w1"],
            &[],
            &["digital signature", "key encipherment", "server auth", "client auth"],
            KUBELET_SERVING,
        );
        assert_eq!(refusal(&client_too), "usages");
        let ghost = csr("system:node:w9", "system:nodes", "system:node:w9", &["w9"], &[], &KUBELET, KUBELET_SERVING);
        assert_eq!(refusal(&ghost), "no_such_node");
        assert_eq!(refusal(&good(&["w1", "kubernetes.default"], &[])), "dns_name");
        assert_eq!(refusal(&good(&["w1"], &["10.0.0.9"])), "ip_address");
        // w1 claims w2's address in its own Node status too: still not w1's alone
        let mut both = nodes();
        both[0].ip_addresses.push("10.0.0.2".parse().unwrap());
        let claim = good(&["w1"], &["10.0.0.2"]);
        let Err((r, why)) = judge(&claim, &both).verdict else { panic!("approved") };
        assert_eq!(r, Refusal::SanOfOtherNode, "{why}");
        assert!(why.contains("w2"), "{why}");
    }

    #[test]
    fn node_addresses_follow_the_kubelets_rule() {
        let n = Node::from_object(&node(
            "n",
            &[
                ("Hostname", "10.1.1.1"),
                ("Hostname", "N"),
                ("InternalIP", "10.0.0.1"),
                ("InternalIP", "not-an-ip"),
                ("InternalDNS", "n.internal"),
                ("ExternalIP", "fd00::1"),
            ],
        ))
        .unwrap();
        assert_eq!(n.dns_names, ["n", "n.internal"]);
        let ips: Vec<String> = n.ip_addresses.iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["10.1.1.1", "10.0.0.1", "fd00::1"]);
    }
}
