# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters of the external_ca role: what the signing host may sign, decided on the controller.

The node is untrusted: whatever its module run reports (names, subjects, SANs, usages, which CA) and the CSR
files it hands over could have been written by an attacker who owns the node, and the signing host holds the
CA keys. So the controller decides what gets signed, before anything reaches the signing host:

* the certificate's name must be one of kubeadm's (the table in src/inventory.rs) and one the role asked for;
* what is signed is derived from the CSR itself (a signature that verifies, the subject, the SANs, the key)
  and from kubeadm's profile for that name (the CA, the key usage, the extended key usage), never from the
  fields the node reported next to it. openssl x509 -req copies the subject from the CSR and the SANs come
  from the extensions file, so reading both from the CSR means the node cannot report one thing and have
  another signed; the usages and the CA come from the name, so the node cannot ask for more than kubeadm's
  certificate of that name carries (never CA:TRUE, never another CA);
* the subject and SANs must be what kubeadm issues for that name: CN and O exactly as kubeadm sets them (the
  etcd certificates' CN is the node name, which must also be a DNS SAN), SANs only on the apiserver and etcd
  certificates, DNS names and IP addresses only, from an allow-list of characters: no control character, no
  newline, no `{`, `}`, `,`, quote or space can reach the extensions file or the signing command;
* where the inventory gives a node an allow-list (external_ca_allowed_sans), every SAN of its apiserver and etcd
  CSRs must be on it: a node an attacker owns cannot have another node's name, a load balancer's name it does
  not serve, or a wildcard signed;
* values reach a custom signing command as environment variables: external_ca_command rewrites each
  {placeholder} into a reference to its variable in one pass, so no value is ever part of the shell text, and
  the reference keeps the quoting it was written in (a placeholder inside double quotes stays one word).
"""

from __future__ import annotations

import ipaddress
import os
import re

from ansible.errors import AnsibleFilterError

try:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtensionOID, NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - ansible-core depends on cryptography
    HAS_CRYPTOGRAPHY = False

# The etcd certificates' common name is the node's name, not a fixed string.
NODE_NAME = object()
_MASTERS = ('system:masters',)
_CLUSTER_ADMINS = ('kubeadm:cluster-admins',)
_NONE = ()
_CLIENT = ('clientAuth',)


class Profile(object):
    """What kubeadm's certificate of one name carries (kubeadm's certlist.go; docs/kubeadm-semantics.md)."""

    def __init__(self, ca, extended_key_usage, common_name, organizations, sans):
        self.ca = ca
        self.extended_key_usage = extended_key_usage
        self.common_name = common_name
        # Each entry is one accepted set of O values: kubeadm's choice changed between versions.
        self.organizations = organizations
        self.sans = sans


# One row per certificate of src/inventory.rs (CONTRACT.md's names); keep the two tables in step.
PROFILES = {
    'admin.conf': Profile('ca', _CLIENT, 'kubernetes-admin', (_MASTERS, _CLUSTER_ADMINS), False),
    'apiserver': Profile('ca', ('serverAuth',), 'kube-apiserver', (_NONE,), True),
    'apiserver-etcd-client': Profile('etcd-ca', _CLIENT, 'kube-apiserver-etcd-client', (_MASTERS, _NONE), False),
    'apiserver-kubelet-client': Profile('ca', _CLIENT, 'kube-apiserver-kubelet-client', (_MASTERS, _CLUSTER_ADMINS), False),
    'controller-manager.conf': Profile('ca', _CLIENT, 'system:kube-controller-manager', (_NONE,), False),
    'etcd-healthcheck-client': Profile('etcd-ca', _CLIENT, 'kube-etcd-healthcheck-client', (_MASTERS, _NONE), False),
    'etcd-peer': Profile('etcd-ca', ('serverAuth', 'clientAuth'), NODE_NAME, (_NONE,), True),
    'etcd-server': Profile('etcd-ca', ('serverAuth', 'clientAuth'), NODE_NAME, (_NONE,), True),
    'front-proxy-client': Profile('front-proxy-ca', _CLIENT, 'front-proxy-client', (_NONE,), False),
    'scheduler.conf': Profile('ca', _CLIENT, 'system:kube-scheduler', (_NONE,), False),
    'super-admin.conf': Profile('ca', _CLIENT, 'kubernetes-super-admin', (_MASTERS,), False),
}

# A DNS name (a leading `*.` for a wildcard certSAN), or a node name: letters, digits, `-`, `_`, `.`.
_DNS = re.compile(r'\A(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})\Z')
# The characters of kubeadm's fixed subject values (`system:kube-scheduler`, `kubeadm:cluster-admins`).
_SUBJECT_VALUE = re.compile(r'\A[A-Za-z0-9:._-]{1,64}\Z')

# The placeholders of external_ca_sign_command, each read from the environment variable KUBEADM_CERTS_<NAME>.
PLACEHOLDERS = ('csr', 'cert', 'ext', 'ca', 'profile', 'name', 'node', 'cluster', 'subject', 'sans', 'key_usage',
                'extended_key_usage')
_PLACEHOLDER = re.compile(r'\{(%s)\}' % '|'.join(PLACEHOLDERS))


def _refuse(name, problem):
    raise AnsibleFilterError(
        'external_ca refuses to sign %s: %s. Nothing was sent to the signing host; check the node (a CSR kubeadm-certs '
        'writes always matches kubeadm\'s certificate of that name) and run the role again.' % (name, problem))


def external_ca_names(csrs, asked):
    """The names of the node's CSR report, each one of kubeadm's certificates and one that was asked for."""
    if not isinstance(csrs, list):
        raise AnsibleFilterError('external_ca: the node\'s CSR report is not a list: %r' % (csrs,))
    names = []
    for entry in csrs:
        name = entry.get('name') if isinstance(entry, dict) else None
        if not isinstance(name, str) or name not in PROFILES:
            _refuse(repr(name), 'the node reported a CSR for %r, which is not one of kubeadm\'s certificates (%s)'
                    % (name, ', '.join(sorted(PROFILES))))
        if name not in asked:
            _refuse(name, 'the node reported a CSR for it, but the role asked for %s' % (', '.join(asked) or 'nothing'))
        if name in names:
            _refuse(name, 'the node reported its CSR twice')
        names.append(name)
    return names


def _load_csr(name, pem):
    if not HAS_CRYPTOGRAPHY:
        raise AnsibleFilterError('external_ca: the Python package cryptography is needed on the controller')
    if not isinstance(pem, (str, bytes)):
        _refuse(name, 'its CSR is not text')
    data = pem.encode('ascii', 'replace') if isinstance(pem, str) else pem
    if data.count(b'-----BEGIN CERTIFICATE REQUEST-----') != 1:
        _refuse(name, 'its CSR file does not hold exactly one PEM CERTIFICATE REQUEST')
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as e:
        _refuse(name, 'its CSR does not parse (%s)' % e)
    if not csr.is_signature_valid:
        _refuse(name, 'its CSR\'s signature does not verify with the CSR\'s own key')
    return csr


def _subject(name, profile, csr):
    """The subject as `O=..., CN=...` (the CSR's order), checked against kubeadm's for this name."""
    parts, common_names, organizations = [], [], []
    for attribute in csr.subject:
        value = attribute.value if isinstance(attribute.value, str) else repr(attribute.value)
        if attribute.oid == NameOID.COMMON_NAME:
            short, into = 'CN', common_names
        elif attribute.oid == NameOID.ORGANIZATION_NAME:
            short, into = 'O', organizations
        else:
            _refuse(name, 'its CSR\'s subject has a %s attribute; kubeadm\'s subjects hold only CN and O'
                    % attribute.oid.dotted_string)
        if not _SUBJECT_VALUE.match(value) and not (short == 'CN' and _DNS.match(value)):
            _refuse(name, 'its CSR\'s subject %s=%r holds characters kubeadm never puts there' % (short, value))
        into.append(value)
        parts.append('%s=%s' % (short, value))
    if len(common_names) != 1:
        _refuse(name, 'its CSR\'s subject has %d common names; kubeadm\'s has one' % len(common_names))
    if profile.common_name is NODE_NAME:
        if not _DNS.match(common_names[0]):
            _refuse(name, 'its CSR\'s common name %r is not a node name' % common_names[0])
    elif common_names[0] != profile.common_name:
        _refuse(name, 'its CSR\'s common name is %r; kubeadm\'s %s certificate has CN=%s'
                % (common_names[0], name, profile.common_name))
    if tuple(sorted(organizations)) not in [tuple(sorted(o)) for o in profile.organizations]:
        accepted = ' or '.join(', '.join('O=%s' % v for v in o) or 'no O' for o in profile.organizations)
        _refuse(name, 'its CSR asks for %s; kubeadm\'s %s certificate has %s'
                % (', '.join('O=%s' % o for o in organizations) or 'no O', name, accepted))
    return ', '.join(parts), common_names[0]


def _sans(name, profile, csr):
    """The SANs as `DNS:x` / `IP:y` (the CSR's order); no extension but subjectAltName may be requested."""
    sans = []
    try:
        extensions = list(csr.extensions)
    except (ValueError, x509.DuplicateExtension) as e:
        _refuse(name, 'its CSR\'s extensions do not parse (%s)' % e)
    for extension in extensions:
        if extension.oid != ExtensionOID.SUBJECT_ALTERNATIVE_NAME:
            _refuse(name, 'its CSR asks for the extension %s; kubeadm\'s CSRs carry subjectAltName only'
                    % extension.oid.dotted_string)
        for general_name in extension.value:
            if isinstance(general_name, x509.DNSName) and _DNS.match(general_name.value):
                sans.append('DNS:%s' % general_name.value)
            elif isinstance(general_name, x509.IPAddress) and \
                    isinstance(general_name.value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                sans.append('IP:%s' % general_name.value)
            else:
                _refuse(name, 'its CSR asks for the SAN %r; only DNS names (letters, digits, - _ . and a leading *.) '
                        'and IP addresses are accepted' % (getattr(general_name, 'value', general_name),))
    if sans and not profile.sans:
        _refuse(name, 'its CSR asks for SANs (%s); kubeadm\'s %s certificate has none' % (', '.join(sans), name))
    return sans


def _key_usage(name, csr):
    """kubeadm's key usage for the CSR's key: RSA adds keyEncipherment; only the key types kubeadm makes."""
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return ['digitalSignature', 'keyEncipherment']
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ('secp256r1', 'secp384r1'):
        return ['digitalSignature']
    _refuse(name, 'its CSR\'s key is neither RSA (2048 bits or more) nor ECDSA P-256/P-384')


def _extensions(name, key_usage, extended_key_usage, sans):
    """The OpenSSL extensions file: built only from the checked values above and the name's profile."""
    lines = [
        '# %s: what kubeadm\'s certificate of this name carries (a CSR holds no usages; the CA decides them).' % name,
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, %s' % ', '.join(key_usage),
        'extendedKeyUsage = %s' % ', '.join(extended_key_usage),
    ]
    if sans:
        lines.append('subjectAltName = %s' % ', '.join(sans))
    lines += ['subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid:always', '']
    return '\n'.join(lines)


def _san_key(san):
    """`DNS:x` or `IP:y` as compared with an allow-list: DNS names without case, IP addresses as addresses."""
    kind, value = san.split(':', 1)
    if kind == 'IP':
        return ('IP', ipaddress.ip_address(value))
    return ('DNS', value.lower())


def _allowed_key(entry):
    """An allow-list entry (a DNS name or an IP address, as the inventory writes it) as _san_key has it."""
    if not isinstance(entry, str) or not entry.strip():
        raise AnsibleFilterError('external_ca_allowed_sans: %r is neither a DNS name nor an IP address' % (entry,))
    entry = entry.strip()
    for prefix in ('DNS:', 'IP:'):
        if entry.startswith(prefix):
            return _san_key(entry)
    try:
        return ('IP', ipaddress.ip_address(entry))
    except ValueError:
        return ('DNS', entry.lower())


def _check_allowed(name, sans, allowed):
    """Every SAN on the node's allow-list (when it has one): a wildcard or another node's name only if listed."""
    if not allowed:
        return
    permitted = set(_allowed_key(a) for a in allowed)
    outside = [san for san in sans if _san_key(san) not in permitted]
    if outside:
        _refuse(name, 'its CSR asks for %s, which the node\'s external_ca_allowed_sans does not list (another node\'s '
                'name, a wildcard, an address it does not have?)' % ', '.join(outside))


def signing_request(name, pem, allowed_sans=None):
    """What the signing host signs for kubeadm's certificate `name`, from the CSR `pem` and the name's profile; with
    `allowed_sans` (the node's allow-list), only SANs on it."""
    profile = PROFILES.get(name) if isinstance(name, str) else None
    if profile is None:
        _refuse(repr(name), 'it is not one of kubeadm\'s certificates (%s)' % ', '.join(sorted(PROFILES)))
    csr = _load_csr(name, pem)
    subject, common_name = _subject(name, profile, csr)
    sans = _sans(name, profile, csr)
    _check_allowed(name, sans, allowed_sans)
    if profile.common_name is NODE_NAME and 'DNS:%s' % common_name not in sans:
        _refuse(name, 'its CSR\'s common name %r is not among its DNS SANs; kubeadm\'s etcd certificates name the '
                'node in both' % common_name)
    key_usage = _key_usage(name, csr)
    extended_key_usage = list(profile.extended_key_usage)
    return {
        'name': name,
        'ca': profile.ca,
        'subject': subject,
        'sans': sans,
        'key_usage': key_usage,
        'extended_key_usage': extended_key_usage,
        'profile': ('peer' if len(extended_key_usage) == 2 else
                    'server' if extended_key_usage == ['serverAuth'] else 'client'),
        'extensions': _extensions(name, key_usage, extended_key_usage, sans),
    }


def external_ca_requests(names, csr_dir, allowed_sans=None):
    """signing_request for each name, reading NAME.csr in csr_dir on the controller (fetched from the node), with
    the node's SAN allow-list (empty or None: SANs are checked for their form only)."""
    if allowed_sans is not None and not isinstance(allowed_sans, list):
        raise AnsibleFilterError('external_ca_allowed_sans must be a list, not %r' % (allowed_sans,))
    requests = []
    for name in names:
        if not isinstance(name, str) or name not in PROFILES:
            _refuse(repr(name), 'it is not one of kubeadm\'s certificates (%s)' % ', '.join(sorted(PROFILES)))
        path = os.path.join(csr_dir, '%s.csr' % name)
        try:
            with open(path, 'rb') as f:
                pem = f.read(65536)
        except (IOError, OSError) as e:
            raise AnsibleFilterError('external_ca: cannot read the CSR fetched from the node, %s: %s' % (path, e))
        requests.append(signing_request(name, pem, allowed_sans))
    return requests


def external_ca_command(command):
    """external_ca_sign_command with each {placeholder} replaced by a reference to "$KUBEADM_CERTS_<PLACEHOLDER>", in
    one pass, keeping the shell's quoting as written: outside quotes the reference is quoted ("$KUBEADM_CERTS_CSR",
    one word whatever the value), inside double quotes it is ${KUBEADM_CERTS_CSR} (already one word there; quoting
    it again would close the user's quotes and split the value), and inside single quotes, where the shell expands
    nothing, a placeholder is refused."""
    if not isinstance(command, str):
        raise AnsibleFilterError('external_ca_sign_command must be a string, not %r' % (command,))
    out, quote, i = [], None, 0
    while i < len(command):
        c = command[i]
        placeholder = _PLACEHOLDER.match(command, i) if quote != "'" else None
        if quote == "'" and _PLACEHOLDER.match(command, i):
            raise AnsibleFilterError(
                'external_ca_sign_command: %s is inside single quotes, where the shell expands nothing; write it '
                'outside quotes or inside double quotes' % _PLACEHOLDER.match(command, i).group(0))
        if placeholder:
            variable = 'KUBEADM_CERTS_%s' % placeholder.group(1).upper()
            out.append('${%s}' % variable if quote == '"' else '"$%s"' % variable)
            i = placeholder.end()
            continue
        if c == '\\' and quote != "'":
            out.append(command[i:i + 2])
            i += 2
            continue
        if c in ('"', "'") and quote in (None, c):
            quote = None if quote == c else c
        out.append(c)
        i += 1
    return ''.join(out)


class FilterModule(object):

    def filters(self):
        return {
            'external_ca_names': external_ca_names,
            'external_ca_requests': external_ca_requests,
            'external_ca_command': external_ca_command,
        }
