#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Runs each cargo-fuzz target (fuzz/fuzz_targets/) for a fixed budget (default 300 s each), seeded with the
# committed corpus (fuzz/corpus/TARGET) and the demo PKI's files, then minimizes the corpus back into
# fuzz/corpus/TARGET (keep it small: commit what changed). Prints executions, coverage, corpus size and
# crashes per target, also into fuzz/last-run.md. Exit 1 when a target crashed: the input is in
# fuzz/artifacts/TARGET/; turn it into a test in tests/fuzz_regressions.rs, fix, rerun.
#
# Not part of every CI run (it is slow by design). Targets: cert key kubeconfig duration module_args.
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address); this machine has one stable toolchain,
# which accepts them with RUSTC_BOOTSTRAP=1 (set here). FUZZ_JOBS=N runs N targets at once (default 1).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
budget=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cert key kubeconfig duration module_args)
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
demo=examples/demo-pki/etc/kubernetes
mkdir -p "$seeds"/{cert,key,kubeconfig,duration,module_args}
i=0
for f in $(find "$demo/pki" -name '*.crt'); do
  i=$((i + 1))
  cp "$f" "$seeds/cert/$i.pem"
  openssl x509 -in "$f" -outform der -out "$seeds/cert/$i.der"
done
cat "$demo/pki/apiserver.crt" "$demo/pki/ca.crt" >"$seeds/cert/chain.pem"
{ printf 'subject=CN = x\n\n'; cat "$demo/pki/ca.crt"; } >"$seeds/cert/text-before.pem"
sed 's/$/\r/' "$demo/pki/ca.crt" >"$seeds/cert/crlf.pem"
for f in $(find "$demo/pki" -name '*.key'); do cp "$f" "$seeds/key/$(basename "$(dirname "$f")")-$(basename "$f")"; done
openssl pkcs8 -topk8 -nocrypt -in "$demo/pki/ca.key" -out "$seeds/key/pkcs8.key"
openssl ecparam -name prime256v1 -genkey -noout -out "$seeds/key/ec.key" 2>/dev/null
for f in "$demo"/*.conf; do cp "$f" "$seeds/kubeconfig/"; done
for d in 90d 2160h 1y 45m 8760h0m0s 0 1w2d3h4m5s 1000y 00001s; do printf '%s' "$d" >"$seeds/duration/$d"; done
n=0
for args in '{"state":"renew","force":"yes","certificates":"apiserver,admin.conf","_ansible_check_mode":true}' \
  '{"state":"renew","signer":"api","approve":true,"api_timeout":"5m","extra_sans":["10.0.0.1","x.example"]}' \
  '{"state":"check","fail_within":"30d","cert_dir":"~/pki"}' \
  '{"state":"csr","csr_dir":"/tmp/c","key_algorithm":"ecdsa-p256","lock_timeout":"1s"}' \
  '{"state":"install","signed_dir":"/tmp/s","backup":1,"_ansible_diff":"true","_ansible_no_log":false}'; do
  n=$((n + 1))
  printf '%s' "$args" >"$seeds/module_args/$n.json"
done

max_len() {
  case $1 in
    kubeconfig) echo 16384 ;;
    cert | key) echo 8192 ;;
    *) echo 1024 ;;
  esac
}

report=fuzz/last-run.md
{
  echo "# scripts/fuzz.sh: ${budget}s per target, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "target | seconds | executions | exec/s | coverage (edges) | corpus files (minimized) | new crashes"
  echo "---|---|---|---|---|---|---"
} >"$report"
failed=0
(cd fuzz && cargo fuzz build -O)
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  dict=()
  [ -f "fuzz/dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
  log=$(mktemp)
  echo "== $t: ${budget}s" >&2
  before=$(ls "fuzz/artifacts/$t" | wc -l)
  set +e
  (cd fuzz && cargo fuzz run -O "$t" "corpus/$t" "$seeds/$t" -- \
    -max_total_time="$budget" -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 "${dict[@]}") >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{print $2}' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | awk '{print $2}' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  crashes=$(($(ls "fuzz/artifacts/$t" | wc -l) - before))
  if [ "$rc" -ne 0 ]; then
    failed=1
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -8 >&2 || true
  fi
  # minimize what the run found back into the committed corpus (by edges, not hit counts: small)
  (cd fuzz && cargo fuzz cmin -O "$t" "corpus/$t" -- -max_len="$(max_len "$t")" -use_counters=0 >/dev/null 2>&1) || true
  files=$(ls "fuzz/corpus/$t" | wc -l)
  echo "$t | $budget | ${execs:-?} | ${rate:-?} | ${cov:-?} | $files | $crashes (exit $rc)" >>"$report"
  rm -f "$log"
done
cat "$report"
exit $failed
