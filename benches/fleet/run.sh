#!/usr/bin/env bash
# benches/fleet/run.sh: the fleet-scale benchmark. Expiry reports and a renewal plan across NODES simulated
# control-plane nodes (default 100: ansible_connection=local, each node a directory holding a copy of one
# PKI made by real kubeadm 1.20.2), side by side:
#
#   ours-check        k8s_pki.kubeadm.certs state=check                         1 module run per host
#   ours-renew-check  k8s_pki.kubeadm.certs state=renew, check mode             1 module run per host
#   crypto-info       community.crypto.x509_certificate_info over the same files 13 module runs + 3 slurps per host
#   kubeadm-check     command: kubeadm certs check-expiration (--rootfs NODE)    1 module run per host
#
# Each playbook runs REPEAT times (default 3; the median is reported) on all NODES hosts and REPEAT_ONE times
# (default REPEAT) on one host,
# with FORKS forks (default 10), once with Ansible's defaults and once with pipelining on (which only helps
# Python modules: a binary module is always copied to the target, see shared notes). Wall time in total and
# per host, and the ratio to ours-check, go to stdout and to target/bench/fleet.md. The PKIs must come out
# byte-identical (nothing here writes).
#
# Needs ansible-core with community.crypto (the `ansible` package), scripts/k8s-bin.sh's kubeadm, and root
# (kubeadm --rootfs chroots). The module binary: ansible/bin/kubeadm-certs-x86_64 (make collection) if
# present, else target/release/kubeadm-certs (built if missing).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/benches/fleet
NODES=${NODES:-100}
FORKS=${FORKS:-10}
REPEAT=${REPEAT:-3}
REPEAT_ONE=${REPEAT_ONE:-$REPEAT}
PLAYS=${PLAYS:-ours-check ours-renew-check crypto-info kubeadm-check}
CONFIGS=${CONFIGS:-default pipelining}
# the targets' Python (the local connection runs modules with it): Debian's, which has `cryptography`
TARGET_PY=${TARGET_PY:-/usr/bin/python3}

bin=$repo/ansible/bin/kubeadm-certs-x86_64
if [ ! -x "$bin" ]; then
  bin=$repo/target/release/kubeadm-certs
  [ -x "$bin" ] || (cd "$repo" && cargo build --release --locked --bin kubeadm-certs)
fi
k8s=$("$repo/scripts/k8s-bin.sh")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# the collection as installed (scripts/collection-tree.sh)
"$repo/scripts/collection-tree.sh" "$work/collections" "$bin"
export ANSIBLE_COLLECTIONS_PATH=$work/collections:${ANSIBLE_COLLECTIONS_PATH:-$HOME/.ansible/collections:/usr/share/ansible/collections}
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_HOST_KEY_CHECKING=0
export ANSIBLE_LOCAL_TEMP=$work/ansible-local ANSIBLE_REMOTE_TEMP=$work/ansible-remote

echo "== $NODES nodes from one kubeadm-made PKI" >&2
"$repo/scripts/mkpki.sh" "$work/golden" std cp1 127.0.0.11 >/dev/null
inv=$work/inventory.ini
{
  echo "[nodes]"
  for i in $(seq -f %03g 1 "$NODES"); do
    mkdir -p "$work/nodes/node$i"
    cp -a "$work/golden/." "$work/nodes/node$i/"
    echo "node$i node_root=$work/nodes/node$i"
  done
  echo
  echo "[nodes:vars]"
  echo "ansible_connection=local"
  echo "ansible_python_interpreter=$TARGET_PY"
  echo "kubeadm=$k8s/kubeadm"
} >"$inv"
fingerprint() { (cd "$work/nodes" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
before=$(fingerprint)

now() { date +%s.%N; }
# run PLAY LIMIT CONFIG: one timed ansible-playbook; prints seconds
run() {
  local play=$1 limit=$2 config=$3 start end log
  log=$work/$play-$config-$limit.log
  start=$(now)
  if ! ANSIBLE_PIPELINING=$([ "$config" = pipelining ] && echo 1 || echo 0) \
    ansible-playbook -i "$inv" -f "$FORKS" --limit "$limit" "$here/$play.yml" >"$log" 2>&1; then
    echo "benches/fleet: $play ($config, $limit) failed:" >&2
    tail -30 "$log" >&2
    exit 1
  fi
  end=$(now)
  echo "$end - $start" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A total one
for config in $CONFIGS; do
  for play in $PLAYS; do
    echo "== $play ($config): $REPEAT × $NODES hosts, $REPEAT_ONE × 1 host" >&2
    total[$play/$config]=$(for _ in $(seq "$REPEAT"); do run "$play" nodes "$config"; done | median)
    one[$play/$config]=$(for _ in $(seq "$REPEAT_ONE"); do run "$play" node001 "$config"; done | median)
  done
done
after=$(fingerprint)
[ "$before" = "$after" ] || { echo "benches/fleet: the PKIs changed" >&2; exit 1; }

out=$repo/target/bench/fleet.md
mkdir -p "$(dirname "$out")"
{
  echo "## Fleet benchmark: $NODES nodes, forks $FORKS, median of $REPEAT ($NODES hosts) and $REPEAT_ONE (1 host) runs"
  echo
  echo "$(nproc) CPUs, $(ansible --version | head -1), community.crypto $(ansible-galaxy collection list community.crypto 2>/dev/null | awk '/community.crypto/ {print $2}' | head -1), module binary $(basename "$bin")"
  echo
  for config in $CONFIGS; do
    echo "### Ansible $config"
    echo
    echo "playbook | $NODES hosts (s) | per host (s) | ratio to ours-check | 1 host (s) | ratio to ours-check"
    echo "---|---|---|---|---|---"
    base_t=${total[ours-check/$config]:-}
    base_1=${one[ours-check/$config]:-}
    for play in $PLAYS; do
      t=${total[$play/$config]}
      o=${one[$play/$config]}
      per=$(echo "scale=3; $t / $NODES" | bc)
      rt=$([ -n "$base_t" ] && echo "scale=2; $t / $base_t" | bc || echo "-")
      ro=$([ -n "$base_1" ] && echo "scale=2; $o / $base_1" | bc || echo "-")
      printf '%s | %.1f | %.3f | %s | %.2f | %s\n' "$play" "$t" "$per" "$rt" "$o" "$ro"
    done
    echo
  done
} | tee "$out"
