# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The external_ca filters: what a node hands over is refused unless it is kubeadm's certificate of that name."""

from __future__ import annotations

import ipaddress

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.k8s_pki.kubeadm.plugins.filter import external_ca as f
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_EC = ec.generate_private_key(ec.SECP256R1())


def csr_pem(cn, orgs=(), dns=(), ips=(), key=_RSA, extra=None, signer=None):
    """A CSR such as kubeadm-certs writes (O attributes, then CN; SANs only), with room for the attacks."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if extra is not None:
        builder = builder.add_extension(extra, critical=True)
    digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(signer or key, digest)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def refused(name, pem, why):
    with pytest.raises(AnsibleFilterError, match=why) as caught:
        f.signing_request(name, pem)
    assert 'Nothing was sent to the signing host' in str(caught.value)


ETCD = dict(dns=('cp1', 'localhost'), ips=('192.0.2.11', '127.0.0.1', '::1'))


def test_a_kubeadm_etcd_peer_csr_gets_the_profile_usages_and_the_csr_sans():
    r = f.signing_request('etcd-peer', csr_pem('cp1', **ETCD))
    assert r['ca'] == 'etcd-ca'
    assert r['subject'] == 'CN=cp1'
    assert r['sans'] == ['DNS:cp1', 'DNS:localhost', 'IP:192.0.2.11', 'IP:127.0.0.1', 'IP:::1']
    assert r['key_usage'] == ['digitalSignature', 'keyEncipherment']
    assert r['extended_key_usage'] == ['serverAuth', 'clientAuth']
    assert r['profile'] == 'peer'
    assert 'basicConstraints = critical, CA:FALSE\n' in r['extensions']
    assert 'subjectAltName = DNS:cp1, DNS:localhost, IP:192.0.2.11, IP:127.0.0.1, IP:::1\n' in r['extensions']


def test_every_kubeadm_name_has_a_profile_and_accepts_its_kubeadm_subject():
    subjects = {
        'admin.conf': ('kubernetes-admin', ('system:masters',)),
        'super-admin.conf': ('kubernetes-super-admin', ('system:masters',)),
        'controller-manager.conf': ('system:kube-controller-manager', ()),
        'scheduler.conf': ('system:kube-scheduler', ()),
        'apiserver-kubelet-client': ('kube-apiserver-kubelet-client', ('kubeadm:cluster-admins',)),
        'apiserver-etcd-client': ('kube-apiserver-etcd-client', ('system:masters',)),
        'etcd-healthcheck-client': ('kube-etcd-healthcheck-client', ()),
        'front-proxy-client': ('front-proxy-client', ()),
    }
    for name, (cn, orgs) in subjects.items():
        r = f.signing_request(name, csr_pem(cn, orgs, key=_EC))
        assert r['extended_key_usage'] == ['clientAuth'] and r['key_usage'] == ['digitalSignature'], name
        assert 'subjectAltName' not in r['extensions'], name
    api = f.signing_request('apiserver', csr_pem('kube-apiserver', dns=('cp1', 'kubernetes'), ips=('10.96.0.1',)))
    assert (api['ca'], api['profile'], api['sans']) == ('ca', 'server', ['DNS:cp1', 'DNS:kubernetes', 'IP:10.96.0.1'])
    assert sorted(f.PROFILES) == sorted(list(subjects) + ['apiserver', 'etcd-server', 'etcd-peer'])


def test_a_san_with_a_newline_and_an_openssl_line_is_refused():
    # the attack: `DNS:x\nbasicConstraints = critical, CA:TRUE` in the extensions file made the CA sign a CA
    refused('etcd-server', csr_pem('cp1', dns=('cp1', 'x\nbasicConstraints = critical, CA:TRUE')),
            "only DNS names")


@pytest.mark.parametrize('san', ['y;touch X;#', 'a,b', 'a{sans}', 'a b', "a'b", 'a"b', 'a\x00b', 'a\x7fb', 'a\tb'])
def test_a_san_outside_the_allowed_characters_is_refused(san):
    refused('apiserver', csr_pem('kube-apiserver', dns=('cp1', san)), 'only DNS names')


def test_a_subject_with_a_placeholder_or_a_comma_is_refused():
    refused('etcd-peer', csr_pem('a{sans}', **ETCD), 'holds characters kubeadm never puts there')
    refused('etcd-peer', csr_pem('cp1, O=system:masters', **ETCD), 'holds characters kubeadm never puts there')


def test_a_subject_other_than_kubeadms_for_the_name_is_refused():
    refused('scheduler.conf', csr_pem('kubernetes-admin', ('system:masters',)), "kubeadm's scheduler.conf certificate has CN=system:kube-scheduler")
    refused('scheduler.conf', csr_pem('system:kube-scheduler', ('system:masters',)), 'asks for O=system:masters')
    refused('etcd-peer', csr_pem('other', **ETCD), 'is not among its DNS SANs')


def test_sans_on_a_client_certificate_are_refused():
    refused('admin.conf', csr_pem('kubernetes-admin', ('system:masters',), dns=('evil.example',)), 'has none')


def test_a_csr_asking_for_ca_true_or_any_extension_but_san_is_refused():
    refused('front-proxy-client', csr_pem('front-proxy-client', extra=x509.BasicConstraints(ca=True, path_length=None)),
            "carry subjectAltName only")


def test_a_csr_whose_signature_does_not_verify_is_refused():
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = csr_pem('front-proxy-client')
    forged = csr_pem('front-proxy-client', key=other)
    # the first CSR's body with the second one's signature: parse both and splice
    a = x509.load_pem_x509_csr(pem.encode())
    b = x509.load_pem_x509_csr(forged.encode())
    der = bytearray(a.public_bytes(serialization.Encoding.DER))
    sig_a, sig_b = a.signature, b.signature
    assert len(sig_a) == len(sig_b)
    der = bytes(der).replace(sig_a, sig_b)
    spliced = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM).decode()
    refused('front-proxy-client', spliced, 'signature does not verify')


def test_a_key_kubeadm_never_makes_is_refused():
    refused('front-proxy-client', csr_pem('front-proxy-client', key=ed25519.Ed25519PrivateKey.generate()),
            'neither RSA')


def test_garbage_and_two_csrs_are_refused():
    refused('apiserver', 'not a CSR', 'exactly one PEM CERTIFICATE REQUEST')
    refused('front-proxy-client', csr_pem('front-proxy-client') * 2, 'exactly one PEM CERTIFICATE REQUEST')


def test_names_outside_kubeadms_table_or_not_asked_for_are_refused():
    assert f.external_ca_names([{'name': 'apiserver'}, {'name': 'etcd-peer'}], ['apiserver', 'etcd-peer']) == \
        ['apiserver', 'etcd-peer']
    for csrs, asked, why in [
        ([{'name': '../../etc/passwd'}], ['apiserver'], "not one of kubeadm's certificates"),
        ([{'name': 'ca'}], ['ca'], "not one of kubeadm's certificates"),
        ([{'name': 'apiserver'}], ['etcd-peer'], 'the role asked for etcd-peer'),
        ([{'name': 'apiserver'}, {'name': 'apiserver'}], ['apiserver'], 'twice'),
        ([{'name': 7}], ['apiserver'], "not one of kubeadm's certificates"),
    ]:
        with pytest.raises(AnsibleFilterError, match=why):
            f.external_ca_names(csrs, asked)


def test_requests_read_the_fetched_csr_by_name(tmp_path):
    (tmp_path / 'etcd-server.csr').write_text(csr_pem('cp1', **ETCD))
    assert [r['name'] for r in f.external_ca_requests(['etcd-server'], str(tmp_path))] == ['etcd-server']
    with pytest.raises(AnsibleFilterError, match='cannot read the CSR fetched from the node, .*etcd-peer.csr'):
        f.external_ca_requests(['etcd-peer'], str(tmp_path))
    with pytest.raises(AnsibleFilterError, match="not one of kubeadm's certificates"):
        f.external_ca_requests(['../etcd-server'], str(tmp_path))


def test_placeholders_become_environment_references_in_one_pass():
    command = 'sign -subj {subject} -san {sans} {csr} > {cert}.pem && mv {cert}.pem {cert} {unknown} ${HOME}'
    assert f.external_ca_command(command) == (
        'sign -subj "$KUBEADM_CERTS_SUBJECT" -san "$KUBEADM_CERTS_SANS" "$KUBEADM_CERTS_CSR" > '
        '"$KUBEADM_CERTS_CERT".pem && mv "$KUBEADM_CERTS_CERT".pem "$KUBEADM_CERTS_CERT" {unknown} ${HOME}')
    # every placeholder's reference is a fixed string: no value can end up in the command text
    for p in f.PLACEHOLDERS:
        assert f.external_ca_command('{%s}' % p) == '"$KUBEADM_CERTS_%s"' % p.upper()


def test_a_placeholder_keeps_the_quoting_it_is_written_in():
    # inside double quotes: one word already; "$VAR" there would close the user's quotes and split a value
    assert f.external_ca_command('sign "{csr}" -o "{cert}.pem" "CN={name} x"') == (
        'sign "${KUBEADM_CERTS_CSR}" -o "${KUBEADM_CERTS_CERT}.pem" "CN=${KUBEADM_CERTS_NAME} x"')
    # an escaped quote does not open or close anything; an escaped brace is no placeholder
    assert f.external_ca_command('echo \\" {csr} \\{csr}') == 'echo \\" "$KUBEADM_CERTS_CSR" \\{csr}'
    assert f.external_ca_command('x "a \\" {csr}"') == 'x "a \\" ${KUBEADM_CERTS_CSR}"'
    with pytest.raises(AnsibleFilterError, match="{csr} is inside single quotes"):
        f.external_ca_command("sign '{csr}'")
    assert f.external_ca_command("sign '{unknown}' {csr}") == "sign '{unknown}' \"$KUBEADM_CERTS_CSR\""


def test_a_quoted_placeholder_runs_as_one_word_in_the_shell(tmp_path):
    import subprocess
    command = f.external_ca_command('printf "[%s]" "{csr}" {csr} "pre-{cert}-post"')
    env = {'KUBEADM_CERTS_CSR': 'a b  c', 'KUBEADM_CERTS_CERT': '*', 'PATH': '/usr/bin:/bin'}
    out = subprocess.run(['/bin/sh', '-c', command], env=env, cwd=str(tmp_path), capture_output=True, text=True,
                         check=False)
    assert out.stdout == '[a b  c][a b  c][pre-*-post]', (command, out)


APISERVER_SANS = dict(dns=('cp1', 'kubernetes', 'kubernetes.default'), ips=('10.96.0.1', '192.0.2.11'))
CP1_ALLOWED = ['cp1', 'kubernetes', 'Kubernetes.Default', '10.96.0.1', 'IP:192.0.2.11', 'localhost', '127.0.0.1',
               '::1']


def test_with_an_allow_list_a_node_gets_only_its_own_names_signed():
    r = f.signing_request('apiserver', csr_pem('kube-apiserver', **APISERVER_SANS), CP1_ALLOWED)
    assert r['sans'] == ['DNS:cp1', 'DNS:kubernetes', 'DNS:kubernetes.default', 'IP:10.96.0.1', 'IP:192.0.2.11']
    assert f.signing_request('etcd-peer', csr_pem('cp1', **ETCD), CP1_ALLOWED + ['0:0::1'])['ca'] == 'etcd-ca'
    for dns, ips, why in [
        (('cp1', 'cp2'), (), 'DNS:cp2, which the node'),  # another node's name
        (('cp1', '*.example.com'), (), r'DNS:\*\.example\.com'),  # a wildcard
        (('cp1',), ('192.0.2.12',), 'IP:192.0.2.12'),  # another node's address
    ]:
        with pytest.raises(AnsibleFilterError, match=why):
            f.signing_request('apiserver', csr_pem('kube-apiserver', dns=dns, ips=ips), CP1_ALLOWED)
    # the etcd certificates' common name is a DNS SAN too: another node's name is refused there as well
    with pytest.raises(AnsibleFilterError, match='DNS:cp2'):
        f.signing_request('etcd-server', csr_pem('cp2', dns=('cp2',)), CP1_ALLOWED)
    # no allow-list: the form alone is checked, as before
    assert f.signing_request('apiserver', csr_pem('kube-apiserver', dns=('cp2',)))['sans'] == ['DNS:cp2']
    with pytest.raises(AnsibleFilterError, match='neither a DNS name nor an IP address'):
        f.signing_request('apiserver', csr_pem('kube-apiserver', dns=('cp1',)), ['cp1', ''])
    with pytest.raises(AnsibleFilterError, match='must be a list'):
        f.external_ca_requests(['apiserver'], '/nonexistent', 'cp1')
