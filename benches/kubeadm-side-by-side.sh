#!/usr/bin/env bash
# benches/kubeadm-side-by-side.sh: kubeadm-certs and real kubeadm 1.20.2 on the same PKI, in one run.
#
#   check      `kubeadm certs check-expiration`   vs  `kubeadm-certs check`
#   renew all  `kubeadm certs renew all`          vs  `kubeadm-certs renew all --force`  (ten RSA-2048 keys)
#   peak RSS   of each (GNU time), and the size of the stripped release binary
#
# Wall times from hyperfine (each renew run starts from a fresh copy of the same kubeadm-made PKI);
# results as a Markdown table with ratios on stdout, hyperfine's JSON under $OUT (default target/bench).
# Needs: scripts/k8s-bin.sh (kubeadm), hyperfine and GNU time (apt-installed when missing), cargo.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$HERE/target/bench}
RUNS=${RUNS:-20}
mkdir -p "$OUT"
for tool in hyperfine /usr/bin/time; do
  command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends hyperfine time >&2
done
BIN=$("$HERE/scripts/k8s-bin.sh")
(cd "$HERE" && cargo build --release --quiet)
KC=$HERE/target/release/kubeadm-certs

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$HERE/scripts/mkpki.sh" "$work/golden" std cp1 127.0.0.11 >/dev/null
cp -a "$work/golden" "$work/pki"
ours() { echo "$KC $1 --cert-dir $work/pki/etc/kubernetes/pki --kubeconfig-dir $work/pki/etc/kubernetes"; }
theirs() { echo "$BIN/kubeadm certs $1 --config /kubeadm-config.yaml --rootfs $work/pki"; }
fresh="rm -rf $work/pki && cp -a $work/golden $work/pki"

hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/check.json" \
  -n kubeadm "$(theirs check-expiration)" -n kubeadm-certs "$(ours check)" >&2
hyperfine --warmup 1 --runs "$((RUNS / 2))" --prepare "$fresh" --export-json "$OUT/renew.json" \
  -n kubeadm "$(theirs 'renew all')" -n kubeadm-certs "$(ours 'renew all --force')" >&2

rss() { # peak RSS in KiB of a command
  /usr/bin/time -f '%M' -o "$work/rss" sh -c "$1" >/dev/null 2>&1; cat "$work/rss"
}
eval "$fresh"; rss_k_check=$(rss "$(theirs check-expiration)"); rss_o_check=$(rss "$(ours check)")
eval "$fresh"; rss_k_renew=$(rss "$(theirs 'renew all')")
eval "$fresh"; rss_o_renew=$(rss "$(ours 'renew all --force')")

mean() { python3 -c "import json,sys; r=json.load(open('$1'))['results']; print([x['mean'] for x in r if x['command']=='$2'][0])"; }
row() { # NAME JSON
  local k o; k=$(mean "$2" kubeadm); o=$(mean "$2" kubeadm-certs)
  python3 -c "k,o=$k,$o; print(f'| $1 | {k*1000:.1f} ms | {o*1000:.1f} ms | {k/o:.1f}x faster |')"
}
size=$(stat -c %s "$KC")
echo "| operation | kubeadm 1.20.2 | kubeadm-certs | ratio |"
echo "|---|---|---|---|"
row "check (check-expiration)" "$OUT/check.json"
row "renew all (10 RSA-2048 keys)" "$OUT/renew.json"
echo "| peak RSS, check | $((rss_k_check / 1024)) MiB | $((rss_o_check / 1024)) MiB | |"
echo "| peak RSS, renew all | $((rss_k_renew / 1024)) MiB | $((rss_o_renew / 1024)) MiB | |"
echo "| binary (stripped release) | $(stat -c %s "$BIN/kubeadm" | awk '{printf "%.1f MiB", $1/1048576}') | $(awk -v s="$size" 'BEGIN{printf "%.2f MiB", s/1048576}') | |"
echo
echo "$(nproc) cores; $RUNS check runs, $((RUNS / 2)) renew runs each; $(date -u +%Y-%m-%dT%H:%MZ)"
