# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Action plugin for k8s_pki.kubeadm.certs: runs the kubeadm-certs binary built for the target's platform.

The module is a static binary, one per architecture, shipped as plugins/modules/certs_<arch>. This plugin
chooses which binary that is, then runs it the cheapest safe way:

1. the copy the target keeps for this collection version (plugin_utils/binary_cache.py: root-owned, checked
   by its sha256 before every use), sending only the task's arguments, on standard input where the
   connection can (one round trip per task);
2. on the first task on a host (or after the copy was found damaged) the binary is transferred once
   (xz-compressed when the collection holds the compressed copy and the target has xz), written there by
   root, checked, and used;
3. otherwise (check mode with no copy yet, no root on the target, async, a copy that cannot be written, the
   cache turned off with the variable kubeadm_certs_binary_cache: false) Ansible's ordinary binary-module path
   (ActionBase._execute_module), which transfers the binary with an args file for every task.
"""

from __future__ import annotations

import json
import os
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash
from ansible.vars.clean import remove_internal_keys

from ansible_collections.k8s_pki.kubeadm.plugins.plugin_utils import binary_cache

try:  # ansible-core >= 2.19 encodes module arguments through a serialization profile
    from ansible.module_utils.common.json import Direction, get_module_encoder
except ImportError:  # pragma: no cover - older ansible-core
    Direction = get_module_encoder = None

display = Display()

# `uname -s`, `uname -m` -> the suffix of the module binary built for it
_PLATFORMS = {
    ('Linux', 'x86_64'): 'x86_64',
    ('Linux', 'amd64'): 'x86_64',
    ('Linux', 'aarch64'): 'aarch64',
    ('Linux', 'arm64'): 'aarch64',
}
_COLLECTION = 'k8s_pki.kubeadm'
# The fact that caches the target's `uname -sm` for the rest of the play, so it runs once per host.
_FACT = 'kubeadm_certs_uname'
# The variable that turns the copy kept on the target off (default on).
_CACHE_VAR = 'kubeadm_certs_binary_cache'


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        task_vars = task_vars or {}

        system, machine, probed = self._target_platform(task_vars)
        arch = _PLATFORMS.get((system, machine))
        if arch is None:
            supported = ', '.join(sorted('%s %s' % p for p in _PLATFORMS))
            raise AnsibleActionFail(
                "k8s_pki.kubeadm.certs has no binary for this target: `uname -sm` says %r; the collection ships "
                "one for each of: %s" % ('%s %s' % (system, machine), supported))

        module_name = '%s.certs_%s' % (_COLLECTION, arch)
        found = self._shared_loader_obj.module_loader.find_plugin_with_context(module_name, collection_list=[_COLLECTION])
        if not found.resolved:
            raise AnsibleActionFail(
                "k8s_pki.kubeadm.certs: the collection was built without the %s binary (plugins/modules/certs_%s); "
                "build it with `make collection` and install the tarball from dist/" % (arch, arch))

        wrap_async = self._task.async_val and not self._connection.has_native_async
        ran = None
        if self._cache_enabled(task_vars, wrap_async):
            ran = self._run_cached(module_name, found.plugin_resolved_path, task_vars)
        if ran is None:
            ran = self._execute_module(
                module_name=module_name, module_args=self._task.args, task_vars=task_vars, wrap_async=wrap_async)
        result = merge_hash(result, ran)

        if probed and not self._task.delegate_to:
            # Keep the answer as a fact of this host, so the next certs task on it skips the probe.
            result.setdefault('ansible_facts', {})[_FACT] = '%s %s' % (system, machine)

        if not wrap_async and self._connection._shell.tmpdir:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    # -- the copy kept on the target (plugin_utils/binary_cache.py says why each check is there) --

    # hosts where writing the copy failed in this playbook run: not tried (nor warned about) again
    _install_failed = set()

    def _cache_enabled(self, task_vars, wrap_async):
        if wrap_async or self._task.async_val:
            return False  # Ansible's async wrapper runs the module from its own transferred file
        value = task_vars.get(_CACHE_VAR, True)
        try:
            return boolean(self._templar.template(value) if isinstance(value, str) else value, strict=True)
        except TypeError:
            raise AnsibleActionFail('%s must be a boolean, got %r' % (_CACHE_VAR, value))

    def _run_cached(self, module_name, local_binary, task_vars):
        """Run the target's copy of the binary; None when the ordinary path has to run the task instead."""
        try:
            sha256 = binary_cache.file_sha256(local_binary)
            path = binary_cache.cached_path(self._collection_version(), sha256)
        except (OSError, ValueError) as e:
            display.warning('k8s_pki.kubeadm.certs: not keeping the module binary on the target: %s' % to_text(e))
            return None

        display.vvv('Using module file %s' % local_binary)
        module_args = dict(self._task.args)
        self._update_module_args(module_name, module_args, task_vars)
        built, profile = self._built_module(module_name, module_args, task_vars)
        del built
        args = self._encode_args(module_args, profile)

        res = self._use_copy(path, sha256, args)
        reason = binary_cache.miss_reason(res.get('stdout'))
        if reason is None:
            return self._module_result(res, profile)

        host = self._host_label(task_vars)
        if reason != 'absent':
            display.warning('k8s_pki.kubeadm.certs: the module binary kept on %s at %s is not used (%s); a fresh copy '
                            'is transferred' % (host, path, reason))
        if self._task.check_mode:
            return None  # check mode writes nothing, not even the cached binary
        if host in self._install_failed or not self._may_write_copy():
            return None
        source, xz = local_binary, False
        compressed = binary_cache.compressed_path(local_binary, sha256)
        if compressed and binary_cache.can_unxz(res.get('stdout')):
            source, xz = compressed, True
        if self._stdin_ok():
            # one round trip: the arguments and the binary on standard input, written, checked, then run
            res = self._install_and_use(path, sha256, source, xz, args, host)
            reason = binary_cache.miss_reason(res.get('stdout'))
            if reason is not None and reason.startswith('install-failed'):
                self._install_failed.add(host)
                display.warning(
                    'k8s_pki.kubeadm.certs: could not keep the module binary on %s at %s (%s); every task on it '
                    'transfers the binary instead (set %s: false to skip this attempt)'
                    % (host, path, reason[len('install-failed'):].strip()[-300:], _CACHE_VAR))
                return None
        else:
            if not self._write_copy(path, sha256, source, xz, host):
                return None
            res = self._use_copy(path, sha256, args)
            reason = binary_cache.miss_reason(res.get('stdout'))
        if reason is not None:
            display.warning('k8s_pki.kubeadm.certs: the module binary just written on %s is not usable (%s); '
                            'transferring it with every task instead' % (host, reason))
            self._install_failed.add(host)
            return None
        return self._module_result(res, profile)

    def _use_copy(self, path, sha256, args):
        """One command on the target: check the copy, run it with the args (on stdin where possible)."""
        env = self._compute_environment_string()
        if self._stdin_ok():
            script = binary_cache.use_script(path, sha256)
            # bytes: connection plugins hand in_data to the process as it is (the docker connection needs bytes)
            in_data = to_bytes(args)
        else:
            if self._connection._shell.tmpdir is None:
                self._make_tmp_path()
            args_path = self._connection._shell.join_path(self._connection._shell.tmpdir, 'args')
            self._transfer_data(args_path, args)
            self._fixup_perms2([self._connection._shell.tmpdir, args_path], self._get_remote_user())
            script = binary_cache.use_script(path, sha256, args_path)
            in_data = None
        cmd = ('%s /bin/sh -c %s' % (env, shlex.quote(script))).strip()
        return self._low_level_execute_command(cmd, sudoable=True, in_data=in_data)

    def _install_and_use(self, path, sha256, source, xz, args, host):
        """One command on the target: keep the binary (sent on stdin after the args), check it, run it."""
        env = self._compute_environment_string()
        args = to_bytes(args)
        with open(source, 'rb') as f:
            in_data = args + f.read()
        script = binary_cache.install_and_use_script(path, sha256, len(args), xz)
        cmd = ('%s /bin/sh -c %s' % (env, shlex.quote(script))).strip()
        res = self._low_level_execute_command(cmd, sudoable=True, in_data=in_data)
        if binary_cache.miss_reason(res.get('stdout')) is None:
            display.vv('k8s_pki.kubeadm.certs: kept the module binary on %s at %s' % (host, path))
        return res

    def _stdin_ok(self):
        conn = self._connection
        become = getattr(conn, 'become', None)
        return bool(getattr(conn, 'has_pipelining', False)) and (become is None or getattr(become, 'pipelining', True))

    def _may_write_copy(self):
        """Only root writes the copy: the remote user root, or become to root."""
        if self._play_context.become:
            return (self._play_context.become_user or 'root') == 'root'
        return self._get_remote_user() == 'root'

    def _write_copy(self, path, sha256, source, xz, host):
        if self._connection._shell.tmpdir is None:
            self._make_tmp_path()
        sent = self._connection._shell.join_path(self._connection._shell.tmpdir, 'kubeadm-certs')
        self._transfer_file(source, sent)
        self._fixup_perms2([self._connection._shell.tmpdir, sent], self._get_remote_user(), execute=False)
        res = self._low_level_execute_command(
            '/bin/sh -c %s' % shlex.quote(binary_cache.install_script(path, sha256, sent, xz)), sudoable=True)
        if res.get('rc') != 0:
            self._install_failed.add(host)
            display.warning(
                'k8s_pki.kubeadm.certs: could not keep the module binary on %s at %s (exit %s: %s); every task on it '
                'transfers the binary instead (set %s: false to skip this attempt)'
                % (host, path, res.get('rc'), to_text(res.get('stderr', '')).strip()[-300:], _CACHE_VAR))
            return False
        display.vv('k8s_pki.kubeadm.certs: kept the module binary on %s at %s' % (host, path))
        return True

    def _built_module(self, module_name, module_args, task_vars):
        """(module data, serialization profile) as Ansible would build the module; the profile is None before 2.19."""
        built = self._configure_module(module_name=module_name, module_args=module_args, task_vars=task_vars)
        bits = built[0]
        return bits, getattr(bits, 'serialization_profile', None)

    @staticmethod
    def _encode_args(module_args, profile):
        if profile is not None and get_module_encoder is not None:
            return json.dumps(module_args, cls=get_module_encoder(profile, Direction.CONTROLLER_TO_MODULE))
        return json.dumps(module_args)

    def _module_result(self, res, profile):
        if profile is not None:
            data = self._parse_returned_data(res, profile)
        else:  # pragma: no cover - older ansible-core
            data = self._parse_returned_data(res)
        remove_internal_keys(data)
        return data

    def _host_label(self, task_vars):
        return to_text(self._task.delegate_to or task_vars.get('inventory_hostname') or 'the target')

    @staticmethod
    def _collection_version():
        """This collection's version: MANIFEST.json when installed from the tarball, galaxy.yml in a source tree."""
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        try:
            with open(os.path.join(root, 'MANIFEST.json')) as f:
                return json.load(f)['collection_info']['version']
        except (OSError, ValueError, KeyError):
            pass
        with open(os.path.join(root, 'galaxy.yml')) as f:
            for line in f:
                if line.startswith('version:'):
                    return line.split(':', 1)[1].strip().strip('"\'')
        raise ValueError('no version in %s/galaxy.yml' % root)

    def _target_platform(self, task_vars):
        """Return (uname -s, uname -m, probed) of the host the module runs on."""
        if self._task.delegate_to:
            host_vars = task_vars.get('ansible_delegated_vars', {}).get(self._task.delegate_to, {})
        else:
            host_vars = task_vars
        facts = host_vars.get('ansible_facts') or {}

        cached = facts.get(_FACT)
        if cached and len(to_text(cached).split()) == 2:
            system, machine = to_text(cached).split()
            return system, machine, False
        # Gathered facts hold the same answer (`system` is uname -s, `architecture` uname -m on Linux).
        if facts.get('system') and facts.get('architecture'):
            return to_text(facts['system']), to_text(facts['architecture']), False

        res = self._low_level_execute_command('uname -sm', sudoable=False)
        out = to_text(res.get('stdout', '')).split()
        if res.get('rc') != 0 or len(out) != 2:
            raise AnsibleActionFail(
                "k8s_pki.kubeadm.certs could not tell the target's platform: `uname -sm` exited %s with %r %r"
                % (res.get('rc'), to_text(res.get('stdout', '')).strip(), to_text(res.get('stderr', '')).strip()))
        return out[0], out[1], True
