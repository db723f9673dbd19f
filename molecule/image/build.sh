#!/usr/bin/env bash
# molecule/image/build.sh: builds, without any registry, what the Molecule scenarios' real kubeadm nodes need and
# prints two lines on stdout:
#   1. the node image      kubeadm-certs-node:<content hash>
#   2. the control-plane images tarball (docker save of local-k8s/{etcd,kube-apiserver,kube-controller-manager,
#      kube-scheduler,pause}), imported into each node's containerd with `ctr -n k8s.io images import`
# Progress goes to stderr.
#
# The node image: a Debian bookworm minbase root file system (debootstrap from the Debian mirror this machine's
# apt uses) with systemd, containerd, runc, the CNI plugins and what the kubelet needs (iptables, conntrack,
# socat, ...), python3 for Ansible, curl and openssl; the kubelet and kubeadm v1.20.2 that scripts/k8s-bin.sh
# builds; molecule/image/rootfs/ laid over it (containerd and kubelet configuration, the entrypoint, the probe,
# the crictl stand-in for kubeadm's image checks). No etcd, no etcdctl, no kubectl: what a kubeadm node has.
# The control-plane images: FROM scratch holding the static binaries (molecule/image/cp/*.Dockerfile); etcd is
# Debian's etcd-server 3.4 with its libc and loader; pause is Kubernetes' build/pause/linux/pause.c, gcc -static.
#
# Cached under $KUBEADM_CERTS_CACHE (default ~/.cache/kubeadm-certs)/molecule, keyed by content hashes:
#   base-<hash>.tar        the debootstrap root file system (about 2 minutes, once)
#   node-<hash>.tar        docker save of the node image (a fresh docker loads it instead of building)
#   cp-images-<hash>.tar   the control-plane images
# Nothing is rebuilt when its hash matches. Needs root (debootstrap, apt) and a running Docker Engine; installs
# debootstrap, etcd-server and gcc when missing.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
NAME=kubeadm-certs-node
CACHE=${KUBEADM_CERTS_CACHE:-$HOME/.cache/kubeadm-certs}/molecule
SUITE=bookworm
PACKAGES=systemd,dbus,containerd,runc,containernetworking-plugins,iptables,iproute2,conntrack,ethtool,socat,kmod,python3,openssl,curl,ca-certificates,procps,tar,gzip
# kubeadm v1.20.2's image names and tags (kubeadm config images list), under imageRepository local-k8s
CP_IMAGES=(etcd:3.4.13-0 kube-apiserver:v1.20.2 kube-controller-manager:v1.20.2 kube-scheduler:v1.20.2 pause:3.2)
log() { echo "build.sh: $*" >&2; }
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; }
}

BIN=$("$REPO_ROOT/scripts/k8s-bin.sh")
command -v debootstrap >/dev/null || apt_install debootstrap
command -v etcd >/dev/null || apt_install etcd-server
command -v gcc >/dev/null && [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || apt_install gcc libc6-dev
ETCD=$(command -v etcd)
K8S_SRC=$(ls "$(dirname "$BIN")"/src/kubernetes_*.orig.tar.gz 2>/dev/null | head -n 1 || true)
[ -n "$K8S_SRC" ] || { log "no Kubernetes source tarball next to $BIN (scripts/k8s-bin.sh keeps it): pause.c comes from it"; exit 1; }

mirror() {
  local uri
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb /{for(i=2;i<=NF;i++) if ($i ~ /^http/) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || { log "no Debian mirror found in the apt sources"; exit 1; }
  echo "$uri"
}

base_key=$(printf '%s\n' "$SUITE" "$PACKAGES" "v2" | sha256sum | cut -c1-16)
node_key=$(
  {
    echo "$base_key"
    sha256sum "$HERE/build.sh"
    (cd "$HERE/rootfs" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    (cd "$HERE/rootfs" && find . -printf '%p %m %l\n' | sort)
    (cd "$BIN" && sha256sum kubelet kubeadm)
  } | sha256sum | cut -c1-16
)
cp_key=$(
  {
    sha256sum "$HERE/build.sh" "$HERE"/cp/*.Dockerfile "$ETCD" "$K8S_SRC"
    (cd "$BIN" && sha256sum kube-apiserver kube-controller-manager kube-scheduler)
  } | sha256sum | cut -c1-16
)
IMAGE=$NAME:$node_key
CP_TAR=$CACHE/cp-images-$cp_key.tar
NODE_TAR=$CACHE/node-$node_key.tar

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

build_base() {
  local base=$CACHE/base-$base_key.tar start=$SECONDS
  [ -f "$base" ] && return 0
  log "debootstrap $SUITE minbase with $PACKAGES (a few minutes, once)"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/base" "$(mirror)" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  # trim what a test node never needs
  rm -rf "$work/base"/var/cache/apt/archives/*.deb "$work/base"/var/lib/apt/lists/* \
    "$work/base"/usr/share/doc/* "$work/base"/usr/share/man/* "$work/base"/usr/share/locale/*
  tar -C "$work/base" -cf "$base.tmp" .
  mv "$base.tmp" "$base"
  rm -rf "$work/base"
  log "base root file system done in $((SECONDS - start)) s"
  find "$CACHE" -maxdepth 1 -name 'base-*.tar' ! -name "base-$base_key.tar" -delete
}

build_node() {
  local root=$work/rootfs start=$SECONDS
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then log "$IMAGE is up to date"; return 0; fi
  if [ -f "$NODE_TAR" ]; then
    docker load -i "$NODE_TAR" >/dev/null
    log "$IMAGE loaded from $NODE_TAR in $((SECONDS - start)) s"
    return 0
  fi
  build_base
  mkdir -p "$root"
  tar -C "$root" -xf "$CACHE/base-$base_key.tar"
  install -m 0755 "$BIN/kubelet" "$BIN/kubeadm" "$root/usr/local/bin/"
  cp -a "$HERE/rootfs/." "$root/"
  # kubeadm's CNI path; bookworm's containernetworking-plugins install into /usr/lib/cni
  mkdir -p "$root/opt/cni" "$root/etc/kubernetes/manifests" "$root/etc/cni/net.d"
  ln -sfn /usr/lib/cni "$root/opt/cni/bin"
  # no apt sources inside: the nodes never fetch anything
  rm -f "$root"/etc/apt/sources.list "$root"/etc/apt/sources.list.d/*
  echo "$NAME" >"$root/etc/hostname"
  log "importing $IMAGE"
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV container=docker' \
    --change 'ENTRYPOINT ["/usr/local/sbin/node-entrypoint"]' \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change "LABEL org.kubeadm-certs.content=$node_key" \
    - "$IMAGE" >/dev/null
  docker save -o "$NODE_TAR.tmp" "$IMAGE" && mv "$NODE_TAR.tmp" "$NODE_TAR"
  find "$CACHE" -maxdepth 1 -name 'node-*.tar' ! -name "node-$node_key.tar" -delete
  log "$IMAGE built in $((SECONDS - start)) s"
}

# One FROM-scratch image per control-plane component, saved together into $CP_TAR.
build_cp_images() {
  local start=$SECONDS ctx=$work/cp name tag lib
  [ -f "$CP_TAR" ] && { log "control-plane images up to date ($CP_TAR)"; return 0; }
  mkdir -p "$ctx"
  for b in kube-apiserver kube-controller-manager kube-scheduler; do install -m 0755 "$BIN/$b" "$ctx/$b"; done
  # etcd: Debian's binary with the shared libraries ldd names
  mkdir -p "$ctx/root/usr/local/bin"
  install -m 0755 "$ETCD" "$ctx/root/usr/local/bin/etcd"
  for lib in $(ldd "$ETCD" | grep -o '/[^ ]*'); do
    mkdir -p "$ctx/root$(dirname "$lib")"; cp -L "$lib" "$ctx/root$lib"
  done
  mkdir -p "$ctx/root/tmp" "$ctx/root/var/lib/etcd"
  # pause: the kubelet's sandbox process, from the Kubernetes source
  tar -xzf "$K8S_SRC" -C "$work" --wildcards '*/build/pause/linux/pause.c'
  gcc -Os -static -o "$ctx/pause" "$(find "$work" -path '*/build/pause/linux/pause.c' | head -n 1)"
  strip "$ctx/pause"
  for image in "${CP_IMAGES[@]}"; do
    name=${image%%:*}; tag=${image#*:}
    # (the legacy builder's deprecation notice on stderr is noise; its errors are shown when it fails)
    docker build -q -t "local-k8s/$name:$tag" -f "$HERE/cp/$name.Dockerfile" "$ctx" >"$work/docker-build.log" 2>&1 ||
      { cat "$work/docker-build.log" >&2; exit 1; }
  done
  docker save -o "$CP_TAR.tmp" "${CP_IMAGES[@]/#/local-k8s/}"
  mv "$CP_TAR.tmp" "$CP_TAR"
  find "$CACHE" -maxdepth 1 -name 'cp-images-*.tar' ! -name "cp-images-$cp_key.tar" -delete
  log "control-plane images built in $((SECONDS - start)) s ($(du -m "$CP_TAR" | cut -f1) MB)"
}

build_node
build_cp_images
# drop older builds of the node image (not used by any container)
docker image ls --format '{{.Repository}}:{{.Tag}}' "$NAME" | while read -r old; do
  case $old in "$IMAGE") ;; *) docker image rm "$old" >/dev/null 2>&1 || true ;; esac
done
echo "$IMAGE"
echo "$CP_TAR"
