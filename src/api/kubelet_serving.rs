//! `approve kubelet-serving` (module `state: approve`): the approver a cluster with `serverTLSBootstrap` needs,
//! as one run (from Ansible, or the schedule role's timer) rather than a controller in the cluster.
//!
//! 1. list every CertificateSigningRequest (paged), keep the pending ones (no Approved, Denied or Failed condition,
//!    no certificate)
//! 2. list the Nodes (paged), only when something is pending
//! 3. judge each pending request ([`super::kubelet_serving_policy`]); those of another signer are reported and
//!    never touched
//! 4. approve each that passes, through its `approval` subresource as `kubectl certificate approve` does, with a
//!    condition naming kubeadm-certs and what was checked; the cluster's signer (kube-controller-manager's
//!    `csrsigning`) then issues it. Check mode approves nothing (it still asks the apiserver: judging needs it).
//!
//! A refused request is left pending, not denied. A denial is final, and what makes a request fail here may be
//! transient: a kubelet asks for its serving certificate right after it registers, before its Node may list every
//! address it asks for, and a run an hour later approves what it refused. Another approver (a person, or
//! kubelet-csr-approver with a wider policy) keeps its say. A kubelet whose request waits 15 minutes makes a new one
//! (client-go v1.20 `certificate_manager.go` `certificateWaitTimeout`), and kube-controller-manager's `csrcleaner`
//! deletes pending requests after 24 hours, so leaving them costs nothing. The report names each and why.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::csr::{self, State};
use super::error::{ApiError, Cause, Cleanup};
use super::kubelet_serving_policy::{self as policy, KUBELET_SERVING, Node};
use crate::error::{Error, Result};
use crate::kube::client::Client;
use crate::kube::credentials::Credentials;
use crate::report::{ApprovalReport, Outcome};
use crate::request::ApproveRequest;

/// Objects per page of a list: a Node object can be tens of KiB (its images), and the client reads at most 8 MiB.
const PAGE: usize = 100;
/// Pages followed at most: 100 000 objects.
const MAX_PAGES: usize = 1000;
const REASON: &str = "KubeadmCertsKubeletServing";

pub fn approve(req: &ApproveRequest, now: DateTime<Utc>) -> Result<Outcome> {
    let creds = Credentials::read(&req.kubeconfig)?;
    let client = Client::new(&creds)?;
    // 1. the pending requests
    let pending: Vec<Value> = list(&client, csr::COLLECTION, "list certificatesigningrequests")?
        .into_iter()
        .filter(|o| csr::state(o) == Ok(State::Pending))
        .collect();
    // 2. the Nodes, when there is something to judge
    let nodes: Vec<Node> = match pending.is_empty() {
        true => Vec::new(),
        false => list(&client, "/api/v1/nodes", "list nodes")?.iter().filter_map(Node::from_object).collect(),
    };
    let mut out = Outcome::default();
    let mut approvals = Vec::new();
    let mut approved: Vec<String> = Vec::new();
    for obj in &pending {
        // 3. judge, 4. approve
        let name = csr::name(obj).unwrap_or("(unnamed)").to_string();
        let judged = policy::judge(obj, &nodes);
        let (action, reason, message) = match &judged.verdict {
            Err((refusal, why)) => ("refused", Some(refusal.name()), why.clone()),
            Ok(found) if req.check_mode => ("would_approve", None, found.clone()),
            Ok(found) => match approve_one(&client, obj, &name, found, &nodes, &approved, now)? {
                Some(gone) => {
                    out.warnings.push(format!("certificate signing request {name}: {gone}; left as it is"));
                    continue;
                }
                None => {
                    approved.push(name.clone());
                    ("approved", None, found.clone())
                }
            },
        };
        approvals.push(ApprovalReport {
            name,
            signer_name: judged.signer_name,
            requester: judged.requester,
            node: judged.node,
            sans: judged.sans,
            action,
            reason,
            message,
        });
    }
    out.changed = approvals.iter().any(|a| a.action != "refused");
    out.msg = summary(&approvals, req.check_mode);
    out.approvals = Some(approvals);
    Ok(out)
}

/// Approves `obj`, as judged `found`; `Some(why)` when it changed meanwhile (approved, denied or deleted by
/// someone else) and was left alone. A request that was updated since it was listed (a conflict) is read again and
/// judged again once.
fn approve_one(
    client: &Client,
    obj: &Value,
    name: &str,
    found: &str,
    nodes: &[Node],
    approved: &[String],
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let path = format!("{}/approval", csr::path(name));
    let message = format!("approved by kubeadm-certs approve kubelet-serving: {found}");
    let mut current = obj.clone();
    for attempt in 0..2 {
        let body = csr::with_condition(&current, "Approved", REASON, &message, now);
        let reply = client.put(&path, &body).map_err(|e| api_error(Cause::from(e)))?;
        match reply.status {
            s if (200..300).contains(&s) => return Ok(None),
            404 => return Ok(Some("it was deleted meanwhile".into())),
            409 if attempt == 0 => {
                let again = client.get(&csr::path(name)).map_err(|e| api_error(Cause::from(e)))?;
                if again.status == 404 {
                    return Ok(Some("it was deleted meanwhile".into()));
                }
                match csr::state(&again.body) {
                    Ok(State::Pending) if policy::judge(&again.body, nodes).verdict.is_ok() => current = again.body,
                    Ok(State::Pending) => return Ok(Some("it was changed meanwhile and no longer passes".into())),
                    Ok(State::Denied(why)) => return Ok(Some(format!("it was denied meanwhile ({why})"))),
                    Ok(State::Failed(why)) => return Ok(Some(format!("it failed meanwhile ({why})"))),
                    Ok(_) => return Ok(Some("it was approved meanwhile".into())),
                    Err(e) => return Ok(Some(e)),
                }
            }
            status => {
                let done = match approved.is_empty() {
                    true => String::new(),
                    false => format!(" (this run approved before it: {})", approved.join(", ")),
                };
                return Err(api_error(Cause::Refused {
                    server: client.server().to_string(),
                    action: format!("approve certificate signing request {name}{done}"),
                    status,
                    message: format!(
                        "{}; approving needs credentials that may approve for {KUBELET_SERVING} (admin.conf may): \
                         give them with --api-kubeconfig (api_kubeconfig)",
                        reply.message()
                    ),
                }));
            }
        }
    }
    Ok(Some("it kept changing while it was being approved".into()))
}

/// Every object of a collection, a page at a time.
fn list(client: &Client, collection: &str, what: &str) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let page = match token.is_empty() {
            true => format!("{collection}?limit={PAGE}"),
            false => format!("{collection}?limit={PAGE}&continue={}", query_escape(&token)),
        };
        let reply = client.get(&page).map_err(|e| api_error(Cause::from(e)))?;
        if !reply.ok() {
            return Err(api_error(Cause::Refused {
                server: client.server().to_string(),
                action: what.to_string(),
                status: reply.status,
                message: reply.message(),
            }));
        }
        items.extend(reply.body["items"].as_array().into_iter().flatten().cloned());
        token = reply.body.pointer("/metadata/continue").and_then(Value::as_str).unwrap_or_default().to_string();
        if token.is_empty() {
            return Ok(items);
        }
    }
    Err(api_error(Cause::Refused {
        server: client.server().to_string(),
        action: what.to_string(),
        status: 200,
        message: format!("more than {} objects", PAGE * MAX_PAGES),
    }))
}

/// `s` as a URL query value: unreserved characters as they are, every other byte percent-encoded.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn api_error(cause: Cause) -> Error {
    Error::Api(Box::new(ApiError { cause, cleanup: Cleanup::default() }))
}

/// The run in one line: what was approved, what was refused and why.
fn summary(approvals: &[ApprovalReport], check_mode: bool) -> String {
    if approvals.is_empty() {
        return "no certificate signing request is pending".into();
    }
    let names = |action: &str| -> Vec<String> {
        approvals.iter().filter(|a| a.action == action).map(|a| a.name.clone()).collect()
    };
    let (yes, verb) = match check_mode {
        true => (names("would_approve"), "would approve"),
        false => (names("approved"), "approved"),
    };
    let refused: Vec<String> = approvals
        .iter()
        .filter(|a| a.action == "refused")
        .map(|a| format!("{} ({})", a.name, a.reason.unwrap_or_default()))
        .collect();
    let mut parts = Vec::new();
    if !yes.is_empty() {
        parts.push(format!("{verb} {} kubelet-serving request(s): {}", yes.len(), yes.join(", ")));
    }
    if !refused.is_empty() {
        parts.push(format!("left {} pending request(s) alone: {}", refused.len(), refused.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_are_escaped_for_the_query() {
        assert_eq!(query_escape("eyJ2Ijoi+/=x"), "eyJ2Ijoi%2B%2F%3Dx");
        assert_eq!(query_escape("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn the_summary_names_what_was_approved_and_what_was_left_and_why() {
        let report = |name: &str, action: &'static str, reason: Option<&'static str>| ApprovalReport {
            name: name.into(),
            signer_name: KUBELET_SERVING.into(),
            requester: "system:node:w1".into(),
            node: Some("w1".into()),
            sans: vec![],
            action,
            reason,
            message: String::new(),
        };
        assert_eq!(summary(&[], false), "no certificate signing request is pending");
        let all = [report("a", "approved", None), report("b", "refused", Some("ip_address"))];
        assert_eq!(
            summary(&all, false),
            "approved 1 kubelet-serving request(s): a; left 1 pending request(s) alone: b (ip_address)"
        );
    }
}
