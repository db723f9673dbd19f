# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The ca_rotation_plan and ca_rotation_new filters: where a CA rotation stands, read from what the nodes hold.

The playbook k8s_pki.kubeadm.rotate_ca replaces a CA (OLD, the certificate the operator names by its SHA-256) by a new
one with a new key (NEW) in three phases: a (trust: every node trusts [OLD, NEW]), b (reissue: every certificate of
the CA re-signed by NEW, the workers' kubelet client certificates too) and c (drop: every node holds [NEW] only). There
is no state file: each run reads every node (`state: check`'s `ca_rotation`, `components` and `kubelet`, and when the
kubelet started) and this filter decides, on the controller, the cluster's phase (the earliest one not finished on every
node) and each node's next step. The nodes' reports are untrusted: fingerprints must be SHA-256 hex, states from the
known set, strings are bounded and stripped of control characters, and anything that does not add up is refused naming
the node and the reason, before any node is touched.

ca_rotation_new checks on the controller NEW's certificate read from the node that holds it, before any other node is
given it: it must be a self-signed CA with OLD's subject and another key, with the fingerprint the plan says.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import warnings

from ansible.errors import AnsibleFilterError
from ansible_collections.k8s_pki.kubeadm.plugins.filter.ca_renewal import (
    HAS_CRYPTOGRAPHY, MAX_PEM, _utc, ca_shape_refusals, validity_refusals)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - ansible-core depends on cryptography
    pass

NAMES = ('ca', 'etcd-ca', 'front-proxy-ca')
# <cert_dir>/<base>.crt, .key, .next.key, .previous.key
BASES = {'ca': 'ca', 'etcd-ca': 'etcd/ca', 'front-proxy-ca': 'front-proxy-ca'}
STATES = ('single', 'trusting', 'reissuing', 'reissued', 'inconsistent')
ROLES = ('control_plane', 'worker')
COMPONENTS = ('etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler')
PHASES = ('trust', 'reissue', 'drop')
FINISHED = ('trust', 'reissue-control-planes', 'reissue', 'drop')
# what a node's ca_rotation may call the kubelet's client certificate among its leaves
KUBELET_CLIENT = ('kubelet-client', 'kubelet.conf')
MAX_TEXT = 300
MAX_REASON = 1000
MAX_ITEMS = 500
MAX_PROBE = 4096
MAX_EPOCH = 1 << 40
DEFAULT_SKEW = 300
_HEX = re.compile(r'^[0-9a-f]{64}$')
_CONTROL = re.compile(r'[\x00-\x1f\x7f-\x9f]')
_PEM_BLOCK = re.compile(r'-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----', re.S)


class _Refused(ValueError):
    """A node's report that cannot be used, with the reason (which never echoes more than bounded text)."""


def _text(value, limit=MAX_TEXT):
    """Bounded printable text of an untrusted string; None when it is not a string."""
    if not isinstance(value, str):
        return None
    value = _CONTROL.sub(' ', value)
    return value if len(value) <= limit else value[:limit] + '...'


def _fingerprint(value, what):
    if not isinstance(value, str) or not _HEX.match(value):
        raise _Refused('%s is not a SHA-256 fingerprint (64 lowercase hex digits)' % what)
    return value


def _list(value, what):
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise _Refused('%s is not a list of at most %d items' % (what, MAX_ITEMS))
    return value


def _leaves(value, what):
    out = []
    for i, leaf in enumerate(_list(value, what)):
        if not isinstance(leaf, dict) or _text(leaf.get('name')) is None or _text(leaf.get('path'), 4096) is None:
            raise _Refused('%s[%d] is not a {name, path} mapping' % (what, i))
        out.append({'name': _text(leaf['name']), 'path': _text(leaf['path'], 4096),
                    'issuer': _text(leaf.get('issuer')) or ''})
    return out


def _iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _kubelet_stale(probe):
    """Why the kubelet runs with kubelet.conf or its client certificate older than on disk; '' when it does not.

    `probe`: the JSON the role's probe prints on the node, {started, kubeconfig_written, client_written} (seconds since
    the epoch, null when unknown or absent). The kubelet reads kubelet.conf's CA data and its client certificate only
    at start, so a file written at or after its start means a restart is due."""
    if not isinstance(probe, str) or len(probe) > MAX_PROBE:
        raise _Refused('when its kubelet started could not be read (no probe output)')
    try:
        facts = json.loads(probe)
    except ValueError:
        raise _Refused('when its kubelet started could not be read (the probe printed no JSON)') from None
    if not isinstance(facts, dict):
        raise _Refused('when its kubelet started could not be read (the probe printed no JSON object)')
    times = {}
    for key in ('started', 'kubeconfig_written', 'client_written'):
        value = facts.get(key)
        # to the hundredth: a kubelet restarted in the second its certificate was written is after it, not before
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 <= value < MAX_EPOCH):
            raise _Refused('when its kubelet started could not be read (%s is not a time)' % key)
        times[key] = value
    if times['started'] is None:
        return 'the kubelet is not running'
    for key, what in (('kubeconfig_written', 'kubelet.conf'), ('client_written', 'its client certificate')):
        if times[key] is not None and times[key] >= times['started']:
            return 'the kubelet started %s, not after %s was written (%s): it still uses what it read before' % (
                _iso(times['started']), what, _iso(times[key]))
    return ''


def _kubelet_client(rows):
    rows = [r for r in _list(rows, 'kubelet') if isinstance(r, dict) and r.get('name') == 'kubelet-client']
    if len(rows) > 1:
        raise _Refused('its check reported %d kubelet-client rows, not one' % len(rows))
    if not rows:
        return None
    row = rows[0]
    return {'path': _text(row.get('path'), 4096) or '', 'issuer': _text(row.get('issuer')) or '',
            'missing': row.get('missing') is True}


def _components(value):
    stale = []
    for i, c in enumerate(_list(value, 'components')):
        if not isinstance(c, dict) or c.get('name') not in COMPONENTS or not isinstance(c.get('stale'), bool):
            raise _Refused('components[%d] is not a {name, stale} mapping of a control-plane component' % i)
        if c['stale']:
            stale.append({'name': c['name'], 'reason': _text(c.get('reason'), MAX_REASON) or ''})
    return stale


def _node(entry, name):
    """One node's report, checked: its state, certificates (SHA-256, file order), leaves, staleness."""
    if entry.get('failed'):
        raise _Refused('its check failed (%s); fix that node first, or take it out of the inventory'
                       % (_text(entry.get('msg'), MAX_REASON) or 'no message'))
    items = entry.get('ca_rotation')
    if not isinstance(items, list):
        raise _Refused('its check reported no ca_rotation (a kubeadm-certs without CA rotation?)')
    items = [i for i in items if isinstance(i, dict) and i.get('name') == name]
    if len(items) != 1:
        raise _Refused('its check reported %d ca_rotation items for %s, not one' % (len(items), name))
    item = items[0]
    state = item.get('state')
    if state not in STATES:
        raise _Refused('its %s state "%s" is none of %s' % (name, _text(str(state), 40), ', '.join(STATES)))
    if state == 'inconsistent':
        raise _Refused('its %s files are inconsistent: %s'
                       % (name, _text(item.get('reason'), MAX_REASON) or 'no reason given'))
    certs = _list(item.get('certificates'), 'certificates')
    if len(certs) != (1 if state == 'single' else 2) or not all(isinstance(c, dict) for c in certs):
        raise _Refused('its %s state is %s with %d certificates' % (name, state, len(certs)))
    shas = [_fingerprint(c.get('sha256'), 'the sha256 of its %s certificate %d' % (name, i + 1))
            for i, c in enumerate(certs)]
    if len(set(shas)) != len(shas):
        raise _Refused('its %s bundle holds the same certificate twice' % name)
    for key in ('next_key', 'previous_key'):
        if not isinstance(item.get(key, False), bool):
            raise _Refused('its %s %s is not a boolean' % (name, key))
    n = {
        'node': entry['node'], 'role': entry['role'], 'state': state, 'certificates': shas,
        'subjects': [_text(c.get('subject')) or '' for c in certs],
        'signing': [c.get('signing') is True for c in certs],
        'next_key': item.get('next_key', False), 'previous_key': item.get('previous_key', False),
        'path': _text(item.get('path'), 4096) or BASES[name] + '.crt',
        'issued_by_other': _leaves(item.get('issued_by_other'), 'issued_by_other'),
        'untrusted': _leaves(item.get('untrusted'), 'untrusted'),
        'stale': _components(entry.get('components')),
        'kubelet_client': None, 'kubelet_stale': '',
    }
    if name == 'ca':
        n['kubelet_client'] = _kubelet_client(entry.get('kubelet'))
        n['kubelet_stale'] = _kubelet_stale(entry.get('kubelet_process'))
    return n


def _matches(leaf, row):
    return leaf['name'] in KUBELET_CLIENT or (row is not None and row['path'] and leaf['path'] == row['path'])


def _kubelet_client_issuer(n):
    """(SHA-256 of the certificate of the node's bundle that issued its kubelet client certificate or None, why not)."""
    row = n['kubelet_client']
    if row is None or row['missing']:
        return None, 'its kubelet client certificate is missing'
    if any(_matches(leaf, row) for leaf in n['untrusted']):
        return None, 'its kubelet client certificate (%s) is trusted by no certificate of %s' % (row['path'], n['path'])
    wanted = ' '.join(n['subjects'][0].lower().split())
    if row['issuer'] and wanted and ' '.join(row['issuer'].lower().split()) != wanted:
        return None, 'its kubelet client certificate (%s) names the issuer "%s", not the CA\'s "%s"' % (
            row['path'], row['issuer'], n['subjects'][0])
    # the subject is the same for OLD and NEW: which of the two signed it is what ca_rotation tells
    if len(n['certificates']) == 2 and any(_matches(leaf, row) for leaf in n['issued_by_other']):
        return n['certificates'][1], ''
    return n['certificates'][0], ''


def _stage(n, old, new):
    """Where a node stands: 0 holds only OLD, 1 trusts [OLD, NEW] (a worker: its kubelet client certificate still by
    OLD), 2 reissuing, 3 reissued (a worker: its kubelet client certificate by NEW), 4 holds only NEW."""
    if n['certificates'] == [old]:
        return 0
    if n['certificates'] == [new]:
        return 4
    if n['role'] == 'worker':
        return 3 if _kubelet_client_issuer(n)[0] == new else 1
    return {'trusting': 1, 'reissuing': 2, 'reissued': 3}[n['state']]


def _still_by_old(n, old):
    """What a control-plane node still has issued by OLD, as 'name (path)' (its leaves the second certificate of
    [NEW, OLD] issued; all of them while it signs with OLD)."""
    if n['certificates'][0] == old:
        return ['every certificate of the CA here (it signs with OLD)']
    return ['%s (%s)' % (leaf['name'], leaf['path']) for leaf in n['issued_by_other']]


def _staleness(n):
    out = ['%s (%s)' % (c['name'], c['reason']) if c['reason'] else c['name'] for c in n['stale']]
    if n['kubelet_stale']:
        out.append('kubelet (%s)' % n['kubelet_stale'])
    return out


def _blockers(nodes, name, old, new, stages):
    """Why each phase is not finished: {phase: [(node, reason)]}, control-plane nodes first, every reason named."""
    out = {p: [] for p in PHASES}
    if new is None:
        out['trust'].append(('', 'no node holds a new %s certificate yet' % name))
    for node in sorted(nodes, key=lambda x: (nodes[x]['role'] != 'control_plane', x)):
        n, stage = nodes[node], stages[node]
        # what still runs with what it read before the node's last write belongs to the phase that wrote it
        stale = _staleness(n)
        if stale and stage >= 1:
            phase = 'trust' if stage == 1 else 'drop' if stage == 4 else 'reissue'
            out[phase].append((node, 'still runs with what it read before its %s files were last written: %s'
                               % (name, '; '.join(stale))))
        if stage == 0:
            out['trust'].append((node, 'does not trust NEW yet (%s holds only OLD)' % n['path']))
        if n['role'] == 'control_plane' and stage in (1, 2, 3) and (stage < 3 or _still_by_old(n, old)):
            out['reissue'].append((node, '%s, still issued by OLD: %s' % (
                n['state'], ', '.join(_still_by_old(n, old)) or 'nothing named, yet the node does not say reissued')))
        if n['role'] == 'worker' and stage == 1:
            issuer, why = _kubelet_client_issuer(n)
            out['reissue'].append((node, why or 'its kubelet client certificate (%s) is still issued by %s' % (
                n['kubelet_client']['path'], 'OLD' if issuer == old else issuer)))
        if stage in (1, 2, 3):
            out['drop'].append((node, 'still holds OLD (%s is %s)' % (
                n['path'], '[OLD, NEW]' if n['certificates'] == [old, new] else '[NEW, OLD]')))
    return out


def _says(blockers):
    return ['%s: %s' % (node, why) if node else why for node, why in blockers]


def _step(n, phase, stage, first, old, new):
    """(step, what it does) of one node in the cluster's phase."""
    if phase == 'trust' and stage == 0 and new is None and n['node'] == first:
        return 'generate', ('generate NEW here (a new key, a self-signed certificate with OLD\'s subject) and trust it '
                            'beside OLD: %s becomes [OLD, NEW], NEW\'s key the .next.key file' % n['path'])
    if phase == 'trust' and stage == 0:
        return 'trust', 'trust NEW beside OLD: %s becomes [OLD, NEW]%s' % (n['path'], (
            ', NEW\'s key the .next.key file' if n['role'] == 'control_plane' else ', kubelet.conf\'s CA data too'))
    reissuing = stage in (1, 2) or stage == 3 and _still_by_old(n, old)
    if phase == 'reissue' and n['role'] == 'control_plane' and reissuing:
        return 'reissue', ('sign with NEW (%s becomes [NEW, OLD], OLD\'s key the .previous.key file) and re-sign what '
                           'is still issued by OLD here: %s' % (
                               n['path'], ', '.join(_still_by_old(n, old)) or 'whatever the node finds'))
    if phase == 'reissue' and n['role'] == 'worker' and stage == 1:
        return 'kubelet-client', ('a new kubelet client certificate issued by NEW: a key and a CSR here, signed on %s, '
                                  'installed here, the kubelet restarted' % first)
    if phase == 'drop' and stage == 3:
        return 'drop', 'stop trusting OLD: %s becomes [NEW]%s' % (n['path'], (
            ', OLD\'s key and certificate moved to the backup directory' if n['role'] == 'control_plane'
            else ', kubelet.conf\'s CA data too'))
    stale = _staleness(n)
    if stale and stage >= 1:
        return 'restart', 'restart what still runs with what it read before the last write: %s' % '; '.join(stale)
    return 'none', 'nothing to do in phase %s (%s)' % (phase, n['state'])


def _holding(nodes):
    return '; '.join('%s holds %s (%s)' % (node, ', '.join(nodes[node]['certificates']), nodes[node]['state'])
                     for node in sorted(nodes))


def _new_certificate(nodes, old, refusals):
    """NEW: the certificate the nodes hold beside OLD, or the one every node holds instead of it; None when every node
    holds only OLD; False, with the refusals appended, when it cannot be told."""
    count = len(refusals)
    beside = {}
    for node in sorted(nodes):
        certs = nodes[node]['certificates']
        if len(certs) == 2 and old not in certs:
            refusals.append('%s: holds two certificates in %s (%s), neither of them rotate_ca_from (%s): a node of '
                            'another cluster, or another rotation' % (node, nodes[node]['path'], ', '.join(certs), old))
        elif len(certs) == 2:
            beside[node] = certs[1] if certs[0] == old else certs[0]
    if len(set(beside.values())) > 1:
        refusals.append('the nodes trust two different new certificates beside rotate_ca_from (%s): %s; one rotation '
                        'has one NEW: kubeadm-certs check on each node names what it holds'
                        % (old, '; '.join('%s trusts %s' % (n, s) for n, s in sorted(beside.items()))))
    if len(refusals) > count:
        return False
    if beside:
        new = next(iter(beside.values()))
    else:
        others = sorted(set(c for n in nodes.values() for c in n['certificates']) - {old})
        if not others:
            return None
        if len(others) > 1 or any(n['certificates'] == [old] for n in nodes.values()):
            refusals.append('the nodes hold different certificates, none beside another: %s; only a rotation away from '
                            'rotate_ca_from (%s) is carried on, and a node holding neither OLD nor a certificate '
                            'trusted beside it is of another cluster, or dropped OLD too early'
                            % (_holding(nodes), old))
            return False
        new = others[0]
    for node in sorted(nodes):
        strange = [c for c in nodes[node]['certificates'] if c not in (old, new)]
        if strange:
            refusals.append('%s: holds neither OLD (%s) nor NEW (%s) but %s (%s)'
                            % (node, old, new, ', '.join(strange), nodes[node]['state']))
    return False if len(refusals) > count else new


def _order(n, old, new, refusals):
    """A control-plane node whose files say it rotates the other way, or that lacks a key its state needs."""
    node, certs = n['node'], n['certificates']
    if n['role'] == 'worker':
        return
    if n['state'] == 'trusting' and certs != [old, new]:
        refusals.append('%s: trusting with %s = [NEW, OLD] (signing with NEW, OLD\'s key next): a rotation the other '
                        'way; rotate_ca_from names the certificate to rotate away from' % (node, n['path']))
    elif n['state'] in ('reissuing', 'reissued') and certs != [new, old]:
        refusals.append('%s: %s with %s = [OLD, NEW] (signing with OLD): a rotation the other way; rotate_ca_from '
                        'names the certificate to rotate away from' % (node, n['state'], n['path']))
    elif n['state'] == 'single' and not n['signing'][0]:
        refusals.append('%s: holds no key of its certificate %s (%s): a CA whose key is not on the control plane (an '
                        'external CA) is not rotated by this playbook' % (node, n['path'], certs[0]))
    elif n['state'] == 'trusting' and not n['next_key']:
        refusals.append('%s: trusts NEW (%s) without holding its key (the .next.key file beside %s)'
                        % (node, new, n['path']))


def _source(nodes, stages, first, new, name, refusals):
    """Where NEW's certificate and key are read: {node, position (NEW's index in the bundle), bundle and key (files
    under the PKI directory)}: the first control-plane node that trusts NEW (its .next.key), else one that signs with it."""
    base = BASES[name]
    if new is None:
        return {'node': first, 'position': 1, 'bundle': base + '.crt', 'key': base + '.next.key'}
    for wanted, position, key in (((1,), 1, '.next.key'), ((2, 3), 0, '.key')):
        for node in sorted(nodes):
            if nodes[node]['role'] == 'control_plane' and stages[node] in wanted:
                return {'node': node, 'position': position, 'bundle': base + '.crt', 'key': base + key}
    refusals.append('no control-plane node holds NEW (%s) with its key: it cannot be given to the others; put back '
                    'the node that made it, or start over from OLD on every node' % new)
    return None


def _unfinished(blockers, finished, control_planes):
    """What a run that has just rolled out `finished` must not see any more, as refusals."""
    phases = {'trust': PHASES[:1], 'reissue-control-planes': PHASES[:2], 'reissue': PHASES[:2], 'drop': PHASES}
    out = []
    for p in phases[finished]:
        for node, why in blockers[p]:
            if finished == 'reissue-control-planes' and p == 'reissue' and node not in control_planes:
                continue  # the workers' kubelet client certificates come next
            out.append('after phase %s, %s' % (finished, '%s: %s' % (node, why) if node else why))
    return out


def _summary(plan):
    if plan['phase'] is None:
        return 'refused: %s' % ' | '.join(plan['refusals'])
    todo = ['%s (%s)' % (node, v['step']) for node, v in sorted(plan['nodes'].items()) if v['step'] != 'none']
    if plan['phase'] == 'done':
        return ('done: every node holds only %s and nothing runs with what it read before; no node holds '
                'rotate_ca_from (%s)' % (plan['new'], plan['from']))
    new = plan['new'] or 'NEW, generated on ' + plan['first']
    return 'phase %s, from %s to %s: %s' % (plan['phase'], plan['from'], new, ', '.join(todo) or 'nothing')


def _node_views(nodes):
    return {node: {'role': n['role'], 'state': n['state'], 'certificates': n['certificates'], 'stage': None,
                   'step': None, 'says': 'holds %s (%s)' % (', '.join(n['certificates']), n['state']),
                   'stale': [c['name'] for c in n['stale']] + (['kubelet'] if n['kubelet_stale'] else []),
                   'warnings': ['%s (%s), issued by "%s", is trusted by no certificate of %s'
                                % (leaf['name'], leaf['path'], leaf['issuer'], n['path']) for leaf in n['untrusted']]}
            for node, n in sorted(nodes.items())}


def _read(results, name, refusals):
    nodes = {}
    for i, entry in enumerate(results):
        if not isinstance(entry, dict) or not isinstance(entry.get('node'), str) or entry.get('role') not in ROLES:
            raise AnsibleFilterError('ca_rotation_plan: input[%d] is not a {node, role, ...} mapping' % i)
        if entry['role'] == 'worker' and name != 'ca':
            raise AnsibleFilterError('ca_rotation_plan: %s is a worker: only the ca rotation concerns workers'
                                     % entry['node'])
        try:
            nodes[entry['node']] = _node(entry, name)
        except _Refused as e:
            refusals.append('%s: %s' % (entry['node'], e))
    if not any(e['role'] == 'control_plane' for e in results):
        refusals.append('no control-plane node in the play')
    return nodes


def ca_rotation_plan(results, name='ca', from_sha256=None, finished=None, phase=None):
    """Where the rotation of the CA `name` away from the certificate `from_sha256` stands, and each node's next step.

    `results`: one entry per node, {node, role (control_plane or worker), failed, msg, ca_rotation, components, kubelet,
    kubelet_process} (its state=check result; kubelet_process the role's probe output, for ca). `finished`: the phase
    the run has just rolled out (trust, reissue-control-planes, reissue, drop): whatever is not done is refused,
    naming node and reason. `phase`: the phase the operator asks for, refused unless it is the cluster's (or all is
    done).
    """
    if name not in NAMES:
        raise AnsibleFilterError('ca_rotation_plan: name must be ca, etcd-ca or front-proxy-ca, not %r' % (name,))
    if finished not in (None, '') + FINISHED:
        raise AnsibleFilterError('ca_rotation_plan: finished must be one of %s, not %r'
                                 % (', '.join(FINISHED), finished))
    if not isinstance(results, list):
        raise AnsibleFilterError('ca_rotation_plan: the input is not a list')
    refusals = []
    nodes = _read(results, name, refusals)
    control_planes = sorted(n for n in nodes if nodes[n]['role'] == 'control_plane')
    plan = {'name': name, 'from': None, 'new': None, 'phase': None,
            'first': control_planes[0] if control_planes else None, 'control_planes': control_planes,
            'workers': sorted(n for n in nodes if nodes[n]['role'] == 'worker'), 'source': None, 'needs_key': False,
            'nodes': _node_views(nodes), 'blockers': {}, 'suggested_from': None, 'refusals': refusals}
    held = set(tuple(n['certificates']) for n in nodes.values())
    if len(held) == 1 and len(next(iter(held))) == 1 and not refusals:
        plan['suggested_from'] = next(iter(held))[0]
    old = from_sha256
    if not old:
        refusals.append('rotate_ca_from is not set: say which %s certificate to rotate away from by its SHA-256 '
                        '(-e rotate_ca_from=SHA256; the nodes hold: %s)'
                        % (name, _holding(nodes) or 'nothing readable'))
    elif not isinstance(old, str) or not _HEX.match(old):
        refusals.append('rotate_ca_from "%s" is not a SHA-256 fingerprint (64 hex digits, as kubeadm-certs check '
                        'prints it)' % _text(str(old), 100))
    else:
        plan['from'] = old
    if refusals:
        plan['summary'] = _summary(plan)
        return plan
    new = _new_certificate(nodes, old, refusals)
    if new is not False:
        plan['new'] = new
        for node in sorted(nodes):
            _order(nodes[node], old, new, refusals)
    if refusals:
        plan['summary'] = _summary(plan)
        return plan
    stages = {node: _stage(nodes[node], old, new) for node in nodes}
    dropped = sorted(n for n in nodes if stages[n] == 4)
    untrusting = sorted(n for n in nodes if stages[n] == 0)
    if dropped and untrusting:
        refusals.append('%s hold(s) only NEW (%s) while %s hold(s) only OLD (%s): they no longer trust each other\'s '
                        'certificates; this playbook carries a rotation on in order (trust everywhere, reissue, drop): '
                        'put OLD back beside NEW where it was dropped (from the backup directory)'
                        % (', '.join(dropped), new, ', '.join(untrusting), old))
        plan['summary'] = _summary(plan)
        return plan
    blockers = _blockers(nodes, name, old, new, stages)
    plan['blockers'] = {p: _says(blockers[p]) for p in PHASES}
    plan['phase'] = next((p for p in PHASES if blockers[p]), 'done')
    for node in sorted(nodes):
        step, says = _step(nodes[node], plan['phase'], stages[node], plan['first'], old, new)
        plan['nodes'][node].update({'step': step, 'says': says, 'stage': stages[node]})
    # NEW's certificate (and, for a control-plane node, its key) is read where it is held, for the nodes to trust it
    plan['needs_key'] = any(v['step'] == 'trust' and v['role'] == 'control_plane' for v in plan['nodes'].values())
    if plan['phase'] == 'trust' and any(v['step'] in ('generate', 'trust') for v in plan['nodes'].values()):
        plan['source'] = _source(nodes, stages, plan['first'], new, name, refusals)
    if finished:
        refusals.extend(_unfinished(blockers, finished, control_planes))
    if phase and phase not in PHASES:
        refusals.append('rotate_ca_phase "%s" is none of trust, reissue, drop' % _text(str(phase), 40))
    elif phase and plan['phase'] not in (phase, 'done'):
        if PHASES.index(phase) > PHASES.index(plan['phase']):
            refusals.append('rotate_ca_phase=%s asked, but phase %s is not finished: %s'
                            % (phase, plan['phase'], ' | '.join(plan['blockers'][plan['phase']])))
        else:
            refusals.append('rotate_ca_phase=%s asked, but that phase is finished on every node: the cluster is at '
                            'phase %s' % (phase, plan['phase']))
    plan['summary'] = _summary(plan)
    return plan


def _certificates(pem, what):
    if not isinstance(pem, str) or len(pem) > MAX_PEM:
        raise ValueError('%s is not PEM text of at most %d bytes' % (what, MAX_PEM))
    blocks = _PEM_BLOCK.findall(pem)
    if len(blocks) != 2 or any(b[0] != 'CERTIFICATE' for b in blocks) or _PEM_BLOCK.sub('', pem).strip():
        raise ValueError('%s is not exactly two PEM certificates, OLD and NEW (%d PEM block(s): %s)'
                         % (what, len(blocks), ', '.join(b[0] for b in blocks) or 'none'))
    out = []
    for m in _PEM_BLOCK.finditer(pem):
        try:
            out.append(x509.load_pem_x509_certificate(m.group(0).encode('ascii')))
        except (ValueError, UnicodeEncodeError) as e:
            raise ValueError('%s: a certificate cannot be parsed: %s' % (what, e)) from None
    return out


def _sha256(cert):
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _spki(cert):
    return hashlib.sha256(cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def _new_refusals(new, old, old_sha256, new_sha256, now, skew):
    out = []
    if _sha256(old) != old_sha256:
        out.append('the other certificate of the bundle is %s, not rotate_ca_from (%s)' % (_sha256(old), old_sha256))
    if _sha256(new) == old_sha256:
        out.append('it is OLD itself')
    elif new_sha256 is not None and _sha256(new) != new_sha256:
        out.append('its SHA-256 is %s, not the %s the nodes reported as NEW' % (_sha256(new), new_sha256))
    if _spki(new) == _spki(old):
        out.append('its public key is OLD\'s (SPKI SHA-256 %s): a rotation needs a new key' % _spki(new))
    out.extend(ca_shape_refusals(new, old, "OLD's", 'self-signed'))
    out.extend(validity_refusals(new, now, skew))
    return out


def ca_rotation_new(bundle_pem, old_sha256, new_sha256=None, position=1, name='ca', node='the node', path='',
                    now=None, skew=DEFAULT_SKEW):
    """The facts of NEW, read from a node's bundle (`position`: NEW's index in it, 1 for [OLD, NEW], 0 for [NEW, OLD]),
    when it is a self-signed CA with OLD's subject and another key, with the SHA-256 `new_sha256` (None: any, for NEW
    generated in this run)."""
    if not HAS_CRYPTOGRAPHY:
        raise AnsibleFilterError('ca_rotation_new: the Python package cryptography is needed on the controller')
    for value, what in ((old_sha256, 'old_sha256'), (new_sha256, 'new_sha256')):
        if (value is not None or what == 'old_sha256') and (not isinstance(value, str) or not _HEX.match(value)):
            raise AnsibleFilterError('ca_rotation_new: %s is not a SHA-256 fingerprint (64 lowercase hex digits)'
                                     % what)
    if position not in (0, 1):
        raise AnsibleFilterError('ca_rotation_new: position must be 0 or 1, not %r' % (position,))
    head = 'ca_rotation_new: refusing the new %s certificate %s holds in %s' % (name, node, _text(path) or 'its bundle')
    tail = ('; no other node was given it. Look at %s (it could be compromised): kubeadm-certs check there names what '
            'it holds' % node)
    try:
        certs = _certificates(bundle_pem, 'the bundle')
    except ValueError as e:
        raise AnsibleFilterError('%s: %s%s' % (head, e, tail)) from None
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    new, old = certs[position], certs[1 - position]
    with warnings.catch_warnings():
        # kubeadm 1.20 made CAs with serial 0, which RFC 5280 disallows: cryptography warns when it reads the serial
        warnings.simplefilter('ignore')
        refusals = _new_refusals(new, old, old_sha256, new_sha256, now, int(skew))
        if refusals:
            raise AnsibleFilterError('%s: %s%s' % (head, '; '.join(refusals), tail))
        return {
            'certificate_sha256': _sha256(new),
            'spki_sha256': _spki(new),
            'old_certificate_sha256': old_sha256,
            'serial': '%x' % new.serial_number,
            'subject': new.subject.rfc4514_string(),
            'not_before': _utc(new, 'not_valid_before').strftime('%Y-%m-%dT%H:%M:%SZ'),
            'not_after': _utc(new, 'not_valid_after').strftime('%Y-%m-%dT%H:%M:%SZ'),
            'pem': new.public_bytes(serialization.Encoding.PEM).decode('ascii'),
        }


class FilterModule(object):

    def filters(self):
        return {'ca_rotation_plan': ca_rotation_plan, 'ca_rotation_new': ca_rotation_new}
