#!/usr/bin/python3
"""Run on a Molecule node (ansible.builtin.script): prints one JSON document describing what the node's PKI holds
and what its running control plane serves and accepts. The scenarios' verify steps assert on it.

  certs:    {NAME: {serial, not_after, subject, issuer_ok}}  every kubeadm certificate present (kubeconfig ones
            from the embedded client-certificate-data), issuer_ok = `openssl verify` against its CA file
  serving:  {apiserver|etcd-server|etcd-peer: {served_serial, on_disk_serial}}  what a TLS handshake presents
  accepted: {NAME: bool}  the running apiserver/etcd authenticated a request made with that client certificate

Usage: node_report.py NODE_IP                 on the node
       node_report.py --offline ROOT          certs only, from ROOT/etc/kubernetes (the controller's copies)
Prints no key material (keys are only passed to openssl/curl as file names).
"""
import base64
import json
import os
import subprocess
import sys
import tempfile

OFFLINE = sys.argv[1] == "--offline"
ROOT = sys.argv[2] if OFFLINE else "/"
PKI = os.path.join(ROOT, "etc/kubernetes/pki")
KCONF = os.path.join(ROOT, "etc/kubernetes")
IP = None if OFFLINE else sys.argv[1]
CERTS = {
    "apiserver": ("apiserver", "ca"),
    "apiserver-kubelet-client": ("apiserver-kubelet-client", "ca"),
    "apiserver-etcd-client": ("apiserver-etcd-client", "etcd/ca"),
    "front-proxy-client": ("front-proxy-client", "front-proxy-ca"),
    "etcd-server": ("etcd/server", "etcd/ca"),
    "etcd-peer": ("etcd/peer", "etcd/ca"),
    "etcd-healthcheck-client": ("etcd/healthcheck-client", "etcd/ca"),
}
KUBECONFIGS = ["admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"]
tmp = tempfile.mkdtemp()


def run(argv, stdin=None):
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def x509_fields(pem_path):
    rc, out, _ = run(["openssl", "x509", "-in", pem_path, "-noout", "-serial", "-enddate", "-subject",
                      "-nameopt", "RFC2253"])
    if rc != 0:
        return None
    f = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {"serial": f["serial"].upper(), "not_after": f["notAfter"], "subject": f["subject"]}


def verify(cert, ca):
    rc, out, err = run(["openssl", "verify", "-CAfile", ca, cert])
    return rc == 0, (out + err).strip()


def kubeconfig_user(path):
    """(cert_file, key_file) written to tmp from the kubeconfig's first user, or None."""
    import re
    text = open(path).read()
    cert = re.search(r"client-certificate-data:\s*(\S+)", text)
    key = re.search(r"client-key-data:\s*(\S+)", text)
    if not cert or not key:
        return None
    name = os.path.basename(path)
    c, k = os.path.join(tmp, name + ".crt"), os.path.join(tmp, name + ".key")
    with open(c, "wb") as f:
        f.write(base64.b64decode(cert.group(1)))
    with os.fdopen(os.open(k, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
        f.write(base64.b64decode(key.group(1)))
    return c, k


def served_serial(port, client=None):
    argv = ["openssl", "s_client", "-connect", "%s:%d" % (IP, port), "-servername", IP]
    if client:
        argv += ["-cert", client[0], "-key", client[1]]
    rc, out, _ = run(argv, stdin=b"")
    pem = out[out.find("-----BEGIN CERTIFICATE-----"):out.find("-----END CERTIFICATE-----") + 25]
    if "BEGIN" not in pem:
        return None
    path = os.path.join(tmp, "served-%d.crt" % port)
    open(path, "w").write(pem + "\n")
    return x509_fields(path)["serial"]


def http_code(url, cacert, cert, key, headers=()):
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--cacert", cacert,
            "--cert", cert, "--key", key, url]
    for h in headers:
        argv += ["-H", h]
    return run(argv)[1]


report = {"certs": {}, "serving": {}, "accepted": {}}
files = {}
for name, (base, ca) in CERTS.items():
    cert = os.path.join(PKI, base + ".crt")
    if not os.path.exists(cert):
        continue
    files[name] = (cert, os.path.join(PKI, base + ".key"))
    fields = x509_fields(cert)
    fields["issuer_ok"], fields["verify"] = verify(cert, os.path.join(PKI, ca + ".crt"))
    report["certs"][name] = fields
for name in KUBECONFIGS:
    path = os.path.join(KCONF, name)
    if not os.path.exists(path):
        continue
    pair = kubeconfig_user(path)
    if pair is None:
        continue
    files[name] = pair
    fields = x509_fields(pair[0])
    fields["issuer_ok"], fields["verify"] = verify(pair[0], os.path.join(PKI, "ca.crt"))
    report["certs"][name] = fields

if OFFLINE:
    del report["serving"], report["accepted"]
for name, port, client in () if OFFLINE else (("apiserver", 6443, None), ("etcd-server", 2379, files.get("etcd-healthcheck-client")),
                           ("etcd-peer", 2380, files.get("etcd-peer"))):
    if name in report["certs"]:
        report["serving"][name] = {"served_serial": served_serial(port, client),
                                   "on_disk_serial": report["certs"][name]["serial"]}

api = "https://%s:6443/apis" % IP
if OFFLINE:
    files = {}  # discovery: 200 for any authenticated user, 403 for anonymous
ca = os.path.join(PKI, "ca.crt")
for name in ("apiserver-kubelet-client",) + tuple(KUBECONFIGS):
    if name in files:
        report["accepted"][name] = http_code(api, ca, *files[name]) == "200"
if "front-proxy-client" in files:
    # the aggregation layer's identity: the apiserver trusts X-Remote-User only from a front-proxy-client cert
    report["accepted"]["front-proxy-client"] = http_code(
        api, ca, *files["front-proxy-client"], headers=("X-Remote-User: molecule-probe",)) == "200"
for name in ("apiserver-etcd-client", "etcd-healthcheck-client"):
    if name in files:
        rc, out, _ = run(["curl", "-s", "--max-time", "5", "--cacert", os.path.join(PKI, "etcd/ca.crt"),
                          "--cert", files[name][0], "--key", files[name][1], "https://%s:2379/health" % IP])
        report["accepted"][name] = '"health":"true"' in out
for f in os.listdir(tmp):
    os.unlink(os.path.join(tmp, f))
os.rmdir(tmp)
print(json.dumps(report, indent=1, sort_keys=True))
