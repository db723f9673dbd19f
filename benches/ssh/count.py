"""Module runs per host from ansible.posix.json output: what crossed the wire, not what ran on the controller.

usage: count.py JSON_FILE HOST -> prints the number of module executions on HOST (loop items counted one by one;
assert/set_fact/debug/fail run on the controller and tasks delegated elsewhere are left out).
"""
import json
import sys

CONTROLLER_ONLY = {'assert', 'set_fact', 'debug', 'fail', 'include_role', 'import_role', 'include_tasks', 'meta'}

data = json.load(open(sys.argv[1]))
host = sys.argv[2]
n = 0
for play in data.get('plays', []):
    for task in play.get('tasks', []):
        action = task.get('task', {}).get('name', '')
        res = task.get('hosts', {}).get(host)
        if res is None or res.get('skipped'):
            continue
        act = (res.get('action') or '').split('.')[-1]
        if act in CONTROLLER_ONLY or res.get('_ansible_delegated_vars'):
            continue
        n += len(res['results']) if isinstance(res.get('results'), list) else 1
print(n)
