#!/usr/bin/env python3
"""The probe's view of one phase of a scenario: one JSON summary for verify to assert on.

  probe_window.py PROBE_LOG SINCE UNTIL NODE...     (epoch seconds; node names in the probe's column order)

PROBE_LOG: cluster-probe lines "EPOCH A1..An E1..En" (1 = healthy: apiserver /readyz, etcd member /health, each
verified against the cluster's CAs); only rounds with SINCE <= EPOCH < UNTIL count. Two nodes restarting at once
shows as a round in which two apiservers are down together; an expired control plane as rounds in which nothing
answers.
"""
import json
import sys

probe_log, since, until, nodes = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
n = len(nodes)
rows = []
for line in open(probe_log):
    f = line.split()
    if len(f) == 1 + 2 * n and since <= float(f[0]) < until:
        rows.append((float(f[0]), [int(x) for x in f[1:1 + n]], [int(x) for x in f[1 + n:]]))

down = {node: [t for t, a, _ in rows if a[i] == 0] for i, node in enumerate(nodes)}
nothing = [t for t, a, e in rows if sum(a) + sum(e) == 0]
everything = [t for t, a, e in rows if sum(a) + sum(e) == 2 * n]
spans = sorted((d[0], d[-1]) for d in down.values() if d)
print(json.dumps({
    "rounds": len(rows),
    "probe_span": [rows[0][0], rows[-1][0]] if rows else None,
    # per node: how many rounds its apiserver was down, the first and the last
    "apiserver_down": {node: {"rounds": len(d), "first": d[0] if d else None, "last": d[-1] if d else None}
                       for node, d in down.items()},
    "apiserver_down_spans_disjoint": all(spans[i][1] < spans[i + 1][0] for i in range(len(spans) - 1)),
    "rounds_with_two_apiservers_down": sum(1 for _, a, _ in rows if n - sum(a) >= 2),
    "rounds_without_apiserver": sum(1 for _, a, _ in rows if sum(a) == 0),
    "rounds_without_etcd_quorum": sum(1 for _, _, e in rows if sum(e) < n // 2 + 1),
    # rounds in which nothing answered, and the first round after the last of them in which everything did
    "rounds_nothing_answered": len(nothing),
    "first_nothing_answered": nothing[0] if nothing else None,
    "last_nothing_answered": nothing[-1] if nothing else None,
    "first_everything_answered_after": next((t for t in everything if nothing and t > nothing[-1]), None),
    "last_round_everything_answered": bool(rows) and sum(rows[-1][1]) + sum(rows[-1][2]) == 2 * n,
}, indent=1, sort_keys=True))
