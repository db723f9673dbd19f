# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The ca_rotation_plan and ca_rotation_new filters: the rotation's phase and each node's step, read from the nodes."""

from __future__ import annotations

import datetime
import hashlib
import json

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.k8s_pki.kubeadm.plugins.filter.ca_rotation_plan import ca_rotation_new, ca_rotation_plan
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

OLD = 'a' * 64
NEW = 'b' * 64
OTHER = 'c' * 64
PATH = '/etc/kubernetes/pki/ca.crt'
KUBELET = '/var/lib/kubelet/pki/kubelet-client-current.pem'
FRESH = json.dumps({'started': 2000, 'kubeconfig_written': 1000, 'client_written': 1500})


def cert(sha, signing=False):
    return {'sha256': sha, 'spki_sha256': sha[:1] * 64, 'subject': 'CN=kubernetes', 'serial': '1',
            'not_before': '2026-01-01T00:00:00Z', 'not_after': '2036-01-01T00:00:00Z', 'signing': signing}


def node(name, state='single', certs=(OLD,), role='control_plane', by_other=(), untrusted=(), stale=(), probe=FRESH,
         kubelet=True, **extra):
    """A node's check result as the role hands it to the filter (kubeadm-certs check's ca_rotation, components,
    kubelet, and the kubelet probe's output)."""
    keyed = role == 'control_plane'
    item = {'name': 'ca', 'path': PATH, 'state': state, 'reason': None,
            'certificates': [cert(s, signing=keyed and i == 0) for i, s in enumerate(certs)],
            'next_key': keyed and state == 'trusting', 'previous_key': keyed and state in ('reissuing', 'reissued'),
            'issued_by_other': [{'name': n, 'path': '/x/' + n} for n in by_other],
            'untrusted': [{'name': n, 'path': '/x/' + n, 'issuer': 'CN=other'} for n in untrusted]}
    item.update(extra)
    return {'node': name, 'role': role, 'failed': False, 'msg': '', 'ca_rotation': [item],
            'components': [{'name': c, 'pid': 1, 'stale': True, 'reason': 'started before ca.crt was written'}
                           for c in stale],
            'kubelet': [{'name': 'kubelet-client', 'path': KUBELET, 'missing': False, 'issuer': 'CN=kubernetes'}]
            if kubelet else [],
            'kubelet_process': probe}


def worker(name, certs=(OLD,), by_other=(), **kw):
    return node(name, state='single' if len(certs) == 1 else 'trusting', certs=certs, role='worker',
                by_other=by_other, **kw)


def plan(nodes, **kw):
    kw.setdefault('from_sha256', OLD)
    return ca_rotation_plan(nodes, name='ca', **kw)


def steps(p):
    return {n: v['step'] for n, v in p['nodes'].items()}


def refused(p, *words):
    assert p['phase'] is None or p['refusals'], p
    text = ' | '.join(p['refusals'])
    for word in words:
        assert word in text, text
    return text


def test_every_node_on_old_starts_phase_a_by_generating_new_on_the_first_control_plane_node():
    p = plan([node('cp2'), node('cp1'), worker('w1')])
    assert p['refusals'] == [] and p['phase'] == 'trust' and p['new'] is None and p['first'] == 'cp1'
    assert steps(p) == {'cp1': 'generate', 'cp2': 'trust', 'w1': 'trust'}
    assert p['source'] == {'node': 'cp1', 'position': 1, 'bundle': 'ca.crt', 'key': 'ca.next.key'}


def test_a_phase_a_stopped_midway_takes_new_from_a_control_plane_node_that_trusts_it():
    p = plan([node('cp1', 'trusting', (OLD, NEW)), node('cp2'), worker('w1', (OLD, NEW)), worker('w2')])
    assert p['refusals'] == [] and p['phase'] == 'trust' and p['new'] == NEW
    assert steps(p) == {'cp1': 'none', 'cp2': 'trust', 'w1': 'none', 'w2': 'trust'}
    assert p['source'] == {'node': 'cp1', 'position': 1, 'bundle': 'ca.crt', 'key': 'ca.next.key'}


def test_a_component_or_kubelet_still_running_with_the_old_files_keeps_phase_a_open_and_is_restarted():
    stale_kubelet = json.dumps({'started': 1000, 'kubeconfig_written': 1200, 'client_written': None})
    p = plan([node('cp1', 'trusting', (OLD, NEW), stale=['kube-controller-manager']),
              node('cp2', 'trusting', (OLD, NEW)), worker('w1', (OLD, NEW), probe=stale_kubelet)])
    assert p['phase'] == 'trust' and steps(p) == {'cp1': 'restart', 'cp2': 'none', 'w1': 'restart'}
    assert p['nodes']['w1']['stale'] == ['kubelet']
    blockers = ' | '.join(p['blockers']['trust'])
    assert 'cp1: still runs' in blockers and 'kube-controller-manager' in blockers and 'w1: still runs' in blockers
    assert 'kubelet.conf was written (1970-01-01T00:20:00Z)' in blockers


def test_a_kubelet_restarted_in_the_second_its_certificate_was_written_is_after_it():
    # the probe gives hundredths: whole seconds made a kubelet restarted at 22:36:25.9 after a write at 22:36:25.5 read
    # as started before it (a real worker, phase b), and the phase never finished
    after = json.dumps({'started': 1796422585.93, 'kubeconfig_written': 1796422585.51, 'client_written': 1796422585.52})
    p = plan([node('cp1', 'trusting', (OLD, NEW)), worker('w1', (OLD, NEW), probe=after)])
    assert p['nodes']['w1']['stale'] == []
    before = json.dumps({'started': 1796422585.51, 'kubeconfig_written': None, 'client_written': 1796422585.93})
    p = plan([node('cp1', 'trusting', (OLD, NEW)), worker('w1', (OLD, NEW), probe=before)])
    assert p['nodes']['w1']['stale'] == ['kubelet']


def test_a_kubelet_that_is_not_running_is_stale():
    p = plan([node('cp1', 'trusting', (OLD, NEW), probe=json.dumps({'started': None}))])
    assert steps(p) == {'cp1': 'restart'} and 'the kubelet is not running' in p['blockers']['trust'][0]


def test_once_every_node_trusts_both_phase_b_reissues_the_control_planes_then_the_workers_kubelet_clients():
    p = plan([node('cp1', 'trusting', (OLD, NEW)), node('cp2', 'trusting', (OLD, NEW)), worker('w1', (OLD, NEW))])
    assert p['refusals'] == [] and p['phase'] == 'reissue' and p['source'] is None
    assert steps(p) == {'cp1': 'reissue', 'cp2': 'reissue', 'w1': 'kubelet-client'}
    assert 'signed on cp1' in p['nodes']['w1']['says']


def test_a_control_plane_node_reissued_yet_holding_leaves_by_old_is_reissued_again_naming_the_files():
    p = plan([node('cp1', 'reissued', (NEW, OLD), by_other=['apiserver']), node('cp2', 'reissuing', (NEW, OLD)),
              worker('w1', (OLD, NEW), by_other=['kubelet-client'])])
    assert p['phase'] == 'reissue' and steps(p) == {'cp1': 'reissue', 'cp2': 'reissue', 'w1': 'none'}
    assert 'apiserver (/x/apiserver)' in p['nodes']['cp1']['says']


def test_a_worker_kubelet_client_certificate_is_by_new_only_when_ca_rotation_lists_it_issued_by_the_second():
    reissued = [node('cp1', 'reissued', (NEW, OLD)), node('cp2', 'reissued', (NEW, OLD))]
    p = plan(reissued + [worker('w1', (OLD, NEW))])
    assert p['phase'] == 'reissue' and steps(p)['w1'] == 'kubelet-client'
    assert 'w1: its kubelet client certificate (%s) is still issued by OLD' % KUBELET in p['blockers']['reissue']
    p = plan(reissued + [worker('w1', (OLD, NEW), kubelet=False)])
    assert 'w1: its kubelet client certificate is missing' in p['blockers']['reissue']
    p = plan(reissued + [worker('w1', (OLD, NEW), untrusted=['kubelet-client'], by_other=['kubelet-client'])])
    assert steps(p)['w1'] == 'kubelet-client' and 'trusted by no certificate' in p['blockers']['reissue'][0]
    p = plan(reissued + [worker('w1', (OLD, NEW), by_other=['kubelet-client'])])
    assert p['phase'] == 'drop' and steps(p) == {'cp1': 'drop', 'cp2': 'drop', 'w1': 'drop'}


def test_phase_c_drops_old_node_by_node_and_a_run_stopped_midway_finishes_it():
    p = plan([node('cp1', certs=(NEW,)), node('cp2', 'reissued', (NEW, OLD)),
              worker('w1', (OLD, NEW), by_other=['kubelet-client'])])
    assert p['refusals'] == [] and p['phase'] == 'drop' and steps(p) == {'cp1': 'none', 'cp2': 'drop', 'w1': 'drop'}


def test_every_node_on_new_is_done_and_a_second_run_changes_nothing():
    nodes = [node('cp1', certs=(NEW,)), node('cp2', certs=(NEW,)), worker('w1', (NEW,))]
    for run in (1, 2):
        p = plan(nodes)
        assert run and p['refusals'] == []
        assert p['refusals'] == [] and p['phase'] == 'done' and p['new'] == NEW
        assert set(steps(p).values()) == {'none'} and p['summary'].startswith('done')


def test_a_component_stale_after_the_last_drop_keeps_phase_c_open():
    p = plan([node('cp1', certs=(NEW,), stale=['kube-scheduler']), node('cp2', certs=(NEW,))])
    assert p['phase'] == 'drop' and steps(p) == {'cp1': 'restart', 'cp2': 'none'}


def test_no_node_holding_rotate_ca_from_and_all_on_one_other_certificate_is_done():
    p = plan([node('cp1', certs=(OTHER,)), node('cp2', certs=(OTHER,))])
    assert p['refusals'] == [] and p['phase'] == 'done' and p['new'] == OTHER


def test_without_rotate_ca_from_it_refuses_naming_what_each_node_holds_and_suggests_the_fingerprint():
    p = plan([node('cp1'), node('cp2'), worker('w1')], from_sha256='')
    text = refused(p, 'rotate_ca_from is not set', '-e rotate_ca_from=SHA256', 'cp1 holds %s (single)' % OLD)
    assert 'w1 holds' in text and p['suggested_from'] == OLD and p['phase'] is None
    assert p['nodes']['cp2']['certificates'] == [OLD]
    p = plan([node('cp1'), node('cp2', 'trusting', (OLD, NEW))], from_sha256=None)
    assert p['suggested_from'] is None


def test_a_malformed_rotate_ca_from_is_refused():
    refused(plan([node('cp1')], from_sha256='AB' * 32), 'is not a SHA-256 fingerprint')


def test_two_different_new_certificates_on_two_nodes_are_refused_naming_both():
    p = plan([node('cp1', 'trusting', (OLD, NEW)), node('cp2', 'trusting', (OLD, OTHER))])
    refused(p, 'two different new certificates', 'cp1 trusts %s' % NEW, 'cp2 trusts %s' % OTHER)
    assert p['phase'] is None


def test_a_node_holding_neither_old_nor_new_is_refused_by_name():
    p = plan([node('cp1', 'trusting', (OLD, NEW)), worker('w9', (OTHER,))])
    refused(p, 'w9: holds neither OLD (%s) nor NEW (%s) but %s' % (OLD, NEW, OTHER))
    p = plan([node('cp1'), node('cp2', certs=(OTHER,))])
    refused(p, 'different certificates, none beside another', 'cp2 holds %s' % OTHER)
    refused(plan([node('cp1', 'trusting', (OTHER, NEW))]), 'cp1: holds two certificates', 'neither of them')


def test_an_inconsistent_node_is_refused_with_its_reason_bounded_and_without_control_characters():
    p = plan([node('cp1'), node('cp2', 'inconsistent', (OLD,), reason='ca.key\x1b[31m matches ' + 'x' * 5000)])
    text = refused(p, 'cp2: its ca files are inconsistent: ca.key [31m matches')
    assert '\x1b' not in text and len(text) < 1200


def test_a_failed_check_or_an_unknown_state_or_a_bad_fingerprint_is_refused_by_node():
    failed = node('cp2')
    failed.update(failed=True, msg='permission denied')
    refused(plan([node('cp1'), failed]), 'cp2: its check failed (permission denied)')
    refused(plan([node('cp1', 'rotating')]), 'cp1: its ca state "rotating" is none of')
    refused(plan([node('cp1', certs=(OLD.upper(),))]), 'cp1: the sha256 of its ca certificate 1 is not a SHA-256')
    refused(plan([node('cp1', 'trusting', (OLD,))]), 'cp1: its ca state is trusting with 1 certificates')
    old_binary = node('cp1')
    del old_binary['ca_rotation']
    refused(plan([old_binary]), 'cp1: its check reported no ca_rotation')
    refused(plan([node('cp1', probe='garbage')]), 'cp1: when its kubelet started could not be read')
    refused(plan([node('cp1', probe=json.dumps({'started': True}))]), 'started is not a time')


def test_a_rotation_the_other_way_or_a_control_plane_node_without_the_key_is_refused():
    refused(plan([node('cp1', 'trusting', (NEW, OLD))]), 'cp1: trusting with %s = [NEW, OLD]' % PATH)
    refused(plan([node('cp1', 'reissued', (OLD, NEW))]), 'cp1: reissued with %s = [OLD, NEW]' % PATH)
    keyless = node('cp1')
    keyless['ca_rotation'][0]['certificates'][0]['signing'] = False
    refused(plan([keyless]), 'cp1: holds no key of its certificate', 'external CA')
    refused(plan([node('cp1', 'trusting', (OLD, NEW), next_key=False)]), 'without holding its key')


def test_a_node_dropped_old_while_another_does_not_trust_new_yet_is_refused_naming_both():
    p = plan([node('cp1', certs=(NEW,)), node('cp2', 'trusting', (OLD, NEW)), worker('w1')])
    refused(p, 'cp1 hold(s) only NEW', 'w1 hold(s) only OLD')


def test_phase_c_asked_while_a_leaf_is_still_by_old_is_refused_naming_node_and_file():
    nodes = [node('cp1', 'reissued', (NEW, OLD)), node('cp2', 'reissued', (NEW, OLD), by_other=['etcd-peer']),
             worker('w1', (OLD, NEW))]
    p = plan(nodes, phase='drop')
    refused(p, 'rotate_ca_phase=drop asked, but phase reissue is not finished', 'cp2: reissued, still issued by OLD: '
            'etcd-peer (/x/etcd-peer)', 'w1: its kubelet client certificate')
    refused(plan(nodes, phase='trust'), 'rotate_ca_phase=trust asked, but that phase is finished')
    assert plan(nodes, phase='reissue')['refusals'] == []
    done = [node('cp1', certs=(NEW,))]
    assert plan(done, phase='drop')['refusals'] == [] and plan(done, phase='drop')['phase'] == 'done'


def test_after_a_phase_whatever_is_not_done_is_refused_naming_node_and_component():
    p = plan([node('cp1', 'trusting', (OLD, NEW), stale=['kube-scheduler']), worker('w1')], finished='trust')
    refused(p, 'after phase trust, cp1: still runs', 'kube-scheduler', 'after phase trust, w1: does not trust NEW')
    cps_done = [node('cp1', 'reissued', (NEW, OLD)), worker('w1', (OLD, NEW))]
    assert plan(cps_done, finished='reissue-control-planes')['refusals'] == []
    refused(plan(cps_done, finished='reissue'), 'after phase reissue, w1: its kubelet client certificate')
    refused(plan([node('cp1', 'reissuing', (NEW, OLD), by_other=['apiserver'])], finished='reissue-control-planes'),
            'cp1: reissuing, still issued by OLD: apiserver')
    refused(plan([node('cp1', 'reissued', (NEW, OLD))], finished='drop'), 'after phase drop, cp1: still holds OLD')
    assert plan([node('cp1', certs=(NEW,))], finished='drop')['refusals'] == []


def test_untrusted_leaves_are_warnings_and_strings_from_the_node_are_bounded():
    p = plan([node('cp1', untrusted=['apiserver'])])
    assert p['refusals'] == [] and 'apiserver (/x/apiserver), issued by "CN=other"' in p['nodes']['cp1']['warnings'][0]
    long_name = node('cp1', by_other=['n' * 10000])
    assert len(plan([long_name])['nodes']['cp1']['says']) < 1000


def test_a_worker_for_another_ca_or_a_malformed_entry_is_a_programming_error():
    with pytest.raises(AnsibleFilterError, match='only the ca rotation concerns workers'):
        ca_rotation_plan([worker('w1')], name='etcd-ca', from_sha256=OLD)
    with pytest.raises(AnsibleFilterError, match='is not a'):
        ca_rotation_plan([{'node': 'cp1'}], from_sha256=OLD)
    with pytest.raises(AnsibleFilterError, match='finished must be one of'):
        ca_rotation_plan([], from_sha256=OLD, finished='b')


def test_etcd_ca_reads_no_kubelet_and_takes_its_key_from_etcd_ca_next_key():
    cp = node('cp1', probe=None, kubelet=False)
    cp['ca_rotation'][0]['name'] = 'etcd-ca'
    p = ca_rotation_plan([cp], name='etcd-ca', from_sha256=OLD)
    assert p['refusals'] == [] and steps(p) == {'cp1': 'generate'} and p['source']['key'] == 'etcd/ca.next.key'
    cp2 = node('cp2', probe=None, kubelet=False, state='reissued', certs=(NEW, OLD))
    cp2['ca_rotation'][0]['name'] = 'etcd-ca'
    cp['ca_rotation'][0]['name'] = 'etcd-ca'
    p = ca_rotation_plan([cp, cp2], name='etcd-ca', from_sha256=OLD)
    assert p['phase'] == 'trust'
    assert p['source'] == {'node': 'cp2', 'position': 0, 'bundle': 'etcd/ca.crt', 'key': 'etcd/ca.key'}


# ca_rotation_new: NEW as the source node returns it, checked before any other node is given it

NOW = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
_OLD_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_NEW_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ca_pem(key, cn='kubernetes', not_before=NOW - DAY, ca=True, signer=None, serial=1):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(serial).not_valid_before(not_before).not_valid_after(not_before + 3650 * DAY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=True))
    return builder.sign(signer or key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def sha(pem):
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


OLD_PEM = ca_pem(_OLD_KEY, not_before=NOW - 3000 * DAY)
NEW_PEM = ca_pem(_NEW_KEY, serial=2)


def new_facts(bundle, **kw):
    kw.setdefault('old_sha256', sha(OLD_PEM))
    return ca_rotation_new(bundle, node='cp1', path=PATH, now=NOW, **kw)


def new_refused(bundle, why, **kw):
    with pytest.raises(AnsibleFilterError, match=why) as caught:
        new_facts(bundle, **kw)
    message = str(caught.value)
    assert 'cp1' in message and PATH in message and 'no other node was given it' in message


def test_new_is_read_from_either_end_of_the_bundle_and_described():
    facts = new_facts(OLD_PEM + NEW_PEM, new_sha256=sha(NEW_PEM))
    assert facts['certificate_sha256'] == sha(NEW_PEM) and facts['pem'] == NEW_PEM and facts['serial'] == '2'
    assert new_facts(NEW_PEM + OLD_PEM, position=0)['certificate_sha256'] == sha(NEW_PEM)


def test_new_with_another_fingerprint_than_the_nodes_reported_is_refused():
    new_refused(OLD_PEM + NEW_PEM, 'not the %s the nodes reported' % ('d' * 64), new_sha256='d' * 64)


def test_a_bundle_whose_other_certificate_is_not_rotate_ca_from_is_refused():
    new_refused(OLD_PEM + NEW_PEM, 'not rotate_ca_from', old_sha256='e' * 64)


def test_new_with_old_key_or_another_subject_or_not_a_self_signed_ca_is_refused():
    new_refused(OLD_PEM + ca_pem(_OLD_KEY, serial=3), 'a rotation needs a new key')
    new_refused(OLD_PEM + ca_pem(_NEW_KEY, cn='evil'), 'its subject "CN=evil" is not OLD\'s')
    new_refused(OLD_PEM + ca_pem(_NEW_KEY, ca=False), 'not a CA certificate')
    new_refused(OLD_PEM + ca_pem(_NEW_KEY, signer=_OLD_KEY), 'not self-signed')
    new_refused(OLD_PEM + ca_pem(_NEW_KEY, not_before=NOW + DAY), 'in the future')
    new_refused(OLD_PEM + OLD_PEM, 'it is OLD itself')


def test_anything_but_two_pem_certificates_is_refused():
    new_refused(NEW_PEM, 'not exactly two PEM certificates')
    new_refused(OLD_PEM + NEW_PEM + 'trailing', 'not exactly two PEM certificates')
    new_refused(OLD_PEM + '-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n',
                'RSA PRIVATE KEY')
    new_refused('x' * 100000, 'not PEM text')
    with pytest.raises(AnsibleFilterError, match='position must be 0 or 1'):
        ca_rotation_new(OLD_PEM + NEW_PEM, sha(OLD_PEM), position=2)
