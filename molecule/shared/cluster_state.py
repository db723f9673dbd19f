#!/usr/bin/python3
"""Run on a control-plane node (ansible.builtin.script): asks the node's apiserver, as kubeadm's admin.conf user,
what the cluster looks like and prints one JSON document the scenarios assert on:

  nodes: {NODE: {"ready": bool}}
  leaders: {"kube-controller-manager": NODE, "kube-scheduler": NODE}: who holds each leader-election Lease (its
         holderIdentity is "NODE_UUID"; None when nobody does)
  pods:  {"COMPONENT/NODE": {uid, phase, ready, started_at, restart_count, restarted_at}}
         one entry per control-plane static pod (its mirror pod in kube-system):
           uid            the mirror pod's UID: a new one means the kubelet made a new pod from a changed or
                          returned manifest (a restart through the manifest); a crash restart keeps it
           started_at     when the running container started (epoch seconds; None when not running)
           restart_count  crash restarts inside this pod
           restarted_at   the kubeadm-certs.k8s-pki.io/restartedAt annotation a static_pod restart sets
                          (epoch seconds, fraction dropped) or None
           static_uid     the static pod's own UID (the kubelet's hash of its manifest, the mirror pod's
                          kubernetes.io/config.mirror annotation): the pod UID in its processes' cgroup paths
           container_id   the running container's ID (containerd), or None
  csrs:  {NAME: {signer, requester, pending}}: every CertificateSigningRequest, pending while it has no Approved or
         Denied condition (so a scenario waits for a kubelet's request from outside the product)

  cluster_state.py NODE_IP
Prints no key material (the client key goes to a 0600 temporary file that is removed).
"""
import base64
import calendar
import json
import os
import ssl
import sys
import tempfile
import time
import urllib.request

IP = sys.argv[1]
ANNOTATION = "kubeadm-certs.k8s-pki.io/restartedAt"


def kubeconfig_user():
    # admin.conf is YAML, but kubeadm writes the three data fields one per line: no YAML parser needed on the node
    fields = {}
    with open("/etc/kubernetes/admin.conf") as f:
        for line in f:
            key, _, value = line.strip().partition(": ")
            if key in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
                fields[key] = base64.b64decode(value)
    return fields


def epoch(stamp):
    # RFC 3339 with nanoseconds ("2026-11-29T10:00:00.123456789Z"): whole seconds, as the pods' times are
    return calendar.timegm(time.strptime(stamp.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S")) if stamp else None


def get(ctx, path):
    with urllib.request.urlopen("https://%s:6443%s" % (IP, path), context=ctx, timeout=10) as r:
        return json.load(r)


def main():
    user = kubeconfig_user()
    tmp = tempfile.mkdtemp()
    try:
        cert, key = os.path.join(tmp, "c"), os.path.join(tmp, "k")
        for path, data in ((cert, user["client-certificate-data"]), (key, user["client-key-data"])):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx = ssl.create_default_context(cadata=user["certificate-authority-data"].decode())
        ctx.check_hostname = False  # the serving certificate is verified against the cluster CA; IP SANs vary
        ctx.load_cert_chain(cert, key)
        nodes = get(ctx, "/api/v1/nodes")
        pods = get(ctx, "/api/v1/namespaces/kube-system/pods?labelSelector=tier%3Dcontrol-plane")
        leases = get(ctx, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases")
        csrs = get(ctx, "/apis/certificates.k8s.io/v1/certificatesigningrequests")
    finally:
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)

    out = {"nodes": {}, "pods": {}, "leaders": {}, "csrs": {}}
    for c in csrs["items"]:
        decided = [d for d in (c.get("status") or {}).get("conditions") or [] if d["type"] in ("Approved", "Denied")]
        out["csrs"][c["metadata"]["name"]] = {
            "signer": c["spec"].get("signerName"),
            "requester": c["spec"].get("username"),
            "pending": not decided,
        }
    for lease in leases["items"]:
        name = lease["metadata"]["name"]
        if name in ("kube-controller-manager", "kube-scheduler"):
            holder = lease["spec"].get("holderIdentity") or ""
            out["leaders"][name] = holder.rsplit("_", 1)[0] or None
    for n in nodes["items"]:
        ready = [c for c in n["status"].get("conditions", []) if c["type"] == "Ready"]
        out["nodes"][n["metadata"]["name"]] = {"ready": bool(ready) and ready[0]["status"] == "True"}
    for p in pods["items"]:
        component = p["metadata"].get("labels", {}).get("component")
        statuses = p["status"].get("containerStatuses") or [{}]
        running = statuses[0].get("state", {}).get("running")
        ready = [c for c in p["status"].get("conditions", []) if c["type"] == "Ready"]
        out["pods"]["%s/%s" % (component, p["spec"].get("nodeName"))] = {
            "uid": p["metadata"]["uid"],
            "phase": p["status"].get("phase"),
            "ready": bool(ready) and ready[0]["status"] == "True",
            "started_at": epoch(running.get("startedAt")) if running else None,
            "restart_count": statuses[0].get("restartCount", 0),
            "restarted_at": epoch((p["metadata"].get("annotations") or {}).get(ANNOTATION)),
            "static_uid": (p["metadata"].get("annotations") or {}).get("kubernetes.io/config.mirror"),
            "container_id": (statuses[0].get("containerID") or "").partition("://")[2] or None,
        }
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
