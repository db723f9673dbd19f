#!/usr/bin/env python3
"""Reads the HA scenario's evidence and prints one JSON summary for verify to assert on.

  ha_timeline.py PROBE_LOG NODE=EVENTS_FILE...     (nodes in the order the playbook renews them)

PROBE_LOG: cluster-probe lines "EPOCH A1..An E1..En" (1 = healthy), A/E in node order.
EVENTS_FILE: a node's node-kubelet events, "EPOCH start|exited|stopped COMPONENT PID". A "stopped" event happens
only when a component's manifest left /etc/kubernetes/manifests, i.e. a static-pod restart by the role.
"""
import json
import sys

SLACK = 3.0  # seconds: a probe round takes up to 2 s, and a restart is logged when node-kubelet notices it

probe_log, node_args = sys.argv[1], sys.argv[2:]
nodes = [a.split("=", 1)[0] for a in node_args]
n = len(nodes)
rows = []
for line in open(probe_log):
    f = line.split()
    if len(f) == 1 + 2 * n:
        rows.append((float(f[0]), [int(x) for x in f[1:1 + n]], [int(x) for x in f[1 + n:]]))

windows, stopped = {}, {}
for arg in node_args:
    node, path = arg.split("=", 1)
    events = [line.split() for line in open(path) if line.strip()]
    stops = [e for e in events if e[1] == "stopped"]
    stopped[node] = sorted({e[2] for e in stops})
    if stops:
        # from the first stop to the moment the last stopped component was started again (a component that
        # crashes and is restarted on its own, e.g. kube-controller-manager losing its apiserver, is no restart)
        ends = []
        for s in stops:
            again = [float(e[0]) for e in events
                     if e[1] == "start" and e[2] == s[2] and float(e[0]) > float(s[0])]
            ends.append(min(again) if again else None)
        windows[node] = [min(float(e[0]) for e in stops), None if None in ends else max(ends)]

summary = {
    "nodes": nodes,
    "rounds": len(rows),
    "probe_span": [rows[0][0], rows[-1][0]] if rows else None,
    "min_apiservers_ready": min((sum(a) for _, a, _ in rows), default=0),
    "min_etcd_healthy": min((sum(e) for _, _, e in rows), default=0),
    "rounds_without_apiserver": sum(1 for _, a, _ in rows if sum(a) == 0),
    "rounds_without_etcd_quorum": sum(1 for _, _, e in rows if sum(e) < n // 2 + 1),
    "stopped_components": stopped,
    "windows": windows,
    "windows_in_order": all(
        nodes[i] in windows and nodes[i + 1] in windows and windows[nodes[i]][1] is not None
        and windows[nodes[i]][1] < windows[nodes[i + 1]][0] for i in range(n - 1)),
    "probe_covers_windows": bool(rows) and all(
        w[0] > rows[0][0] and w[1] is not None and w[1] < rows[-1][0] for w in windows.values()),
    # per node: rounds in which its apiserver was not ready, and how many of them fell outside its own window
    "apiserver_down_rounds": {},
    "apiserver_down_outside_window": {},
}
for i, node in enumerate(nodes):
    down = [t for t, a, _ in rows if a[i] == 0]
    w = windows.get(node)
    summary["apiserver_down_rounds"][node] = len(down)
    summary["apiserver_down_outside_window"][node] = [
        t for t in down if not w or w[1] is None or not (w[0] - SLACK <= t <= w[1] + SLACK)]
print(json.dumps(summary, indent=1, sort_keys=True))
