//! Nodes of one cluster take turns restarting through the cluster's own coordination: a
//! `coordination.k8s.io/v1` Lease in `kube-system`, taken and released through the apiserver the way
//! kube-controller-manager's leader election does (client-go `leaderelection/resourcelock`). Every write
//! carries the `resourceVersion` read: a conflict means another node wrote first, so we read again and
//! wait. A holder that stopped renewing (`renewTime + leaseDurationSeconds` past) is taken over. The
//! lease is renewed in the background while held, and released (holder cleared) when done.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::kube::client::{Client, Reply};
use crate::request::LeaseOptions;

pub const NAMESPACE: &str = "kube-system";
/// How often a waiting node asks again.
const POLL: Duration = Duration::from_millis(500);

fn path(name: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{name}")
}

/// `MicroTime` as the apiserver writes it.
fn micro(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Who holds the lease and until when, as read.
#[derive(Debug, PartialEq, Eq)]
pub enum Holder {
    Free,
    Ours,
    Other { who: String, until: DateTime<Utc> },
    Expired { who: String },
}

/// The state of a Lease object for `identity` at `now`.
pub fn holder(lease: &Value, identity: &str, now: DateTime<Utc>) -> Holder {
    let spec = lease.get("spec").cloned().unwrap_or(Value::Null);
    let who = spec.get("holderIdentity").and_then(Value::as_str).unwrap_or_default();
    if who.is_empty() {
        return Holder::Free;
    }
    if who == identity {
        return Holder::Ours;
    }
    let who: String = who.chars().take(253).collect();
    let renewed = ["renewTime", "acquireTime"]
        .iter()
        .find_map(|k| spec.get(*k).and_then(Value::as_str))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let seconds = spec.get("leaseDurationSeconds").and_then(Value::as_i64).unwrap_or(0).clamp(0, 366 * 86400);
    match renewed {
        Some(t) if t + chrono::Duration::seconds(seconds) > now => {
            Holder::Other { who, until: t + chrono::Duration::seconds(seconds) }
        }
        // no time to go by, or past: nobody renews it
        _ => Holder::Expired { who },
    }
}

/// The Lease object held by `identity` from `now`, on top of what was read (its `resourceVersion`).
fn held_by(opts: &LeaseOptions, read: Option<&Value>, now: DateTime<Utc>) -> Value {
    let transitions = read.and_then(|l| l.pointer("/spec/leaseTransitions")).and_then(Value::as_i64).unwrap_or(0);
    let previous = read.and_then(|l| l.pointer("/spec/holderIdentity")).and_then(Value::as_str).unwrap_or_default();
    let mut lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": opts.name, "namespace": NAMESPACE},
        "spec": {
            "holderIdentity": opts.identity,
            "leaseDurationSeconds": opts.duration.seconds().max(1),
            "acquireTime": micro(now),
            "renewTime": micro(now),
            "leaseTransitions": if previous.is_empty() || previous == opts.identity { transitions } else { transitions + 1 },
        }
    });
    if let Some(rv) = read.and_then(|l| l.pointer("/metadata/resourceVersion")).cloned() {
        lease["metadata"]["resourceVersion"] = rv;
    }
    lease
}

/// One try: what stands in the way, or `Ok(previous holder)` when taken.
enum Try {
    Taken(Option<String>),
    Wait(String),
}

fn refused(client: &Client, name: &str, action: &str, r: &Reply) -> Error {
    Error::Restart(format!(
        "lease {NAMESPACE}/{name}: the apiserver at {} refused to {action}: HTTP {}: {}; nothing was restarted \
         (the kubeconfig's user needs get, create and update on leases in {NAMESPACE})",
        client.server(),
        r.status,
        r.message()
    ))
}

fn try_take(client: &Client, opts: &LeaseOptions) -> Result<Try> {
    let p = path(&opts.name);
    let read = match client.get(&p) {
        // the apiserver may be the one another node is restarting: wait for it
        Err(e) => return Ok(Try::Wait(e.to_string())),
        Ok(r) if r.status == 404 => None,
        Ok(r) if r.ok() => Some(r.body),
        Ok(r) if r.status >= 500 => return Ok(Try::Wait(format!("HTTP {}: {}", r.status, r.message()))),
        Ok(r) => return Err(refused(client, &opts.name, "read it", &r)),
    };
    let now = Utc::now();
    let previous = match read.as_ref().map(|l| holder(l, &opts.identity, now)) {
        None | Some(Holder::Free) | Some(Holder::Ours) => None,
        Some(Holder::Expired { who }) => Some(who),
        Some(Holder::Other { who, until }) => {
            return Ok(Try::Wait(format!("held by {who} until {} unless renewed", micro(until))));
        }
    };
    let body = held_by(opts, read.as_ref(), now);
    let sent = match &read {
        None => client.post(&format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"), &body),
        Some(_) => client.put(&p, &body),
    };
    match sent {
        Err(e) => Ok(Try::Wait(e.to_string())),
        Ok(r) if r.ok() => Ok(Try::Taken(previous)),
        // 409: created or written by another node since we read
        Ok(r) if r.status == 409 || r.status >= 500 => Ok(Try::Wait(format!("HTTP {}: {}", r.status, r.message()))),
        Ok(r) => Err(refused(client, &opts.name, "write it", &r)),
    }
}

/// The lease while held: renewed in the background until [`Held::release`].
pub struct Held {
    client: Client,
    opts: LeaseOptions,
    pub acquired: DateTime<Utc>,
    pub waited: Duration,
    pub took_over_from: Option<String>,
    renewer: Option<(Sender<()>, JoinHandle<Vec<String>>)>,
}

/// Takes the lease, waiting up to `opts.timeout` while another node holds it.
pub fn take(client: &Client, opts: &LeaseOptions) -> Result<Held> {
    let start = Instant::now();
    let timeout = Duration::from_secs(opts.timeout.seconds().max(0) as u64);
    loop {
        match try_take(client, opts)? {
            Try::Taken(previous) => {
                let mut held = Held {
                    client: client.clone(),
                    opts: opts.clone(),
                    acquired: Utc::now(),
                    waited: start.elapsed(),
                    took_over_from: previous,
                    renewer: None,
                };
                held.renewer = Some(renew_in_background(client.clone(), opts.clone()));
                return Ok(held);
            }
            Try::Wait(why) if start.elapsed() >= timeout => {
                return Err(Error::Restart(format!(
                    "lease {NAMESPACE}/{} not taken in {}s (--lease-timeout): {why}; nothing was restarted; \
                     see `kubectl -n {NAMESPACE} get lease {} -o yaml`",
                    opts.name,
                    start.elapsed().as_secs(),
                    opts.name
                )));
            }
            Try::Wait(_) => std::thread::sleep(POLL),
        }
    }
}

/// Writes `renewTime` every third of the lease's duration; returns what went wrong.
fn renew_in_background(client: Client, opts: LeaseOptions) -> (Sender<()>, JoinHandle<Vec<String>>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let every = Duration::from_secs((opts.duration.seconds().max(3) / 3) as u64);
    let handle = std::thread::spawn(move || {
        let mut problems = Vec::new();
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
            if let Err(e) = renew(&client, &opts) {
                problems.push(e);
            }
        }
        problems
    });
    (stop, handle)
}

fn renew(client: &Client, opts: &LeaseOptions) -> std::result::Result<(), String> {
    let p = path(&opts.name);
    let read = client.get(&p).map_err(|e| e.to_string())?;
    if !read.ok() {
        return Err(format!("renewing lease {}: HTTP {}: {}", opts.name, read.status, read.message()));
    }
    let mut lease = read.body;
    if holder(&lease, &opts.identity, Utc::now()) != Holder::Ours {
        return Err(format!("lease {} was taken by another holder while restarting", opts.name));
    }
    lease["spec"]["renewTime"] = json!(micro(Utc::now()));
    match client.put(&p, &lease) {
        Ok(r) if r.ok() => Ok(()),
        Ok(r) => Err(format!("renewing lease {}: HTTP {}: {}", opts.name, r.status, r.message())),
        Err(e) => Err(e.to_string()),
    }
}

impl Held {
    /// Stops renewing and clears the holder (when still ours); warnings for what went wrong.
    pub fn release(mut self) -> (DateTime<Utc>, Vec<String>) {
        let mut warnings = self.stop_renewing();
        let p = path(&self.opts.name);
        let mut last = String::new();
        for _ in 0..10 {
            match self.clear(&p) {
                Ok(()) => return (Utc::now(), warnings),
                Err(e) => last = e,
            }
            std::thread::sleep(POLL);
        }
        warnings.push(format!(
            "could not release lease {NAMESPACE}/{} ({last}): others wait until it expires; or run \
             `kubectl -n {NAMESPACE} delete lease {}`",
            self.opts.name, self.opts.name
        ));
        (Utc::now(), warnings)
    }

    fn stop_renewing(&mut self) -> Vec<String> {
        match self.renewer.take() {
            Some((stop, handle)) => {
                let _ = stop.send(());
                handle.join().unwrap_or_default()
            }
            None => vec![],
        }
    }

    fn clear(&self, p: &str) -> std::result::Result<(), String> {
        let read = self.client.get(p).map_err(|e| e.to_string())?;
        if !read.ok() {
            return Err(format!("HTTP {}: {}", read.status, read.message()));
        }
        let mut lease = read.body;
        if holder(&lease, &self.opts.identity, Utc::now()) != Holder::Ours {
            return Ok(()); // taken over already: not ours to clear
        }
        if let Some(spec) = lease.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("holderIdentity");
            spec.insert("renewTime".into(), json!(micro(Utc::now())));
        }
        match self.client.put(p, &lease) {
            Ok(r) if r.ok() => Ok(()),
            Ok(r) => Err(format!("HTTP {}: {}", r.status, r.message())),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // a path that did not release (an early return): stop the renewing thread; the lease expires
        let _ = self.stop_renewing();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: &str, seconds: i64) -> Value {
        json!({"spec": {"holderIdentity": holder, "renewTime": renewed, "leaseDurationSeconds": seconds}})
    }

    #[test]
    fn a_lease_is_free_ours_held_or_expired_by_its_renew_time_and_duration() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(holder(&json!({"spec": {}}), "cp1", now), Holder::Free);
        assert_eq!(holder(&lease("cp1", "2026-01-01T11:59:00.000000Z", 900), "cp1", now), Holder::Ours);
        let until = DateTime::parse_from_rfc3339("2026-01-01T12:14:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(
            holder(&lease("cp2", "2026-01-01T11:59:00.000000Z", 900), "cp1", now),
            Holder::Other { who: "cp2".into(), until }
        );
        assert_eq!(
            holder(&lease("cp2", "2026-01-01T11:00:00.000000Z", 900), "cp1", now),
            Holder::Expired { who: "cp2".into() }
        );
        // a holder with no time to go by never blocks
        assert_eq!(
            holder(&json!({"spec": {"holderIdentity": "cp2"}}), "cp1", now),
            Holder::Expired { who: "cp2".into() }
        );
    }
}
