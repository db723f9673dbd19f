#!/usr/bin/env bash
# scripts/ansible-nonroot.sh BINARY: the collection's controller-side tasks run as a controller user without root.
#
# ansible-playbook runs as an unprivileged local user (kc-controller, created here, not in sudoers) with the local
# connection; the "node" is this machine as that same user (its PKI is the user's, so the node needs no become:
# ansible_become=false on the node). The playbooks keep their default become=true, which is meant for the nodes. A
# task delegated to the controller that inherits it asks sudo for a password and fails ("Missing sudo password"),
# or, with sudo rights, leaves root-owned files in the user's directories. Checked:
#   1 k8s_pki.kubeadm.external_ca signs on the controller (openssl, the CA key in the user's directory) and installs
#   2 every file the play left on the controller belongs to the user
#   3 k8s_pki.kubeadm.check writes its report file on the controller, owned by the user
#
# Needs root (it creates the user and installs sudo when missing). ansible-core for the user comes from a virtualenv
# of Debian's /usr/bin/python3 in /var/cache/kubeadm-certs (root's pyenv under /root is not readable by the user),
# the same ansible-core version as the caller's. Ends with "N passed, M failed".
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$1
user=kc-controller
PY=${PYTHON:-python3}
pass=0; failed=0
ok() { pass=$((pass + 1)); echo "PASS: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

[ "$(id -u)" = 0 ] || { echo "ansible-nonroot: needs root (creates the user $user)" >&2; exit 2; }
command -v sudo >/dev/null || apt-get install -y --no-install-recommends sudo >/dev/null
id "$user" >/dev/null 2>&1 || useradd --system --shell /bin/sh --no-create-home "$user"
# the user must not have sudo rights: that is the point
if sudo -l -U "$user" 2>/dev/null | grep -q 'may run'; then echo "ansible-nonroot: $user has sudo rights" >&2; exit 2; fi

version=$("$PY" -c 'import ansible.release; print(ansible.release.__version__)')
venv=/var/cache/kubeadm-certs/ansible-core-$version
# Made in place: a virtualenv's scripts name its interpreter by absolute path, so one made elsewhere and moved here
# cannot run ("env: 'ansible-playbook': No such file or directory" on a fresh machine). .complete marks one whose
# pip install finished; anything else is made again.
if [ ! -e "$venv/.complete" ]; then
  rm -rf "$venv" "$venv.tmp"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "ansible-core==$version"
  touch "$venv/.complete"
fi

work=$(mktemp -d /tmp/kc-nonroot.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
coll=$work/collections/ansible_collections/k8s_pki/kubeadm
mkdir -p "$coll/bin" "$work/home" "$work/controller" "$work/ca"
(cd "$repo/ansible" && git ls-files --cached --others --exclude-standard -z . | xargs -0 cp --parents -t "$coll")
cp "$bin" "$coll/bin/kubeadm-certs-x86_64"
ln -s ../../bin/kubeadm-certs-x86_64 "$coll/plugins/modules/certs_x86_64"
# an OpenSSL-made kubeadm-shaped PKI: what made it does not matter here, and it needs no Kubernetes binary
"$repo/tests/fixtures/synthetic-pki.sh" "$work/node" rsa-2048 cp1 127.0.0.71 >/dev/null
pki=$work/node/etc/kubernetes/pki
mv "$pki/ca.key" "$work/ca/ca.key"; mv "$pki/front-proxy-ca.key" "$work/ca/front-proxy-ca.key"
mv "$pki/etcd/ca.key" "$work/ca/etcd-ca.key"
cat >"$work/inventory.yml" <<EOF
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: /usr/bin/python3
  children:
    kube_control_plane:
      hosts:
        n1:
          # the node is this machine as the controller user, who owns its PKI: no become on the node itself
          ansible_become: false
          cluster_name: nonroot
          external_ca_cert_dir: $pki
          external_ca_kubeconfig_dir: $work/node/etc/kubernetes
          external_ca_node_dir: $work/node/external-ca
          external_ca_controller_dir: $work/controller/external-ca
          external_ca_force: true
          external_ca_restart: false
          external_ca_openssl_cas:
            ca: {cert: $pki/ca.crt, key: $work/ca/ca.key}
            front-proxy-ca: {cert: $pki/front-proxy-ca.crt, key: $work/ca/front-proxy-ca.key}
            etcd-ca: {cert: $pki/etcd/ca.crt, key: $work/ca/etcd-ca.key}
          fleet_report_cert_dir: $pki
          fleet_report_kubeconfig_dir: $work/node/etc/kubernetes
EOF
chown -R "$user:" "$work"   # user and group: the binary keeps both on the files it replaces
as_user() { # LOG ansible-playbook ARGS...: as the controller user, output in LOG
  local log=$1; shift
  runuser -u "$user" -- env -i PATH="$venv/bin:/usr/bin:/bin" HOME="$work/home" LANG=C.UTF-8 \
    ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 \
    ANSIBLE_LOCAL_TEMP="$work/home/.ansible-local" ANSIBLE_REMOTE_TEMP="$work/home/.ansible-remote" \
    ansible-playbook -i "$work/inventory.yml" "$@" >"$work/$log" 2>&1
}
explain() { # LOG: why a play failed, for the report
  grep -m3 -E 'Missing sudo password|a password is required|Permission denied|fatal:' "$work/$1" | cut -c1-300 || true
}
old_serial=$(openssl x509 -noout -serial -in "$pki/apiserver.crt")

if as_user extca.log k8s_pki.kubeadm.external_ca; then
  check "external_ca as the controller user: signed on the controller and installed" \
    test "$(openssl x509 -noout -serial -in "$pki/apiserver.crt")" != "$old_serial"
else
  bad "external_ca as the controller user (the play failed: $(explain extca.log))"
fi
check "... every file it left on the controller belongs to $user" \
  test -z "$(find "$work/controller" ! -user "$user" -print -quit)" -a -d "$work/controller/external-ca/nonroot/n1"
if as_user check.log k8s_pki.kubeadm.check -e "kubeadm_certs_report_file=$work/controller/report.txt"; then
  check "check as the controller user writes the report file, owned by $user" bash -c "
    [ \"\$(stat -c %U '$work/controller/report.txt')\" = '$user' ] &&
    grep -q '11 certificates and 3 CAs on 1 node(s) in 1 cluster(s)' '$work/controller/report.txt'"
else
  bad "check as the controller user writes the report file (the play failed: $(explain check.log))"
fi
[ "$failed" -eq 0 ] || { trap - EXIT; echo "logs kept in $work"; }
echo "ansible-nonroot: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
