#!/usr/bin/python3
"""Run on a node (ansible.builtin.script) with PIDs: prints one JSON object, for each PID still running,
{"PID": {"pod": UID or null, "started_at": epoch seconds, "program": basename of argv[0]}}, read from /proc:

  pod         the pod UID in the process's cgroup path, as the kubelet names pod cgroups (".../pod<UID>/<container>"
              with the cgroupfs driver, "...-pod<UID_with_underscores>.slice/..." with systemd's)
  started_at  boot time (now less /proc/uptime) plus field 22 of /proc/PID/stat, in clock ticks of 100 Hz

A reading of the node independent of kubeadm-certs, for the scenarios to check the pids it reports against the
apiserver's mirror pods (cluster_state.py: static_uid) and against when files were written.
"""
import json
import os
import re
import sys
import time

POD = re.compile(r"pod([0-9a-f]{32}|[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$")


def pod_of(pid):
    with open("/proc/%s/cgroup" % pid) as f:
        for line in f:
            for part in reversed(line.strip().split(":", 2)[-1].split("/")):
                m = POD.search(part)
                if m:
                    return m.group(1).replace("_", "-")
    return None


def started_at(pid):
    with open("/proc/uptime") as f:
        boot = time.time() - float(f.read().split()[0])
    with open("/proc/%s/stat" % pid) as f:
        stat = f.read()
    return boot + int(stat[stat.rindex(")") + 2:].split()[19]) / 100.0


def main():
    out = {}
    for pid in sys.argv[1:]:
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                program = os.path.basename(f.read().split(b"\0")[0].decode())
            out[pid] = {"pod": pod_of(pid), "started_at": started_at(pid), "program": program}
        except (OSError, ValueError, IndexError):
            continue
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
