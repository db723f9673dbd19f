# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Action plugin for k8s_pki.kubeadm.certs: runs the kubeadm-certs binary built for the target's platform.

The module is a static binary, one per architecture, shipped as plugins/modules/certs_<arch>. Ansible's
ordinary binary-module path (ActionBase._execute_module with the per-architecture module name) transfers
it with an args file and parses the JSON it prints; this plugin only chooses which binary that is.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

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
        result = merge_hash(result, self._execute_module(
            module_name=module_name, module_args=self._task.args, task_vars=task_vars, wrap_async=wrap_async))

        if probed and not self._task.delegate_to:
            # Keep the answer as a fact of this host, so the next certs task on it skips the probe.
            result.setdefault('ansible_facts', {})[_FACT] = '%s %s' % (system, machine)

        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

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
