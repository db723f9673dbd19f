# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The ca_renewal filter: a CA certificate one node renewed, checked on the controller before any other node gets it.

The playbook k8s_pki.kubeadm.renew_ca renews a CA on one control-plane node and installs that certificate on every
other node. The node that renewed it is untrusted (it could be compromised): what it returns is installed elsewhere
only when it is one PEM certificate, a CA, self-signed, with the subject and the public key of the certificate every
control-plane node held before (its SHA-256 as they reported it), a new serial, and a validity that starts when a
renewal made now would start it. Anything else is refused naming the node, the file and the cause.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import warnings

from ansible.errors import AnsibleFilterError

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - ansible-core depends on cryptography
    HAS_CRYPTOGRAPHY = False

MAX_PEM = 64 * 1024
_PEM_BLOCK = re.compile(r'-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----', re.S)
_HEX = re.compile(r'^[0-9a-f]{64}$')
_CONTROL = re.compile(r'[\x00-\x1f\x7f-\x9f]')
MAX_MESSAGE = 1000
# How far a renewal's notBefore may lie from the controller's clock: kubeadm-certs backdates a new CA certificate by
# five minutes, and the node's clock may be off a little.
DEFAULT_MAX_AGE = 3600
DEFAULT_SKEW = 300
BACKDATE = 300


def _utc(cert, attr):
    value = getattr(cert, attr + '_utc', None)  # cryptography 42+
    if value is None:  # pragma: no cover - older cryptography
        value = getattr(cert, attr).replace(tzinfo=datetime.timezone.utc)
    return value


def _der_length(der, at):
    """(length, offset of the contents) of the DER element whose length octets start at `at`."""
    first = der[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7f
    return int.from_bytes(der[at + 1:at + 1 + count], 'big'), at + 1 + count


def public_key_raw(cert):
    """The subjectPublicKey bit string's bytes (what kubeadm-certs check's public_key_sha256 hashes)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    at = _der_length(spki, 1)[1]  # SEQUENCE SubjectPublicKeyInfo: its contents
    length, contents = _der_length(spki, at + 1)  # AlgorithmIdentifier, skipped
    length, contents = _der_length(spki, contents + length + 1)  # BIT STRING
    return spki[contents + 1:contents + length]  # without the unused-bits octet


def _spki_sha256(cert):
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def _self_signed(cert):
    """Whether `cert` verifies under its own public key."""
    if hasattr(cert, 'verify_directly_issued_by'):
        try:
            cert.verify_directly_issued_by(cert)
            return True
        except (ValueError, TypeError, InvalidSignature):
            return False
    key = cert.public_key()  # pragma: no cover - cryptography before 40
    try:  # pragma: no cover
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            return False
        return True
    except InvalidSignature:  # pragma: no cover
        return False


def _one_certificate(pem, what):
    if not isinstance(pem, str) or len(pem) > MAX_PEM:
        raise ValueError('%s is not PEM text of at most %d bytes' % (what, MAX_PEM))
    blocks = _PEM_BLOCK.findall(pem)
    if len(blocks) != 1 or blocks[0][0] != 'CERTIFICATE' or _PEM_BLOCK.sub('', pem).strip():
        raise ValueError('%s is not exactly one PEM certificate (%d PEM block(s): %s)'
                         % (what, len(blocks), ', '.join(b[0] for b in blocks) or 'none'))
    try:
        return x509.load_pem_x509_certificate(pem.encode('ascii'))
    except (ValueError, UnicodeEncodeError) as e:
        raise ValueError('%s cannot be parsed as a certificate: %s' % (what, e)) from None


def _extension(cert, kind):
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def ca_shape_refusals(new, old, whose, self_signed):
    """Why `new` is not a CA certificate of `old`'s subject that signs itself (`whose`: how the messages name `old`'s,
    `self_signed`: what it must be self-signed as): shared by a renewal (ca_renewal) and a rotation (ca_rotation_new)."""
    out = []
    if new.subject.public_bytes() != old.subject.public_bytes():
        out.append('its subject "%s" is not %s "%s"' % (new.subject.rfc4514_string(), whose, old.subject.rfc4514_string()))
    if new.issuer.public_bytes() != new.subject.public_bytes() or not _self_signed(new):
        out.append('it is not %s' % self_signed)
    constraints = _extension(new, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        out.append('it is not a CA certificate (basicConstraints CA:TRUE)')
    usage = _extension(new, x509.KeyUsage)
    if usage is None or not usage.key_cert_sign:
        out.append('its key usage does not allow signing certificates (keyCertSign)')
    return out


def validity_refusals(new, now, skew):
    """Why `new` is not valid now by the controller's clock (allowing `skew` seconds for a node's)."""
    out = []
    not_before, not_after = _utc(new, 'not_valid_before'), _utc(new, 'not_valid_after')
    if not_before > now + datetime.timedelta(seconds=skew):
        out.append('it is not valid before %s, in the future (the controller\'s clock says %s)'
                   % (not_before.isoformat(), now.isoformat()))
    if not_after <= now:
        out.append('it expired %s' % not_after.isoformat())
    return out


def _refusals(new, old, public_key_sha256, now, max_age, skew):
    """Why `new` is not `old` issued again with its own key, valid from about now: a list, empty when it is."""
    out = []
    if public_key_sha256 is not None and hashlib.sha256(public_key_raw(old)).hexdigest() != public_key_sha256:
        out.append('the certificate it replaces is not the one the control-plane nodes reported (public key SHA-256 %s)'
                   % public_key_sha256)
    if _spki_sha256(new) != _spki_sha256(old):
        out.append('its public key (SPKI SHA-256 %s) is not the CA\'s (SPKI SHA-256 %s): a CA with another key is a '
                   'rotation, not a renewal' % (_spki_sha256(new), _spki_sha256(old)))
    out.extend(ca_shape_refusals(new, old, "the CA's", 'self-signed with the CA\'s key'))
    old_ski, new_ski = _extension(old, x509.SubjectKeyIdentifier), _extension(new, x509.SubjectKeyIdentifier)
    if old_ski is not None and (new_ski is None or new_ski.digest != old_ski.digest):
        out.append('its subject key identifier is not the CA\'s')
    if new.serial_number == old.serial_number:
        out.append('its serial is the old certificate\'s (%x): not a renewal' % old.serial_number)
    out.extend(validity_refusals(new, now, skew))
    not_before = _utc(new, 'not_valid_before')
    if max_age is not None and not_before < now - datetime.timedelta(seconds=max_age):
        out.append('its validity starts %s, not now (the controller\'s clock says %s): not this run\'s renewal'
                   % (not_before.isoformat(), now.isoformat()))
    # a renewal backdates its start five minutes: of a CA made minutes ago, it may start a little before it
    if not_before < _utc(old, 'not_valid_before') - datetime.timedelta(seconds=skew + BACKDATE):
        out.append('its validity starts %s, before the certificate it replaces (%s): an older certificate, not its '
                   'renewal' % (not_before.isoformat(), _utc(old, 'not_valid_before').isoformat()))
    return out


def ca_renewal(new_pem, old_pem, name='ca', node='the node', path='', public_key_sha256=None,
               max_age=DEFAULT_MAX_AGE, now=None, skew=DEFAULT_SKEW):
    """The facts of `new_pem` when it is the CA `old_pem` renewed with its own key, valid from about now.

    `old_pem` is the certificate every control-plane node held; `public_key_sha256` what they reported as its public
    key's SHA-256 (kubeadm-certs check's consistency identity). `max_age` bounds how long ago its validity may start
    (seconds; None: any time after the old certificate's, for a run that resumes an earlier renewal).
    """
    if not HAS_CRYPTOGRAPHY:
        raise AnsibleFilterError('ca_renewal: the Python package cryptography is needed on the controller')
    if public_key_sha256 is not None and (not isinstance(public_key_sha256, str) or not _HEX.match(public_key_sha256)):
        raise AnsibleFilterError('ca_renewal: public_key_sha256 is not a SHA-256 fingerprint (64 lowercase hex digits)')
    where = '%s (%s)' % (name, path) if path else name
    head = 'ca_renewal: refusing the %s certificate %s returned' % (where, node)
    tail = ('; nothing was installed on any other node. Look at %s (it could be compromised), put the CA certificate '
            'every node held back there, and run the playbook again' % node)
    try:
        old = _one_certificate(old_pem, 'the certificate it replaces')
        new = _one_certificate(new_pem, 'it')
    except ValueError as e:
        raise AnsibleFilterError('%s: %s%s' % (head, e, tail)) from None
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    with warnings.catch_warnings():
        # kubeadm 1.20 made CAs with serial 0, which RFC 5280 disallows: cryptography warns when it reads the serial
        warnings.simplefilter('ignore')
        return _checked(new, old, public_key_sha256, now, max_age, skew, head, tail)


def _checked(new, old, public_key_sha256, now, max_age, skew, head, tail):
    refusals = _refusals(new, old, public_key_sha256, now, None if max_age is None else int(max_age), int(skew))
    if refusals:
        raise AnsibleFilterError('%s: %s%s' % (head, '; '.join(refusals), tail))
    der = new.public_bytes(serialization.Encoding.DER)
    return {
        'certificate_sha256': hashlib.sha256(der).hexdigest(),
        'public_key_sha256': hashlib.sha256(public_key_raw(new)).hexdigest(),
        'spki_sha256': _spki_sha256(new),
        'serial': '%x' % new.serial_number,
        'subject': new.subject.rfc4514_string(),
        'not_before': _utc(new, 'not_valid_before').strftime('%Y-%m-%dT%H:%M:%SZ'),
        'not_after': _utc(new, 'not_valid_after').strftime('%Y-%m-%dT%H:%M:%SZ'),
        'pem': new.public_bytes(serialization.Encoding.PEM).decode('ascii'),
    }


def _node_ca(n, name, i):
    """(certificate SHA-256, public key SHA-256, key file's public key SHA-256, path, not_after) of one node's check
    result for the CA `name`; ValueError naming what is malformed (a node's report is untrusted: never echoed)."""
    if not isinstance(n, dict) or not isinstance(n.get('node'), str) or not isinstance(n.get('cluster'), str):
        raise AnsibleFilterError('ca_renewal_plan: input[%d] is not a {node, cluster, consistency, '
                                 'certificate_authorities} mapping' % i)
    if n.get('failed'):
        raise ValueError('its check failed (%s); fix that node first, or take it out of the play'
                         % _CONTROL.sub(' ', str(n.get('msg', '')))[:MAX_MESSAGE])
    identity = ((n.get('consistency') or {}).get('identity') or []) if isinstance(n.get('consistency'), dict) else None
    rows = n.get('certificate_authorities')
    if not isinstance(identity, list) or not isinstance(rows, list):
        raise ValueError('its check reported no consistency identity or certificate_authorities')
    found = [e for e in identity if isinstance(e, dict) and e.get('name') == name]
    row = [r for r in rows if isinstance(r, dict) and r.get('name') == name]
    if len(found) != 1 or len(row) != 1:
        raise ValueError('its check reported %d identities and %d rows for %s, not one each' % (len(found), len(row), name))
    e = found[0]
    for field in ('certificate_sha256', 'public_key_sha256'):
        if not isinstance(e.get(field), str) or not _HEX.match(e[field]):
            raise ValueError('it holds no readable %s certificate (%s is not a SHA-256 fingerprint)' % (name, field))
    key = e.get('key_public_key_sha256')
    if key is not None and (not isinstance(key, str) or not _HEX.match(key)):
        raise ValueError('key_public_key_sha256 is not a SHA-256 fingerprint')
    try:
        not_after = datetime.datetime.fromisoformat(str(row[0].get('not_after')).replace('Z', '+00:00'))
    except ValueError:
        raise ValueError('its %s not_after is not an RFC 3339 time' % name) from None
    path = e.get('path') if isinstance(e.get('path'), str) else ''
    return e['certificate_sha256'], e['public_key_sha256'], key, path[:4096], not_after


def _cluster_plan(cluster, nodes, name):
    """The plan of one cluster's control-plane nodes {node: facts}, and the refusals naming nodes."""
    order = sorted(nodes)
    first = order[0]
    cert, public, key, path, not_after = nodes[first]
    refusals = []
    if key != public:
        refusals.append('%s/%s, the first control-plane node, does not hold the %s key matching %s (key file public '
                        'key SHA-256 %s, certificate public key SHA-256 %s): the CA is renewed with its own key, on '
                        'the node that holds it; put it first in the inventory group or restore its key'
                        % (cluster, first, name, path, key or 'none', public))
    other_key = [n for n in order if nodes[n][1] != public]
    if other_key:
        refusals.append('%s: %s hold(s) another %s certificate (%s) than %s (public key SHA-256 %s): %s; a node '
                        'holding another CA is a rebuilt or foreign node, not one to renew: make every control-plane '
                        'node hold the same CA first (k8s_pki.kubeadm.check names the differences)'
                        % (cluster, ', '.join(other_key), name, path, first, public,
                           '; '.join('%s has public key SHA-256 %s' % (n, nodes[n][1]) for n in other_key)))
    behind = [n for n in order if nodes[n][0] != cert and nodes[n][1] == public]
    olds = sorted(set(nodes[n][0] for n in behind))
    newer = [n for n in behind if nodes[n][4] >= not_after]
    if newer or len(olds) > 1:
        refusals.append('%s: the control-plane nodes hold different %s certificates (%s): %s; only a renewal this '
                        'playbook began (the first node holding a later certificate, every other node one and the same '
                        'older one) is finished by running it again: make every control-plane node hold the same '
                        'certificate first (kubeadm-certs renew %s --ca-cert FILE on the others)'
                        % (cluster, name, path, '; '.join('%s has certificate SHA-256 %s, expiring %s'
                                                          % (n, nodes[n][0], nodes[n][4].isoformat())
                                                          for n in order), name))
    plan = {
        'cluster': cluster, 'nodes': order, 'first': first, 'phase': 'resume' if behind else 'renew',
        'certificate_sha256': cert, 'public_key_sha256': public, 'path': path, 'behind': behind,
        'reference': behind[0] if behind else first, 'old_certificate_sha256': olds[0] if olds else cert,
    }
    return plan, refusals


def ca_renewal_plan(results, name='ca'):
    """What renew_ca does in each cluster, decided from what the control-plane nodes hold, and what it refuses.

    `results`: one entry per control-plane node, {node, cluster, consistency, certificate_authorities} (its
    state=check result). Every node of a cluster holds the same certificate: phase `renew` on the first node (sorted).
    The first node holds a later certificate of the same key and every other node one and the same older one: phase
    `resume` (an earlier run renewed it and was stopped before every node had it). Anything else is refused.
    """
    if name not in ('ca', 'etcd-ca', 'front-proxy-ca'):
        raise AnsibleFilterError('ca_renewal_plan: name must be ca, etcd-ca or front-proxy-ca, not %r' % (name,))
    if not isinstance(results, list):
        raise AnsibleFilterError('ca_renewal_plan: the input is not a list')
    clusters, refusals = {}, []
    for i, n in enumerate(results):
        try:
            facts = _node_ca(n, name, i)
        except ValueError as e:
            refusals.append('%s/%s: %s' % (n['cluster'], n['node'], e))
            continue
        clusters.setdefault(n['cluster'], {})[n['node']] = facts
    plans = []
    for cluster in sorted(clusters):
        plan, why = _cluster_plan(cluster, clusters[cluster], name)
        plans.append(plan)
        refusals.extend(why)
    return {'plans': plans, 'refusals': refusals}


class FilterModule(object):

    def filters(self):
        return {'ca_renewal': ca_renewal, 'ca_renewal_plan': ca_renewal_plan}
