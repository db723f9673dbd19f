#!/usr/bin/env python3
"""What ca_clients.py saw, per phase: one JSON object for verify to assert on and print.

  ca_clients_summary.py LOG [SINCE UNTIL]        (epoch seconds; only lines with SINCE <= t < UNTIL count)

{"phases": {PHASE: {...}}, "phase_order": [PHASE, ...] (as they first appear), "total": {...},
 "started": bool, "stopped": bool, "span": [first t, last t] or null}
Per phase and in total:
  lb_requests, lb_ok, lb_failed          the load balancer's requests (counted in the phase they were sent in)
  lb_failed_causes                       {cause: count}
  lb_redispatched                        requests a refused connection sent on to another apiserver (they count
                                         as ok or failed by their final outcome)
  longest_outage_s, outages              runs of consecutive failed requests (in the order sent), counted in the
                                         phase their first failure was sent in; a run lasts from its first
                                         failure until the next request that succeeded was sent (or until the
                                         last failure ended, when none did)
  failures                               the first 10 failed requests: t, server, cause, error
  watch_opens, watch_drops, watch_drop_causes, watch_failed_reconnects, watch_failed_reconnect_causes
  health_changes                         {server: how often the balancer saw it go up or down}
Python 3 standard library only.
"""
import json
import sys


def empty():
    return {"lb_requests": 0, "lb_ok": 0, "lb_failed": 0, "lb_failed_causes": {}, "lb_redispatched": 0,
            "longest_outage_s": 0.0, "outages": 0, "failures": [],
            "watch_opens": 0, "watch_drops": 0, "watch_drop_causes": {}, "watch_failed_reconnects": 0,
            "watch_failed_reconnect_causes": {}, "health_changes": {}}


def bump(d, key):
    d[key] = d.get(key, 0) + 1


def summarize(lines, since=float("-inf"), until=float("inf")):
    recs = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut short when the host stopped mid-write
        if isinstance(rec, dict) and isinstance(rec.get("t"), (int, float)) and since <= rec["t"] < until:
            recs.append(rec)
    recs.sort(key=lambda r: r["t"])
    phases, order, total = {}, [], empty()

    def of(phase):
        if phase not in phases:
            phases[phase] = empty()
            order.append(phase)
        return phases[phase]

    for rec in recs:
        kind, p = rec.get("kind"), of(rec.get("phase", ""))
        for d in (p, total):
            if kind == "lb":
                d["lb_requests"] += 1
                if rec.get("ok"):
                    d["lb_ok"] += 1
                else:
                    d["lb_failed"] += 1
                    bump(d["lb_failed_causes"], rec.get("cause") or "unknown")
                    if len(d["failures"]) < 10:
                        d["failures"].append({k: rec.get(k) for k in ("t", "server", "cause", "error")})
                if rec.get("redispatched"):
                    d["lb_redispatched"] += 1
            elif kind == "watch-open":
                d["watch_opens"] += 1
            elif kind == "watch-drop":
                d["watch_drops"] += 1
                bump(d["watch_drop_causes"], rec.get("cause") or "unknown")
            elif kind == "watch-reconnect-failed":
                d["watch_failed_reconnects"] += 1
                bump(d["watch_failed_reconnect_causes"], rec.get("cause") or "unknown")
            elif kind == "health":
                bump(d["health_changes"], rec.get("server") or "unknown")

    # outages: runs of consecutive failed requests, in the order they were sent
    lb = [r for r in recs if r.get("kind") == "lb"]
    i = 0
    while i < len(lb):
        if lb[i].get("ok"):
            i += 1
            continue
        j = i
        while j < len(lb) and not lb[j].get("ok"):
            j += 1
        start = lb[i]["t"]
        end = lb[j]["t"] if j < len(lb) else max(r["t"] + r.get("ms", 0) / 1000.0 for r in lb[i:j])
        seconds = round(end - start, 3)
        for d in (of(lb[i].get("phase", "")), total):
            d["outages"] += 1
            d["longest_outage_s"] = max(d["longest_outage_s"], seconds)
        i = j

    return {
        "phases": phases,
        "phase_order": order,
        "total": total,
        "started": any(r.get("kind") == "start" for r in recs),
        "stopped": any(r.get("kind") == "stop" for r in recs),
        "span": [recs[0]["t"], recs[-1]["t"]] if recs else None,
    }


def main(argv):
    if len(argv) not in (2, 4):
        print("usage: ca_clients_summary.py LOG [SINCE UNTIL]", file=sys.stderr)
        return 2
    since, until = (float(argv[2]), float(argv[3])) if len(argv) == 4 else (float("-inf"), float("inf"))
    with open(argv[1]) as f:
        print(json.dumps(summarize(f, since, until), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
