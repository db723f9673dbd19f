# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The consistency filter: what differs between the control-plane nodes of one cluster, decided on the controller.

Each node's `check` reports fingerprints of what must be one truth across its cluster (the CA certificates and
keys, sa.key/sa.pub: SHA-256 of certificates and public keys, never a private key) and what it finds alone (an
apiserver certificate without the endpoint, an etcd member's URL its certificate does not cover). A node cannot
see that it differs from the others; this filter compares them, cluster by cluster.

What a node reports is untrusted: a node an attacker owns could report anything. So every value is checked for its
type and length, a fingerprint must be 64 lowercase hex digits, text is cut to a bound and stripped of control
characters before it reaches a table or a terminal, and nothing is ever evaluated. A node whose report does not
have that shape is a finding of its own, naming it; it cannot hide another node's difference or break the report.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# What must be the same on every control-plane node, in this order, and what to call it in a finding.
IDENTITIES = (
    ('ca', 'the cluster CA (ca.crt/ca.key)'),
    ('etcd-ca', 'the etcd CA (etcd/ca.crt, etcd/ca.key)'),
    ('front-proxy-ca', 'the front-proxy CA (front-proxy-ca.crt/front-proxy-ca.key)'),
    ('sa', 'the service-account key pair (sa.key/sa.pub)'),
)
# Compared in this order; the first that differs makes the finding (a different certificate has a different key).
FIELDS = (
    ('certificate_sha256', 'certificate SHA-256'),
    ('public_key_sha256', 'public key SHA-256'),
    ('key_public_key_sha256', 'key file public key SHA-256'),
)
# What goes wrong when each differs between nodes.
CONSEQUENCES = {
    'ca': 'clients and kubelets trusted by one apiserver are refused by another',
    'etcd-ca': 'etcd peers refuse each other and the apiservers',
    'front-proxy-ca': 'aggregated APIs (metrics-server) refuse requests proxied by another apiserver',
    'sa': 'service-account tokens signed by one apiserver are rejected by another',
}
_HEX = re.compile(r'^[0-9a-f]{64}$')
_CONTROL = re.compile(r'[\x00-\x1f\x7f-\x9f]')
MAX_TEXT = 2000
MAX_FINDINGS = 64
MAX_IDENTITIES = 16


def _text(value, what, limit=MAX_TEXT):
    if not isinstance(value, str):
        raise ValueError('%s is not a string' % what)
    return _CONTROL.sub(' ', value)[:limit]


def _fingerprint(value, what):
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX.match(value):
        raise ValueError('%s is not a SHA-256 fingerprint (64 lowercase hex digits)' % what)
    return value


def _node_report(consistency):
    """The parts of one node's `consistency` result this filter uses, checked; ValueError on a bad shape."""
    if not isinstance(consistency, dict):
        raise ValueError('consistency is not a mapping')
    identity = consistency.get('identity', [])
    if not isinstance(identity, list) or len(identity) > MAX_IDENTITIES:
        raise ValueError('consistency.identity is not a list of at most %d entries' % MAX_IDENTITIES)
    known = dict(IDENTITIES)
    ids = {}
    for i, entry in enumerate(identity):
        if not isinstance(entry, dict):
            raise ValueError('consistency.identity[%d] is not a mapping' % i)
        name = entry.get('name')
        if name not in known or name in ids:
            raise ValueError('consistency.identity[%d].name is not one of %s, once each' % (i, ', '.join(known)))
        ids[name] = {
            'path': _text(entry.get('path', ''), 'consistency.identity[%d].path' % i, 4096),
            'fields': dict(
                (field, _fingerprint(entry.get(field), 'consistency.identity[%d].%s' % (i, field))) for field, _label in FIELDS
            ),
        }
    sans = consistency.get('apiserver_sans', [])
    if not isinstance(sans, list):
        raise ValueError('consistency.apiserver_sans is not a list')
    findings = consistency.get('findings', [])
    if not isinstance(findings, list) or len(findings) > MAX_FINDINGS:
        raise ValueError('consistency.findings is not a list of at most %d entries' % MAX_FINDINGS)
    own = []
    for i, f in enumerate(findings):
        if not isinstance(f, dict):
            raise ValueError('consistency.findings[%d] is not a mapping' % i)
        own.append({
            'file': _text(f.get('file'), 'consistency.findings[%d].file' % i, 4096),
            'message': _text(f.get('message'), 'consistency.findings[%d].message' % i),
        })
    # a control-plane node has an apiserver certificate; a worker's ca.crt is not compared
    return {'control_plane': len(sans) > 0, 'identity': ids, 'findings': own}


def _groups(values):
    """{value: [nodes]} as a list of (value, nodes), the most nodes first, then by the first node's name."""
    by_value = {}
    for node, value in values:
        by_value.setdefault(value, []).append(node)
    return sorted(by_value.items(), key=lambda kv: (-len(kv[1]), sorted(kv[1])[0]))


def _cluster_findings(cluster, reports):
    """What differs between the control-plane nodes of one cluster: one finding per identity."""
    out = []
    nodes = sorted(n for n, r in reports.items() if r['control_plane'])
    for name, label in IDENTITIES:
        for field, field_label in FIELDS:
            values = [
                (n, reports[n]['identity'][name]['fields'][field]) for n in nodes
                if name in reports[n]['identity'] and reports[n]['identity'][name]['fields'][field] is not None
            ]
            groups = _groups(values)
            if len(groups) < 2:
                continue
            # the majority is taken to be right; with no majority every node is named
            tied = len(groups[0][1]) == len(groups[1][1])
            named = sorted(n for value, members in (groups if tied else groups[1:]) for n in members)
            majority_node = sorted(groups[0][1])[0]
            path = reports[majority_node]['identity'][name]['path']
            said = '; '.join(
                '%s %s %s %s' % (', '.join(sorted(members)), 'has' if len(members) == 1 else 'have', field_label, value)
                for value, members in groups
            )
            out.append({
                'cluster': cluster,
                'kind': 'cluster',
                'nodes': named,
                'file': path,
                'message': '%s: %s differs between control-plane nodes (%s): %s: %s' % (
                    cluster, label, path, said, CONSEQUENCES[name]),
            })
            break
    return out


def consistency(nodes):
    """Findings across the nodes of each cluster and each node's own; see consistency.yml."""
    if not isinstance(nodes, list):
        raise AnsibleFilterError('consistency: the input must be a list of {node, cluster, consistency}')
    by_cluster = {}
    out = []
    for i, n in enumerate(nodes):
        if not isinstance(n, dict) or not isinstance(n.get('node'), str) or not isinstance(n.get('cluster'), str):
            raise AnsibleFilterError('consistency: input[%d] is not a {node, cluster, consistency} mapping' % i)
        node, cluster = n['node'], n['cluster']
        if n.get('consistency') is None:
            continue  # the node's check did not gather it (certificates named, or the check failed)
        try:
            report = _node_report(n['consistency'])
        except ValueError as e:
            out.append({
                'cluster': cluster, 'kind': 'node', 'nodes': [node], 'file': '',
                'message': '%s/%s: its consistency report is malformed (%s): not compared' % (cluster, node, e),
            })
            continue
        by_cluster.setdefault(cluster, {})[node] = report
        for f in report['findings']:
            out.append({
                'cluster': cluster, 'kind': 'node', 'nodes': [node], 'file': f['file'],
                'message': '%s/%s: %s' % (cluster, node, f['message']),
            })
    for cluster in sorted(by_cluster):
        out.extend(_cluster_findings(cluster, by_cluster[cluster]))
    return sorted(out, key=lambda f: (f['cluster'], f['kind'] != 'cluster', f['nodes'], f['file'], f['message']))


class FilterModule(object):

    def filters(self):
        return {'consistency': consistency}
