#!/usr/bin/env bash
# scripts/k8s-bin.sh: makes sure the real Kubernetes parts the tests compare against are present and prints
# the folder that holds them on stdout.
#
#   kubeadm, kube-apiserver, kubelet,                 v1.20.2, built from Debian bookworm's `kubernetes`
#   kube-controller-manager, kube-scheduler           source package (vendored deps) with Debian's Go, the
#                                                     vendored reflect2 replaced by Debian's 1.0.2 (below)
#   etcd, etcdctl, kubectl, openssl                   Debian packages (etcd-server, etcd-client,
#                                                     kubernetes-client, openssl)
#
# Why reflect2: kubeadm 1.20.2 built with Go >= 1.18 panics wherever Kubernetes' JSON encoder writes a map
# (a nil dereference in the vendored modern-go/reflect2 v1.0.1, UnsafeMapType.Key): `kubeadm init`'s
# manifest and kubelet-start phases crash. Debian's golang-github-modern-go-reflect2-dev 1.0.2 fixes it.
#
# The build runs once (about 12 minutes on two cores) into a cache that later runs reuse:
#   $KUBEADM_CERTS_CACHE (default ~/.cache/kubeadm-certs)/k8s-v1.20.2/bin
# Needs root (apt) only when something is missing. Progress goes to stderr.
set -euo pipefail
# -r2: the reflect2 fix and the kubelet (a cache from before them is rebuilt)
CACHE=${KUBEADM_CERTS_CACHE:-$HOME/.cache/kubeadm-certs}/k8s-v1.20.2-r2
BIN=$CACHE/bin
WANT="kubeadm kube-apiserver kube-controller-manager kube-scheduler kubelet"

# Swaps the vendored github.com/modern-go/reflect2 v1.0.1 for Debian's 1.0.2 (see the top of this file).
fix_reflect2() {
  local src=$1 tmp dir
  [ -f "$src/vendor/github.com/modern-go/reflect2/.debian-1.0.2" ] && return 0
  tmp=$(mktemp -d)
  (cd "$tmp" && { apt-get download golang-github-modern-go-reflect2-dev >&2 ||
                  { apt-get update >&2 && apt-get download golang-github-modern-go-reflect2-dev >&2; }; } &&
     dpkg-deb -x ./*.deb x)
  dir=$src/vendor/github.com/modern-go/reflect2
  rm -rf "$dir" && mkdir -p "$dir"
  find "$tmp/x/usr/share/gocode/src/github.com/modern-go/reflect2" -maxdepth 1 -type f \
    \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$dir/" \;
  sed -i 's#github.com/modern-go/reflect2 v1.0.1#github.com/modern-go/reflect2 v1.0.2#g' \
    "$src/go.mod" "$src/vendor/modules.txt"
  touch "$dir/.debian-1.0.2"
  rm -rf "$tmp"
}

have_bins() { for b in $WANT; do [ -x "$BIN/$b" ] || return 1; done; }
apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; }

# One lock so that parallel test binaries wait for a single build instead of starting their own.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v kubectl >/dev/null || missing+=(kubernetes-client)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}" || { apt-get update >&2 && apt_install "${missing[@]}"; }
fi

if ! have_bins; then
  mkdir -p "$CACHE/src"
  if ! grep -rqs '^deb-src .*bookworm main' /etc/apt/sources.list /etc/apt/sources.list.d/ &&
     ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/; then
    # The source mirror is the one this machine's apt already uses for binaries.
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '/^deb /{for(i=2;i<=NF;i++) if ($i ~ /^http/) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$uri" ] || { echo "k8s-bin.sh: no Debian mirror found in the apt sources" >&2; exit 1; }
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm main" \
      > /etc/apt/sources.list.d/kubeadm-certs-src.list
    apt-get update >&2
  fi
  command -v go >/dev/null && command -v rsync >/dev/null && command -v make >/dev/null ||
    apt_install golang-go rsync make dpkg-dev
  cd "$CACHE/src"
  ls kubernetes_*.orig.tar.gz >/dev/null 2>&1 || apt-get source --download-only kubernetes >&2
  [ -d kubernetes-1.20.2 ] || tar xzf kubernetes_*.orig.tar.gz
  cd kubernetes-1.20.2
  fix_reflect2 "$PWD"
  mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes
  echo "k8s-bin.sh: building $WANT v1.20.2 (about 12 minutes on two cores, once)" >&2
  # KUBE_VERBOSE=0 keeps the log short; CGO off gives static binaries that also run in the test containers.
  GOPATH=$PWD/.go CGO_ENABLED=0 HOME=$CACHE/home KUBE_VERBOSE=0 \
    make WHAT="$(for b in $WANT; do printf 'cmd/%s ' "$b"; done)" >&2
  mkdir -p "$BIN"
  for b in $WANT; do cp "_output/bin/$b" "$BIN/$b.tmp" && mv "$BIN/$b.tmp" "$BIN/$b"; done
  # the Go tree is 2 GB; only the binaries and the source tarball are worth keeping
  cd "$CACHE/src" && rm -rf kubernetes-1.20.2 "$CACHE/home"
fi
echo "$BIN"
