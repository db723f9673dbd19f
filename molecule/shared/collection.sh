#!/usr/bin/env bash
# molecule/shared/collection.sh: makes the collection in this work tree importable as k8s_pki.kubeadm for the
# Molecule scenarios (ANSIBLE_COLLECTIONS_PATH=.cache/molecule-collections, a symlink to ansible/, so the
# scenarios test the roles as they are in the tree) and makes sure its module binary for this machine exists
# (`make collection-binaries` when ansible/plugins/modules/certs_<arch> does not resolve). Molecule runs it as
# the scenarios' dependency step; scripts/molecule-tests.sh runs it once first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
dir=$ROOT/.cache/molecule-collections/ansible_collections/k8s_pki
mkdir -p "$dir"
ln -sfn ../../../../ansible "$dir/kubeadm"
arch=$(uname -m)
# KUBEADM_CERTS_NO_BUILD=1: only link the collection (bringing up nodes without running the module)
[ -z "${KUBEADM_CERTS_NO_BUILD:-}" ] || exit 0
if [ ! -x "$ROOT/ansible/plugins/modules/certs_$arch" ]; then
  echo "collection.sh: no module binary for $arch yet: make collection-binaries" >&2
  make -C "$ROOT" collection-binaries >&2
fi
[ -x "$ROOT/ansible/plugins/modules/certs_$arch" ] || { echo "collection.sh: still no ansible/plugins/modules/certs_$arch" >&2; exit 1; }
