#!/usr/bin/env python3
"""Reads the HA scenario's evidence and prints one JSON summary for verify to assert on.

  ha_timeline.py [--until=EPOCH] PROBE_LOG STATE_BEFORE STATE_AFTER NODE...
                                (node names in the order the playbook renews them; rounds from EPOCH on, when later
                                phases restarted components again, are left out)

PROBE_LOG: cluster-probe lines "EPOCH A1..An E1..En" (1 = healthy), A/E in node order.
STATE_BEFORE/AFTER: cluster_state.py's JSON before converge and after the play. A control-plane pod whose mirror
pod UID changed was made anew by the kubelet from a changed manifest: a restart through the manifest (a crash
restart keeps the pod). Its restarted_at (the role's annotation: when the restart began) and started_at (when the
runtime started the new container) bound the node's restart window.
"""
import json
import sys

SLACK = 6.0  # seconds: a probe round takes up to 5 s; the pod times have a resolution of 1 s

args = sys.argv[1:]
until = float(args.pop(0).split("=", 1)[1]) if args and args[0].startswith("--until=") else float("inf")
probe_log, before_path, after_path, nodes = args[0], args[1], args[2], args[3:]
n = len(nodes)
rows = []
for line in open(probe_log):
    f = line.split()
    if len(f) == 1 + 2 * n and float(f[0]) < until:
        rows.append((float(f[0]), [int(x) for x in f[1:1 + n]], [int(x) for x in f[1 + n:]]))
before = json.load(open(before_path))["pods"]
after = json.load(open(after_path))["pods"]

windows, restarted = {}, {}
for node in nodes:
    pods = {k.split("/")[0]: k for k in after if k.endswith("/" + node)}
    new = sorted(c for c, k in pods.items() if k in before and after[k]["uid"] != before[k]["uid"])
    restarted[node] = new
    if new:
        begins = [after[pods[c]]["restarted_at"] for c in new]
        ends = [after[pods[c]]["started_at"] for c in new]
        windows[node] = [None if None in begins else min(begins), None if None in ends else max(ends)]

summary = {
    "nodes": nodes,
    "rounds": len(rows),
    "probe_span": [rows[0][0], rows[-1][0]] if rows else None,
    "min_apiservers_ready": min((sum(a) for _, a, _ in rows), default=0),
    "min_etcd_healthy": min((sum(e) for _, _, e in rows), default=0),
    "rounds_without_apiserver": sum(1 for _, a, _ in rows if sum(a) == 0),
    "rounds_without_etcd_quorum": sum(1 for _, _, e in rows if sum(e) < n // 2 + 1),
    "restarted_components": restarted,
    "windows": windows,
    "windows_complete": len(windows) == n and all(None not in w for w in windows.values()),
    "windows_in_order": all(
        nodes[i] in windows and nodes[i + 1] in windows and None not in windows[nodes[i]]
        and None not in windows[nodes[i + 1]] and windows[nodes[i]][1] < windows[nodes[i + 1]][0]
        for i in range(n - 1)),
    "probe_covers_windows": bool(rows) and all(
        None not in w and w[0] > rows[0][0] and w[1] < rows[-1][0] for w in windows.values()),
    # per node: rounds in which its apiserver was not ready, and those of them outside its own window
    "apiserver_down_rounds": {},
    "apiserver_down_outside_window": {},
}
for i, node in enumerate(nodes):
    down = [t for t, a, _ in rows if a[i] == 0]
    w = windows.get(node)
    summary["apiserver_down_rounds"][node] = len(down)
    summary["apiserver_down_outside_window"][node] = [
        t for t in down if not w or None in w or not (w[0] - SLACK <= t <= w[1] + SLACK)]
print(json.dumps(summary, indent=1, sort_keys=True))
