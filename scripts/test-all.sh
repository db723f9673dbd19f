#!/usr/bin/env bash
# scripts/test-all.sh: the whole test suite, as CI runs it (.ci/run is this script). On a fresh Debian machine it
# installs what it needs first: scripts/setup.sh all (Debian packages, Rust, PyPI tools, a running Docker
# Engine; root or sudo where something is missing; a second or two where nothing is).
#
#   1. Rust: cargo fmt --check, cargo clippy --all-targets -D warnings, cargo test (the integration tests
#      build kubeadm, kube-apiserver, kube-controller-manager and kube-scheduler v1.20.2 once via
#      scripts/k8s-bin.sh and run real etcd + kube-apiserver + kube-controller-manager on 127.0.0.0/8 addresses),
#      including the crash-safety campaign's every fault point in all three cases (173 kills) and CRASH_RUNS
#      random SIGKILLs (default 60 here, to keep CI within its hour; scripts/crash-safety.sh runs 200); plain `cargo test` runs each fault point once and
#      a dozen random kills); its summaries are printed at the end of the stage; then examples/demo.sh, the
#      README's first command
#   2. the collection: `make collection` (x86_64 + aarch64 binaries, glibc 2.17 floor), the aarch64 binary
#      under qemu-aarch64, ansible-lint (production), ansible-test sanity, ansible-doc, Galaxy's import of the
#      tarball (galaxy-importer) and its CHANGELOG.rst, the AWX execution environment's build context
#      (ansible-builder), the roles end to end with the alert rules' promtool test on their textfiles, the module
#      binary kept on each node over real SSH (scripts/binary-cache-test.sh)
#   3. Molecule: default, ha, external_ca, schedule, ca_rotation on docker (scripts/molecule-tests.sh); their images are built
#      in the background from the Rust stage on (after the Kubernetes binaries), see images_in_background
#
# STAGES="rust collection molecule" (default: all) picks stages; SETUP=0 skips scripts/setup.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
STAGES=${STAGES:-rust collection molecule}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
declare -A took
stage() { printf '\n==== %s\n' "$*"; }
timed() { local name=$1 start=$SECONDS; shift; "$@"; took[$name]=$((SECONDS - start)); }

[ "${SETUP:-1}" = 0 ] || { stage "setup (scripts/setup.sh all)"; timed setup scripts/setup.sh all; }
# where setup.sh may have put cargo and the Python tools
PATH=$(scripts/setup.sh path)
export PATH

rust() {
  stage "rust: fmt, clippy"
  cargo fmt --all -- --check
  cargo clippy --all-targets --locked -- -D warnings
  stage "rust: Kubernetes test binaries (built once, then cached)"
  scripts/k8s-bin.sh >/dev/null
  images_in_background
  stage "rust: cargo test (with the crash-safety campaign: every fault point, ${CRASH_RUNS:-60} random kills)"
  rm -f target/crash-safety/summary-*.md
  CRASH_RUNS=${CRASH_RUNS:-60} cargo test --locked
  cat target/crash-safety/summary-*.md
  stage "rust: examples/demo.sh (the README's first command)"
  examples/demo.sh
}

collection() {
  stage "collection: binaries, tarball, aarch64 smoke test"
  make collection
  make collection-smoke
  # the end-to-end tests run the binary the collection ships (no second release build)
  export KUBEADM_CERTS_E2E_BIN=$repo/ansible/bin/kubeadm-certs-x86_64
  stage "collection: lint, sanity, docs, end to end"
  scripts/ansible-checks.sh
  stage "collection: the module binary kept on each node, over real SSH (scripts/binary-cache-test.sh)"
  scripts/binary-cache-test.sh
}

# The Molecule stage's node and control-plane images (molecule/image/build.sh: debootstrap, docker build, about 7
# minutes on a fresh machine, seconds when cached) are built while the Rust and collection stages run: much of
# those is waiting on real apiservers, SSH and network, so the build fits beside them instead of after them.
# The Molecule stage waits for it; molecule-tests.sh then finds the images by their content hashes.
images_pid=
images_in_background() {
  case " $STAGES " in *" molecule "*) ;; *) return 0 ;; esac
  mkdir -p .cache
  echo "(building the Molecule images in the background; log: .cache/images-build.log)"
  molecule/image/build.sh >.cache/images-build.out 2>.cache/images-build.log &
  images_pid=$!
}

molecule() {
  stage "molecule"
  if [ -n "$images_pid" ]; then
    # a failed background build is not fatal here: molecule-tests.sh builds again, in the foreground, and fails there
    wait "$images_pid" || { echo "the background image build failed; its log:"; tail -n 40 .cache/images-build.log; }
  fi
  scripts/molecule-tests.sh
}

for s in $STAGES; do timed "$s" "$s"; done
printf '\n==== all passed\n'
for s in ${took[setup]+setup} $STAGES; do printf '%-12s %4d s\n' "$s" "${took[$s]}"; done
