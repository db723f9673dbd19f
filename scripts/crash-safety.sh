#!/usr/bin/env bash
# scripts/crash-safety.sh [RANDOM_KILLS]: the full crash-safety campaign (tests/crash_safety.rs) as CI runs it.
#
# Every fault point of the commit path in three cases (ECDSA keys without and with --backup, RSA keys as
# kubeadm made them), including the rollback after a failed rename (the last target's rename made to fail,
# KUBEADM_CERTS_FAIL_AT, then a kill after the rollback journal and after each file put back):
# 52 + 69 + 52 = 173 deterministic kills; then RANDOM_KILLS (default 200) SIGKILLs after
# random delays, one in three drawn over the whole run and two in three over the write path. After every
# kill: each pair and kubeconfig classified old / new / mixed and loaded by the Go consumer, then a rerun must
# complete the renewal with no leftovers. The summaries are printed and kept in target/crash-safety/.
# CRASH_SEED=N repeats a random campaign.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export CRASH_RUNS=${1:-${CRASH_RUNS:-200}}
"$repo/scripts/k8s-bin.sh" >/dev/null
rm -f target/crash-safety/summary-*.md
cargo test --locked --test crash_safety -- --nocapture --test-threads 2 2>&1 |
  grep -v -E '^(running|test .* has been running)' || { echo "crash-safety: FAILED" >&2; exit 1; }
echo
cat target/crash-safety/summary-fault-points.md target/crash-safety/summary-random.md
