#!/usr/bin/env bash
# benches/ssh/image.sh: builds the image of the SSH benchmark's nodes without any registry and prints its name
# (kubeadm-certs-sshnode:<content hash>) on stdout; progress goes to stderr.
#
# A node is what a control-plane node looks like to Ansible over SSH: Debian bookworm (debootstrap minbase from
# the Debian mirror this machine's apt uses) with openssh-server, python3 and python3-cryptography (what
# community.crypto's modules need on a target), openssl, xz-utils, and kubeadm v1.20.2 from scripts/k8s-bin.sh (for
# the `command: kubeadm certs check-expiration` side of the benchmark). sshd runs in the foreground as PID 1.
# The root file system is cached as a tarball keyed by the package list; the image by a hash of everything.
# Needs root (debootstrap) and a running Docker Engine.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
NAME=kubeadm-certs-sshnode
CACHE=${KUBEADM_CERTS_CACHE:-$HOME/.cache/kubeadm-certs}/sshnode
# xz-utils: Priority standard, on every Debian install but minbase (the certs plugin sends its first copy xz-compressed)
PACKAGES=openssh-server,python3,openssl,ca-certificates,xz-utils
# python3-cryptography fails debootstrap's base configuration pass (minbase); apt installs it in the chroot after
LATER=python3-cryptography
log() { echo "image.sh: $*" >&2; }

k8s=$("$repo/scripts/k8s-bin.sh")
base_key=$(printf '%s\n' bookworm "$PACKAGES" "$LATER" v1 | sha256sum | cut -c1-16)
# (the files' contents only: sha256sum's output also names them, and "$0" is spelled as the caller spelled it)
key=$( { echo "$base_key"; sha256sum "$0" "$k8s/kubeadm" | cut -d' ' -f1; } | sha256sum | cut -c1-16)
IMAGE=$NAME:$key
if docker image inspect "$IMAGE" >/dev/null 2>&1; then echo "$IMAGE"; exit 0; fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >&2
base=$CACHE/base-$base_key.tar
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ ! -f "$base" ]; then
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb /{for(i=2;i<=NF;i++) if ($i ~ /^http/) {print $i; exit}}' /etc/apt/sources.list)
  log "debootstrap bookworm minbase with $PACKAGES (once)"
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$work/rootfs" "$uri" >"$work/log" 2>&1 ||
    { tail -n 30 "$work/log" >&2; exit 1; }
  echo "deb $uri bookworm main" >"$work/rootfs/etc/apt/sources.list"
  cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
  chroot "$work/rootfs" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $LATER" >>"$work/log" 2>&1 ||
    { tail -n 30 "$work/log" >&2; exit 1; }
  rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/* \
    "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/locale/* \
    "$work/rootfs"/etc/ssh/ssh_host_*
  tar -C "$work/rootfs" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$work/rootfs"
fi
mkdir -p "$work/rootfs"
tar -C "$work/rootfs" -xf "$base"
install -m 0755 "$k8s/kubeadm" "$work/rootfs/usr/local/bin/kubeadm"
mkdir -p "$work/rootfs/run/sshd" "$work/rootfs/root/.ssh"
chmod 0700 "$work/rootfs/root/.ssh"
# host keys are made when a container starts (each node its own); the controller's key arrives as a file
cat >"$work/rootfs/usr/local/sbin/start-sshd" <<'EOS'
#!/bin/sh
set -e
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e -o PermitRootLogin=prohibit-password -o UseDNS=no -o MaxStartups=200 -o MaxSessions=200
EOS
chmod 0755 "$work/rootfs/usr/local/sbin/start-sshd"
rm -f "$work/rootfs"/etc/apt/sources.list "$work/rootfs"/etc/apt/sources.list.d/*
log "importing $IMAGE"
tar -C "$work/rootfs" -c . | docker import --change 'CMD ["/usr/local/sbin/start-sshd"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$IMAGE" >/dev/null
docker image ls --format '{{.Repository}}:{{.Tag}}' "$NAME" | grep -vx "$IMAGE" | xargs -r docker image rm >/dev/null 2>&1 || true
echo "$IMAGE"
