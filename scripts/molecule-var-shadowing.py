#!/usr/bin/env python3
"""scripts/molecule-var-shadowing.py [DIR]: refuses a Molecule playbook variable that a registered result can hide.

Ansible gives a variable registered on a host (`register:`, `set_fact:`) precedence over play and task `vars:` for
the rest of the run. The scenarios' verify steps import many shared playbooks into one run, so a task variable named
like a result some earlier playbook registered is silently replaced by that result: shared/verify.yml registered
`__before` and `__after`, and restarted_pods.yml's `vars: __after: ...` then read verify.yml's command result
("object of type 'dict' has no attribute 'static_uid'" in the default and ha verify steps). This lists every name
that is both registered (or set as a fact) and defined under a `vars:` anywhere below DIR (default: molecule/), and
exits 1 naming the files when there is one. Run by scripts/molecule-tests.sh before any scenario starts.
"""
import glob
import os
import sys

import yaml


def walk(node, path, registered, defined):
    if isinstance(node, dict):
        if isinstance(node.get('register'), str):
            registered.setdefault(node['register'], set()).add(path)
        for key in ('ansible.builtin.set_fact', 'set_fact'):
            if isinstance(node.get(key), dict):
                for name in node[key]:
                    if name != 'cacheable':
                        registered.setdefault(name, set()).add(path)
        if isinstance(node.get('vars'), dict):
            for name in node['vars']:
                defined.setdefault(name, set()).add(path)
        for value in node.values():
            walk(value, path, registered, defined)
    elif isinstance(node, list):
        for value in node:
            walk(value, path, registered, defined)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'molecule')
    registered, defined = {}, {}
    for path in sorted(glob.glob(os.path.join(root, '**', '*.yml'), recursive=True)):
        with open(path, encoding='utf-8') as f:
            try:
                docs = list(yaml.safe_load_all(f))
            except yaml.YAMLError as e:
                print('molecule-var-shadowing: %s: not YAML: %s' % (path, e), file=sys.stderr)
                return 1
        walk(docs, os.path.relpath(path, root), registered, defined)
    clashes = sorted(set(registered) & set(defined))
    for name in clashes:
        print('molecule-var-shadowing: %s is registered in %s and a vars: entry in %s: the registered value wins '
              'over the vars: one for the rest of the run; give one of them another name'
              % (name, ', '.join(sorted(registered[name])), ', '.join(sorted(defined[name]))), file=sys.stderr)
    return 1 if clashes else 0


if __name__ == '__main__':
    sys.exit(main())
