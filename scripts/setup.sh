#!/usr/bin/env bash
# scripts/setup.sh [demo|collection|all]: installs what is missing on a Debian machine for
#
#   demo        examples/demo.sh: Rust (rustup, when there is no cargo), a C compiler (aws-lc builds with it),
#               OpenSSL
#   collection  `make collection`: the above, and ansible-core (ansible-galaxy), zig (PyPI ziglang),
#               cargo-zigbuild (crates.io), the x86_64 and aarch64 Rust standard libraries, binutils, xz
#   all         scripts/test-all.sh (the default): the above, and everything the test suite runs: strace, etcd,
#               kubectl, qemu-user with the arm64 C library, debootstrap, Go and dpkg-dev (scripts/k8s-bin.sh),
#               Ansible with ansible-lint and Molecule (PyPI), clippy and rustfmt, a running Docker Engine
#
# It is the one place that lists what the project installs. It checks before it installs, so on a machine that
# has everything it takes a second or two and needs no root; where something is missing it needs root (or sudo).
# Python tools go where `python3 -m pip` puts them; where Debian's Python refuses that (PEP 668, "externally
# managed"), into a virtualenv at $KUBEADM_CERTS_CACHE/venv (default ~/.cache/kubeadm-certs/venv).
#
#   scripts/setup.sh path   prints the PATH to use afterwards: that virtualenv's bin and ~/.cargo/bin first
#                           (callers: PATH=$(scripts/setup.sh path))
# Progress goes to stderr.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

CACHE=${KUBEADM_CERTS_CACHE:-$HOME/.cache/kubeadm-certs}
VENV=$CACHE/venv
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin

# ---- what the project needs, per profile (each includes the one before)
DEMO_DEBS=(ca-certificates curl gcc libc6-dev openssl)
COLLECTION_DEBS=(binutils make git python3 python3-venv python3-pip python3-yaml xz-utils)
ALL_DEBS=(jq rsync debootstrap strace time hyperfine etcd-server etcd-client golang-go dpkg-dev sudo
          qemu-user libc6-arm64-cross binutils-aarch64-linux-gnu)
COLLECTION_PY=('ansible-core>=2.16' ziglang)
ALL_PY=('ansible>=9' 'ansible-lint>=24' 'molecule>=24' 'molecule-plugins[docker]' pytest)
# commands and Python modules whose presence means the PyPI packages above are installed
COLLECTION_PY_HAVE=(cmd:ansible-galaxy mod:ziglang)
ALL_PY_HAVE=(cmd:ansible-playbook cmd:ansible-lint cmd:ansible-test cmd:molecule mod:molecule_plugins.docker mod:pytest
             mod:ansible_collections.community.docker mod:ansible_collections.ansible.posix
             mod:ansible_collections.community.general)

say() { echo "setup.sh: $*" >&2; }
die() { echo "setup.sh: $*" >&2; exit 1; }

# PATH with the virtualenv's bin and cargo's bin in front (each only once)
tool_path() {
  local p=$PATH d
  for d in "$CARGO_BIN" "$VENV/bin"; do
    case ":$p:" in *":$d:"*) ;; *) p=$d:$p ;; esac
  done
  printf '%s\n' "$p"
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "needs root to run: $* (run this as root, or install sudo)"; fi
}

debs() { # PACKAGE...: installs the Debian packages that are not installed
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq >&2
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

rust() { # [all]: cargo (rustup), and with `all` clippy and rustfmt
  if ! command -v cargo >/dev/null; then
    say "installing Rust (rustup, stable, minimal profile)"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt >&2
  fi
  if [ "${1:-}" = all ] && ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then
    rustup component add clippy rustfmt >&2
  fi
}

rust_cross() { # the Rust standard libraries `make collection` links, and cargo-zigbuild
  local t
  command -v rustup >/dev/null || die "make collection adds Rust targets with rustup, and there is none (a cargo from elsewhere?): see https://rustup.rs"
  for t in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do
    rustup target list --installed | grep -qx "$t" || { say "adding the Rust target $t"; rustup target add "$t" >&2; }
  done
  command -v cargo-zigbuild >/dev/null || { say "installing cargo-zigbuild (crates.io)"; cargo install --locked cargo-zigbuild >&2; }
}

have() { # cmd:NAME | mod:PYTHON.MODULE ...
  local h
  for h in "$@"; do
    case $h in
      cmd:*) command -v "${h#cmd:}" >/dev/null || return 1 ;;
      mod:*) python3 -c "import ${h#mod:}" 2>/dev/null || return 1 ;;
    esac
  done
}

pip_install() { # REQUIREMENT...
  say "installing from PyPI: $*"
  if python3 -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    python3 -m pip install --quiet --disable-pip-version-check "$@" >&2 # already in a virtualenv
  elif python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    # Debian's own Python (PEP 668): a virtualenv of it, first on PATH for every caller of `scripts/setup.sh path`
    [ -x "$VENV/bin/python3" ] || python3 -m venv "$VENV" >&2
    "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check "$@" >&2
  else
    python3 -m pip install --quiet --disable-pip-version-check "$@" >&2
  fi
}

docker_engine() { # a running Docker Engine
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || debs docker.io
  say "starting the Docker Engine"
  if [ -d /run/systemd/system ]; then
    as_root systemctl start docker
  else
    # no systemd (a container, a minimal CI machine): the daemon in the background, its log in /tmp
    as_root sh -c 'nohup dockerd >/tmp/dockerd.log 2>&1 &'
  fi
  local deadline=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "the Docker Engine did not answer within 60 s (docker info); see /tmp/dockerd.log or journalctl -u docker"
    sleep 1
  done
}

profile=${1:-all}
case $profile in
  path) tool_path; exit 0 ;;
  demo|collection|all) ;;
  *) echo "usage: scripts/setup.sh [demo|collection|all|path]" >&2; exit 2 ;;
esac
command -v dpkg >/dev/null || die "this script installs Debian packages (apt); on another system install by hand what it lists"
PATH=$(tool_path)
export PATH

debs "${DEMO_DEBS[@]}"
rust "$profile"
[ "$profile" = demo ] && exit 0

debs "${COLLECTION_DEBS[@]}"
rust_cross
have "${COLLECTION_PY_HAVE[@]}" || pip_install "${COLLECTION_PY[@]}"
[ "$profile" = collection ] && exit 0

pkgs=("${ALL_DEBS[@]}")
# kubectl: any recent one talks to the 1.20 apiserver for what the tests ask (/readyz, certificate approve). Some
# machine images carry Google's `kubectl` package, which owns /usr/bin/kubectl: Debian's kubernetes-client beside
# it makes dpkg fail, so it is installed only where there is no kubectl at all.
command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
debs "${pkgs[@]}"
have "${ALL_PY_HAVE[@]}" || pip_install "${COLLECTION_PY[@]}" "${ALL_PY[@]}"
docker_engine
