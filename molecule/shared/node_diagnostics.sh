#!/bin/sh
# molecule/shared/node_diagnostics.sh: what a node's containers, kubelet and etcd said, printed when forming the
# test cluster failed (diagnose.yml). kubeadm's own error ("timeout waiting for etcd cluster to be available")
# does not say whether etcd never started, crashed or could not reach its peers; these lines do.
echo "== $(hostname): containers the runtime runs (ctr -n k8s.io tasks ls)"
ctr -n k8s.io tasks ls 2>&1 | tail -n 20
echo "== $(hostname): etcd's health on kubeadm's metrics listener"
curl -s -m 5 http://127.0.0.1:2381/health 2>&1 || echo "(no answer)"
echo
echo "== $(hostname): the kubelet's journal, last 40 lines (without its steady cgroup and volume chatter)"
journalctl -u kubelet --no-pager -n 400 2>&1 | grep -v -e perf_event -e VerifyControllerAttachedVolume |
  tail -n 40 | cut -c1-300
for f in /var/log/pods/kube-system_etcd-*/etcd/*.log; do
  [ -f "$f" ] || continue
  echo "== $(hostname): $f, last 25 lines"
  tail -n 25 "$f" | cut -c1-400
done
