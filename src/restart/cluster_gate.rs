//! Whether the cluster can take a restart on this node: every etcd member and every apiserver must be
//! healthy first. Restarting anything while one etcd member is down risks quorum (a three-member etcd
//! with one member down loses quorum when this node's member restarts; the apiserver restarted here is
//! the only one left when another is down). What was observed comes from `cluster`; this file only
//! decides, and every refusal carries who and why.

use std::fmt;

/// One etcd member as seen: its name (empty for a member added but never started), its first client
/// URL, and what its `/health` answered.
#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub client_url: Option<String>,
    pub health: Result<(), String>,
}

/// One apiserver as seen: its address and what its `/readyz` answered.
#[derive(Clone, Debug)]
pub struct Apiserver {
    pub address: String,
    pub ready: Result<(), String>,
}

/// What the gate saw. `etcd: Err` when no member list could be had (this node's member is named).
#[derive(Clone, Debug)]
pub struct Observed {
    pub etcd: Option<Result<Vec<Member>, (String, String)>>,
    pub apiservers: Vec<Apiserver>,
    /// This node's etcd member name and apiserver address when this run restarts them: already down,
    /// restarting them risks nothing more (and is what brings back one whose certificate expired).
    pub restarting: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The member list could not be had from this node's member.
    EtcdNoMemberList(String),
    /// A member added (`etcdctl member add`) that never started: it counts toward quorum.
    EtcdUnstarted,
    /// A member without a client URL to ask.
    EtcdNoClientUrl,
    EtcdUnhealthy(String),
    ApiserverUnready(String),
    /// Not one apiserver address was found to check.
    NoApiserver,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `etcd member NAME (URL)`, `kube-apiserver ADDRESS`.
    pub who: String,
    pub reason: Reason,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match &self.reason {
            Reason::EtcdNoMemberList(e) => format!("cannot list the etcd members: {e}"),
            Reason::EtcdUnstarted => "added to the cluster but never started (it counts toward quorum)".into(),
            Reason::EtcdNoClientUrl => "has no client URL to ask /health".into(),
            Reason::EtcdUnhealthy(e) => format!("not healthy: {e}"),
            Reason::ApiserverUnready(e) => format!("not ready: {e}"),
            Reason::NoApiserver => "no apiserver address found to check".into(),
        };
        write!(f, "{}: {why}", self.who)
    }
}

fn member_name(m: &Member) -> String {
    let name = if m.name.is_empty() { "(unstarted)" } else { &m.name };
    match &m.client_url {
        Some(u) => format!("etcd member {name} ({u})"),
        None => format!("etcd member {name}"),
    }
}

/// Every reason the cluster cannot take a restart now; empty: go ahead.
pub fn decide(seen: &Observed) -> Vec<Refusal> {
    let mut out = Vec::new();
    match &seen.etcd {
        None => {}
        Some(Err((who, e))) => out.push(Refusal { who: who.clone(), reason: Reason::EtcdNoMemberList(e.clone()) }),
        Some(Ok(members)) => {
            for m in members {
                let reason = if m.name.is_empty() {
                    Some(Reason::EtcdUnstarted)
                } else if m.client_url.is_none() {
                    Some(Reason::EtcdNoClientUrl)
                } else if seen.restarting.contains(&m.name) {
                    None
                } else {
                    m.health.clone().err().map(Reason::EtcdUnhealthy)
                };
                if let Some(reason) = reason {
                    out.push(Refusal { who: member_name(m), reason });
                }
            }
        }
    }
    if seen.apiservers.is_empty() {
        out.push(Refusal { who: "kube-apiserver".into(), reason: Reason::NoApiserver });
    }
    for a in seen.apiservers.iter().filter(|a| !seen.restarting.contains(&a.address)) {
        if let Err(e) = &a.ready {
            out.push(Refusal {
                who: format!("kube-apiserver {}", a.address),
                reason: Reason::ApiserverUnready(e.clone()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, url: Option<&str>, health: Result<(), &str>) -> Member {
        Member { name: name.into(), client_url: url.map(String::from), health: health.map_err(String::from) }
    }
    fn api(address: &str, ready: Result<(), &str>) -> Apiserver {
        Apiserver { address: address.into(), ready: ready.map_err(String::from) }
    }

    #[test]
    fn a_healthy_cluster_passes() {
        let seen = Observed {
            etcd: Some(Ok(vec![member("cp1", Some("https://10.0.0.1:2379"), Ok(()))])),
            apiservers: vec![api("10.0.0.1:6443", Ok(()))],
            restarting: vec![],
        };
        assert_eq!(decide(&seen), vec![]);
    }

    #[test]
    fn each_unhealthy_member_and_apiserver_is_named_with_its_reason() {
        let seen = Observed {
            etcd: Some(Ok(vec![
                member("cp1", Some("https://10.0.0.1:2379"), Ok(())),
                member("cp2", Some("https://10.0.0.2:2379"), Err("timed out")),
                member("", None, Err("never asked")),
                member("cp4", None, Ok(())),
            ])),
            apiservers: vec![api("10.0.0.1:6443", Ok(())), api("10.0.0.3:6443", Err("connection refused"))],
            restarting: vec![],
        };
        let r = decide(&seen);
        let reasons: Vec<&Reason> = r.iter().map(|r| &r.reason).collect();
        assert_eq!(
            reasons,
            [
                &Reason::EtcdUnhealthy("timed out".into()),
                &Reason::EtcdUnstarted,
                &Reason::EtcdNoClientUrl,
                &Reason::ApiserverUnready("connection refused".into())
            ]
        );
        assert_eq!(r[0].to_string(), "etcd member cp2 (https://10.0.0.2:2379): not healthy: timed out");
        assert_eq!(r[3].who, "kube-apiserver 10.0.0.3:6443");
    }

    #[test]
    fn no_member_list_and_no_apiserver_are_refusals_too() {
        let seen = Observed {
            etcd: Some(Err(("etcd member cp1 (https://10.0.0.1:2379)".into(), "timed out".into()))),
            apiservers: vec![],
            restarting: vec![],
        };
        let r = decide(&seen);
        assert_eq!(r[0].reason, Reason::EtcdNoMemberList("timed out".into()));
        assert_eq!(r[1].reason, Reason::NoApiserver);
        // an external etcd this node cannot ask is not gated on
        assert_eq!(decide(&Observed { etcd: None, apiservers: vec![api("a:1", Ok(()))], restarting: vec![] }), vec![]);
    }

    #[test]
    fn what_this_run_restarts_may_be_down_already() {
        let seen = Observed {
            etcd: Some(Ok(vec![
                member("cp1", Some("https://10.0.0.1:2379"), Err("down")),
                member("cp2", Some("https://10.0.0.2:2379"), Err("down")),
            ])),
            apiservers: vec![api("10.0.0.1:6443", Err("expired")), api("10.0.0.2:6443", Err("down"))],
            restarting: vec!["cp1".into(), "10.0.0.1:6443".into()],
        };
        let who: Vec<String> = decide(&seen).into_iter().map(|r| r.who).collect();
        assert_eq!(who, ["etcd member cp2 (https://10.0.0.2:2379)", "kube-apiserver 10.0.0.2:6443"]);
    }
}
