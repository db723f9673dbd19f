# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The ca_renewal filter: what the renewing node returns is installed elsewhere only when it is the CA renewed."""

from __future__ import annotations

import datetime
import hashlib

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.k8s_pki.kubeadm.plugins.filter.ca_renewal import ca_renewal, ca_renewal_plan, public_key_raw
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NOW = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def ca_pem(key=_KEY, cn='kubernetes', not_before=NOW - 3650 * DAY, days=3650, ca=True, serial=1, signer=None,
           ski_key=None, key_cert_sign=True):
    """A CA certificate as kubeadm makes it (CN=kubernetes, CA:TRUE, keyCertSign), with room for the lies."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(serial).not_valid_before(not_before).not_valid_after(not_before + days * DAY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key((ski_key or key).public_key()), critical=False))
    return builder.sign(signer or key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


OLD = ca_pem()
FRESH = NOW - datetime.timedelta(minutes=5)  # kubeadm-certs backdates a renewed CA by five minutes
REPORTED = hashlib.sha256(public_key_raw(x509.load_pem_x509_certificate(OLD.encode()))).hexdigest()


def accepted(new, **kw):
    kw.setdefault('public_key_sha256', REPORTED)
    return ca_renewal(new, OLD, name='ca', node='a-cp1', path='/etc/kubernetes/pki/ca.crt', now=NOW, **kw)


def refused(new, why, **kw):
    with pytest.raises(AnsibleFilterError, match=why) as caught:
        accepted(new, **kw)
    message = str(caught.value)
    assert 'a-cp1' in message and '/etc/kubernetes/pki/ca.crt' in message and 'nothing was installed' in message
    return message


def test_the_ca_renewed_with_its_own_key_is_accepted_and_described():
    new = ca_pem(not_before=FRESH, serial=2)
    facts = accepted(new)
    assert facts['public_key_sha256'] == REPORTED
    assert facts['serial'] == '2' and facts['not_before'] == '2026-12-04T11:55:00Z'
    assert facts['certificate_sha256'] == hashlib.sha256(x509.load_pem_x509_certificate(new.encode())
                                                         .public_bytes(serialization.Encoding.DER)).hexdigest()
    assert facts['pem'] == new


def test_the_public_key_fingerprint_is_the_one_kubeadm_certs_check_reports_for_rsa_and_ecdsa():
    # kubeadm-certs hashes the subjectPublicKey bit string: PKCS#1 for RSA, the uncompressed point for ECDSA
    rsa_cert = x509.load_pem_x509_certificate(OLD.encode())
    pkcs1 = _KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    assert public_key_raw(rsa_cert) == pkcs1
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_cert = x509.load_pem_x509_certificate(ca_pem(key=ec_key).encode())
    point = ec_key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert public_key_raw(ec_cert) == point


def test_a_certificate_with_another_key_is_refused_naming_both_spki_fingerprints():
    message = refused(ca_pem(key=_OTHER, not_before=FRESH, serial=2, ski_key=_KEY), 'is not the CA\'s')
    assert 'rotation, not a renewal' in message and message.count('SPKI SHA-256') == 2


def test_another_subject_is_refused():
    refused(ca_pem(cn='evil', not_before=FRESH, serial=2), 'its subject "CN=evil" is not the CA\'s "CN=kubernetes"')


def test_a_leaf_with_the_cas_key_is_refused():
    refused(ca_pem(ca=False, not_before=FRESH, serial=2), r'not a CA certificate')
    refused(ca_pem(key_cert_sign=False, not_before=FRESH, serial=2), r'keyCertSign')


def test_a_certificate_signed_by_another_key_is_refused():
    refused(ca_pem(signer=_OTHER, not_before=FRESH, serial=2), 'not self-signed')


def test_the_old_certificate_returned_again_is_refused():
    refused(OLD, 'its serial is the old certificate')


def test_a_validity_that_does_not_start_about_now_is_refused():
    refused(ca_pem(not_before=NOW - 30 * DAY, serial=2), 'not this run\'s renewal')
    refused(ca_pem(not_before=NOW + DAY, serial=2), 'in the future')


def test_a_resumed_run_accepts_an_earlier_renewal_but_never_one_older_than_the_old_certificate():
    accepted(ca_pem(not_before=NOW - 30 * DAY, serial=2), max_age=None)
    refused(ca_pem(not_before=NOW - 3651 * DAY, serial=2), 'before the certificate it replaces', max_age=None)


def test_a_bundle_a_key_or_garbage_is_refused():
    new = ca_pem(not_before=FRESH, serial=2)
    refused(new + OLD, r'not exactly one PEM certificate \(2 PEM block')
    key = _KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    message = refused(new + key, 'not exactly one PEM certificate')
    assert 'PRIVATE KEY' in message and 'MII' not in message  # the block's name, never a byte of it
    refused(new + 'trailing text\n', 'not exactly one PEM certificate')
    refused('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'cannot be parsed')
    refused('x' * (64 * 1024 + 1), 'not PEM text')


def test_an_old_certificate_other_than_the_one_the_nodes_reported_is_refused():
    refused(ca_pem(not_before=FRESH, serial=2), 'not the one the control-plane nodes reported', public_key_sha256='0' * 64)
    with pytest.raises(AnsibleFilterError, match='64 lowercase hex digits'):
        accepted(ca_pem(not_before=FRESH, serial=2), public_key_sha256='ABC')


A = 'a' * 64
B = 'b' * 64
C = 'c' * 64
K = 'd' * 64
L = 'e' * 64


def node(name, cert=A, public=K, key=K, not_after='2036-12-01T00:00:00Z', cluster='alpha', ca='ca'):
    """One control-plane node's state=check result, the parts ca_renewal_plan reads."""
    identity = {'name': ca, 'path': '/etc/kubernetes/pki/ca.crt', 'certificate_sha256': cert,
                'public_key_sha256': public, 'key_path': '/etc/kubernetes/pki/ca.key', 'key_public_key_sha256': key}
    return {'node': name, 'cluster': cluster, 'consistency': {'identity': [identity]},
            'certificate_authorities': [{'name': ca, 'not_after': not_after}]}


def test_every_node_with_the_same_certificate_is_renewed_on_the_first_node_sorted():
    out = ca_renewal_plan([node('cp3', key=None), node('cp1'), node('cp2', key=None), node('b1', cert=B, cluster='beta')])
    assert out['refusals'] == []
    alpha = out['plans'][0]
    beta = out['plans'][1]
    assert (alpha['cluster'], alpha['first'], alpha['phase'], alpha['nodes']) == ('alpha', 'cp1', 'renew', ['cp1', 'cp2', 'cp3'])
    assert alpha['reference'] == 'cp1' and alpha['old_certificate_sha256'] == A and alpha['behind'] == []
    assert (beta['first'], beta['certificate_sha256']) == ('b1', B)


def test_a_node_with_another_ca_is_refused_by_name_with_both_fingerprints():
    out = ca_renewal_plan([node('cp1'), node('cp2'), node('cp3', cert=B, public=L)])
    assert len(out['refusals']) == 1
    assert 'alpha: cp3 hold(s) another ca certificate (/etc/kubernetes/pki/ca.crt) than cp1' in out['refusals'][0]
    assert K in out['refusals'][0] and 'cp3 has public key SHA-256 ' + L in out['refusals'][0]


def test_a_first_node_without_the_ca_key_is_refused():
    out = ca_renewal_plan([node('cp1', key=None), node('cp2')])
    assert len(out['refusals']) == 1 and out['refusals'][0].startswith('alpha/cp1, the first control-plane node, does not hold')


def test_a_run_stopped_after_the_first_node_is_resumed_from_what_the_nodes_hold():
    out = ca_renewal_plan([node('cp1', cert=B, not_after='2037-12-01T00:00:00Z'), node('cp2'), node('cp3')])
    assert out['refusals'] == []
    plan = out['plans'][0]
    assert plan['phase'] == 'resume' and plan['behind'] == ['cp2', 'cp3'] and plan['reference'] == 'cp2'
    assert (plan['certificate_sha256'], plan['old_certificate_sha256']) == (B, A)


def test_a_node_with_a_later_or_a_third_certificate_of_the_same_key_is_refused():
    out = ca_renewal_plan([node('cp1'), node('cp2', cert=B, not_after='2037-12-01T00:00:00Z')])
    assert len(out['refusals']) == 1 and 'cp2 has certificate SHA-256 ' + B in out['refusals'][0]
    out = ca_renewal_plan([node('cp1', cert=C, not_after='2038-01-01T00:00:00Z'), node('cp2'), node('cp3', cert=B)])
    assert len(out['refusals']) == 1 and 'different ca certificates' in out['refusals'][0]


def test_a_node_whose_check_failed_is_refused_by_name_with_the_modules_message_cut_and_without_control_characters():
    failed = {'node': 'cp3', 'cluster': 'alpha', 'failed': True,
              'msg': '/etc/kubernetes/admin.conf: not issued by the CA\x1b[31m' + 'x' * 5000}
    out = ca_renewal_plan([node('cp1'), node('cp2'), failed])
    assert len(out['refusals']) == 1
    refusal = out['refusals'][0]
    assert refusal.startswith('alpha/cp3: its check failed (/etc/kubernetes/admin.conf: not issued by the CA [31m')
    assert '\x1b' not in refusal and len(refusal) < 1200
    assert [p['nodes'] for p in out['plans']] == [['cp1', 'cp2']]


def test_a_malformed_report_is_refused_naming_the_node():
    out = ca_renewal_plan([node('cp1'), node('cp2', cert='not hex'), {'node': 'cp3', 'cluster': 'alpha'}])
    assert [r.split(':')[0] for r in out['refusals']] == ['alpha/cp2', 'alpha/cp3']
    with pytest.raises(AnsibleFilterError, match='ca, etcd-ca or front-proxy-ca'):
        ca_renewal_plan([], name='sa')
