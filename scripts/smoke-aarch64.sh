#!/usr/bin/env bash
# smoke-aarch64.sh DIR: runs the aarch64 module binary DIR/kubeadm-certs-aarch64 under qemu-aarch64 (Debian
# qemu-user, with the arm64 glibc from libc6-arm64-cross) against a PKI made by real kubeadm:
#   1. its `check -o json --at T` report is byte-identical to the x86_64 binary's;
#   2. it renews scheduler.conf (new key and signature made on aarch64), and openssl verifies the result
#      against the cluster CA.
set -euo pipefail
dir=$(cd "${1:?usage: smoke-aarch64.sh DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
x86=$dir/kubeadm-certs-x86_64; arm=$dir/kubeadm-certs-aarch64
[ -x "$x86" ] && [ -x "$arm" ] || { echo "smoke-aarch64: build the binaries first (make collection)" >&2; exit 1; }
if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends qemu-user libc6-arm64-cross >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends qemu-user libc6-arm64-cross >/dev/null; }
fi
arm_run() { qemu-aarch64 -L /usr/aarch64-linux-gnu "$arm" "$@"; }

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$here/mkpki.sh" "$work/node" std cp1 127.0.0.11 >/dev/null
k=$work/node/etc/kubernetes
at=2027-06-01T00:00:00Z

"$x86" check --cert-dir "$k/pki" --kubeconfig-dir "$k" -o json --at "$at" >"$work/x86.json"
arm_run check --cert-dir "$k/pki" --kubeconfig-dir "$k" -o json --at "$at" >"$work/arm.json"
if ! cmp -s "$work/x86.json" "$work/arm.json"; then
  echo "smoke-aarch64: FAIL: the aarch64 report differs from the x86_64 one" >&2
  diff "$work/x86.json" "$work/arm.json" >&2 || true
  exit 1
fi
python3 - "$work/arm.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["kind"] == "CertificateExpirationInfo", doc.get("kind")
present = sorted(c["name"] for c in doc["certificates"] if not c["missing"])
want = sorted(["admin.conf", "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client", "controller-manager.conf",
               "etcd-healthcheck-client", "etcd-peer", "etcd-server", "front-proxy-client", "scheduler.conf"])
assert present == want, present
print("smoke-aarch64: check report identical on both architectures (%d certificates, %d CAs)"
      % (len(present), len(doc["certificateAuthorities"])))
PY

before=$(grep client-certificate-data "$k/scheduler.conf" | md5sum)
start=$(date +%s)
arm_run renew scheduler.conf --force --cert-dir "$k/pki" --kubeconfig-dir "$k" >/dev/null
took=$(( $(date +%s) - start ))
[ "$(grep client-certificate-data "$k/scheduler.conf" | md5sum)" != "$before" ] ||
  { echo "smoke-aarch64: FAIL: renew under qemu left scheduler.conf unchanged" >&2; exit 1; }
sed -n 's/^ *client-certificate-data: *//p' "$k/scheduler.conf" | base64 -d >"$work/scheduler.crt"
openssl verify -CAfile "$k/pki/ca.crt" "$work/scheduler.crt" >/dev/null ||
  { echo "smoke-aarch64: FAIL: the certificate renewed on aarch64 does not verify against ca.crt" >&2; exit 1; }
"$x86" check scheduler.conf --cert-dir "$k/pki" --kubeconfig-dir "$k" -o json >/dev/null
echo "smoke-aarch64: renewed scheduler.conf under qemu-aarch64 in ${took}s; openssl verifies it against ca.crt"
