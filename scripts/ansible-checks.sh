#!/usr/bin/env bash
# scripts/ansible-checks.sh [--build] [--no-e2e]: the quality gates of the Ansible collection k8s_pki.kubeadm.
#
#   1. ansible-lint, production profile, on the collection and on examples/ (no skip lists, no sanity ignore file)
#   2. ansible-test sanity on the collection, run from a throw-away ansible_collections/k8s_pki/kubeadm tree that
#      is its own git repository (sanity reads `git ls-files`), for the controller's Python
#   3. the unit tests of the collection's Python plugins (tests/unit, pytest with the collection on the path)
#   4. make collection (both portable binaries, glibc 2.17 floor, sizes, tarball in dist/) and make
#      collection-smoke (the aarch64 binary under qemu-aarch64), with --build (scripts/test-all.sh runs both
#      itself before this script)
#   5. ansible-doc renders the module (every option and return value the contract names) and lists it, the
#      roles and their entry points, without a warning, also with the built binaries in place
#   6. Galaxy: LICENSE in the collection, CHANGELOG.rst as antsibull-changelog generates it from
#      changelogs/, galaxy-importer on the built tarball (scripts/galaxy-importer.cfg) with no error and no warning
#   7. AWX: ansible-builder create turns examples/awx/execution-environment.yml into a build context holding the
#      tarball (no image build: no registry here); ansible-builder introspect reads meta/execution-environment.yml
#   8. Prometheus: promtool check rules on examples/prometheus/kubeadm-certs.rules.yml
#   9. scripts/ansible-e2e.sh: the action plugin, roles and playbooks against kubeadm-made PKIs, with the binary
#      built in 4 (with --build) or target/release, which the e2e always builds first, unless --no-e2e; it also
#      runs the alert rules' promtool test on the textfiles its check playbooks write (scripts/alert-rules-test.sh)
#
# Installs what is missing: ansible (with ansible-core), ansible-lint (PyPI), and the offline stand-in for the pip
# bootstrap script ansible-test downloads from a host this machine cannot reach (it calls Python's ensurepip).
# galaxy-importer, antsibull-changelog, ansible-builder and promtool come from scripts/setup.sh all.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
e2e=1; build=0
for arg in "$@"; do
  case $arg in
    --no-e2e) e2e=0 ;;
    --build) build=1 ;;
    *) echo "usage: ansible-checks.sh [--build] [--no-e2e]" >&2; exit 2 ;;
  esac
done
step() { printf '\n== %s\n' "$*"; }
fail() { echo "ansible-checks: FAIL: $*" >&2; exit 1; }

step "tools"
if ! command -v ansible-lint >/dev/null || ! command -v ansible-test >/dev/null || ! "$PY" -c 'import ansible_collections.community.general' 2>/dev/null; then
  "$PY" -m pip install --quiet 'ansible-core>=2.16' 'ansible>=9' 'ansible-lint>=24'
fi
ansible --version | sed -n 1p
ansible-lint --version 2>/dev/null | sed -n 1p | sed 's/\x1b\[[0-9;]*m//g'
for t in galaxy-importer antsibull-changelog ansible-builder promtool; do
  command -v "$t" >/dev/null || fail "no $t on PATH: scripts/setup.sh all installs it, PATH=\$(scripts/setup.sh path) finds it"
done

# ansible-test bootstraps pip into each sanity virtualenv with a script from ci-files.testing.ansible.com.
pip_version=$("$PY" - <<'PY'
import pathlib, re, ansible_test
src = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
get_pip=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [ ! -s "$get_pip" ] || ! grep -q 'ensurepip runs in' "$get_pip"; then
  mkdir -p "$(dirname "$get_pip")"
  cat >"$get_pip" <<'PY'
# kubeadm-certs offline stand-in for ansible-test's get-pip bootstrap script: pip from Python's own ensurepip,
# then `pip install` of what ansible-test asks for (from the package index, which is reachable). ensurepip runs in
# a child process: in-process it sets PIP_CONFIG_FILE=/dev/null, which would hide the machine's pip.conf.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
PY
fi

# A throw-away collection tree: the tracked (and not ignored) files of ansible/, a git repository of its own.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
coll=$tmp/ansible_collections/k8s_pki/kubeadm
mkdir -p "$coll"
(cd "$repo/ansible" && git ls-files --cached --others --exclude-standard -z . | xargs -0 cp --parents -t "$coll")
(cd "$coll" && git init -q && git add -A && git -c user.name=checks -c user.email=checks@localhost commit -qm tree)
mkdir -p "$tmp/examples" && cp -r "$repo/examples/." "$tmp/examples/"
export ANSIBLE_COLLECTIONS_PATH=$tmp
export ANSIBLE_NOCOLOR=1

step "ansible-lint --profile production (collection)"
(cd "$coll" && ansible-lint --profile production --offline --nocolor) || fail "ansible-lint on the collection"
step "ansible-lint --profile production (examples/)"
cp "$coll/.ansible-lint" "$tmp/examples/.ansible-lint"
(cd "$tmp/examples" && ansible-lint --profile production --offline --nocolor inventory.yml ./*.yml) ||
  fail "ansible-lint on examples/"

step "ansible-test sanity"
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
(cd "$coll" && ansible-test sanity --requirements --python "$pyver" --color no) || fail "ansible-test sanity"

step "unit tests of the collection's Python plugins (pytest, tests/unit)"
"$PY" -c 'import pytest' 2>/dev/null || "$PY" -m pip install --quiet pytest
(cd "$coll" && PYTHONPATH=$tmp "$PY" -m pytest -q -p no:cacheprovider tests/unit) || fail "pytest tests/unit"

step "unit tests of the Molecule scenarios' own scripts (pytest, molecule/shared/tests: the API clients of ca_rotation)"
(cd "$repo" && "$PY" -m pytest -q -p no:cacheprovider molecule/shared/tests) || fail "pytest molecule/shared/tests"

if [ "$build" = 1 ]; then
  step "make collection (x86_64 and aarch64, glibc 2.17) and the aarch64 smoke test under qemu"
  make -C "$repo" collection || fail "make collection"
  make -C "$repo" collection-smoke || fail "make collection-smoke"
fi

step "ansible-doc"
documented_names() { # $1: a module's Python file: the names in its DOCUMENTATION options and RETURN, nested too
  python3 - "$1" <<'PY'
import ast, sys, yaml
tree = ast.parse(open(sys.argv[1]).read())
docs = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
        for t in n.targets if isinstance(t, ast.Name)}
def names(d):
    for k, v in d.items():
        yield k
        for nested in ("suboptions", "contains"):
            if isinstance(v, dict) and nested in v:
                yield from names(v[nested])
print(" ".join(sorted(set(names(yaml.safe_load(docs["DOCUMENTATION"])["options"])) |
                      set(names(yaml.safe_load(docs["RETURN"]))))))
PY
}
check_doc() { # $1: collections dir
  local out err
  out=$(ANSIBLE_COLLECTIONS_PATH=$1 ansible-doc k8s_pki.kubeadm.certs 2>"$tmp/doc.err") || fail "ansible-doc k8s_pki.kubeadm.certs"
  # every option and return value certs.py documents (the one list; src/frontend/ansible.rs's SPEC is tested
  # against the same DOCUMENTATION), at every depth, must come out of ansible-doc
  for want in $(documented_names "$repo/ansible/plugins/modules/certs.py"); do
    grep -qw -- "$want" <<<"$out" || fail "ansible-doc k8s_pki.kubeadm.certs does not mention $want"
  done
  out=$(ANSIBLE_COLLECTIONS_PATH=$1 ansible-doc -l k8s_pki.kubeadm 2>"$tmp/list.err") || fail "ansible-doc -l"
  grep -q '^k8s_pki.kubeadm.certs ' <<<"$out" || fail "ansible-doc -l k8s_pki.kubeadm does not list the module: $out"
  out=$(ANSIBLE_COLLECTIONS_PATH=$1 ansible-doc -t role -l k8s_pki.kubeadm 2>>"$tmp/list.err") || fail "ansible-doc -t role -l"
  for role in renew external_ca schedule control_plane_restart fleet_report kubelet_client ca_renew ca_rotate; do
    grep -q "^k8s_pki.kubeadm.$role" <<<"$out" || fail "ansible-doc -t role -l does not list $role"
  done
  ANSIBLE_COLLECTIONS_PATH=$1 ansible-doc -t role k8s_pki.kubeadm.external_ca >/dev/null 2>>"$tmp/list.err" ||
    fail "ansible-doc -t role k8s_pki.kubeadm.external_ca"
  # the renew_ca playbook's role: its three entry points, and the two filters it checks the nodes with
  out=$(ANSIBLE_COLLECTIONS_PATH=$1 ansible-doc -t role k8s_pki.kubeadm.ca_renew 2>>"$tmp/list.err") ||
    fail "ansible-doc -t role k8s_pki.kubeadm.ca_renew"
  for entry in preflight renew install; do
    grep -q "^ENTRY POINT: [^a-z]*$entry[^a-z]" <<<"$out" || fail "ansible-doc -t role k8s_pki.kubeadm.ca_renew lacks entry point $entry"
  done
  # the rotate_ca playbook's role: its entry points, in the order the playbook runs them
  out=$(ANSIBLE_COLLECTIONS_PATH=$1 ansible-doc -t role k8s_pki.kubeadm.ca_rotate 2>>"$tmp/list.err") ||
    fail "ansible-doc -t role k8s_pki.kubeadm.ca_rotate"
  for entry in preflight new_ca trust reissue drop verify finish; do
    grep -q "^ENTRY POINT: [^a-z]*$entry[^a-z]" <<<"$out" || fail "ansible-doc -t role k8s_pki.kubeadm.ca_rotate lacks entry point $entry"
  done
  for filter in ca_renewal ca_renewal_plan ca_rotation_plan ca_rotation_new; do
    ANSIBLE_COLLECTIONS_PATH=$1 ansible-doc -t filter "k8s_pki.kubeadm.$filter" >/dev/null 2>>"$tmp/list.err" ||
      fail "ansible-doc -t filter k8s_pki.kubeadm.$filter"
  done
  err=$(cat "$tmp/doc.err" "$tmp/list.err")
  [ -z "$err" ] || fail "ansible-doc printed warnings: $err"
}
check_doc "$tmp"
echo "module, its listing, the 8 roles, ca_renew's and ca_rotate's entry points and their filters render without a warning"
if [ -d "$repo/ansible/bin" ]; then
  # The tree as `make collection` leaves it: binaries in bin/, symlinks in plugins/modules/.
  built=$tmp/built/ansible_collections/k8s_pki
  mkdir -p "$built" && cp -a "$coll" "$built/kubeadm" && cp -a "$repo/ansible/bin" "$built/kubeadm/bin"
  cp -a "$repo"/ansible/plugins/modules/certs_* "$built/kubeadm/plugins/modules/" 2>/dev/null || true
  check_doc "$tmp/built"
  echo "... also with the built binaries in place"
fi

step "ansible-galaxy collection build"
# with the binaries when ansible/bin has them (the tarball `make collection` makes), else without
tree=$coll; [ -d "$tmp/built/ansible_collections/k8s_pki/kubeadm" ] && tree=$tmp/built/ansible_collections/k8s_pki/kubeadm
ansible-galaxy collection build --output-path "$tmp/dist" "$tree" || fail "ansible-galaxy collection build"
version=$(sed -n 's/^version: *//p' "$coll/galaxy.yml")
tarball=$tmp/dist/k8s_pki-kubeadm-$version.tar.gz

step "Galaxy: licence, CHANGELOG.rst from the fragments, galaxy-importer on the tarball"
t0=$SECONDS
cmp -s "$repo/LICENSE" "$coll/LICENSE" || fail "ansible/LICENSE is not the repository's LICENSE"
tar -tzf "$tarball" >"$tmp/tarball.list"
for f in LICENSE CHANGELOG.rst meta/execution-environment.yml meta/ee-requirements.txt; do
  grep -qx "$f" "$tmp/tarball.list" || fail "$(basename "$tarball") lacks $f"
done
(cd "$coll" && antsibull-changelog lint) || fail "antsibull-changelog lint: a fragment in ansible/changelogs/fragments or changelog.yaml is malformed"
(cd "$coll" && antsibull-changelog generate --output "$tmp/CHANGELOG.rst" --output-format rst) || fail "antsibull-changelog generate"
cmp -s "$tmp/CHANGELOG.rst" "$coll/CHANGELOG.rst" ||
  fail "ansible/CHANGELOG.rst is not what antsibull-changelog generates from changelogs/changelog.yaml (run antsibull-changelog release in ansible/): $(diff "$coll/CHANGELOG.rst" "$tmp/CHANGELOG.rst" | head -20)"
# galaxy-importer: Galaxy's import, configured by scripts/galaxy-importer.cfg (no ansible-test, no second lint); it
# writes importer_result.json into the current directory
(cd "$tmp" && GALAXY_IMPORTER_CONFIG=$repo/scripts/galaxy-importer.cfg galaxy-importer "$tarball") >"$tmp/galaxy-importer.log" 2>&1 ||
  fail "galaxy-importer refused $(basename "$tarball"): $(tail -20 "$tmp/galaxy-importer.log")"
grep -qx 'Importer processing completed successfully' "$tmp/galaxy-importer.log" ||
  fail "galaxy-importer did not complete: $(tail -20 "$tmp/galaxy-importer.log")"
# Zero errors and zero warnings. (The collection has no sanity ignore file, which Galaxy would note: certs.py, the
# module's documentation, carries the GPLv3 header validate-modules asks for, as it is offered under GPL-3.0-or-later
# too.)
problems=$(grep -E '^(WARNING|ERROR)' "$tmp/galaxy-importer.log" || true)
[ -z "$problems" ] || fail "galaxy-importer: $problems"
[ ! -d "$coll/tests/sanity" ] || [ -z "$(ls "$coll"/tests/sanity/ignore-*.txt 2>/dev/null)" ] ||
  fail "a sanity ignore file is back in tests/sanity/: ansible-test must pass without one"
echo "$(sed -n 's/^Importing with //p' "$tmp/galaxy-importer.log"): $(basename "$tarball") imported, 0 errors, 0 warnings" \
  "($((SECONDS - t0)) s)"

step "AWX: the execution environment's build context and what the collection asks of it (ansible-builder)"
t0=$SECONDS
# examples/awx/execution-environment.yml takes the tarball from ../../dist/, here $tmp/dist
ansible-builder create -f "$tmp/examples/awx/execution-environment.yml" --context "$tmp/ee" >"$tmp/ee.log" 2>&1 ||
  fail "ansible-builder create: $(cat "$tmp/ee.log")"
! grep -q 'No matches' "$tmp/ee.log" && cmp -s "$tarball" "$tmp/ee/_build/collections/$(basename "$tarball")" ||
  fail "examples/awx: the build context lacks $(basename "$tarball") (do execution-environment.yml and requirements.yml name version $version?): $(cat "$tmp/ee.log")"
grep -qx "  - name: collections/$(basename "$tarball")" "$tmp/ee/_build/requirements.yml" ||
  fail "examples/awx/requirements.yml does not install collections/$(basename "$tarball")"
grep -q '^FROM ' "$tmp/ee"/[CD]*file || fail "ansible-builder create wrote no Containerfile/Dockerfile"
# meta/execution-environment.yml: Python's cryptography for the external_ca filters, no system package
asked=$(ansible-builder introspect --sanitize "$tmp" | sed 1d)
[ "$(python3 -c 'import sys, yaml; d = yaml.safe_load(sys.stdin); print(d["python"], d["system"])' <<<"$asked")" = \
  "['cryptography  # from collection k8s_pki.kubeadm'] []" ] || fail "ansible-builder introspect: $asked"
echo "build context for $(sed -n 's/^ARG EE_BASE_IMAGE=//p' "$tmp/ee"/[CD]*file) with $(basename "$tarball");" \
  "the collection asks for cryptography and no system package ($((SECONDS - t0)) s)"

step "Prometheus: the alert rules (promtool check rules; scripts/alert-rules-test.sh tests them in the end to end)"
promtool check rules "$repo/examples/prometheus/kubeadm-certs.rules.yml" || fail "promtool check rules"

if [ "$e2e" = 1 ]; then
  step "end to end (scripts/ansible-e2e.sh)"
  # with --build, the portable binary just built in 3; otherwise the e2e builds target/release itself (always)
  if [ "$build" = 1 ]; then export KUBEADM_CERTS_E2E_BIN=$repo/ansible/bin/kubeadm-certs-x86_64; fi
  "$repo/scripts/ansible-e2e.sh" || fail "scripts/ansible-e2e.sh"
fi
step "ansible-checks: all passed"
