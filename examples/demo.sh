#!/usr/bin/env bash
# examples/demo.sh: the main job on a demo PKI, without a cluster (and without root where Rust, a C compiler
# and OpenSSL are installed; scripts/setup.sh demo installs them when they are missing).
#
# examples/demo-pki/ is a control-plane PKI made by real kubeadm v1.20.2 (scripts/mkpki.sh, node demo-cp1,
# documentation address 192.0.2.11). Its keys are public: a demo, never a cluster's. The demo works on a
# copy in a temporary directory, so the bundled files never change:
#
#   1. check    kubeadm's expiry table
#   2. renew    what is due: with --renew-before 400d every certificate (364 days or less left) is due;
#               --check --diff first shows what would change, then the real run renews, with backups
#   3. check    again, and OpenSSL verifies every renewed certificate against its CA
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bin=${KUBEADM_CERTS:-}
if [ -z "$bin" ]; then
  # Rust, a C compiler and OpenSSL, installed when missing (root or sudo then; nothing to do, and no root, if present)
  "$repo/scripts/setup.sh" demo
  PATH=$("$repo/scripts/setup.sh" path)
  (cd "$repo" && cargo build --release --quiet)
  bin=$repo/target/release/kubeadm-certs
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/kubeadm-certs-demo.XXXXXX")
cp -a "$here/demo-pki/etc" "$work/"
K=$work/etc/kubernetes
dirs=(--cert-dir "$K/pki" --kubeconfig-dir "$K")
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "kubeadm-certs check"
"$bin" check "${dirs[@]}"

say "kubeadm-certs renew --renew-before 400d --check --diff apiserver"
"$bin" renew apiserver --renew-before 400d --check --diff "${dirs[@]}"

say "kubeadm-certs renew --renew-before 400d --backup"
"$bin" renew --renew-before 400d --backup "${dirs[@]}"

say "kubeadm-certs renew --renew-before 300d   # again: nothing is due any more"
"$bin" renew --renew-before 300d "${dirs[@]}" | head -3

say "openssl verify (every renewed certificate against its CA)"
P=$K/pki
openssl verify -CAfile "$P/ca.crt" "$P/apiserver.crt" "$P/apiserver-kubelet-client.crt"
openssl verify -CAfile "$P/front-proxy-ca.crt" "$P/front-proxy-client.crt"
openssl verify -CAfile "$P/etcd/ca.crt" "$P/etcd/server.crt" "$P/etcd/peer.crt" "$P/etcd/healthcheck-client.crt" "$P/apiserver-etcd-client.crt"

say "kubeadm-certs check -o yaml   # kubeadm's CertificateExpirationInfo"
"$bin" check -o yaml "${dirs[@]}" | head -12
echo "..."
echo
echo "The renewed PKI (and the backups, *~) is in $K"
