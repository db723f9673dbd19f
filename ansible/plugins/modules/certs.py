#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0), or at your option the
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
#
# This file alone is offered under the GPL too, the licence of Ansible's own modules, whose header ansible-test's
# validate-modules asks every module for: so the collection needs no sanity ignore file. It holds documentation
# only; the rest of the collection, and the kubeadm-certs binary that is the module, are Apache-2.0.
#
# Documentation only. The module itself is the kubeadm-certs binary, built per architecture into
# plugins/modules/certs_x86_64 and plugins/modules/certs_aarch64 by `make collection`; the action plugin
# plugins/action/certs.py picks one by the target's `uname -sm` and runs it as a binary module.

from __future__ import annotations

DOCUMENTATION = r"""
module: certs
short_description: Check, renew, re-key and re-sign the certificates of a kubeadm control-plane node
version_added: 1.0.0
description:
  - Reads the certificates kubeadm made on a control-plane node (the PEM pairs under O(cert_dir) and the client
    certificates embedded in the kubeconfig files under O(kubeconfig_dir)) and reports their expiry the way
    C(kubeadm certs check-expiration) does (O(state=check)).
  - Renews the certificates that are due with the CA on the node, or through the Kubernetes certificates API
    (O(state=renew)), keeping subject, SANs, key usages and issuer from the existing certificate (kubeadm's rule)
    and writing all files of one run transactionally.
  - Renews a CA certificate with its own key when named (O(state=renew) with O(certificates=[ca]), V(etcd-ca),
    V(front-proxy-ca)); every certificate it issued stays valid, and the kubeconfigs embedding it follow in the same
    transaction. O(ca_cert) installs the CA certificate another node renewed instead.
  - Writes a CSR and a new key per certificate for an external CA (O(state=csr), kubeadm's C(--csr-only) layout),
    and installs the certificates that CA signed after validating each one (O(state=install)).
  - The module is a static binary (C(kubeadm-certs)) that needs no Python on the target. The collection ships it
    for Linux C(x86_64) and C(aarch64); an action plugin chooses the right one from the target's C(uname -sm)
    and fails with a clear message on any other platform.
  - Renews the kubelet's self-signed serving certificate, which nothing else renews (O(state=renew) with
    O(certificates=[kubelet-serving])), and approves the kubelets' requests for serving certificates issued by the
    cluster (C(serverTLSBootstrap)) when each asks for exactly its own node's names and addresses (O(state=approve)).
  - Finds the control-plane components running on the node in C(/proc) (no container tooling), says which use an
    older certificate than the one on disk (RV(components), RV(restart)) and restarts them (O(state=restart)).
  - The same binary is a command line tool; see the collection README for C(kubeadm-certs
    check|renew|csr|install|sign|approve|restart).
author:
  - kubeadm-certs maintainers (@kubeadm-certs)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: Decides and reports what would be renewed, written or installed (C(changed), RV(diff)) and writes nothing.
  diff_mode:
    support: full
    details: One RV(diff) entry per changed certificate with serial, validity, subject and SANs; never key material.
  platform:
    platforms: posix
    details: Linux on C(x86_64) or C(aarch64).
  action:
    support: full
    details: The action plugin selects the binary for the target's architecture.
  async:
    support: partial
    details: Works with C(async), which needs Python on the target for Ansible's async wrapper.
  bypass_host_loop:
    support: none
options:
  state:
    description:
      - V(check) reports every certificate and CA with its expiry and changes nothing.
      - V(renew) renews the certificates that are due (see O(renew_before), O(force), O(extra_sans)), and the CAs
        O(certificates) names (never part of V(all)).
      - V(csr) writes C(NAME.csr) and C(NAME.key) into O(csr_dir) for each selected certificate; an existing
        matching CSR and key are kept unless O(force).
      - V(install) takes C(NAME.key) from O(csr_dir) and the signed C(NAME.crt) from O(signed_dir), checks that
        every certificate matches its key, chains to the CA certificate on the node and keeps the subject and SANs
        of the certificate it replaces, and only then installs all of them (PEM pairs into O(cert_dir), client
        certificates embedded into the kubeconfig files). Nothing is replaced unless every certificate validates.
      - V(restart) restarts the control-plane components in O(components) (default every stale one, see
        RV(components)) by O(method), one at a time (etcd first), and waits until each runs again, answers healthy
        (etcd C(/health), kube-apiserver C(/readyz) verified against the cluster CA, kube-controller-manager and
        kube-scheduler C(/healthz)) and uses the certificates on disk. In check mode it says what it would restart.
      - V(sign) with O(certificates=[kubelet-client]) signs, on a control-plane node, a worker's C(kubelet-client.csr)
        in O(csr_dir) with C(ca.key) there, for O(node_name) (from the inventory, never from the CSR), and writes
        C(kubelet-client.crt) beside it. The CSR is untrusted; it is refused, naming why, unless it asks for exactly
        C(O=system:nodes, CN=system:node:NODE) with no extensions and its signature verifies with its own key.
      - V(approve) approves, through the API server (O(api_kubeconfig)), the pending CertificateSigningRequests of
        the signer C(kubernetes.io/kubelet-serving) that a node's kubelet made for exactly its own names and
        addresses (C(serverTLSBootstrap)), and leaves every other pending request alone, each reported with the
        reason it was refused (RV(approvals)). It runs anywhere the credentials reach the API server (a
        control-plane node, with C(admin.conf)); the cluster's signer (kube-controller-manager) then issues what
        was approved. Nothing on the node changes. In check mode it judges and approves nothing.
      - V(rotate) takes this node's step of a rotation to a new CA (a new key) for the one CA O(certificates) names,
        the step O(phase) says; where the node stands is read off its files each time (RV(ca_rotation)), so a step
        already done changes nothing and a step stopped anywhere is finished by running it again. The playbook
        C(k8s_pki.kubeadm.rotate_ca) runs the steps node by node, phase by phase (docs/ca-rotation.md).
    type: str
    choices: [check, renew, csr, install, restart, sign, approve, rotate]
    default: check
  certificates:
    description:
      - The entries to act on, by kubeadm's names C(admin.conf), C(super-admin.conf), C(controller-manager.conf),
        C(scheduler.conf), C(apiserver), C(apiserver-kubelet-client), C(apiserver-etcd-client),
        C(front-proxy-client), C(etcd-server), C(etcd-peer), C(etcd-healthcheck-client), or V(all).
      - V(all) means every entry present on the node. An entry whose files are absent (external etcd, no
        C(super-admin.conf) on a follower node) is reported as missing, never an error, unless it is named here.
      - O(state=renew) also takes the CAs V(ca), V(etcd-ca) and V(front-proxy-ca), alone or beside certificates; V(all)
        never includes one. A CA is due when its residual time is below O(renew_before) (default V(1y) for a CA) or
        with O(force). Its new certificate keeps the key, the subject (as encoded), the subject key identifier and
        every extension of the old one, with a new random serial and a validity of O(validity) (default V(10y), or
        C(caCertificateValidityPeriod) of O(config)) from now (less five minutes, for clock skew); every certificate
        the old one issued verifies under it, which is checked before anything is written. The kubeconfigs in
        O(kubeconfig_dir) whose C(certificate-authority-data) holds the old V(ca) certificate (C(admin.conf),
        C(super-admin.conf), C(controller-manager.conf), C(scheduler.conf), C(kubelet.conf)) get the new one in the
        same transaction; a cluster that names a CA file instead is left as it is and named in RV(warnings). A
        certificate renewed in the same run is signed and checked as the new CA's and may live as long as it. A CA
        whose key is not on the node (external CA) fails the task, naming the key file; install the certificate its
        owner renewed with O(ca_cert). RV(restart) then names the components that read the CA only at start; they
        keep verifying with the old certificate (same key) until it expires
        (RV(certificate_authorities[].previous_not_after)), and must restart before then.
      - O(state=renew) with V([kubelet-client]) alone repairs the kubelet's client certificate on a node that holds
        C(ca.key) (kubeadm's documented fix, done safely) when it is missing, expired, within O(renew_before) or
        O(force)d. A new key (ECDSA P-256 unless O(key_algorithm) says otherwise) and a certificate for
        C(O=system:nodes, CN=system:node:NAME) are written as the kubelet writes its rotations (a dated
        C(pki/kubelet-client-DATE.pem) under O(kubelet_dir), the C(kubelet-client-current.pem) link swapped to it),
        C(kubelet.conf) is pointed at the link instead of embedded data, the kubelet is restarted (O(restart_kubelet))
        and the task waits until its C(/healthz) answers and, where C(admin.conf) is, until the apiserver shows its
        node Lease renewed and the node Ready. Check mode and diff show what would change.
      - On a worker (no C(ca.key)) the same repair takes three tasks, and the role M(k8s_pki.kubeadm.kubelet_client)
        runs them. O(state=csr) with V([kubelet-client]) writes, when the certificate is due, C(kubelet-client.key) and
        C(kubelet-client.csr) into O(csr_dir) (RV(csrs) lists it; nothing when not due). O(state=sign) on a
        control-plane node signs it. O(state=install) with V([kubelet-client]) checks the signed C(kubelet-client.crt)
        (the CSR step's key, the node's subject, client auth, chaining to the node's C(ca.crt)), writes it as above,
        restarts the kubelet and waits until it is back, asking the apiserver as the kubelet itself.
      - O(state=renew) with V([kubelet-serving]) alone renews the kubelet's self-signed serving certificate
        (C(pki/kubelet.crt) and C(pki/kubelet.key) under O(kubelet_dir), which the kubelet makes once, valid a year,
        when its C(config.yaml) sets neither C(tlsCertFile) nor C(serverTLSBootstrap), and which kubeadm never
        renews) when it is expired, within O(renew_before), O(force)d, or its key is missing or not its own. It is
        issued as the kubelet issues it, with a new key of the old one's algorithm (unless O(key_algorithm)), the same
        SANs and usages, C(CN=HOST@TIME), signed by a throwaway CA C(CN=HOST-ca@TIME) whose certificate follows it in
        the file and whose key is never written, valid O(validity) from now (backdated an hour, as the kubelet does);
        key and certificate are written in one transaction (O(backup) keeps the old ones). Then the kubelet is
        restarted (O(restart_kubelet)) and the task waits until it is healthy, serves exactly the new certificate on
        its port, and its node is back in the cluster. A serving certificate of C(tlsCertFile) or
        C(serverTLSBootstrap), or a C(kubelet.crt) the kubelet did not make, fails the task naming what renews it.
      - O(state=approve) takes V([kubelet-serving]), its default, and nothing else.
    type: list
    elements: str
    default: [all]
  cert_dir:
    description: The PKI directory (kubeadm's C(certificatesDir)).
    type: path
    default: /etc/kubernetes/pki
  kubeconfig_dir:
    description: The directory holding C(admin.conf), C(super-admin.conf), C(controller-manager.conf) and C(scheduler.conf).
    type: path
    default: /etc/kubernetes
  config:
    description:
      - O(state=check) and O(state=renew) kubeadm's configuration file on the node (InitConfiguration and
        ClusterConfiguration documents, C(kubeadm.k8s.io/v1beta2) to C(v1beta4)), as C(kubeadm --config).
      - With C(etcd.external) the etcd certificates and C(etcd-ca) are left out of V(all), as kubeadm leaves them out.
      - C(certificateValidityPeriod) and C(encryptionAlgorithm) (v1beta4) are the defaults of O(validity) and of the
        algorithm of new keys (O(key_algorithm) V(keep) otherwise), so a renewal issues what C(kubeadm certs renew)
        would. C(apiServer.certSANs) are required SANs of C(apiserver) like O(extra_sans).
        C(caCertificateValidityPeriod) (v1beta4) is the default O(validity) of a CA named.
      - O(state=check) warns (RV(warnings)) about a certificate lacking a SAN the configuration asks for
        (C(apiServer.certSANs), C(etcd.local.serverCertSANs), C(etcd.local.peerCertSANs)).
      - O(state=check) its C(kubernetesVersion) is the control plane's version where no kube-apiserver static pod
        manifest (C(KUBECONFIG_DIR/manifests/kube-apiserver.yaml)) says it (a worker), see RV(kubernetes_version).
    type: path
  kubelet_dir:
    description:
      - O(state=check), O(certificates=[kubelet-client]) and O(certificates=[kubelet-serving]) the kubelet's directory
        (C(config.yaml), C(pki/)).
        Where it exists, RV(kubelet) reports the kubelet's client certificate (the one O(kubeconfig_dir)C(/kubelet.conf)
        uses, embedded or the file it names) and its serving certificate, and O(fail_within) covers them.
        Worker nodes need nothing else.
    type: path
    default: /var/lib/kubelet
  renew_before:
    description:
      - O(state=renew) renews a certificate whose residual time is below this duration; O(state=csr) with
        O(certificates=[kubelet-client]) writes a CSR when the kubelet's is.
      - A duration is V(90d), V(2160h), V(1y) (365 days), V(45m) or Go style V(8760h0m0s).
      - For a CA named in O(certificates) the default is V(1y) instead (a certificate a CA signs in its last year
        is cut short to the CA's expiry); a value given applies to CAs and certificates alike.
    type: str
    default: 90d
  force:
    description:
      - O(state=renew) renews every selected certificate regardless of its residual time.
      - O(state=csr) rewrites CSRs and keys that already exist.
    type: bool
    default: false
  validity:
    description:
      - Lifetime of a renewed certificate (and of what O(state=sign) signs), as a duration (see O(renew_before)).
      - It is clamped to the CA's expiry; the module then says so in RV(warnings).
      - For a CA named in O(certificates) the default is V(10y) (kubeadm's), or C(caCertificateValidityPeriod) of
        O(config). A value given with CAs and certificates in one task fails it (one of them would get the other's
        lifetime); renew the CA in a task of its own.
      - O(state=rotate) the new CA's lifetime with O(generate) (default V(10y)), or that of the certificates issued
        again with O(phase=reissue).
    type: str
    default: 365d
  extra_sans:
    description:
      - SANs the C(apiserver) certificate must carry, as V(DNS:name), V(IP:address) or a bare name or address.
      - O(state=renew) renews the C(apiserver) certificate when one of them is missing from it.
    type: list
    elements: str
    default: []
  key_algorithm:
    description:
      - The key of a renewed certificate, or of the new key O(state=csr) writes. V(keep) makes a new key of the
        same algorithm and size as the old one.
    type: str
    choices: [keep, rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384]
    default: keep
  backup:
    description:
      - Keep a timestamped copy (mode C(0600)) of every file that is replaced. Their paths are in RV(backup_files).
    type: bool
    default: false
  csr_dir:
    description:
      - Where O(state=csr) writes C(NAME.csr) and C(NAME.key), and where O(state=install) reads C(NAME.key).
      - O(state=sign) reads a worker's C(kubelet-client.csr) there and writes C(kubelet-client.crt) beside it.
      - Required when O(state=csr), O(state=install) or O(state=sign) (kubeadm 1.20 also refuses C(--csr-only) without
        C(--csr-dir)); the task fails naming O(csr_dir) when it is missing. Other states ignore it.
      - Never a directory of the PKI. O(cert_dir), its C(etcd/), O(kubeconfig_dir), or any directory a file
        of the PKI really lives in (paths compared with symbolic links and C(..) resolved) is refused, because
        C(NAME.key) there would replace a key the control plane uses (C(apiserver.key) is the apiserver's).
      - O(state=csr) creates it and its parents with mode C(0700) when missing. It holds private keys, so it is
        refused when another user owns it or can write it (group- or other-writable), or could swap it through
        a directory above it (owned by another non-root user, or writable by others without the sticky bit).
      - A C(NAME.csr) or C(NAME.key) in it that another user owns is never kept, and O(state=install) refuses
        such a key; new keys always belong to the user the module runs as.
    type: path
  signed_dir:
    description:
      - Where O(state=install) reads the signed certificates C(NAME.crt). Defaults to O(csr_dir).
    type: path
  fail_within:
    description:
      - O(state=check) fails the task when a certificate, a CA, one of the kubelet's certificates (RV(kubelet)) or
        a copy of this cluster's credentials (RV(copies), named by path in RV(expiring)) expires within this duration
        (or has expired). A copy that expires is an outage the morning after for whoever uses it.
      - The result still carries RV(certificates) and RV(certificate_authorities).
    type: str
  fail_inconsistent:
    description:
      - O(state=check) fails the task when RV(consistency.findings) is not empty, that is when this node's
        certificates do not cover what the cluster asks of them (the C(controlPlaneEndpoint) host, the node's advertise address, an
        C(apiServer.certSANs) entry, its etcd member's peer or client URLs). The command line exits 5 then.
      - What must be the same on every control-plane node (CAs, C(sa.key)/C(sa.pub)) is compared across nodes by
        the P(k8s_pki.kubeadm.consistency#filter) filter, which the C(fleet_report) role runs.
    type: bool
    default: false
  signer:
    description:
      - O(state=renew) signs with the CA key on disk (V(local)), or through the Kubernetes certificates API (V(api)).
    type: str
    choices: [local, api]
    default: local
  approve:
    description:
      - O(signer=api) approves its own CSRs when the credentials allow it.
    type: bool
    default: false
  signer_name:
    description:
      - O(signer=api) the C(signerName) of the CertificateSigningRequest objects.
      - By default chosen per certificate (C(kubernetes.io/kube-apiserver-client) for client certificates).
    type: str
  api_kubeconfig:
    description:
      - O(signer=api), O(cluster_info), O(state=restart) with O(cluster_gate) or O(lease), and O(state=approve), the credentials used
        to talk to the API server. Defaults to C(admin.conf) in O(kubeconfig_dir).
      - O(state=approve) needs credentials that may list CertificateSigningRequests and Nodes and approve for the
        signer C(kubernetes.io/kubelet-serving) (C(admin.conf)'s may); others fail the task, naming the request the
        API server refused.
    type: path
  api_timeout:
    description:
      - O(signer=api) how long to wait for approval and issuance, as a duration.
    type: str
    default: 5m
  lock_timeout:
    description:
      - O(state=renew), O(state=csr) and O(state=install) take an exclusive lock on O(cert_dir) (C(flock) on
        C(.kubeadm-certs.lock) in it, a 0600 file of the user running the module, released by the kernel when a
        run dies), so that two runs on one node (two playbooks, the C(schedule) role's timer and a human) take
        turns. This is how long a run waits for the lock, as a
        duration, before it fails having changed nothing. O(state=check), O(state=approve) and check mode never wait.
    type: str
    default: 60s
  components:
    description:
      - O(state=restart) the components to restart, by name (V(etcd), V(kube-apiserver),
        V(kube-controller-manager), V(kube-scheduler)), or V(stale) (the default) for every component RV(components)
        reports stale. A component asked for that is not running is reported (action V(not_running)), not an error.
    type: list
    elements: str
    default: [stale]
  method:
    description:
      - O(state=restart) how to restart a component.
      - V(static_pod) is kubeadm's way. It moves the manifest out of O(manifests_dir) into the holding dir
        C(tmp/kubeadm-certs-paused-manifests) beside it (the roles' holding dir, used only when root owns it with mode
        0700), waits until no process of the component runs, puts the manifest back with the annotation
        C(kubeadm-certs.k8s-pki.io/restartedAt) changed (one line edited as text, every other byte kept; a new pod
        UID, so the kubelet's crash backoff does not apply), and waits until a process of the new pod runs (its
        cgroup's pod UID; a crash restart of the old pod is not it). Anything failing puts the manifest back at once,
        unchanged.
      - V(crictl) stops the component's containers with C(crictl stop); V(systemd) runs C(systemctl restart NAME);
        V(command) runs O(restart_command); V(none) restarts nothing and reports what is stale.
      - A tool the method needs that is missing fails the task before anything is restarted.
    type: str
    choices: [static_pod, crictl, systemd, command, none]
    default: static_pod
  manifests_dir:
    description:
      - O(state=restart) where the static pod manifests are; by default O(kubeconfig_dir)C(/manifests). Every run of every state first puts back a manifest
        an interrupted restart left in the holding dir beside it (the other states look beside
        O(kubeconfig_dir)C(/manifests)).
    type: path
  restart_command:
    description:
      - O(method=command) the command that restarts one component, run with C(sh -c) with
        C(KUBEADM_CERTS_COMPONENT) and C(KUBEADM_CERTS_PID) in its environment.
    type: str
  restart_timeout:
    description:
      - O(state=restart) how long to wait for each step (the process gone, running again, healthy), as a duration.
      - With O(certificates=[kubelet-client]) or O(certificates=[kubelet-serving]) how long to wait until the
        restarted kubelet is back.
    type: str
    default: 5m
  node_name:
    description:
      - With O(certificates=[kubelet-client]) or O(certificates=[kubelet-serving]) the node's name as the apiserver
        knows it (whose Lease and Ready condition show the kubelet back after its restart); by default the name in the
        current client certificate of C(kubelet.conf) (C(system:node:NAME)). Needed when that certificate is missing
        or unreadable. A name other than the current certificate's is refused (it would make this kubelet another
        node).
      - Required with O(state=sign), the node the certificate is for, from the inventory.
    type: str
  ca_cert:
    description:
      - O(state=renew) with one CA named in O(certificates), the new certificate of that CA as another node renewed
        it (or the CA's owner, for an external CA), installed here instead of issuing one, so that every node of a
        cluster holds the same CA certificate. A path on the node.
      - It must be that CA's certificate issued again with the same key (the same subject, public key, subject key
        identifier, basic constraints and key usage, self-signed), valid now, alone in its file. It is installed when
        it differs from the one on disk (then the kubeconfigs follow as for a renewal), and never when it would
        expire before the one on disk unless O(force). No CA key is needed (a worker has none).
    type: path
  resign_old_issuer:
    description:
      - O(state=renew) during a CA rotation (docs/ca-rotation.md), a certificate issued by another CA certificate of
        its CA file than the first (the old CA of a bundle the rotation wrote) is accepted and issued again under the
        first, whatever its dates; the rest as without it. Without it such a certificate is refused, as one that does
        not chain to the CA on the node. O(state=rotate) with O(phase=reissue) does this itself.
    type: bool
    default: false
  phase:
    description:
      - O(state=rotate) the step. V(trust) (phase a) makes the CA file hold the old and the new CA certificate (the
        old one first, it still signs) and writes the new key beside it as C(BASE.next.key); the kubeconfigs' CA data
        follow. The new CA comes from O(generate) or O(next_ca_cert).
      - V(reissue) (phase b) makes the new CA sign (the CA file C([new, old]), C(BASE.key) the new key, the old one
        kept as C(BASE.previous.key), in one transaction), then issues every certificate of the CA on the node that
        the old one issued again under the new one (for C(ca) also the kubelet's client certificate, restarting the
        kubelet). A node without the CA key (a worker) has nothing to do here.
      - V(drop) (phase c) copies the old CA's certificate and key into O(old_ca_backup), then makes the CA file hold
        the new certificate alone (kubeconfigs following) and removes C(BASE.previous.key). Refused, naming the
        certificate, while anything on the node is still issued by the old CA.
    type: str
    choices: [trust, reissue, drop]
  generate:
    description:
      - O(state=rotate) with O(phase=trust), make the new CA here, on a control-plane node that holds the CA key (a new
        key of the old key's kind and size, the old certificate's subject, ten years, see O(validity)).
    type: bool
    default: false
  next_ca_cert:
    description:
      - O(state=rotate) with O(phase=trust), the new CA certificate another node made (a path on the node), so that
        every node trusts one and the same new CA. It must be one self-signed CA certificate with the old one's
        subject and another key, valid now.
    type: path
  next_ca_key:
    description:
      - With O(next_ca_cert) on a node that holds the CA key, the new CA's key (a path on the node; write it 0600 and
        remove it after, with C(no_log)). Required there (the node signs with it in O(phase=reissue)); refused on a
        node without the CA key (a worker).
    type: path
  old_ca_backup:
    description:
      - O(state=rotate) with O(phase=drop), the directory (absolute, on the node) the old CA's certificate and key are
        copied into (created 0700, the key 0600) before they leave the PKI. Required where the old key is on the node;
        a directory holding another file of the same name is refused, and so is one another user could write (owned by
        someone else, group- or other-writable, or below such a directory without the sticky bit), a link in it, and
        a directory of the PKI.
    type: path
  cluster_info:
    description:
      - O(state=renew) with V(ca) in O(certificates) (renewed, or installed with O(ca_cert)), after the run writes the
        C(ca) certificate on disk into the C(cluster-info) ConfigMap in C(kube-public), what C(kubeadm join) trusts
        before it has credentials, through the API server with O(api_kubeconfig) (no kubectl on the node). Only the
        C(certificate-authority-data) of its kubeconfig changes, and only where it holds an older certificate of the
        same CA (same subject and public key); kube-controller-manager's bootstrap signer signs the new content again
        for each bootstrap token. Idempotent (nothing when it holds that certificate already); check mode reads it
        and says whether it would change.
      - O(state=rotate) with O(certificates=[ca]), after the node's step the ConfigMap trusts exactly what the CA file
        holds (both CA certificates while the nodes do, the new one alone after O(phase=drop)), and only where every CA
        certificate it holds is the rotation's old or new one (the old one also read from O(old_ca_backup)).
      - It happens after the PKI's transaction and never fails the task; RV(cluster_info) says what became of it
        (V(failed) or V(refused) with the reason, in RV(warnings) too), and the next run converges it.
    type: bool
    default: false
  copies:
    description:
      - O(state=check) and O(state=renew) more places where a kubeconfig carrying a client certificate of this
        cluster may be, besides C(/root/.kube/config) and C(/home/*/.kube/config) (see O(default_copies)). Absolute
        paths on the node; C(*) stands for every name of one directory (C(/var/lib/*/.kube/config)).
      - A copy is a kubeconfig outside O(kubeconfig_dir) one of whose users embeds a client certificate the C(ca)
        certificate on disk issued (its signature verified, not only its issuer's name), reported in RV(copies).
      - Read without following a symbolic link a user could have made (only root's own links, in directories only
        root may write, are followed); such a link is named in RV(warnings) and not read.
    type: list
    elements: path
    default: []
  default_copies:
    description:
      - O(state=check) and O(state=renew) look for copies in C(/root/.kube/config) and C(/home/*/.kube/config)
        too. V(false) looks only at O(copies).
    type: bool
    default: true
  refresh_copies:
    description:
      - O(state=renew) replaces each copy (see O(copies)) that is a former admin.conf with C(admin.conf) as it is
        after the run, keeping the copy's owner, group and mode. A former admin.conf is byte for byte C(admin.conf)
        as it was before this run, or C(admin.conf) as it is with its user's certificate and key (and CA data) put
        back to the copy's older ones, which is what a renewal leaves behind in a copy made with C(cp).
      - Any other copy (edited, another user's certificate, in a directory another user may write, with other hard
        links, changed while being replaced) is left alone, and RV(copies[].reason) says why. So is a copy whose
        certificate has expired, unless root owns it, since refreshing it would give its owner back the
        cluster-admin access that ended with it.
      - Without it, a renewal of C(admin.conf) still names in RV(warnings) the copies that keep the old certificate.
      - Copies are written after the PKI's transaction, each atomically, not through its journal; a run stopped
        between the two leaves them as they were, and the next run with O(refresh_copies) refreshes them.
    type: bool
    default: false
  restart_kubelet:
    description:
      - With O(certificates=[kubelet-client]) or O(certificates=[kubelet-serving]) restart the kubelet after writing
        (it reads its client certificate and its self-signed serving pair only at start) and wait until it is back.
        V(false) writes only.
    type: bool
    default: true
  cluster_gate:
    description:
      - O(state=restart) before anything restarts, require every etcd member (listed through etcd's v3 JSON
        gateway with C(etcd/healthcheck-client), each C(/health) asked) and every apiserver of the cluster (the
        C(kubernetes) Endpoints, kubeadm's C(ClusterStatus), the kubeconfig's server; each C(/readyz) verified
        against C(ca.crt)) to be healthy; otherwise fail naming each one and why, restarting nothing.
      - This node's own component that this run restarts may be down already.
      - Checked only when something would restart; check mode checks too.
    type: bool
    default: false
  lease:
    description:
      - O(state=restart) take turns with the other nodes of the cluster, never restarting two at once, by holding the
        C(coordination.k8s.io/v1) Lease O(lease_name) in C(kube-system) (through the API server, with
        O(api_kubeconfig)) while restarting, renewed in the background, released when done.
      - A node that cannot take it waits (up to O(lease_timeout)); a holder whose C(renewTime) plus
        C(leaseDurationSeconds) is past is taken over. Check mode takes no lease.
    type: bool
    default: false
  lease_name:
    description:
      - O(lease=true) the Lease's name in C(kube-system).
    type: str
    default: kubeadm-certs-restart
  lease_identity:
    description:
      - O(lease=true) the C(holderIdentity) this node holds it under. Defaults to the host name (the node name).
    type: str
  lease_duration:
    description:
      - O(lease=true) C(leaseDurationSeconds), as a duration; renewed every third of it while held.
    type: str
    default: 15m
  lease_timeout:
    description:
      - O(lease=true) how long to wait for this node's turn, as a duration; then fail, restarting nothing.
    type: str
    default: 30m
notes:
  - Run it on every control-plane node; each node has its own C(apiserver) and C(etcd-*) certificates. The
    playbook C(k8s_pki.kubeadm.renew) does this one node at a time and restarts the components that use a
    renewed certificate (role C(k8s_pki.kubeadm.renew)).
  - CAs are renewed only when named (O(certificates=[ca]), never with V(all)), with their own key; a rotation to a
    new CA key is not done. A certificate whose CA has no key on the node (externally managed) is reported with
    action V(skipped_externally_managed); use O(state=csr) and O(state=install) for it.
  - This module renews a CA on one node. Every node of the cluster must then hold the same CA certificate; renew it
    on one control-plane node and install that file on the others (and on workers, for the kubelet) with
    O(ca_cert), never a second renewal per node.
  - The kubelet's certificates are renewed only when named alone (V(kubelet-client), V(kubelet-serving)), never with
    V(all); the kubelet rotates its client certificate itself while it can (C(rotateCertificates)).
  - An option that belongs to another state (O(renew_before) or the O(signer) options with O(state=check),
    O(fail_within) with O(state=renew), O(signed_dir) without O(state=install)) fails the task, naming it,
    instead of being ignored.
  - Needs read access to O(cert_dir) and O(kubeconfig_dir) (root on a kubeadm node, so C(become=true)).
  - O(state=check) compares each certificate's public key with its private key's (cheap, no signing), so a
    replaced or mismatched key fails the check; see RV(warnings).
  - The binary crosses the wire once per host and version. Ansible copies a binary module to the target for
    every task (pipelining cannot help binary modules); this module's action plugin instead keeps the binary on
    the target as C(/var/lib/kubeadm-certs/bin/VERSION-SHA256) (root-owned, mode 0755, written through a
    temporary name and renamed) and from then on sends only the task's arguments, on standard input where the
    connection can. Before every use the target checks that the copy is a regular file, that it and its two
    folders are owned by root with mode 0755, and that its sha256 is the one of the collection's binary; a copy
    that fails any check is never run (a warning names the reason) and is replaced. Copies of other versions
    are removed when a new one is written. Where the connection can send data with a command, the first use is
    one command after the check that found no copy (the arguments and the binary on standard input, written,
    checked, then run) instead of a temporary directory, a file transfer, the install and the run. That copy
    crosses xz-compressed (about a third of the binary's size, against about half with ssh's own compression)
    when the target has C(xz) and the collection holds the compressed copy C(bin/kubeadm-certs-ARCH.SHA256.xz)
    that C(make collection) builds; otherwise it crosses as it is. The sha256 checked is the binary's own either
    way.
  - The copy is written only by root (C(become=true), or the remote user root) and never in check mode. Where it
    cannot be written (no root, a read-only C(/var/lib)), async tasks, and with the variable
    C(kubeadm_certs_binary_cache=false) (set it for a host, a group or a play to turn this off), the task uses
    Ansible's ordinary transfer of the binary; a failed write warns once per host and playbook run.
seealso:
  - name: kubeadm certificate management
    description: How kubeadm renews certificates and what has to be restarted afterwards.
    link: https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-certs/
  - module: community.crypto.x509_certificate_info
"""

EXAMPLES = r"""
- name: Report the certificates of a control-plane node
  k8s_pki.kubeadm.certs:
    state: check
  become: true
  register: kubeadm_certs_check

- name: Fail when anything expires within 30 days
  k8s_pki.kubeadm.certs:
    state: check
    fail_within: 30d
  become: true

- name: Renew what expires within 90 days, keeping copies of the old files
  k8s_pki.kubeadm.certs:
    state: renew
    renew_before: 90d
    backup: true
  become: true
  register: kubeadm_certs_renewal

- name: Show which certificates were renewed
  ansible.builtin.debug:
    var: kubeadm_certs_renewal.renewed

- name: Renew admin.conf when due and refresh the copies of it in root's and users' ~/.kube/config
  k8s_pki.kubeadm.certs:
    state: renew
    certificates: [admin.conf]
    refresh_copies: true
    copies: [/var/lib/jenkins/.kube/config]
  become: true
  register: kubeadm_certs_admin

- name: Name the copies left alone, and why
  ansible.builtin.debug:
    msg: "{{ item.path }}: {{ item.reason }}"
  loop: "{{ kubeadm_certs_admin.copies | default([]) | selectattr('action', 'eq', 'none') | rejectattr('current') }}"

- name: Add a SAN to the API server certificate (renews it only when the SAN is missing)
  k8s_pki.kubeadm.certs:
    state: renew
    certificates: [apiserver]
    extra_sans:
      - DNS:k8s-api.example.com
      - IP:192.0.2.10
  become: true

- name: Renew the scheduler's and controller-manager's client certificates now, with ECDSA keys
  k8s_pki.kubeadm.certs:
    state: renew
    certificates: [scheduler.conf, controller-manager.conf]
    force: true
    key_algorithm: ecdsa-p256
  become: true

- name: Renew admin.conf through the certificates API instead of the CA key on disk
  k8s_pki.kubeadm.certs:
    state: renew
    certificates: [admin.conf]
    signer: api
    approve: true
    api_timeout: 2m
  become: true

- name: Renew the cluster CA with its own key when it expires within a year (kubeconfigs follow)
  k8s_pki.kubeadm.certs:
    state: renew
    certificates: [ca]
  become: true
  register: kubeadm_certs_ca

- name: Install on another node the CA certificate renewed on the first one (the same file everywhere)
  k8s_pki.kubeadm.certs:
    state: renew
    certificates: [ca]
    ca_cert: /etc/kubernetes/kubeadm-certs/ca.crt
  become: true

- name: Rotate to a new cluster CA on the first control-plane node, phase a (the playbook k8s_pki.kubeadm.rotate_ca runs every step)
  k8s_pki.kubeadm.certs:
    state: rotate
    certificates: [ca]
    phase: trust
    generate: true
  become: true

- name: Restart every component that still uses an old certificate, kubeadm's way, and wait until each is healthy
  k8s_pki.kubeadm.certs:
    state: restart
  become: true
  register: kubeadm_certs_restart

- name: Restart kube-apiserver through the container runtime
  k8s_pki.kubeadm.certs:
    state: restart
    components: [kube-apiserver]
    method: crictl
  become: true

- name: Restart what is stale only when the whole cluster is healthy, one node of the cluster at a time
  k8s_pki.kubeadm.certs:
    state: restart
    cluster_gate: true
    lease: true
    lease_identity: "{{ inventory_hostname_short }}"
  become: true

- name: Renew the kubelet's self-signed serving certificate when it expires within 90 days, and restart the kubelet
  k8s_pki.kubeadm.certs:
    state: renew
    certificates: [kubelet-serving]
  become: true

- name: Approve the kubelets' pending serving-certificate requests that ask for their own node's names and addresses
  k8s_pki.kubeadm.certs:
    state: approve
  become: true
  register: kubeadm_certs_approval

- name: Write CSRs and new keys for an external CA
  k8s_pki.kubeadm.certs:
    state: csr
    csr_dir: /etc/kubernetes/kubeadm-certs/csr
  become: true
  register: kubeadm_certs_csr

- name: Install the certificates the external CA signed (all of them or none)
  k8s_pki.kubeadm.certs:
    state: install
    csr_dir: /etc/kubernetes/kubeadm-certs/csr
    signed_dir: /etc/kubernetes/kubeadm-certs/signed
    backup: true
  become: true
"""

RETURN = r"""
changed:
  description:
    - Whether anything was (or, in check mode, would be) written.
    - Also true in a failed task that first completed (or rolled back) a renewal an interrupted run had left
      pending; RV(warnings) then says so, and the components using the PKI need a restart.
  returned: always
  type: bool
  sample: true
msg:
  description: A one-line summary of what was done, or why the task failed.
  returned: always
  type: str
  sample: renewed admin.conf, apiserver; restart kube-apiserver to use the new certificates
certificates:
  description: One entry per selected certificate, in kubeadm's order of names.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: kubeadm's name of the certificate, or V(kubelet-serving) for the kubelet's self-signed one.
      returned: always
      type: str
      sample: apiserver
    kind:
      description: V(cert) for a PEM pair in O(cert_dir), V(kubeconfig) for a client certificate embedded in a kubeconfig.
      returned: always
      type: str
      sample: cert
    path:
      description: The certificate file, or the kubeconfig file holding the certificate.
      returned: always
      type: str
      sample: /etc/kubernetes/pki/apiserver.crt
    subject:
      description: The subject, in the order of its RDNs on disk. Null when the entry is missing.
      returned: always
      type: str
      sample: CN=kube-apiserver
    sans:
      description: The subject alternative names. Null when the entry is missing.
      returned: always
      type: list
      elements: str
      sample: ["DNS:cp1", "DNS:kubernetes", "IP:10.96.0.1", "IP:192.0.2.11"]
    serial:
      description: The serial number, as colon-separated hexadecimal bytes. Null when the entry is missing.
      returned: always
      type: str
      sample: "6e:a5:ae:e0:92:80:76:2d"
    not_before:
      description: Start of validity (RFC 3339, UTC). Null when the entry is missing.
      returned: always
      type: str
      sample: "2026-11-29T04:37:00Z"
    not_after:
      description: End of validity (RFC 3339, UTC). After a renewal, the new certificate's. Null when the entry is missing.
      returned: always
      type: str
      sample: "2027-11-29T04:42:00Z"
    residual_seconds:
      description: Seconds until RV(certificates[].not_after); negative once expired. Null when the entry is missing.
      returned: always
      type: int
      sample: 31535700
    residual:
      description:
        - The residual time as C(kubeadm certs check-expiration) prints it. Null when the entry is missing.
        - O(state=check) as the node's own kubeadm prints it (RV(kubernetes_version)), so V(1y) for 399 days below
          1.31 and V(399d) from 1.31.
      returned: always
      type: str
      sample: 364d
    key_algorithm:
      description: The algorithm and size of the certificate's key. Null when the entry is missing.
      returned: always
      type: str
      sample: rsa-2048
    ca:
      description: The name of the signing CA (V(ca), V(front-proxy-ca), V(etcd-ca)), or V(self-signed) for V(kubelet-serving).
      returned: always
      type: str
      sample: ca
    externally_managed:
      description: Whether the signing CA has no key on the node.
      returned: always
      type: bool
      sample: false
    missing:
      description: Whether the entry's files are absent (external etcd, no super-admin.conf on a follower).
      returned: always
      type: bool
      sample: false
    action:
      description: What happened to the entry.
      returned: always
      type: str
      choices: [none, renewed, would_renew, csr_written, would_write_csr, installed, would_install, skipped_externally_managed]
      sample: renewed
    reason:
      description: Why the action was taken or not.
      returned: when there is one
      type: str
      sample: expires in 20d, within renew_before 90d
certificate_authorities:
  description: One entry per CA.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: V(ca), V(front-proxy-ca) or V(etcd-ca).
      returned: always
      type: str
      sample: etcd-ca
    path:
      description: The CA certificate file.
      returned: always
      type: str
      sample: /etc/kubernetes/pki/etcd/ca.crt
    subject:
      description: The CA's subject. Null when the entry is missing.
      returned: always
      type: str
      sample: CN=etcd-ca
    serial:
      description: The CA certificate's serial, colon-separated hex. Null when the entry is missing.
      returned: always
      type: str
      sample: "4a:0f:91:2c:7e:11:d3:05"
    not_before:
      description: Start of validity (RFC 3339, UTC). Null when the entry is missing.
      returned: always
      type: str
      sample: "2026-11-29T04:32:00Z"
    not_after:
      description: End of validity (RFC 3339, UTC). Null when the entry is missing.
      returned: always
      type: str
      sample: "2036-11-27T04:37:00Z"
    residual_seconds:
      description: Seconds until RV(certificate_authorities[].not_after). Null when the entry is missing.
      returned: always
      type: int
      sample: 315359700
    residual:
      description: The residual time as kubeadm prints it. Null when the entry is missing.
      returned: always
      type: str
      sample: 9y
    externally_managed:
      description: Whether the CA's key is absent from the node.
      returned: always
      type: bool
      sample: false
    missing:
      description: Whether the CA certificate is absent (no C(etcd-ca) with external etcd).
      returned: always
      type: bool
      sample: false
    action:
      description: O(state=renew), a CA named in O(certificates) only. V(renewed), V(would_renew) (check mode) or V(none).
      returned: when the CA was named with O(state=renew)
      type: str
      sample: renewed
    reason:
      description: Why the CA was renewed or kept (V(forced), V(expires in 300d, within renew_before 365d), a given O(ca_cert)).
      returned: when the CA was named with O(state=renew)
      type: str
      sample: forced
    kubeconfigs:
      description: The kubeconfig files whose C(certificate-authority-data) now embeds the renewed CA (or would).
      returned: when a renewed CA is embedded in kubeconfigs
      type: list
      elements: str
      sample: [/etc/kubernetes/admin.conf, /etc/kubernetes/kubelet.conf]
    previous_not_after:
      description:
        - When the replaced CA certificate expires. A component that read it only at start (RV(restart)) keeps
          verifying with it until then (same key) and must restart before.
      returned: when the CA was renewed (or would be)
      type: str
      sample: "2036-11-27T04:37:00Z"
renewed:
  description:
    - Names of the certificates that were renewed or installed (in check mode, that would be), CAs first (V(ca),
      V(etcd-ca), V(front-proxy-ca)) when named; V(kubelet-client) or V(kubelet-serving) when that was named.
  returned: always
  type: list
  elements: str
  sample: [apiserver, front-proxy-client, scheduler.conf]
csr_names:
  description:
    - O(signer=api) the CertificateSigningRequest objects this run created in the cluster, in the order of
      RV(renewed). A failed run deletes the ones it created, or names those it could not delete in RV(msg).
  returned: when O(signer=api) renewed something
  type: list
  elements: str
  sample: [kubeadm-certs-controller-manager.conf-x7k2p, kubeadm-certs-scheduler.conf-4nxwc]
restart:
  description:
    - The control-plane components that must restart after the run, whatever this run did. Every component
      RV(components) reports stale (a restart an earlier run left undone is named again, with C(changed=false) when
      nothing else happened); every component that reads a certificate this run renewed or installed and is not
      seen running on this PKI (from kubeadm's table, C(etcd-server) and C(etcd-peer) are read by etcd; C(apiserver),
      C(apiserver-kubelet-client), C(apiserver-etcd-client) and C(front-proxy-client) by kube-apiserver;
      C(controller-manager.conf) and C(scheduler.conf) by their components; C(admin.conf) by nobody); in check mode,
      every running component that reads at start a certificate the run would renew.
    - A running component that reloads what was renewed by itself (etcd its server and peer certificates) is not in
      it. O(state=restart) returns the components still stale after it.
  returned: always
  type: list
  elements: str
  sample: [etcd, kube-scheduler]
components:
  description:
    - The control-plane components running on this PKI (found in C(/proc) by the files their command lines name),
      after the run; empty when none runs on it. Listed when at least one runs, then all four.
    - A component is stale when it serves a certificate other than the file on disk (kube-apiserver's serving
      certificate, etcd's server and peer certificates, compared by serial over a TLS handshake), or when it
      started before a file it reads only at start was last written.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: V(etcd), V(kube-apiserver), V(kube-controller-manager) or V(kube-scheduler).
      returned: always
      type: str
      sample: kube-apiserver
    pid:
      description: Its process id; null when it is not running on this PKI.
      returned: always
      type: int
      sample: 4711
    startedAt:
      description: When it started, RFC 3339 UTC; null when it is not running.
      returned: always
      type: str
      sample: "2026-11-29T18:36:55Z"
    stale:
      description: Whether it still uses an older certificate than the one on disk.
      returned: always
      type: bool
      sample: true
    reason:
      description: Why it is (or is not) stale.
      returned: always
      type: str
      sample: "started 2026-11-29T18:36:55.120Z before /etc/kubernetes/pki/apiserver-kubelet-client.crt was written 2026-11-29T18:40:02.513Z"
kubelet:
  description:
    - O(state=check) the kubelet's own certificates, which kubeadm's check leaves out; empty (left out) where
      O(kubelet_dir) does not exist. Field names as in C(kubeadm-certs check -o json). O(certificates=[kubelet-client])
      and O(certificates=[kubelet-serving]) return them too, as the run leaves them.
    - V(kubelet-client) is what C(kubelet.conf) authenticates with (embedded, or the file it names, normally
      C(/var/lib/kubelet/pki/kubelet-client-current.pem)); V(kubelet-server) the serving certificate (C(tlsCertFile),
      C(pki/kubelet-server-current.pem) with C(serverTLSBootstrap), else the self-signed C(pki/kubelet.crt)).
  returned: when O(state=check) or a kubelet certificate is named, and O(kubelet_dir) exists
  type: list
  elements: dict
  contains:
    name:
      description: V(kubelet-client) or V(kubelet-server).
      returned: always
      type: str
      sample: kubelet-client
    path:
      description: The file it was read from, or where it should be when missing.
      returned: always
      type: str
      sample: /var/lib/kubelet/pki/kubelet-client-current.pem
    expirationDate:
      description: Its NotAfter, RFC 3339 UTC; null when missing.
      returned: always
      type: str
      sample: "2027-11-30T01:37:00Z"
    residualTime:
      description: Seconds until it expires; 0 when missing, negative once expired.
      returned: always
      type: int
      sample: 31449600
    rotation:
      description: Whether the kubelet renews it itself (C(rotateCertificates), C(serverTLSBootstrap) in its C(config.yaml)).
      returned: always
      type: bool
      sample: true
    missing:
      description: Whether it is absent (or unreadable; RV(warnings) says why).
      returned: always
      type: bool
      sample: false
    subject:
      description: Its subject; left out when missing.
      returned: when present
      type: str
      sample: O=system:nodes, CN=system:node:cp1
    issuer:
      description: Its issuer; the cluster's CA, or the kubelet's own for a self-signed serving certificate.
      returned: when present
      type: str
      sample: CN=kubernetes
    action:
      description:
        - O(certificates=[kubelet-client]) with O(state=renew), O(state=csr) or O(state=install), on the
          V(kubelet-client) entry, what became of it. V(none) (not due, or its CSR is ready, or installed already),
          V(renewed), V(would_renew), V(csr_written), V(would_write_csr), V(installed), V(would_install).
      returned: on kubelet-client of those states
      type: str
      sample: would_renew
    reason:
      description: Why, on the same entry.
      returned: on kubelet-client of those states
      type: str
      sample: expires in 364d, within renew_before 400d
approvals:
  description:
    - O(state=approve) every CertificateSigningRequest that was pending, with what became of it and why; an empty
      list when none was. A refused request is left pending (never denied) and untouched.
  returned: when O(state=approve)
  type: list
  elements: dict
  contains:
    name:
      description: The CertificateSigningRequest's name.
      returned: always
      type: str
      sample: csr-8vn5w
    signer_name:
      description: Its C(spec.signerName).
      returned: always
      type: str
      sample: kubernetes.io/kubelet-serving
    requester:
      description: Who made it (C(spec.username), set by the API server).
      returned: always
      type: str
      sample: system:node:w1
    node:
      description: The node that made it; null when no node did.
      returned: always
      type: str
      sample: w1
    sans:
      description: The DNS names and IP addresses it asks for; empty when it cannot be read (or is not looked at).
      returned: always
      type: list
      elements: str
      sample: ["DNS:w1", "IP:10.0.0.1"]
    action:
      description: V(approved), V(would_approve) (check mode) or V(refused) (left pending).
      returned: always
      type: str
      choices: [approved, would_approve, refused]
      sample: approved
    reason:
      description:
        - Why it was refused, by name; the first check it failed, in this order. V(signer) another signer's
          request (left to that signer's approver); V(requester) not made by a node's kubelet (C(system:node:NAME) in
          C(system:nodes)); V(unreadable) not a certificate request its own key signed; V(other_node) for another
          node's name; V(subject) not exactly C(O=system:nodes, CN=system:node:NAME); V(key) a key no kubelet makes;
          V(extensions) extensions besides its SANs; V(other_san) an email, URI or other SAN; V(no_san) no DNS name
          and no IP address; V(usages) other usages than digital signature, key encipherment (optional) and server
          auth; V(no_such_node) no Node of its name; V(dns_name) a DNS name that is not one of its Node's names
          (Hostname, InternalDNS, ExternalDNS); V(ip_address) an IP address that is not one of its Node's
          (InternalIP, ExternalIP, or a Hostname that is an address); V(san_of_other_node) a name or address another
          Node lists too.
      returned: when refused
      type: str
      choices: [signer, requester, unreadable, other_node, subject, key, extensions, other_san, no_san, usages,
                no_such_node, dns_name, ip_address, san_of_other_node]
      sample: ip_address
    message:
      description: What the checks found, in words.
      returned: always
      type: str
      sample: "it asks for IP:10.0.0.9, which is not an address of Node w1 (its InternalIP, ExternalIP addresses: IP:10.0.0.1)"
kubernetes_version:
  description:
    - O(state=check) the Kubernetes version of the control plane, which decides kubeadm's rows and formats as the
      node's own C(kubeadm certs check-expiration) has them. C(super-admin.conf) is an entry from 1.29 (below, only
      when its file is there), RV(certificates[].residual) is C(ShortHumanDuration) below 1.31 and
      C(HumanDuration) from 1.31.
    - Read from the image tag of C(KUBECONFIG_DIR/manifests/kube-apiserver.yaml), else C(kubernetesVersion) of
      O(config). Left out when neither says it; then the entries and formats are current kubeadm's.
  returned: when O(state=check) found it
  type: dict
  contains:
    version:
      description: C(major.minor.patch).
      returned: always
      type: str
      sample: 1.28.7
    source:
      description: The manifest or configuration file it was read from.
      returned: always
      type: str
      sample: /etc/kubernetes/manifests/kube-apiserver.yaml
restarts:
  description: O(state=restart) what became of each component asked for (or found stale).
  returned: when O(state=restart) had a component to act on
  type: list
  elements: dict
  contains:
    name:
      description: The component.
      returned: always
      type: str
      sample: kube-apiserver
    action:
      description:
        - V(restarted), V(would_restart) (check mode), V(not_running), V(not_restarted) (O(method=none)), or
          V(put_back) (its manifest, held by an interrupted run, was put back as a new pod and it runs healthy again).
      returned: always
      type: str
      sample: restarted
    method:
      description: The O(method) used.
      returned: always
      type: str
      sample: static_pod
    pid_before:
      description:
        - The process the restart replaced (the one that ran when it began, a crash restart of the old pod included);
          null when it was not running.
      returned: always
      type: int
      sample: 4711
    pid_after:
      description:
        - Its new process, once it ran again, healthy (answered by its own listener) and using the certificates on
          disk. With V(static_pod), a process of the new pod that started after the manifest went back.
      returned: always
      type: int
      sample: 5120
    reason:
      description: Why it was (or would be) restarted, or why not.
      returned: always
      type: str
      sample: "was stale or asked for: started ... before ... was written; healthy and using the certificates on disk"
cluster:
  description: O(cluster_gate=true) what the gate found healthy before anything restarted.
  returned: when O(cluster_gate) passed
  type: dict
  contains:
    etcd_members:
      description: The etcd members' names (empty when etcd is not gated from this node, see RV(warnings)).
      returned: always
      type: list
      elements: str
      sample: [cp1, cp2, cp3]
    apiservers:
      description: The apiservers checked, as C(host:port).
      returned: always
      type: list
      elements: str
      sample: ["10.0.0.1:6443", "10.0.0.2:6443"]
lease:
  description: O(lease=true) when this node held the Lease.
  returned: when the lease was taken
  type: dict
  contains:
    name:
      description: C(kube-system/NAME).
      returned: always
      type: str
      sample: kube-system/kubeadm-certs-restart
    holder:
      description: The holder identity.
      returned: always
      type: str
      sample: cp1
    acquired_at:
      description: When it was taken (RFC 3339, microseconds).
      returned: always
      type: str
      sample: "2026-11-29T19:36:12.650112Z"
    released_at:
      description: When it was released.
      returned: always
      type: str
      sample: "2026-11-29T19:36:40.120001Z"
    waited_seconds:
      description: How long this node waited for its turn.
      returned: always
      type: int
      sample: 12
    took_over_from:
      description: The holder whose lease had expired, when taken over; null otherwise.
      returned: always
      type: str
      sample: cp2
copies:
  description:
    - O(state=check) and O(state=renew) the kubeconfigs outside O(kubeconfig_dir) that carry a client certificate of
      this cluster (see O(copies), O(default_copies)), one entry per file. Field names as in C(kubeadm-certs check
      -o json). Left out when there are none.
    - O(state=renew) looks for them with O(refresh_copies), or when it renews C(admin.conf) (or would).
  returned: when copies were found
  type: list
  elements: dict
  contains:
    path:
      description: The file, as found.
      returned: always
      type: str
      sample: /home/alice/.kube/config
    expirationDate:
      description: Its certificate's NotAfter, RFC 3339 UTC (after a refresh, the new certificate's).
      returned: always
      type: str
      sample: "2027-11-30T01:37:00Z"
    residualTime:
      description: Seconds until it expires; negative once expired.
      returned: always
      type: int
      sample: 31449600
    current:
      description: Whether it carries the certificate C(admin.conf) holds now (false for an older one, or another user's).
      returned: always
      type: bool
      sample: false
    subject:
      description: Its certificate's subject.
      returned: always
      type: str
      sample: O=kubeadm:cluster-admins, CN=kubernetes-admin
    user:
      description: The kubeconfig user that holds it.
      returned: always
      type: str
      sample: kubernetes-admin
    owner:
      description: The file's owner, by name (its uid when it has none).
      returned: always
      type: str
      sample: alice
    mode:
      description: The file's permission bits, in octal.
      returned: always
      type: str
      sample: "0600"
    action:
      description: O(state=renew) V(refreshed), V(would_refresh) (check mode) or V(none).
      returned: with O(state=renew)
      type: str
      sample: refreshed
    reason:
      description: O(state=renew) why it was refreshed, or left alone.
      returned: with O(state=renew)
      type: str
      sample: byte for byte admin.conf as it was before this run
cluster_info:
  description:
    - O(cluster_info) what became of the C(cluster-info) ConfigMap in C(kube-public).
  returned: O(state=renew) or O(state=rotate) with O(cluster_info=true)
  type: dict
  contains:
    action:
      description:
        - V(none) (it holds the C(ca) certificate on disk, or does not exist), V(updated), V(would_update) (check mode),
          V(refused) (it trusts another CA than C(ca.crt), left alone) or V(failed) (the API server could not be asked
          or refused the update).
      type: str
      returned: always
      sample: updated
    reason:
      description: Why, naming the ConfigMap, and with V(failed) or V(refused) the command to look at it.
      type: str
      returned: always
  sample: {"action": "updated", "reason": "the cluster-info ConfigMap (kube-public) got the CA certificate serial 5e7a... (its bootstrap signatures follow)"}
ca_rotation:
  description:
    - Where a CA rotation stands on this node, one item per CA present (docs/ca-rotation.md). Read off the files alone.
  returned: O(state=check) of every entry (O(certificates) not named)
  type: list
  elements: dict
  contains:
    name:
      description: V(ca), V(etcd-ca) or V(front-proxy-ca).
      type: str
      returned: always
    path:
      description: The CA certificate file.
      type: str
      returned: always
    state:
      description:
        - V(single) (one CA certificate), V(trusting) (old and new, the old one signs, C(BASE.next.key) the new key; on a
          node without the CA key, two certificates), V(reissuing) (new and old, the new one signs, C(BASE.previous.key)
          the old key, something here still issued by the old one), V(reissued) (the same, everything here by the new
          one) or V(inconsistent) (RV(ca_rotation[].reason) says why).
      type: str
      returned: always
      sample: trusting
    reason:
      description: Why V(inconsistent); null otherwise.
      type: str
      returned: always
    certificates:
      description: The CA file's certificates in file order, each with C(sha256) (of the DER, lowercase hex),
        C(spki_sha256), C(subject), C(serial), C(not_before), C(not_after) and C(signing) (C(BASE.key) is its key).
      type: list
      elements: dict
      returned: always
    next_key:
      description: C(BASE.next.key) is there.
      type: bool
      returned: always
    previous_key:
      description: C(BASE.previous.key) is there.
      type: bool
      returned: always
    issued_by_other:
      description: Certificates on the node (C(name), C(path), C(issuer)) issued by the CA file's second certificate.
      type: list
      elements: dict
      returned: always
    untrusted:
      description: Certificates on the node (C(name), C(path), C(issuer)) that no certificate of the CA file issued.
      type: list
      elements: dict
      returned: always
rotation:
  description: O(state=rotate) what this node's step did.
  returned: O(state=rotate)
  type: dict
  contains:
    name:
      description: The CA.
      type: str
      returned: always
    phase:
      description: V(trust), V(reissue) or V(drop).
      type: str
      returned: always
    state_before:
      description: RV(ca_rotation[].state) before the step.
      type: str
      returned: always
    state_after:
      description: RV(ca_rotation[].state) after it (in check mode, as before).
      type: str
      returned: always
    certificates:
      description: The CA file's certificates after the step, as in RV(ca_rotation[].certificates).
      type: list
      elements: dict
      returned: always
    written:
      description: The files written or removed (or that would be); never their contents.
      type: list
      elements: str
      returned: always
  sample:
    name: ca
    phase: trust
    state_before: single
    state_after: trusting
    certificates: []
    written: [/etc/kubernetes/pki/ca.crt, /etc/kubernetes/pki/ca.next.key, /etc/kubernetes/admin.conf]
consistency:
  description:
    - What must be one truth across the control-plane nodes of a cluster, as this node holds it (fingerprints,
      compared across nodes by the P(k8s_pki.kubeadm.consistency#filter) filter), and what this node's certificates
      fail to cover (RV(consistency.findings)). Never a byte of a private key.
  returned: O(state=check) of every entry (O(certificates) not named)
  type: dict
  contains:
    identity:
      description:
        - V(ca), V(etcd-ca), V(front-proxy-ca) and V(sa) (the service-account key pair), each with the SHA-256
          (lowercase hex) of its certificate (null for V(sa)), of the certificate's public key (V(sa) of C(sa.pub)),
          and of the public key of the private key file (null when it is absent or cannot be read, see
          RV(consistency.reasons)).
      returned: always
      type: list
      elements: dict
      sample: [{"name": "ca", "path": "/etc/kubernetes/pki/ca.crt", "certificate_sha256": "3f1c...e2",
                "public_key_sha256": "9a0b...41", "key_path": "/etc/kubernetes/pki/ca.key",
                "key_public_key_sha256": "9a0b...41"}]
    apiserver_sans:
      description: The apiserver certificate's SANs (C(etcd_server_sans), C(etcd_peer_sans) likewise).
      returned: always
      type: list
      elements: str
      sample: ["DNS:cp1", "DNS:kubernetes", "IP:10.96.0.1", "IP:192.0.2.11"]
    advertise_address:
      description:
        - The kube-apiserver static pod's C(--advertise-address) (else the host of etcd's
          C(--advertise-client-urls), else the running kube-apiserver's flag); null when none says it.
      returned: always
      type: str
      sample: 192.0.2.11
    control_plane_endpoint:
      description: The cluster's C(controlPlaneEndpoint) (from C(config_source)); null when unknown.
      returned: always
      type: str
      sample: k8s-api.example.internal:6443
    cert_sans:
      description: The cluster's C(apiServer.certSANs).
      returned: always
      type: list
      elements: str
    config_source:
      description:
        - Where the cluster's kubeadm configuration was read, C(--config FILE) (O(config)) or
          C(ConfigMap kube-system/kubeadm-config) (through the apiserver with admin.conf, bounded to a few
          seconds); null when it could not be read (RV(consistency.reasons) says why).
      returned: always
      type: str
    etcd_members:
      description:
        - etcd's members (C(name), C(peer_urls), C(client_urls), C(local) for this node's), as etcd's member list
          answers the healthcheck-client certificate; empty when not asked (RV(consistency.reasons)).
      returned: always
      type: list
      elements: dict
    findings:
      description:
        - What this node's certificates fail to cover; each C(file) (the certificate) and C(message) (what it
          lacks, where that is asked for, the command that fixes it). O(fail_inconsistent) fails the task on one.
      returned: always
      type: list
      elements: dict
      sample: [{"file": "/etc/kubernetes/pki/apiserver.crt", "message": "/etc/kubernetes/pki/apiserver.crt: lacks
                DNS:lb.example.com, the controlPlaneEndpoint host (...)"}]
    reasons:
      description: What could not be looked at, and why (the comparison is then partial; no finding).
      returned: always
      type: list
      elements: str
expiring:
  description: With O(fail_within), the certificates and CAs that expire within it (copies by their path).
  returned: when O(fail_within) found something
  type: list
  elements: str
  sample: [apiserver, front-proxy-client]
csr_files:
  description: The CSR files written (or that would be written) by O(state=csr).
  returned: always
  type: list
  elements: str
  sample: [/etc/kubernetes/kubeadm-certs/csr/apiserver.csr, /etc/kubernetes/kubeadm-certs/csr/admin.conf.csr]
csrs:
  description:
    - O(state=csr) what each certificate needs from the signer, since a CSR carries no usages (the CA decides them).
  returned: when O(state=csr)
  type: list
  elements: dict
  contains:
    name:
      description: kubeadm's name of the certificate.
      returned: always
      type: str
      sample: etcd-peer
    csr_path:
      description: The CSR file on the node.
      returned: always
      type: str
      sample: /etc/kubernetes/kubeadm-certs/csr/etcd-peer.csr
    key_path:
      description: The new private key on the node (never leaves it).
      returned: always
      type: str
      sample: /etc/kubernetes/kubeadm-certs/csr/etcd-peer.key
    ca:
      description: The CA that has to sign it.
      returned: always
      type: str
      sample: etcd-ca
    subject:
      description: The subject requested.
      returned: always
      type: str
      sample: CN=cp1
    sans:
      description: The subject alternative names requested.
      returned: always
      type: list
      elements: str
      sample: ["DNS:cp1", "DNS:localhost", "IP:192.0.2.11", "IP:127.0.0.1", "IP:::1"]
    key_usage:
      description: The key usages the certificate needs, in OpenSSL's C(keyUsage) names.
      returned: always
      type: list
      elements: str
      sample: [digitalSignature, keyEncipherment]
    extended_key_usage:
      description: The extended key usages the certificate needs, in OpenSSL's C(extendedKeyUsage) names.
      returned: always
      type: list
      elements: str
      sample: [serverAuth, clientAuth]
    changed:
      description: Whether this CSR was (or would be) written by this run.
      returned: always
      type: bool
      sample: true
backup_files:
  description: The backup copies made by O(backup=true).
  returned: always
  type: list
  elements: str
  sample: ["/etc/kubernetes/pki/apiserver.crt.13594.2026-11-29@09:29:22~", "/etc/kubernetes/pki/apiserver.key.13594.2026-11-29@09:29:22~"]
diff:
  description:
    - With C(--diff), one entry per changed certificate (and per credential copy refreshed, RV(copies)) showing
      serial, validity, subject, SANs and key algorithm before and after.
    - Never contains key material.
  returned: when diff mode is on and something changed
  type: list
  elements: dict
  contains:
    before_header:
      description: The entry and its file before the change.
      returned: always
      type: str
      sample: /etc/kubernetes/pki/apiserver.crt (before)
    after_header:
      description: The entry and its file after the change.
      returned: always
      type: str
      sample: /etc/kubernetes/pki/apiserver.crt (after)
    before:
      description: The properties before.
      returned: always
      type: str
      sample: "serial: 27:7c:9f:af:37:97:53:79\nnot_before: 2026-11-29T05:30:52Z\nnot_after: 2027-11-29T05:30:53Z\n\
        subject: CN=kube-apiserver\nsans: [DNS:cp1, DNS:kubernetes, IP:10.96.0.1, IP:192.0.2.11]\nkey_algorithm: rsa-2048\n"
    after:
      description: The properties after.
      returned: always
      type: str
      sample: "serial: (new random serial)\nnot_before: 2026-11-29T09:24:22Z\nnot_after: 2027-11-29T09:29:22Z\n\
        subject: CN=kube-apiserver\nsans: [DNS:cp1, DNS:kubernetes, IP:10.96.0.1, IP:192.0.2.11]\nkey_algorithm: rsa-2048\n"
warnings:
  description:
    - Things the user should know, such as a validity clamped to the CA's expiry, or that an interrupted
      renewal was completed first (also in a failed task).
    - With O(state=check), what the dates do not show. A key that does not match its certificate, a key that is
      missing, or a CA certificate missing while certificates it signed are present make the PKI broken, and the
      task fails (C(failed=true), RV(msg) starts with C(the PKI is broken)) whatever the dates say; the report is
      still returned. A key the module may not read (run without C(become)) is only a warning.
  returned: when there is something to say
  type: list
  elements: str
  sample: ["etcd-server: validity cut to the etcd-ca CA's expiry 2028-01-01T00:00:00Z (a certificate cannot outlive its CA)"]
"""
