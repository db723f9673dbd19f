#!/usr/bin/env bash
# node-files.sh ROOT NODE_NAME NODE_IP ETCD_MEMBERS: writes, next to the kubeadm PKI under ROOT/etc/kubernetes,
#   node.env                 node-kubelet's settings for the node (read each time it starts a component)
#   manifests/COMPONENT.yaml stand-in static pod manifests: node-kubelet runs a component while its manifest is in
#                            /etc/kubernetes/manifests (the content is for people; node-kubelet does not read it)
set -euo pipefail
root=$1; name=$2; ip=$3; members=$4
k=$root/etc/kubernetes
mkdir -p "$k/manifests"
cat >"$k/node.env" <<ENV
# read by node-kubelet each time it starts a component
IP=$ip
ETCD_MEMBERS=$members
# kubeadm's stacked etcd: each apiserver talks to the etcd member on its own node
ETCD_SERVERS=https://127.0.0.1:2379
ENV
for c in etcd kube-apiserver kube-controller-manager kube-scheduler; do
  umask 077
  cat >"$k/manifests/$c.yaml" <<YAML
# Stand-in static pod manifest: in this test node, node-kubelet runs $c (through
# /usr/local/lib/kubeadm-certs-tests/cluster.sh) while this file is in /etc/kubernetes/manifests.
apiVersion: v1
kind: Pod
metadata:
  name: $c-$name
  namespace: kube-system
  labels: {component: $c, tier: control-plane}
spec:
  hostNetwork: true
  containers:
    - name: $c
      command: [/usr/local/lib/kubeadm-certs-tests/cluster.sh, run, $c, /, "$ip"]
YAML
done
