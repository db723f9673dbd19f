#!/usr/bin/env bash
# molecule/shared/collection.sh: makes the collection in this work tree importable as k8s_pki.kubeadm for the
# Molecule scenarios (ANSIBLE_COLLECTIONS_PATH=.cache/molecule-collections, a symlink to ansible/, so the
# scenarios test the roles as they are in the tree) and builds its module binary for this machine from this tree,
# every time: `cargo build --release` (incremental, seconds when nothing changed) installed as
# ansible/bin/kubeadm-certs-<arch> with the plugins/modules/certs_<arch> link `make collection-binaries` makes.
# An older ansible/bin binary is never reused: the scenarios test the code in this tree. (The nodes run Debian
# bookworm like this machine, so the plain build's glibc fits; release builds for other systems use
# `make collection-binaries`, which zigbuilds for glibc 2.17.)
# Molecule runs it as the scenarios' dependency step; scripts/molecule-tests.sh runs it once first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
dir=$ROOT/.cache/molecule-collections/ansible_collections/k8s_pki
mkdir -p "$dir"
ln -sfn ../../../../ansible "$dir/kubeadm"
arch=$(uname -m)
# KUBEADM_CERTS_NO_BUILD=1: only link the collection (bringing up nodes without running the module)
[ -z "${KUBEADM_CERTS_NO_BUILD:-}" ] || exit 0
target=${CARGO_TARGET_DIR:-$ROOT/target}
echo "collection.sh: cargo build --release --locked --bin kubeadm-certs" >&2
(cd "$ROOT" && cargo build --release --locked --bin kubeadm-certs >&2)
mkdir -p "$ROOT/ansible/bin"
install -m 0755 "$target/release/kubeadm-certs" "$ROOT/ansible/bin/kubeadm-certs-$arch.tmp"
mv "$ROOT/ansible/bin/kubeadm-certs-$arch.tmp" "$ROOT/ansible/bin/kubeadm-certs-$arch"
ln -sfn "../../bin/kubeadm-certs-$arch" "$ROOT/ansible/plugins/modules/certs_$arch"
[ -x "$ROOT/ansible/plugins/modules/certs_$arch" ] || { echo "collection.sh: ansible/plugins/modules/certs_$arch does not resolve" >&2; exit 1; }
