#!/usr/bin/env bash
# scripts/setup.sh [demo|collection|all]: installs what is missing on a Debian machine for
#
#   demo        examples/demo.sh: Rust (rustup, when there is no cargo), a C compiler (aws-lc builds with it),
#               OpenSSL
#   collection  `make collection`: the above, and ansible-core (ansible-galaxy), zig (PyPI ziglang),
#               cargo-zigbuild (crates.io), the x86_64 and aarch64 Rust standard libraries, binutils, xz
#   all         scripts/test-all.sh (the default): the above, and everything the test suite runs: strace, etcd,
#               kubectl, qemu-user with the arm64 C library, debootstrap, Go and dpkg-dev (scripts/k8s-bin.sh),
#               groff (the man page's lint), Ansible with ansible-lint and Molecule (PyPI), clippy and rustfmt,
#               a running Docker Engine, promtool (the alert rules' tests) and the Galaxy/AWX release tools
#               galaxy-importer, antsibull-changelog and ansible-builder (PyPI)
#
# It is the one place that lists what the project installs. It checks before it installs, so on a machine that
# has everything it takes a second or two and needs no root; where something is missing it needs root (or sudo).
# Python tools go where `python3 -m pip` puts them; where Debian's Python refuses that (PEP 668, "externally
# managed"), into a virtualenv at $KUBEADM_CERTS_CACHE/venv (default ~/.cache/kubeadm-certs/venv).
#
# The release tools go into a virtualenv of their own, $KUBEADM_CERTS_CACHE/release-venv, on every machine:
# galaxy-importer pins attrs and ansible-lint below what the suite's Ansible would otherwise get, and would
# replace them in the shared environment.
# promtool comes from Debian's prometheus package, unpacked into $KUBEADM_CERTS_CACHE/bin rather than installed:
# the package's postinst starts a Prometheus server (invoke-rc.d prometheus start), which the suite has no use for.
#
#   scripts/setup.sh path   prints the PATH to use afterwards: that virtualenv's bin and ~/.cargo/bin first,
#                           the cache's bin and the release tools' virtualenv last
#                           (callers: PATH=$(scripts/setup.sh path))
# Progress goes to stderr.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

CACHE=${KUBEADM_CERTS_CACHE:-$HOME/.cache/kubeadm-certs}
VENV=$CACHE/venv
RELEASE_VENV=$CACHE/release-venv
CACHE_BIN=$CACHE/bin
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin

# ---- what the project needs, per profile (each includes the one before)
DEMO_DEBS=(ca-certificates curl gcc libc6-dev openssl)
COLLECTION_DEBS=(binutils make git python3 python3-venv python3-pip python3-yaml xz-utils)
ALL_DEBS=(jq rsync debootstrap strace time hyperfine etcd-server etcd-client golang-go dpkg-dev sudo
          qemu-user libc6-arm64-cross binutils-aarch64-linux-gnu groff-base)
COLLECTION_PY=('ansible-core>=2.16' ziglang)
ALL_PY=('ansible>=9' 'ansible-lint>=24' 'molecule>=24' 'molecule-plugins[docker]' pytest)
# commands and Python modules whose presence means the PyPI packages above are installed
COLLECTION_PY_HAVE=(cmd:ansible-galaxy mod:ziglang)
# into RELEASE_VENV (above): a Galaxy import of the built tarball, CHANGELOG.rst from the fragments, the AWX
# execution environment's build context
RELEASE_PY=('galaxy-importer>=0.4.40,<0.5' 'antsibull-changelog>=0.29' 'ansible-builder>=3,<4')
RELEASE_PY_HAVE=(galaxy_importer antsibull_changelog ansible_builder)
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
  # last: what they hold (promtool; galaxy-importer, antsibull-changelog, ansible-builder and that venv's own
  # ansible-core) never shadows a tool found earlier
  for d in "$CACHE_BIN" "$RELEASE_VENV/bin"; do
    case ":$p:" in *":$d:"*) ;; *) p=$p:$d ;; esac
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

release_tools() { # galaxy-importer, antsibull-changelog, ansible-builder in a virtualenv of their own
  local m missing=0
  for m in "${RELEASE_PY_HAVE[@]}"; do
    "$RELEASE_VENV/bin/python3" -c "import $m" 2>/dev/null || missing=1
  done
  [ -x "$RELEASE_VENV/bin/galaxy-importer" ] || missing=1
  [ "$missing" = 0 ] && return 0
  say "installing from PyPI into $RELEASE_VENV: ${RELEASE_PY[*]}"
  [ -x "$RELEASE_VENV/bin/python3" ] || python3 -m venv "$RELEASE_VENV" >&2
  "$RELEASE_VENV/bin/python3" -m pip install --quiet --disable-pip-version-check "${RELEASE_PY[@]}" >&2
  # galaxy-importer has no command of its own; this one runs it with its virtualenv's ansible-doc first on PATH
  cat >"$RELEASE_VENV/bin/galaxy-importer" <<'SH'
#!/bin/sh
bin=$(cd "$(dirname "$0")" && pwd)
PATH=$bin:$PATH exec "$bin/python3" -m galaxy_importer.main "$@"
SH
  chmod 0755 "$RELEASE_VENV/bin/galaxy-importer"
}

promtool_from_debian() { # promtool, unpacked from Debian's prometheus package (not installed: see above)
  local tmp
  command -v promtool >/dev/null && return 0
  say "unpacking promtool from Debian's prometheus package into $CACHE_BIN"
  apt-cache show prometheus >/dev/null 2>&1 || as_root apt-get update -qq >&2
  tmp=$(mktemp -d)
  # apt-get download as root warns that its sandbox user cannot write to the directory; the download works
  (cd "$tmp" && chmod 0755 . && apt-get download -qq prometheus >&2) || { rm -rf "$tmp"; die "apt-get download prometheus failed"; }
  mkdir -p "$CACHE_BIN"
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -xO ./usr/bin/promtool >"$CACHE_BIN/promtool.tmp"
  rm -rf "$tmp"
  chmod 0755 "$CACHE_BIN/promtool.tmp" && mv "$CACHE_BIN/promtool.tmp" "$CACHE_BIN/promtool"
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
release_tools
promtool_from_debian
docker_engine
