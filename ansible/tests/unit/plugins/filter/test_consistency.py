# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The consistency filter: differences between the control-plane nodes of a cluster, named node by node."""

from __future__ import annotations

import copy

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.k8s_pki.kubeadm.plugins.filter.consistency import consistency

A = 'a' * 64
B = 'b' * 64
C = 'c' * 64


def report(sa=A, ca=A, findings=(), control_plane=True):
    """A node's consistency return value as kubeadm-certs check writes it."""
    def ident(name, value, cert=True):
        return {
            'name': name, 'path': '/etc/kubernetes/pki/%s' % ('sa.pub' if name == 'sa' else name + '.crt'),
            'certificate_sha256': value if cert else None, 'public_key_sha256': value,
            'key_path': '/etc/kubernetes/pki/x.key', 'key_public_key_sha256': value,
        }
    return {
        'identity': [ident('ca', ca), ident('etcd-ca', A), ident('front-proxy-ca', A), ident('sa', sa, cert=False)],
        'apiserver_sans': ['DNS:kubernetes'] if control_plane else [],
        'findings': [dict(f) for f in findings],
        'reasons': [],
    }


def node(name, cluster='alpha', **kw):
    return {'node': name, 'cluster': cluster, 'consistency': report(**kw)}


def test_a_clean_cluster_has_no_finding():
    assert consistency([node('cp1'), node('cp2'), node('cp3'), node('b1', cluster='beta', sa=B, ca=B)]) == []


def test_a_node_with_another_sa_key_is_named_with_the_file_and_both_fingerprints_majority_first():
    found = consistency([node('cp1'), node('cp2', sa=B), node('cp3')])
    assert len(found) == 1
    f = found[0]
    assert f['cluster'] == 'alpha' and f['kind'] == 'cluster' and f['nodes'] == ['cp2']
    assert f['file'] == '/etc/kubernetes/pki/sa.pub'
    assert 'sa.key/sa.pub' in f['message']
    assert f['message'].index('cp1, cp3 have public key SHA-256 ' + A) < f['message'].index('cp2 has public key SHA-256 ' + B)
    assert 'service-account tokens' in f['message']


def test_a_different_ca_is_one_finding_by_its_certificate_and_a_tie_names_every_node():
    found = consistency([node('cp1'), node('cp2', ca=B)])
    assert [f['nodes'] for f in found] == [['cp1', 'cp2']]
    assert 'certificate SHA-256' in found[0]['message'] and '/etc/kubernetes/pki/ca.crt' in found[0]['message']


def test_clusters_are_compared_apart_and_workers_not_at_all():
    nodes = [node('cp1'), node('w1', ca=B, sa=B, control_plane=False), node('b1', cluster='beta', ca=C)]
    assert consistency(nodes) == []


def test_a_key_file_that_differs_while_the_certificate_does_not_is_found():
    odd = node('cp3')
    odd['consistency']['identity'][2]['key_public_key_sha256'] = C
    found = consistency([node('cp1'), node('cp2'), odd])
    assert [(f['nodes'], f['file']) for f in found] == [(['cp3'], '/etc/kubernetes/pki/front-proxy-ca.crt')]
    assert 'key file public key SHA-256' in found[0]['message']


def test_a_node_s_own_findings_are_named_with_it_after_the_cluster_s():
    own = {'file': '/etc/kubernetes/pki/apiserver.crt', 'message': '/etc/kubernetes/pki/apiserver.crt: lacks DNS:lb'}
    found = consistency([node('cp1', findings=[own]), node('cp2', sa=B), node('cp3')])
    assert [(f['kind'], f['nodes']) for f in found] == [('cluster', ['cp2']), ('node', ['cp1'])]
    assert found[1]['message'] == 'alpha/cp1: /etc/kubernetes/pki/apiserver.crt: lacks DNS:lb'


def test_a_node_without_a_report_is_skipped():
    assert consistency([node('cp1'), {'node': 'cp2', 'cluster': 'alpha', 'consistency': None}]) == []


@pytest.mark.parametrize('break_it, why', [
    (lambda r: r.update(identity='nope'), 'identity is not a list'),
    (lambda r: r['identity'][0].update(certificate_sha256='{{ lookup("pipe", "id") }}'), 'not a SHA-256 fingerprint'),
    (lambda r: r['identity'][0].update(certificate_sha256=A.upper()), 'not a SHA-256 fingerprint'),
    (lambda r: r['identity'][0].update(public_key_sha256=A + '00'), 'not a SHA-256 fingerprint'),
    (lambda r: r['identity'][1].update(name='ca'), 'once each'),
    (lambda r: r['identity'].extend([{}] * 20), 'at most 16'),
    (lambda r: r.update(findings=[{'file': 1, 'message': 'x'}]), 'findings[0].file is not a string'),
    (lambda r: r.update(findings=[{'file': 'f', 'message': 'x'}] * 65), 'at most 64'),
])
def test_a_malformed_report_is_a_finding_naming_its_node_and_is_not_compared(break_it, why):
    bad = node('cp2', sa=B)
    break_it(bad['consistency'])
    found = consistency([node('cp1'), bad, node('cp3')])
    assert len(found) == 1, found
    assert found[0]['nodes'] == ['cp2'] and 'alpha/cp2: its consistency report is malformed' in found[0]['message']
    assert why in found[0]['message']


def test_control_characters_and_length_of_a_node_s_text_are_bounded():
    own = {'file': '/x\x1b[31m', 'message': 'lacks\nDNS:lb' + 'x' * 5000}
    found = consistency([node('cp1', findings=[own])])
    assert '\x1b' not in found[0]['file'] and '\n' not in found[0]['message']
    assert len(found[0]['message']) < 2100


def test_the_input_must_be_a_list_of_nodes():
    with pytest.raises(AnsibleFilterError):
        consistency({'node': 'cp1'})
    with pytest.raises(AnsibleFilterError):
        consistency([{'cluster': 'alpha'}])
    # the input is not changed
    nodes = [node('cp1'), node('cp2', sa=B)]
    before = copy.deepcopy(nodes)
    consistency(nodes)
    assert nodes == before
