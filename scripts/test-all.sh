#!/usr/bin/env bash
# scripts/test-all.sh: the whole test suite, as CI runs it (.ci/run calls this after installing packages).
#
#   1. Rust: cargo fmt --check, cargo clippy --all-targets -D warnings, cargo test (the integration tests
#      build kubeadm, kube-apiserver, kube-controller-manager and kube-scheduler v1.20.2 once via
#      scripts/k8s-bin.sh and run real etcd + kube-apiserver + kube-controller-manager on 127.0.0.0/8 addresses),
#      including the full crash-safety campaign (CRASH_RUNS, default 200 here: 122 fault-point kills and 200
#      random SIGKILLs, as scripts/crash-safety.sh runs it; plain `cargo test` runs each fault point once and
#      a dozen random kills); its summaries are printed at the end of the stage
#   2. the collection: `make collection` (x86_64 + aarch64 binaries, glibc 2.17 floor), the aarch64 binary
#      under qemu-aarch64, ansible-lint (production), ansible-test sanity, ansible-doc, the roles end to end
#   3. Molecule: default, ha, external_ca, schedule on docker (scripts/molecule-tests.sh)
#
# Needs root for what is missing (apt packages, docker); everything it installs comes from Debian, PyPI,
# crates.io and rustup (the aarch64 Rust standard library for `make collection`). STAGES="rust collection molecule" (default: all) picks stages.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
STAGES=${STAGES:-rust collection molecule}
declare -A took
stage() { printf '\n==== %s\n' "$*"; }
timed() { local name=$1 start=$SECONDS; shift; "$@"; took[$name]=$((SECONDS - start)); }

rust() {
  stage "rust: fmt, clippy"
  cargo fmt --all -- --check
  cargo clippy --all-targets --locked -- -D warnings
  stage "rust: Kubernetes test binaries (built once, then cached)"
  scripts/k8s-bin.sh >/dev/null
  stage "rust: cargo test (with the full crash-safety campaign)"
  rm -f target/crash-safety/summary-*.md
  CRASH_RUNS=${CRASH_RUNS:-200} cargo test --locked
  cat target/crash-safety/summary-*.md
}

collection() {
  stage "collection: binaries, tarball, aarch64 smoke test"
  make collection
  make collection-smoke
  stage "collection: lint, sanity, docs, end to end"
  scripts/ansible-checks.sh
}

molecule() {
  stage "molecule"
  scripts/molecule-tests.sh
}

for s in $STAGES; do timed "$s" "$s"; done
printf '\n==== all passed\n'
for s in $STAGES; do printf '%-12s %4d s\n' "$s" "${took[$s]}"; done
