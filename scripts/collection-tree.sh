#!/usr/bin/env bash
# scripts/collection-tree.sh DIR BINARY: lays out the collection in this tree as Ansible finds an installed one,
# DIR/ansible_collections/k8s_pki/kubeadm: the files git tracks (or would) under ansible/, BINARY as the x86_64
# module binary in bin/ with its xz-compressed copy (scripts/compress-binary.sh), and the module symlink
# plugins/modules/certs_x86_64. Put DIR first in ANSIBLE_COLLECTIONS_PATH. Used by the benchmarks and scripts/binary-cache-test.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: collection-tree.sh DIR BINARY}; bin=${2:?usage: collection-tree.sh DIR BINARY}
coll=$dir/ansible_collections/k8s_pki/kubeadm
mkdir -p "$coll/bin"
(cd "$repo/ansible" && git ls-files --cached --others --exclude-standard -z . | xargs -0 cp --parents -t "$coll")
cp "$bin" "$coll/bin/kubeadm-certs-x86_64"
"$repo/scripts/compress-binary.sh" "$coll/bin/kubeadm-certs-x86_64"
ln -sf ../../bin/kubeadm-certs-x86_64 "$coll/plugins/modules/certs_x86_64"
