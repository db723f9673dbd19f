//! The certificates API as the engine's [`Signer`]: create every request first, approve them when asked
//! to, then wait for all (polling, within `api_timeout`) and hand the certificates to the engine, which
//! checks them and commits. When anything fails, the requests this run created are deleted, or named in
//! the error when they cannot be.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use super::csr::{self, State};
use super::error::{ApiError, Cause, Cleanup};
use super::policy;
use crate::engine::plan::Desired;
use crate::engine::signer::{IssueRequest, Signer};
use crate::error::Result;
use crate::inventory::CertSpec;
use crate::kube::client::{Client, Reply};
use crate::pki::Ca;
use crate::pki::cert::Certificate;
use crate::report::Outcome;
use crate::request::ApiOptions;

/// How often a pending request is read again. kube-controller-manager signs within a second of approval.
const POLL: Duration = Duration::from_secs(1);
/// An issued certificate whose NotAfter is this far from the one asked for is worth a warning (signers
/// backdate NotBefore by minutes; Kubernetes before 1.22 ignores `expirationSeconds`).
const VALIDITY_SLACK: chrono::Duration = chrono::Duration::minutes(15);

struct Created {
    name: String,
    certificate: &'static str,
    signer: String,
}

pub struct ApiSigner {
    client: Client,
    opts: ApiOptions,
    created: Vec<Created>,
    warnings: Vec<String>,
    finished: bool,
}

impl ApiSigner {
    pub fn new(client: Client, opts: ApiOptions) -> ApiSigner {
        ApiSigner { client, opts, created: Vec::new(), warnings: Vec::new(), finished: false }
    }

    fn say(&self, msg: &str) {
        if self.opts.announce {
            eprintln!("[certs] {msg}");
        }
    }

    fn refused(&self, action: String, reply: &Reply) -> Cause {
        Cause::Refused {
            server: self.client.server().to_string(),
            action,
            status: reply.status,
            message: reply.message(),
        }
    }

    fn create(&mut self, r: &IssueRequest<'_>) -> Result<Value, Cause> {
        let certificate = r.spec.name;
        let request = |problem: String| Cause::Request { certificate: certificate.into(), problem };
        let orgs = policy::organizations(&r.desired.subject);
        let signer = policy::signer_name(r.spec, &orgs, self.opts.signer_name.as_deref()).map_err(request)?;
        let pem = csr::request_pem(r.desired, r.key).map_err(request)?;
        let usages = policy::usages(r.spec, r.desired.key_algorithm);
        let obj = csr::object(r.spec, &pem, &signer, &usages, r.desired.not_after, Utc::now());
        let reply = self.client.post(csr::COLLECTION, &obj)?;
        if !reply.ok() {
            return Err(self.refused(format!("create a certificate signing request for {certificate}"), &reply));
        }
        let Some(name) = csr::name(&reply.body).map(str::to_string) else {
            return Err(Cause::BadAnswer {
                csr: "(no name)".into(),
                certificate: certificate.into(),
                problem: "the apiserver answered the creation without the object's name".into(),
            });
        };
        self.say(&format!("Certificate request \"{name}\" created"));
        self.created.push(Created { name, certificate, signer });
        Ok(reply.body)
    }

    fn fetch(&self, c: &Created) -> Result<Value, Cause> {
        let reply = self.client.get(&csr::path(&c.name))?;
        match reply.status {
            404 => Err(Cause::Vanished { csr: c.name.clone(), certificate: c.certificate.into() }),
            _ if reply.ok() => Ok(reply.body),
            _ => Err(self.refused(format!("read {}", c.name), &reply)),
        }
    }

    fn state(&self, c: &Created, obj: &Value) -> Result<State, Cause> {
        let state = csr::state(obj).map_err(|problem| self.bad_answer(c, problem))?;
        match state {
            State::Denied(reason) => {
                Err(Cause::Denied { csr: c.name.clone(), certificate: c.certificate.into(), reason })
            }
            State::Failed(reason) => {
                Err(Cause::Failed { csr: c.name.clone(), certificate: c.certificate.into(), reason })
            }
            other => Ok(other),
        }
    }

    fn bad_answer(&self, c: &Created, problem: String) -> Cause {
        Cause::BadAnswer { csr: c.name.clone(), certificate: c.certificate.into(), problem }
    }

    /// As `kubectl certificate approve`: PUT the object with an Approved condition to `.../approval`,
    /// re-reading it when someone else changed it meanwhile.
    fn approve(&self, c: &Created, mut current: Value) -> Result<(), Cause> {
        for _ in 0..5 {
            if self.state(c, &current)? != State::Pending {
                return Ok(());
            }
            let reply = self.client.put(&format!("{}/approval", csr::path(&c.name)), &csr::with_approval(&current))?;
            if reply.ok() {
                self.say(&format!("Certificate request \"{}\" approved", c.name));
                return Ok(());
            }
            if reply.status != 409 {
                return Err(self.refused(format!("approve {}", c.name), &reply));
            }
            current = self.fetch(c)?;
        }
        Err(self.bad_answer(c, "it kept changing while being approved (HTTP 409 five times)".into()))
    }

    /// The DER certificate of an issued request; a warning when its validity is not what was asked.
    fn accept(&mut self, r: &IssueRequest<'_>, index: usize, pem: &[u8]) -> Result<Vec<u8>, Cause> {
        let c = &self.created[index];
        let der = csr::leaf_der(pem).map_err(|p| self.bad_answer(c, p))?;
        let cert = Certificate::from_der(r.path, &der)
            .map_err(|e| self.bad_answer(c, format!("status.certificate does not parse: {e}")))?;
        let asked = r.desired.not_after;
        if (cert.not_after - asked).abs() > VALIDITY_SLACK {
            let fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            self.warnings.push(format!(
                "{}: {} issued it until {}, not the {} asked for (expirationSeconds needs Kubernetes 1.22+, \
                 and signers cap it: kube-controller-manager at --cluster-signing-duration)",
                r.spec.name,
                c.signer,
                fmt(cert.not_after),
                fmt(asked)
            ));
        }
        Ok(der)
    }

    fn run(&mut self, batch: &[IssueRequest<'_>]) -> Result<Vec<Vec<u8>>, Cause> {
        let timeout = Duration::from_secs(self.opts.timeout.seconds().max(0) as u64);
        let deadline = Instant::now() + timeout;
        let mut objects = Vec::new();
        for r in batch {
            objects.push(self.create(r)?);
        }
        if self.opts.approve {
            for (c, obj) in self.created.iter().zip(objects) {
                self.approve(c, obj)?;
            }
        } else {
            let names: Vec<&str> = self.created.iter().map(|c| c.name.as_str()).collect();
            self.say(&format!(
                "Waiting up to {} for approval (kubectl certificate approve {}) and issuance",
                self.opts.timeout,
                names.join(" ")
            ));
        }
        let mut issued: Vec<Option<Vec<u8>>> = vec![None; batch.len()];
        loop {
            let mut waiting = Vec::new();
            for (i, r) in batch.iter().enumerate() {
                if issued[i].is_some() {
                    continue;
                }
                let c = &self.created[i];
                // an apiserver restarting or overloaded while we wait is waited out, within the deadline
                let obj = match self.fetch(c) {
                    Ok(obj) => obj,
                    Err(e) if transient(&e) => {
                        waiting.push(format!("{} ({}): {e}", c.name, c.certificate));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                match self.state(c, &obj)? {
                    State::Issued(pem) => issued[i] = Some(self.accept(r, i, &pem)?),
                    State::Approved => waiting.push(format!(
                        "{} ({}) is approved but not issued: {}",
                        c.name,
                        c.certificate,
                        signer_hint(&c.signer)
                    )),
                    _ => waiting.push(format!(
                        "{} ({}) is not approved (kubectl certificate approve {}, or approve: true)",
                        c.name, c.certificate, c.name
                    )),
                }
            }
            if waiting.is_empty() {
                return Ok(issued.into_iter().map(|d| d.expect("every request issued")).collect());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Cause::Timeout { waited: self.opts.timeout.to_string(), pending: waiting.join("; ") });
            }
            std::thread::sleep(POLL.min(deadline - now));
        }
    }

    /// Deletes every request this run created. After one failure to reach the apiserver the rest are
    /// not tried: they are named instead.
    fn cleanup(&mut self) -> Cleanup {
        let mut done = Cleanup::default();
        let mut unreachable: Option<String> = None;
        for c in std::mem::take(&mut self.created) {
            if let Some(why) = &unreachable {
                done.left.push((c.name, why.clone()));
                continue;
            }
            match self.client.delete(&csr::path(&c.name)) {
                Ok(r) if r.ok() || r.status == 404 => done.deleted.push(c.name),
                Ok(r) => done.left.push((c.name, format!("HTTP {}: {}", r.status, r.message()))),
                Err(e) => {
                    unreachable = Some(e.to_string());
                    done.left.push((c.name, e.to_string()));
                }
            }
        }
        done
    }
}

/// Reading again may succeed: the apiserver was unreachable, overloaded (429) or failing (5xx). Creating
/// and approving are not retried: a second POST with generateName would make a second request.
fn transient(e: &Cause) -> bool {
    match e {
        Cause::Unreachable { .. } => true,
        Cause::Refused { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

fn signer_hint(signer: &str) -> String {
    if signer == policy::KUBE_APISERVER_CLIENT {
        format!(
            "{signer} is kube-controller-manager's, which signs only with --cluster-signing-cert-file and \
             --cluster-signing-key-file (or --cluster-signing-kube-apiserver-client-*)"
        )
    } else {
        format!("is the signer {signer} running?")
    }
}

impl Signer for ApiSigner {
    fn cannot_issue(&self, spec: &'static CertSpec, desired: &Desired, _ca: &Ca) -> Option<String> {
        let orgs = policy::organizations(&desired.subject);
        policy::signer_name(spec, &orgs, self.opts.signer_name.as_deref()).err()
    }

    fn issue(&mut self, batch: &[IssueRequest<'_>]) -> Result<Vec<Vec<u8>>> {
        match self.run(batch) {
            Ok(ders) => Ok(ders),
            Err(cause) => {
                let cleanup = self.cleanup();
                Err(Box::new(ApiError { cause, cleanup }).into())
            }
        }
    }

    fn finish(&mut self, out: &mut Outcome) {
        self.finished = true;
        out.csr_names = self.created.iter().map(|c| c.name.clone()).collect();
        out.warnings.append(&mut self.warnings);
    }
}

/// The engine failed after the certificates were issued (a certificate it would not install, a write
/// that failed): the issued requests are useless without their keys, which were never written.
impl Drop for ApiSigner {
    fn drop(&mut self) {
        if self.finished || self.created.is_empty() {
            return;
        }
        let cleanup = self.cleanup();
        if !cleanup.deleted.is_empty() || !cleanup.left.is_empty() {
            self.say(&format!("renewal failed{}", cleanup));
        }
    }
}
