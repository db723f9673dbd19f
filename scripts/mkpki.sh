#!/usr/bin/env bash
# scripts/mkpki.sh ROOT VARIANT [NODE] [IP]
#
# A control-plane PKI made by real kubeadm (v1.20.2, scripts/k8s-bin.sh) under ROOT/etc/kubernetes:
# `kubeadm init phase certs all` + `init phase kubeconfig all` with `--rootfs ROOT` (no root privileges needed,
# nothing outside ROOT is touched). The kubeadm config used is left at ROOT/kubeadm-config.yaml.
#
#   VARIANT  std      every certificate, CA keys present
#            extca    as std, then pki/ca.key removed (kubeadm's external CA mode)
#            extetcd  external etcd: no etcd CA, no etcd-*, no apiserver-etcd-client
#   NODE     node name (default cp1): apiserver SAN, etcd-server/peer CN and SAN
#   IP       the address the node's components bind (default 127.0.0.11). A loopback IP cannot be kubeadm's
#            advertise address, so the certificates then carry the documentation address 192.0.2.<last octet>
#            as the node address; any other IP (a container's address) is the advertise address itself.
#            Every kubeconfig's server is https://IP:API_PORT, whatever kubeadm wrote.
#
# Environment (all optional):
#   CA_FROM=OTHER_ROOT     reuse OTHER_ROOT's CAs and service-account key pair (another node of the same cluster)
#   EXTRA_SANS=a,b         more SANs (IPs or DNS names) for apiserver, etcd-server and etcd-peer
#   ADVERTISE_IP=addr      the node address the certificates carry (default: see IP above)
#   API_PORT=6443          the apiserver port kubeconfigs point at (PORT_BASE=N means API_PORT=N, as in cluster.sh)
#   CONTROL_PLANE_ENDPOINT=host:port   kubeadm's controlPlaneEndpoint (default IP:API_PORT); its host is a SAN
#   K8S_BIN=dir            where kubeadm is (default: the folder scripts/k8s-bin.sh prints)
set -euo pipefail
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
ROOT=$1; VARIANT=$2; NODE=${3:-cp1}; IP=${4:-127.0.0.11}
case $VARIANT in std|extca|extetcd) ;; *) echo "mkpki.sh: unknown variant '$VARIANT'" >&2; usage ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${K8S_BIN:-$("$HERE/k8s-bin.sh")}
API_PORT=${API_PORT:-${PORT_BASE:-6443}}

case $IP in
  127.*) ADVERTISE_IP=${ADVERTISE_IP:-192.0.2.${IP##*.}} ;;
  *) ADVERTISE_IP=${ADVERTISE_IP:-$IP} ;;
esac
ENDPOINT=${CONTROL_PLANE_ENDPOINT:-$IP:$API_PORT}

mkdir -p "$ROOT/etc/kubernetes/pki"
ROOT=$(cd "$ROOT" && pwd)
PKI=$ROOT/etc/kubernetes/pki

if [ -n "${CA_FROM:-}" ]; then
  src=$CA_FROM/etc/kubernetes/pki
  [ -f "$src/ca.crt" ] || { echo "mkpki.sh: CA_FROM=$CA_FROM holds no etc/kubernetes/pki/ca.crt" >&2; exit 1; }
  for f in ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key sa.key sa.pub etcd/ca.crt etcd/ca.key; do
    [ -f "$src/$f" ] || continue
    [ "$VARIANT" = extetcd ] && [ "${f%%/*}" = etcd ] && continue
    mkdir -p "$(dirname "$PKI/$f")"
    cp -p "$src/$f" "$PKI/$f"
  done
fi

# YAML flow list of the SANs: IP, the endpoint's host, the extras (kubeadm de-duplicates).
sans=("$IP" "${ENDPOINT%:*}")
if [ -n "${EXTRA_SANS:-}" ]; then IFS=, read -r -a extra <<<"$EXTRA_SANS"; sans+=("${extra[@]}"); fi
yaml_list() { local out="" s; for s in "$@"; do [ -n "$s" ] && out+="${out:+, }\"$s\""; done; echo "[$out]"; }
SANS=$(yaml_list "${sans[@]}")

if [ "$VARIANT" = extetcd ]; then
  # The endpoints are never dialled by these phases; scripts/cluster.sh runs a plain etcd for such a PKI.
  etcd_block="etcd:
  external:
    endpoints: [\"http://$IP:2379\"]"
else
  etcd_block="etcd:
  local:
    serverCertSANs: $SANS
    peerCertSANs: $SANS"
fi
cat >"$ROOT/kubeadm-config.yaml" <<EOF
apiVersion: kubeadm.k8s.io/v1beta2
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $ADVERTISE_IP
  bindPort: $API_PORT
nodeRegistration:
  name: $NODE
---
apiVersion: kubeadm.k8s.io/v1beta2
kind: ClusterConfiguration
kubernetesVersion: v1.20.2
certificatesDir: /etc/kubernetes/pki
controlPlaneEndpoint: "$ENDPOINT"
apiServer:
  certSANs: $(yaml_list "${sans[@]}" "k8s-api.example.internal")
$etcd_block
networking:
  serviceSubnet: 10.96.0.0/12
  dnsDomain: cluster.local
EOF

log=$ROOT/kubeadm-mkpki.log
for phase in "certs all" "kubeconfig all"; do
  # shellcheck disable=SC2086 # the phase is two words on purpose
  if ! "$BIN/kubeadm" init phase $phase --config /kubeadm-config.yaml --rootfs "$ROOT" >>"$log" 2>&1; then
    echo "mkpki.sh: kubeadm init phase $phase failed; see $log" >&2
    exit 1
  fi
done
# kubeadm writes the controlPlaneEndpoint into the kubeconfigs; point them at the address the components bind.
sed -i "s#^\(\s*server:\) https://.*#\1 https://$IP:$API_PORT#" "$ROOT"/etc/kubernetes/*.conf
if [ "$VARIANT" = extca ]; then rm -f "$PKI/ca.key"; fi
exit 0
