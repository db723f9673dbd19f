#!/usr/bin/env bash
# molecule/image/build.sh: builds the Molecule node image from Debian packages (no registry needed) and prints
# its name (kubeadm-certs-node:<content hash>) on stdout; progress goes to stderr.
#
#   1. a Debian bookworm minbase root file system by debootstrap, with the packages below, from the Debian
#      mirror this machine's apt uses; cached as a tarball keyed by the package list
#      ($KUBEADM_CERTS_CACHE/molecule/base-<hash>.tar)
#   2. the Kubernetes binaries scripts/k8s-bin.sh builds (kubeadm, kube-apiserver, kube-controller-manager,
#      kube-scheduler v1.20.2), scripts/cluster.sh and molecule/image/rootfs/ (node-kubelet.service, the crictl
#      stand-in, node-restart, cluster-probe) laid over it
#   3. `docker import` as kubeadm-certs-node:<hash of all of the above>, also tagged :latest
# Nothing is rebuilt when an image with that hash exists. Older kubeadm-certs-node tags are removed.
# Needs root (debootstrap) and a running Docker Engine.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
NAME=kubeadm-certs-node
CACHE=${KUBEADM_CERTS_CACHE:-$HOME/.cache/kubeadm-certs}/molecule
SUITE=bookworm
PACKAGES=python3,openssl,etcd-server,etcd-client,kubernetes-client,curl,ca-certificates,iproute2,procps,systemd,tar,gzip
log() { echo "build.sh: $*" >&2; }

BIN=$("$REPO_ROOT/scripts/k8s-bin.sh")
K8S_BINS=(kubeadm kube-apiserver kube-controller-manager kube-scheduler)

mirror() {
  local uri
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb /{for(i=2;i<=NF;i++) if ($i ~ /^http/) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || { log "no Debian mirror found in the apt sources"; exit 1; }
  echo "$uri"
}

base_key=$(printf '%s\n' "$SUITE" "$PACKAGES" "v1" | sha256sum | cut -c1-16)
# Content hash: the base, this script, the overlay (contents and modes), cluster.sh, the Kubernetes binaries.
content_key=$(
  {
    echo "$base_key"
    sha256sum "$HERE/build.sh" "$REPO_ROOT/scripts/cluster.sh"
    (cd "$HERE/rootfs" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    (cd "$HERE/rootfs" && find . -printf '%p %m %l\n' | sort)
    (cd "$BIN" && sha256sum "${K8S_BINS[@]}")
  } | sha256sum | cut -c1-16
)
IMAGE=$NAME:$content_key

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE is up to date"
  echo "$IMAGE"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if docker image inspect "$IMAGE" >/dev/null 2>&1; then echo "$IMAGE"; exit 0; fi

command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >&2
base=$CACHE/base-$base_key.tar
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ ! -f "$base" ]; then
  log "debootstrap $SUITE minbase with $PACKAGES (a few minutes, once)"
  start=$SECONDS
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$(mirror)" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  # trim what a test node never needs
  rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/* \
    "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/locale/*
  tar -C "$work/rootfs" -cf "$base.tmp" .
  mv "$base.tmp" "$base"
  rm -rf "$work/rootfs"
  log "base root file system done in $((SECONDS - start)) s"
  # only the newest base is worth keeping
  find "$CACHE" -maxdepth 1 -name 'base-*.tar' ! -name "base-$base_key.tar" -delete
fi

mkdir -p "$work/rootfs"
tar -C "$work/rootfs" -xf "$base"
for b in "${K8S_BINS[@]}"; do install -m 0755 "$BIN/$b" "$work/rootfs/usr/local/bin/$b"; done
install -D -m 0755 "$REPO_ROOT/scripts/cluster.sh" "$work/rootfs/usr/local/lib/kubeadm-certs-tests/cluster.sh"
cp -a "$HERE/rootfs/." "$work/rootfs/"
# no apt sources inside: the nodes never fetch anything
rm -f "$work/rootfs"/etc/apt/sources.list "$work/rootfs"/etc/apt/sources.list.d/*
echo "$NAME" >"$work/rootfs/etc/hostname"

log "importing $IMAGE"
tar -C "$work/rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/usr/local/sbin/node-kubelet"]' \
  --change "LABEL org.kubeadm-certs.content=$content_key" \
  - "$IMAGE" >/dev/null
docker tag "$IMAGE" "$NAME:latest"
# drop older builds of the node image (not used by any container)
docker image ls --format '{{.Repository}}:{{.Tag}}' "$NAME" | while read -r old; do
  case $old in "$IMAGE"|"$NAME:latest") ;; *) docker image rm "$old" >/dev/null 2>&1 || true ;; esac
done
echo "$IMAGE"
