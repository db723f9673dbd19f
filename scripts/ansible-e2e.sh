#!/usr/bin/env bash
# scripts/ansible-e2e.sh: the collection k8s_pki.kubeadm end to end on this machine, against PKIs made by real
# kubeadm 1.20.2 (scripts/mkpki.sh), with real etcd and kube-apiserver processes for one node
# (scripts/cluster.sh), through ansible-playbook with the local connection (each inventory host's "node" is a
# directory). No root paths are touched; everything lives in a temporary directory.
#
#   fleet   alpha: a-cp1 (real etcd + kube-apiserver on 127.0.0.61, or E2E_IP_BASE), a-cp2, a-cp3 (shared CAs); beta: b-cp1
#   1 action plugin   picks the x86_64 binary, caches uname as a fact, passes check mode and diff, fails clearly on
#                     an unknown platform and on an unknown parameter
#   2 check           fleet table (every node, sorted by residual time), Prometheus textfiles whose timestamps
#                     match openssl's and that say when the check ran, the threshold fails the play; a node given
#                     another cluster's sa.key/sa.pub is named (file, both fingerprints) and fails the play
#   3 renew --check   shows would_renew and diffs and the restart it would do, changes no file, restarts nothing
#   4 renew           serial, every node renewed; what is stale after it restarts through the module's restart
#                     engine (method command): a-cp1's kube-apiserver really restarted, waited for (/proc, /readyz)
#                     and serving the new certificate, its etcd (which reloads) not; on the nodes where nothing runs,
#                     nothing to restart; a second run changes nothing
#   5 renew, failing  a failing restart on a-cp1 stops the run: later nodes untouched
#   6 external_ca     a node that lies (a CSR whose subject smuggles a placeholder and a SAN a shell command; a SAN
#                     that adds `basicConstraints = critical, CA:TRUE` to the extensions file) is refused before
#                     anything is signed; a CA that signs with the wrong key is refused and nothing changes; a signing
#                     command (placeholders as environment variables) and openssl -extfile with the real (off-node)
#                     CA keys: installed, chained, keys match, externally managed
#   7 schedule        timer slots follow the documented formula; the binary's completions and man page installed
#                     as it prints them, a second run changing nothing; a-cp1's textfile names its stale
#                     kube-apiserver, and the alert rules pass promtool's test on the textfiles' series
#                     (scripts/alert-rules-test.sh); the service's two commands (the binary
#                     alone) renew, skip an absent entry, and restart a-cp1's stale kube-apiserver holding the
#                     cluster's Lease (taken and released through the real apiserver)
#
#   7b renew_ca       the cluster CA of alpha renewed with its own key: a node holding another CA is named by the
#                     pre-flight; check mode changes nothing and prints the plan per node; then one renewal on
#                     a-cp1, the byte-identical certificate on every node and the worker a-w1 (same key, new serial
#                     and notAfter), old leaves verifying under it, the kubeconfigs and cluster-info (real
#                     apiserver) following; a second run changes nothing; a stopped run is finished by running it again
#   8 non-root        scripts/ansible-nonroot.sh: a controller user without sudo rights runs external_ca and check
#                     (needs root to create that user: skipped, and said so, otherwise)
#
# Ends with "N passed, M failed". Builds the release binary first (cargo build --release, incremental) unless
# KUBEADM_CERTS_E2E_BIN names a freshly built one; needs scripts/k8s-bin.sh's Kubernetes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
pass=0; failed=0; failures=()
ok() { pass=$((pass + 1)); echo "PASS: $*"; }
bad() { failed=$((failed + 1)); failures+=("$*"); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# The binary under test is built from this tree, always: cargo is incremental (seconds when nothing changed), and a
# binary left from an older tree would test old code. KUBEADM_CERTS_E2E_BIN names one built just before (the portable
# binary `make collection` made, as scripts/ansible-checks.sh --build passes it); it must be newer than the sources.
if [ -n "${KUBEADM_CERTS_E2E_BIN:-}" ]; then
  bin=$KUBEADM_CERTS_E2E_BIN
else
  (cd "$repo" && cargo build --release --locked --bin kubeadm-certs)
  bin=$repo/target/release/kubeadm-certs
fi
stale=$(cd "$repo" && find src Cargo.toml Cargo.lock -newer "$bin" -print -quit 2>/dev/null || true)
if [ ! -x "$bin" ] || [ -n "$stale" ]; then
  echo "ansible-e2e: $bin is missing or older than $repo/${stale:-src}: build it (cargo build --release, or make collection)" >&2
  exit 1
fi
"$repo/scripts/k8s-bin.sh" >/dev/null

work=$(mktemp -d)
cleanup() {
  "$repo/scripts/cluster.sh" stop "$work/nodes/a-cp1" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The collection as a user installs it: tracked files, the binary in bin/, the module symlink.
coll=$work/collections/ansible_collections/k8s_pki/kubeadm
mkdir -p "$coll/bin"
(cd "$repo/ansible" && git ls-files --cached --others --exclude-standard -z . | xargs -0 cp --parents -t "$coll")
cp "$bin" "$coll/bin/kubeadm-certs-x86_64"
ln -s ../../bin/kubeadm-certs-x86_64 "$coll/plugins/modules/certs_x86_64"
# This machine cannot run the aarch64 binary (its smoke test is scripts/smoke-aarch64.sh under qemu); to see which
# binary the action plugin picks for an aarch64 node, certs_aarch64 here is the x86_64 binary under that name.
ln -s ../../bin/kubeadm-certs-x86_64 "$coll/plugins/modules/certs_aarch64"
export ANSIBLE_COLLECTIONS_PATH=$work/collections ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0
export ANSIBLE_LOCAL_TEMP=$work/ansible-local ANSIBLE_REMOTE_TEMP=$work/ansible-remote

# The fleet.
# E2E_IP_BASE: the last octet of a-cp1's loopback address (the others follow), for a run beside another one
E2E_IP_BASE=${E2E_IP_BASE:-61}; export E2E_IP_BASE
declare -A ip=([a-cp1]=127.0.0.$E2E_IP_BASE [a-cp2]=127.0.0.$((E2E_IP_BASE + 1)) [a-cp3]=127.0.0.$((E2E_IP_BASE + 2))
  [b-cp1]=127.0.0.$((E2E_IP_BASE + 3)))
"$repo/scripts/mkpki.sh" "$work/nodes/a-cp1" std cp1 "${ip[a-cp1]}" >/dev/null
for n in a-cp2 a-cp3; do
  CA_FROM=$work/nodes/a-cp1 "$repo/scripts/mkpki.sh" "$work/nodes/$n" std "${n#a-}" "${ip[$n]}" >/dev/null
done
"$repo/scripts/mkpki.sh" "$work/nodes/b-cp1" std cp1 "${ip[b-cp1]}" >/dev/null
mkdir -p "$work/log"

# The inventory and the plays of this run are files under ansible/tests/e2e/; they find the work directory and the
# Python interpreter in E2E_WORK and E2E_PYTHON.
e2e=$repo/ansible/tests/e2e
export E2E_WORK=$work E2E_PYTHON
E2E_PYTHON=$(command -v "$PY")
cat >"$work/restart-real.sh" <<EOF
#!/usr/bin/env bash
# restart-real.sh ROOT IP COMPONENT: stop one component that cluster.sh started and start it again (not waiting).
set -euo pipefail
root=\$1; ip=\$2; c=\$3
echo "\$(basename "\$root") \$c" >> "$work/log/restarts.log"
pid=\$(cat "\$root/run/\$c.pid"); kill "\$pid"
while kill -0 "\$pid" 2>/dev/null; do sleep 0.1; done
echo "\$pid" > "$work/log/\$c.killed"
rm -f "\$root/run/\$c.pid"
# start what is not running; READY_TIMEOUT=0: the role's health checks do the waiting, not this script
READY_TIMEOUT=0 "$repo/scripts/cluster.sh" start "\$root" "\$ip" >/dev/null 2>&1 || true
EOF
chmod +x "$work/restart-real.sh"

play() { # play LOGNAME ansible-playbook-args...: output in log/LOGNAME.log, returns its exit code
  local name=$1; shift
  ansible-playbook -i "$e2e/inventory.yml" "$@" >"$work/log/$name.log" 2>&1
}
fingerprint() { openssl x509 -noout -fingerprint -sha256 -in "$1"; }
tree_hash() { (cd "$work/nodes" && find . -path '*/run' -prune -o -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
serial_of() { openssl x509 -noout -serial -in "$1"; }
task_output() { # LOG TASK_NAME: what one task printed, from its header to the next task, play or "no more hosts" line
  awk -v t="$2]" 'index($0, "TASK [") == 1 || index($0, "PLAY ") == 1 || index($0, "NO MORE HOSTS") == 1 {
    on = index($0, t) > 0; next } on' "$1"
}
export -f task_output
kubeconfig_cert() { sed -n 's/^ *client-certificate-data: *//p' "$1" | base64 -d; }

echo "== 1 action plugin (at ${SECONDS}s)"
before=$(tree_hash)
check "module through the action plugin: results, uname fact cached, check mode + diff, unknown option refused" \
  play action "$e2e/action.yml"
check "check mode changed no file" test "$(tree_hash)" = "$before"
mkdir -p "$work/fakebin"
for m in aarch64 arm64; do
  printf '#!/bin/sh\necho "Linux %s"\n' "$m" >"$work/fakebin/uname" && chmod +x "$work/fakebin/uname"
  if PATH=$work/fakebin:$PATH play "uname-$m" "$e2e/action.yml" -vvv -e "expected_uname='Linux $m'"; then
    check "a node whose uname -m says $m gets certs_aarch64" \
      grep -q "Using module file .*/plugins/modules/certs_aarch64\$" "$work/log/uname-$m.log"
  else bad "a node whose uname -m says $m gets certs_aarch64 (the play failed)"; fi
done
printf '#!/bin/sh\necho "Linux riscv64"\n' >"$work/fakebin/uname"
if PATH=$work/fakebin:$PATH play riscv "$e2e/action.yml"; then bad "an unsupported platform fails"; else
  check "an unsupported platform fails with a clear message" \
    grep -q "has no binary for this target: \`uname -sm\` says 'Linux riscv64'" "$work/log/riscv.log"
fi

echo "== 2 check playbook (at ${SECONDS}s)"
for n in a-cp1 a-cp2 a-cp3 b-cp1; do mkdir -p "$work/textfiles/$n"; done
check "k8s_pki.kubeadm.check passes with the default 30d threshold" \
  play check k8s_pki.kubeadm.check -e "kubeadm_certs_textfile_dir=$work/textfiles/{{ inventory_hostname }}" \
  -e "kubeadm_certs_report_file=$work/log/report.txt"
check "one table: 40 certificates and 12 CAs on 4 nodes in 2 clusters" \
  grep -q "40 certificates and 12 CAs on 4 node(s) in 2 cluster(s)" "$work/log/report.txt"
check "the table is sorted by residual time (certificates first, CAs last)" \
  "$PY" -c "import sys; rows=[l for l in open(sys.argv[1]).read().splitlines()[2:] if l.strip()]; ca=[' CA ' in r for r in rows]; sys.exit(0 if ca == sorted(ca) and len(rows) == 52 else 1)" "$work/log/report.txt"
prom=$work/textfiles/a-cp2/kubeadm_certs.prom
want=$(date -u -d "$(openssl x509 -noout -enddate -in "$work/nodes/a-cp2/etc/kubernetes/pki/apiserver.crt" | cut -d= -f2)" +%s)
check "Prometheus textfile: 13 series per node, apiserver's timestamp equals openssl's NotAfter" \
  bash -c "[ \$(grep -c '^kubeadm_certs_expiration_timestamp_seconds{' '$prom') = 13 ] &&
    grep -qx 'kubeadm_certs_expiration_timestamp_seconds{node=\"a-cp2\",name=\"apiserver\",ca=\"ca\",cluster=\"alpha\"} $want' '$prom'"
checked=$(sed -n 's/^kubeadm_certs_check_timestamp_seconds{node="a-cp2",cluster="alpha"} //p' "$prom")
check "... and when the check ran (within this run), no component series where nothing runs" \
  bash -c "[ -n '$checked' ] && [ '$checked' -ge $(( $(date +%s) - SECONDS )) ] && [ '$checked' -le $(date +%s) ] &&
    ! grep -q '^kubeadm_certs_component_stale' '$prom'"
if play check-fail k8s_pki.kubeadm.check -e kubeadm_certs_fail_within=400d; then bad "a 400d threshold fails the check"; else
  check "a 400d threshold fails the check and names what expires" \
    grep -q "40 certificate(s) or CA(s) expire within 400d: alpha/a-cp1 " "$work/log/check-fail.log"
fi

# One cluster, one truth (issue 21): the nodes' fingerprints compared on the controller, cluster by cluster.
check "the clean fleet: no consistency finding, every row's node ok, kubeadm_certs_inconsistent 0" bash -c "
  ! grep -q '== consistency' '$work/log/report.txt' && [ \$(grep -c '   ok\$' '$work/log/report.txt') = 52 ] &&
  grep -qx 'kubeadm_certs_inconsistent{node=\"a-cp2\",cluster=\"alpha\"} 0' '$prom'"
# a-cp3 "rebuilt" with another service-account key pair (beta's): tokens a-cp1 signs, a-cp3's apiserver rejects
pki3=$work/nodes/a-cp3/etc/kubernetes/pki
cp -p "$pki3/sa.key" "$work/sa.key.a-cp3"; cp -p "$pki3/sa.pub" "$work/sa.pub.a-cp3"
cp -p "$work/nodes/b-cp1/etc/kubernetes/pki/sa.key" "$work/nodes/b-cp1/etc/kubernetes/pki/sa.pub" "$pki3/"
sa_fp() { openssl rsa -pubin -in "$1" -RSAPublicKey_out -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1; }
fp_alpha=$(sa_fp "$work/sa.pub.a-cp3"); fp_beta=$(sa_fp "$pki3/sa.pub")
if play check-inconsistent k8s_pki.kubeadm.check -e "kubeadm_certs_textfile_dir=$work/textfiles/{{ inventory_hostname }}" \
  -e "kubeadm_certs_report_file=$work/log/report-inconsistent.txt"; then
  bad "a node with another sa.key/sa.pub fails the check"
else
  check "a node with another sa.key/sa.pub fails the check, naming the node, the file and both fingerprints (openssl's)" \
    grep -q "1 consistency finding(s): alpha: the service-account key pair (sa.key/sa.pub) differs between control-plane nodes ($work/nodes/a-cp1/etc/kubernetes/pki/sa.pub): a-cp1, a-cp2 have public key SHA-256 $fp_alpha; a-cp3 has public key SHA-256 $fp_beta" \
    "$work/log/check-inconsistent.log"
fi
check "... the table marks a-cp3's rows, lists the finding after it; the textfile says 1 for a-cp3, 0 for a-cp1" bash -c "
  [ \$(grep -c '^alpha  *a-cp3 .*   1\$' '$work/log/report-inconsistent.txt') = 13 ] &&
  grep -q '^- \[a-cp3\] alpha: the service-account key pair' '$work/log/report-inconsistent.txt' &&
  grep -qx 'kubeadm_certs_inconsistent{node=\"a-cp3\",cluster=\"alpha\"} 1' '$work/textfiles/a-cp3/kubeadm_certs.prom' &&
  grep -qx 'kubeadm_certs_inconsistent{node=\"a-cp1\",cluster=\"alpha\"} 0' '$work/textfiles/a-cp1/kubeadm_certs.prom'"
check "... kubeadm_certs_fail_inconsistent=false reports it and passes" \
  play check-inconsistent-report k8s_pki.kubeadm.check -e kubeadm_certs_fail_inconsistent=false
cp -p "$work/sa.key.a-cp3" "$pki3/sa.key"; cp -p "$work/sa.pub.a-cp3" "$pki3/sa.pub"
check "... and with a-cp3's own pair back, the fleet is consistent again" play check-consistent-again k8s_pki.kubeadm.check

echo "== 3 renew --check --diff (at ${SECONDS}s)"
READY_TIMEOUT=60 "$repo/scripts/cluster.sh" start "$work/nodes/a-cp1" "${ip[a-cp1]}" >/dev/null
before=$(tree_hash)
check "k8s_pki.kubeadm.renew in check mode runs" play renew-check k8s_pki.kubeadm.renew --check --diff -e renew_before=400d
check "check mode changed no file" test "$(tree_hash)" = "$before"
check "check mode restarted nothing" test ! -e "$work/log/restarts.log"
check "check mode shows the diffs and the plan for every node" bash -c "
  [ \$(grep -c '^+serial: (new random serial)' '$work/log/renew-check.log') = 40 ] &&
  [ \$(grep -cE 'would_renew +ok\"' '$work/log/renew-check.log') = 40 ] &&
  grep -q 'would restart: kube-apiserver' '$work/log/renew-check.log'"

echo "== 4 renew (at ${SECONDS}s)"
old_api=$(fingerprint "$work/nodes/a-cp1/etc/kubernetes/pki/apiserver.crt")
declare -A old_serial
for n in a-cp1 a-cp2 a-cp3 b-cp1; do old_serial[$n]=$(serial_of "$work/nodes/$n/etc/kubernetes/pki/etcd/peer.crt"); done
start=$(date +%s)
check "k8s_pki.kubeadm.renew renews every node" play renew k8s_pki.kubeadm.renew -e renew_before=400d
echo "   (renew over 4 nodes with a real restart: $(( $(date +%s) - start ))s)"
# What restarts is what runs and is stale after the run (docs/in-use.md): on a-cp1, etcd 3.4 serves its renewed
# certificates at once (it reads them on every handshake), so only kube-apiserver (its client certificates are read
# at start); on the other nodes nothing runs, which the engine reports and does not try to restart.
check "only a-cp1's stale kube-apiserver was restarted" test "$(cat "$work/log/restarts.log")" = "a-cp1 kube-apiserver"
check "the engine said so: restarted on a-cp1, not running on the three other nodes" bash -c "
  task_output '$work/log/renew.log' 'Say what was restarted, or would be' > '$work/log/restart-msgs.log' &&
  grep -A1 '^ok: \[a-cp1\]' '$work/log/restart-msgs.log' |
    grep -q 'restarted kube-apiserver (command): healthy, using the certificates on disk' &&
  [ \$(grep -c 'not running: etcd, kube-apiserver, kube-controller-manager, kube-scheduler' '$work/log/restart-msgs.log') = 3 ]"
renewed_all=1
for n in a-cp1 a-cp2 a-cp3 b-cp1; do
  [ "$(serial_of "$work/nodes/$n/etc/kubernetes/pki/etcd/peer.crt")" != "${old_serial[$n]}" ] || renewed_all=0
done
check "every node's certificates were renewed (a new etcd-peer serial on each)" test "$renewed_all" = 1
check "a-cp1's apiserver was really restarted, its etcd (serving the renewed certificates already) was not" \
  test ! -e "$work/log/etcd.killed" -a -s "$work/log/kube-apiserver.killed"
new_api=$(fingerprint "$work/nodes/a-cp1/etc/kubernetes/pki/apiserver.crt")
served=$(openssl s_client -connect "${ip[a-cp1]}:6443" -servername kubernetes </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256)
check "a-cp1's apiserver serves the renewed certificate" test "$served" = "$new_api" -a "$new_api" != "$old_api"
check "the fleet summary after renewal has the ACTION column" bash -c "
  grep -q '\"== after renewal: 40 certificates and 12 CAs' '$work/log/renew.log' &&
  grep -q 'EXTERNALLY MANAGED   ACTION' '$work/log/renew.log' && [ \$(grep -cE 'renewed +ok\"' '$work/log/renew.log') -ge 40 ]"
check "backups were kept" bash -c "ls $work/nodes/a-cp3/etc/kubernetes/pki/ | grep -q '^apiserver.crt.*~\$'"
: >"$work/log/restarts.log"
check "a second run renews nothing" play renew-again k8s_pki.kubeadm.renew
check "... reports no change on any node and restarts nothing" bash -c "
  [ \$(grep -cE '^(a|b)-cp[0-9] +: ok=[0-9]+ +changed=0 ' '$work/log/renew-again.log') = 4 ] && [ ! -s '$work/log/restarts.log' ]"

echo "== 5 renew stops at the first failure (at ${SECONDS}s)"
cp1_before=$(serial_of "$work/nodes/a-cp1/etc/kubernetes/pki/apiserver.crt")
cp2_before=$(serial_of "$work/nodes/a-cp2/etc/kubernetes/pki/apiserver.crt")
cp3_before=$(serial_of "$work/nodes/a-cp3/etc/kubernetes/pki/apiserver.crt")
b_before=$(serial_of "$work/nodes/b-cp1/etc/kubernetes/pki/apiserver.crt")
api_pid=$(cat "$work/nodes/a-cp1/run/kube-apiserver.pid")
if play renew-fail k8s_pki.kubeadm.renew -e renew_force=true -e '{"control_plane_restart_command": "exit 1"}'; then
  bad "a failing restart fails the playbook"
else
  # the cause, not just a failure: a-cp1 was renewed, then the restart command of its (running, now stale)
  # kube-apiserver (exit 1) failed, and that was the only failure of the run
  check "the play failed at a-cp1's kube-apiserver restart command, after renewing a-cp1" bash -c "
    task_output '$work/log/renew-fail.log' 'Restart the components one at a time, each gated on its health and the certificates it uses' |
      grep '^fatal: \\[a-cp1\\]: FAILED! => ' | grep -q 'kube-apiserver: .*exit 1.* failed (exit status: 1)' &&
    [ \$(grep -c '^fatal: ' '$work/log/renew-fail.log') = 1 ] &&
    grep -qE '^a-cp1 +: .* failed=1 ' '$work/log/renew-fail.log' &&
    [ \"\$(openssl x509 -noout -serial -in '$work/nodes/a-cp1/etc/kubernetes/pki/apiserver.crt')\" != '$cp1_before' ]"
  check "... and left a-cp1's kube-apiserver running, untouched" kill -0 "$api_pid"
  check "a failing restart on a-cp1 stops the run: a-cp2, a-cp3 and b-cp1 untouched" \
    test "$(serial_of "$work/nodes/a-cp2/etc/kubernetes/pki/apiserver.crt")" = "$cp2_before" -a \
         "$(serial_of "$work/nodes/a-cp3/etc/kubernetes/pki/apiserver.crt")" = "$cp3_before" -a \
         "$(serial_of "$work/nodes/b-cp1/etc/kubernetes/pki/apiserver.crt")" = "$b_before"
fi

echo "== 6 external_ca (b-cp1; its CA keys move off the node to the signing host) (at ${SECONDS}s)"
ca=$work/controller/beta-ca
mkdir -p "$ca"
pki=$work/nodes/b-cp1/etc/kubernetes/pki
mv "$pki/ca.key" "$ca/ca.key"; mv "$pki/front-proxy-ca.key" "$ca/front-proxy-ca.key"; mv "$pki/etcd/ca.key" "$ca/etcd-ca.key"
cat >"$work/cas.json" <<EOF
{"external_ca_openssl_cas": {"ca": {"cert": "$pki/ca.crt", "key": "$ca/ca.key"},
  "front-proxy-ca": {"cert": "$pki/front-proxy-ca.crt", "key": "$ca/front-proxy-ca.key"},
  "etcd-ca": {"cert": "$pki/etcd/ca.crt", "key": "$ca/etcd-ca.key"}},
 "external_ca_signing_dir": "$work/controller/signing", "external_ca_force": true, "kubeadm_certs_hosts": "b-cp1"}
EOF
# A signer that uses the front-proxy CA for everything: certificates of ca and etcd-ca do not chain.
cat >"$work/wrong-ca.json" <<EOF
{"external_ca_signer": "command",
 "external_ca_sign_command": "openssl x509 -req -in {csr} -CA $pki/front-proxy-ca.crt -CAkey $ca/front-proxy-ca.key -set_serial 7 -days 30 -extfile {ext} -out {cert}"}
EOF
pki_hash() { (cd "$work/nodes" && find . -path '*/run' -prune -o -path '*/external-ca' -prune -o -type f -print0 |
              sort -z | xargs -0 sha256sum | sha256sum); }
# The CA certificates next to their keys on the signing host, named as {ca} says (ca, front-proxy-ca, etcd-ca).
cp "$pki/ca.crt" "$ca/ca.crt"; cp "$pki/front-proxy-ca.crt" "$ca/front-proxy-ca.crt"; cp "$pki/etcd/ca.crt" "$ca/etcd-ca.crt"
# A signing command that uses every kind of placeholder: {subject} and {sans} end up in the signing host's log.
cat >"$work/command-signer.json" <<EOF
{"external_ca_signer": "command",
 "external_ca_sign_command": "openssl x509 -req -in {csr} -CA $ca/{ca}.crt -CAkey $ca/{ca}.key -set_serial 9 -days 30 -extfile {ext} -out {cert} && echo {name} {profile} {subject} {sans} >> $work/log/signed.log"}
EOF

# A node that lies. The module on b-cp1 is the real binary, after which this wrapper replaces the CSR of one
# certificate with one asking for the subject and SANs in lie.json (signed with the node's new key, so it verifies)
# and makes the module's report say the same: what an attacker who owns the node can hand the controller.
cat >"$work/lying-module" <<EOF
#!$(command -v "$PY")
# WANT_JSON (Ansible passes the JSON args file, as to the binary module)
import ipaddress, json, subprocess, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
run = subprocess.run(["$coll/bin/kubeadm-certs-x86_64", sys.argv[1]], capture_output=True, text=True)
result, lie = json.loads(run.stdout), json.load(open("$work/lie.json"))
for c in result.get("csrs", []):
    if c["name"] == lie["name"]:
        key = serialization.load_pem_private_key(open(c["key_path"], "rb").read(), None)
        sans = [x509.DNSName(d) for d in lie["dns"]] + [x509.IPAddress(ipaddress.ip_address(i)) for i in lie["ips"]]
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, lie["cn"])]))
               .add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(key, hashes.SHA256()))
        open(c["csr_path"], "wb").write(csr.public_bytes(serialization.Encoding.PEM))
        c["subject"] = "CN=" + lie["cn"]
        c["sans"] = ["DNS:" + d for d in lie["dns"]] + ["IP:" + i for i in lie["ips"]]
print(json.dumps(result))
EOF
chmod +x "$work/lying-module"
attack() { # NAME LIE_JSON EXTRA_ARGS...: run external_ca on b-cp1 with the lying module, own controller directory
  local name=$1 rc=0; shift; printf '%s' "$1" >"$work/lie.json"; shift
  ln -sfn "$work/lying-module" "$coll/plugins/modules/certs_x86_64"
  play "$name" k8s_pki.kubeadm.external_ca -e "@$work/cas.json" -e "external_ca_controller_dir=$work/controller/$name" "$@" ||
    rc=$?
  ln -sfn ../../bin/kubeadm-certs-x86_64 "$coll/plugins/modules/certs_x86_64"
  return $rc
}
no_certificate_signed() { # DIR...: no .crt below any of them
  [ -z "$(find "$@" -name '*.crt*' -print -quit 2>/dev/null)" ]
}
before=$(pki_hash)
if attack extca-inject \
     '{"name": "etcd-peer", "cn": "a{sans}", "dns": ["cp1", "localhost", "y;touch '"$work"'/pwned;#"], "ips": []}' \
     -e "@$work/command-signer.json"; then
  bad "a subject that smuggles {sans} and a SAN holding a shell command are refused (the play passed)"
else
  check "a subject that smuggles {sans} and a SAN holding a shell command are refused on the controller" \
    grep -qF "external_ca refuses to sign etcd-peer: its CSR's subject CN='a{sans}' holds characters kubeadm never" \
    "$work/log/extca-inject.log"
  check "... the signing host ran nothing: no marker file of the injected touch, no certificate signed" bash -c "
    [ ! -e '$work/pwned' ] && [ ! -e '$work/log/signed.log' ] &&
    [ -z \"\$(find '$work/controller/extca-inject' -name '*.crt*' -print -quit)\" ]"
  check "... and no file of any PKI changed" test "$(pki_hash)" = "$before"
fi
if attack extca-ca-true \
     '{"name": "etcd-peer", "cn": "cp1", "dns": ["cp1", "localhost", "x\nbasicConstraints = critical, CA:TRUE"], "ips": []}'
then
  bad "a SAN that adds basicConstraints CA:TRUE to the extensions file is refused (the play passed)"
else
  check "a SAN that adds basicConstraints CA:TRUE to the extensions file is refused on the controller" \
    grep -qF "external_ca refuses to sign etcd-peer: its CSR asks for the SAN 'x\\nbasicConstraints = critical, CA:TRUE'" \
    "$work/log/extca-ca-true.log"
  check "... nothing was signed (no CA certificate, no certificate at all)" \
    no_certificate_signed "$work/controller/extca-ca-true" "$work/nodes/b-cp1/external-ca"
  for crt in $(find "$work/controller/extca-ca-true" -name '*.crt' 2>/dev/null); do # the old code's harm, shown
    if openssl x509 -noout -ext basicConstraints -in "$crt" | grep -q 'CA:TRUE'; then echo "   signed a CA certificate: $crt"; fi
  done
  check "... and no file of any PKI changed" test "$(pki_hash)" = "$before"
fi

if play extca-wrong k8s_pki.kubeadm.external_ca -e "@$work/cas.json" -e "@$work/wrong-ca.json"; then
  bad "certificates from the wrong CA are refused"
else
  check "certificates from the wrong CA are refused at install, by the module's chain check" bash -c "
    task_output '$work/log/extca-wrong.log' 'Install the signed certificates once every one of them validates (all or none)' |
      grep -q '^fatal: \[b-cp1\]: FAILED! => .*signed/admin.conf.crt: its issuer is .*CN=front-proxy-ca.*, the CA is .*CN=kubernetes'"
  check "... and no file of any PKI changed" test "$(pki_hash)" = "$before"
fi
check "k8s_pki.kubeadm.external_ca with a signing command signs and installs" \
  play extca-command k8s_pki.kubeadm.external_ca -e "@$work/cas.json" -e "@$work/command-signer.json"
check "... the placeholders reached the command as values: one line per certificate, subject and SANs intact" bash -c "
  [ \$(wc -l < '$work/log/signed.log') = 10 ] &&
  grep -qxF 'admin.conf kubernetes-client O=system:masters, CN=kubernetes-admin ' '$work/log/signed.log' &&
  grep -qxF 'etcd-peer kubernetes-peer CN=cp1 DNS:cp1,DNS:localhost,IP:192.0.2.${ip[b-cp1]##*.},IP:127.0.0.1,IP:::1,IP:${ip[b-cp1]}' \
    '$work/log/signed.log'"
check "... and installed certificates that chain to b-cp1's CAs, signed by the command" bash -c "
  openssl verify -CAfile $pki/etcd/ca.crt $pki/etcd/peer.crt >/dev/null &&
  openssl verify -CAfile $pki/front-proxy-ca.crt $pki/front-proxy-client.crt >/dev/null &&
  [ \"\$(openssl x509 -noout -serial -in $pki/etcd/peer.crt)\" = serial=09 ]"
old_apiserver=$(serial_of "$pki/apiserver.crt")
: >"$work/log/restarts.log"
check "k8s_pki.kubeadm.external_ca signs with openssl -extfile and installs" play extca k8s_pki.kubeadm.external_ca -e "@$work/cas.json"
check "every certificate of b-cp1 chains to its CA on the node" bash -c "
  openssl verify -CAfile $pki/ca.crt $pki/apiserver.crt $pki/apiserver-kubelet-client.crt >/dev/null &&
  openssl verify -CAfile $pki/front-proxy-ca.crt $pki/front-proxy-client.crt >/dev/null &&
  openssl verify -CAfile $pki/etcd/ca.crt $pki/etcd/server.crt $pki/etcd/peer.crt $pki/etcd/healthcheck-client.crt \
    $pki/apiserver-etcd-client.crt >/dev/null"
check "the kubeconfig certificates were embedded and chain to ca" bash -c "
  for f in admin.conf controller-manager.conf scheduler.conf; do
    sed -n 's/^ *client-certificate-data: *//p' $work/nodes/b-cp1/etc/kubernetes/\$f | base64 -d > $work/kc.crt
    openssl verify -CAfile $pki/ca.crt $work/kc.crt >/dev/null || exit 1
  done"
check "installed keys match their certificates, and the apiserver certificate is new" bash -c "
  [ \"\$(openssl x509 -noout -pubkey -in $pki/apiserver.crt)\" = \"\$(openssl pkey -pubout -in $pki/apiserver.key)\" ] &&
  [ \"\$(openssl x509 -noout -pubkey -in $pki/etcd/peer.crt)\" = \"\$(openssl pkey -pubout -in $pki/etcd/peer.key)\" ] &&
  [ \"\$(openssl x509 -noout -serial -in $pki/apiserver.crt)\" != \"\$0\" ]" "$old_apiserver"
check "the extensions came from the module's csrs: etcd-peer is serverAuth+clientAuth with its SANs" bash -c "
  openssl x509 -noout -ext extendedKeyUsage,subjectAltName,keyUsage -in $pki/etcd/peer.crt > $work/peer.ext &&
  grep -q 'TLS Web Server Authentication, TLS Web Client Authentication' $work/peer.ext &&
  grep -q 'DNS:cp1, DNS:localhost, IP Address:192.0.2.${ip[b-cp1]##*.}, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1' $work/peer.ext &&
  grep -q 'Digital Signature, Key Encipherment' $work/peer.ext"
check "no key copy is left in the node's CSR directory" bash -c "! ls $work/nodes/b-cp1/external-ca/csr/*.key 2>/dev/null"
check "nothing runs on b-cp1: the engine says so and restarts nothing" bash -c "
  task_output '$work/log/extca.log' 'Say what was restarted, or would be' |
    grep -q 'not running: etcd, kube-apiserver, kube-controller-manager, kube-scheduler' &&
  [ ! -s '$work/log/restarts.log' ]"
check "the binary now reports b-cp1's certificates as externally managed, a year to go" bash -c "
  '$bin' check --cert-dir $pki --kubeconfig-dir $work/nodes/b-cp1/etc/kubernetes -o json |
  $PY -c 'import json,sys; d=json.load(sys.stdin); c=[x for x in d[\"certificates\"] if not x[\"missing\"]];
sys.exit(0 if len(c) == 10 and all(x[\"externallyManaged\"] and x[\"residualTime\"] > 364*86400 for x in c) else 1)'"
check "a second external_ca run (nothing due) changes nothing" \
  play extca-again k8s_pki.kubeadm.external_ca -e "@$work/cas.json" -e external_ca_force=false
check "... on any node" grep -qE '^b-cp1 +: ok=[0-9]+ +changed=0 ' "$work/log/extca-again.log"

echo "== 7 schedule (at ${SECONDS}s)"
# a-cp1's kube-apiserver still runs on the certificates before section 5's forced renewal: stale, as a timer finds
# it after an interrupted run; the service must restart it, and renew what is due
cat >"$work/schedule.json" <<EOF
{"schedule_manage_systemd": false, "schedule_binary_path": "$work/sched/{{ inventory_hostname }}/bin/kubeadm-certs",
 "schedule_systemd_dir": "$work/sched/{{ inventory_hostname }}/systemd",
 "schedule_bash_completion_path": "$work/sched/{{ inventory_hostname }}/share/bash-completion/completions/kubeadm-certs",
 "schedule_zsh_completion_path": "$work/sched/{{ inventory_hostname }}/share/zsh/site-functions/_kubeadm-certs",
 "schedule_fish_completion_path": "$work/sched/{{ inventory_hostname }}/share/fish/vendor_completions.d/kubeadm-certs.fish",
 "schedule_man_page_path": "$work/sched/{{ inventory_hostname }}/share/man/man1/kubeadm-certs.1",
 "schedule_restart_method": "command", "schedule_renew_before": "400d", "schedule_timeout": 60,
 "schedule_certificates": ["scheduler.conf", "super-admin.conf"],
 "schedule_restart_command": "$work/restart-real.sh {{ node_root }} {{ node_ip }} \\"\$KUBEADM_CERTS_COMPONENT\\"",
 "schedule_cluster_gate": false, "schedule_lease_duration": 60}
EOF
check "k8s_pki.kubeadm.schedule installs binary, service and timer" \
  play schedule k8s_pki.kubeadm.schedule -e "@$work/schedule.json"
# the stale kube-apiserver in a-cp1's textfile, and the alert rules against the textfiles the check playbook wrote
mkdir -p "$work/textfiles-stale/a-cp1"
check "the check playbook's textfile on a-cp1 says its kube-apiserver is stale, its etcd not" bash -c "
  ansible-playbook -i '$e2e/inventory.yml' --limit a-cp1 k8s_pki.kubeadm.check \
    -e 'kubeadm_certs_textfile_dir=$work/textfiles-stale/{{ inventory_hostname }}' > '$work/log/check-stale.log' 2>&1 &&
  grep -qx 'kubeadm_certs_component_stale{node=\"a-cp1\",component=\"kube-apiserver\",cluster=\"alpha\"} 1' \
    '$work/textfiles-stale/a-cp1/kubeadm_certs.prom' &&
  grep -qx 'kubeadm_certs_component_stale{node=\"a-cp1\",component=\"etcd\",cluster=\"alpha\"} 0' \
    '$work/textfiles-stale/a-cp1/kubeadm_certs.prom'"
check "alert rules (promtool check and test) fire on the textfiles' series as their thresholds say" \
  "$repo/scripts/alert-rules-test.sh" "$work/textfiles-stale/a-cp1/kubeadm_certs.prom" \
  "$work"/textfiles/{a-cp2,a-cp3,b-cp1}/kubeadm_certs.prom
slot() { # the documented formula: 02:00 + (first 8 hex digits of sha1(cluster) mod 240) + index x 30, mod 1440
  local off=$(( 16#$(printf '%s' "$1" | sha1sum | cut -c1-8) % 240 )) m
  m=$(( (120 + off + $2 * 30) % 1440 )); printf '*-*-* %02d:%02d:00' $((m / 60)) $((m % 60))
}
check "timer slots follow the formula: alpha's nodes 30 min apart, beta on its own offset" bash -c "
  grep -qxF 'OnCalendar=$(slot alpha 0)' $work/sched/a-cp1/systemd/kubeadm-certs-renew.timer &&
  grep -qxF 'OnCalendar=$(slot alpha 1)' $work/sched/a-cp2/systemd/kubeadm-certs-renew.timer &&
  grep -qxF 'OnCalendar=$(slot alpha 2)' $work/sched/a-cp3/systemd/kubeadm-certs-renew.timer &&
  grep -qxF 'OnCalendar=$(slot beta 0)' $work/sched/b-cp1/systemd/kubeadm-certs-renew.timer"
check "the installed binary is the collection's module binary" cmp -s "$bin" "$work/sched/a-cp2/bin/kubeadm-certs"
units_before=$(cat "$work/sched/a-cp1/systemd/"* | sha256sum)
printf '{"schedule_restart_command": "%s\\n%s"}' "$work/restart-real.sh a" "ExecStartPre=/bin/true" >"$work/schedule-newline.json"
newline_rc=0
play schedule-newline k8s_pki.kubeadm.schedule -e "@$work/schedule.json" -e "@$work/schedule-newline.json" \
  --limit a-cp1 || newline_rc=$?
check "a multi-line restart command is refused, naming the setting, and no unit is written" bash -c '
  [ "$0" != 0 ] && grep -q "schedule_restart_command holds a control character" "$1" &&
  [ "$(cat "$2/"* | sha256sum)" = "$3" ]' \
  "$newline_rc" "$work/log/schedule-newline.log" "$work/sched/a-cp1/systemd" "$units_before"
help_files_as_printed() { # NODE: the completions and man page on the node are what its binary prints, mode 0644
  local share=$work/sched/$1/share b=$work/sched/$1/bin/kubeadm-certs
  cmp -s <("$b" completions bash) "$share/bash-completion/completions/kubeadm-certs" &&
    cmp -s <("$b" completions zsh) "$share/zsh/site-functions/_kubeadm-certs" &&
    cmp -s <("$b" completions fish) "$share/fish/vendor_completions.d/kubeadm-certs.fish" &&
    cmp -s <("$b" man) "$share/man/man1/kubeadm-certs.1" &&
    [ "$(stat -c %a "$share/man/man1/kubeadm-certs.1")" = 644 ] &&
    grep -q -- '--cert-dir' "$share/bash-completion/completions/kubeadm-certs" &&
    grep -q '^\.TH kubeadm-certs 1' "$share/man/man1/kubeadm-certs.1"
}
for n in a-cp1 b-cp1; do
  check "$n: the bash, zsh and fish completions and the man page are next to the binary, as it prints them" \
    help_files_as_printed "$n"
done
# one node of each cluster: the whole play again takes 40 s on a loaded two-core machine
check "a second run of the role runs (a-cp1, b-cp1)" \
  play schedule-again k8s_pki.kubeadm.schedule -e "@$work/schedule.json" --limit a-cp1,b-cp1
check "... and changes nothing on either node (units, binary, completions, man page)" \
  test "$(grep -cE '^(a-cp1|b-cp1) +: ok=[0-9]+ +changed=0 ' "$work/log/schedule-again.log")" = 2
unit=$work/sched/a-cp1/systemd/kubeadm-certs-renew.service
check "the service runs the binary alone: a renew, then a restart, nothing else" test \
  "$(grep '^ExecStart=' "$unit" | cut -d' ' -f1,2)" = \
  "$(printf 'ExecStart="%s" "%s"\n' "$work/sched/a-cp1/bin/kubeadm-certs" renew "$work/sched/a-cp1/bin/kubeadm-certs" restart)"
# the service's ExecStart lines, run as systemd would: each split as systemd quotes it ("..." with \\ and \", %% and
# $$), one after the other, stopping at the first that fails (Type=oneshot)
run_unit() {
  "$PY" -c '
import shlex, subprocess, sys
for line in open(sys.argv[1]):
    if line.startswith("ExecStart="):
        argv = [a.replace("%%", "%").replace("$$", "$") for a in shlex.split(line[len("ExecStart="):])]
        rc = subprocess.call(argv)
        if rc:
            sys.exit(rc)
' "$1"
}
: >"$work/log/restarts.log"
export -f run_unit; export PY
kubeconfig_serial() { sed -n 's/^ *client-certificate-data: *//p' "$1" | base64 -d | openssl x509 -noout -serial; }
sched_before=$(kubeconfig_serial "$work/nodes/a-cp1/etc/kubernetes/scheduler.conf")
check "the role left the absent super-admin.conf out of the service's renew" bash -c "
  grep '^ExecStart=.* \"renew\" ' '$unit' | grep -q '\"renew\" \"scheduler.conf\" \"--cert-dir\"'"
check "the service renews what is due and restarts the stale kube-apiserver" \
  bash -c 'run_unit "$0" > "$1" 2>&1' "$unit" "$work/log/timer-run.log"
check "... scheduler.conf got a new certificate" \
  test "$(kubeconfig_serial "$work/nodes/a-cp1/etc/kubernetes/scheduler.conf")" != "$sched_before"
check "... only a-cp1's kube-apiserver restarted, healthy, on the certificates on disk" bash -c "
  [ \"\$(cat $work/log/restarts.log)\" = 'a-cp1 kube-apiserver' ] &&
  grep -q 'restarted kube-apiserver (command): healthy, using the certificates on disk' $work/log/timer-run.log"
check "... holding the cluster's Lease through the real apiserver, released when healthy" \
  grep -qE 'held lease kube-system/kubeadm-certs-restart as [^ ]+ \(waited [0-9]+s\)' "$work/log/timer-run.log"
: >"$work/log/restarts.log"
check "a second run of the service finds nothing due and nothing stale, and restarts nothing" bash -c '
  run_unit "$0" > "$1" 2>&1 && grep -q "nothing stale" "$1" && [ ! -s "$2" ]' \
  "$unit" "$work/log/timer-run2.log" "$work/log/restarts.log"
echo "== 7b renew_ca: the cluster CA of alpha renewed with its own key, once, on every node (at ${SECONDS}s)"
alpha=(a-cp1 a-cp2 a-cp3)
capath() { echo "$work/nodes/$1/etc/kubernetes/pki/ca.crt"; }
# a worker of alpha, a-w1: the cluster CA certificate and kubelet.conf as kubeadm join leaves them (no CA key)
mkdir -p "$work/nodes/a-w1/etc/kubernetes/pki"
cp "$work/nodes/a-cp3/etc/kubernetes/pki/ca.crt" "$work/nodes/a-w1/etc/kubernetes/pki/"
cp "$work/nodes/a-cp3/etc/kubernetes/kubelet.conf" "$work/nodes/a-w1/etc/kubernetes/"
printf 'kube_node:\n  hosts:\n    a-w1: {cluster_name: alpha}\n' >"$work/workers.yml"
renew_ca() { play "$1" k8s_pki.kubeadm.renew_ca -i "$work/workers.yml" -e kubeadm_certs_hosts='a-cp*' -e ca_renew_name=ca "${@:2}"; }
spki() { openssl x509 -noout -pubkey -in "$1" | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
enddate() { openssl x509 -noout -enddate -in "$1"; }
# every kubeconfig of the node embeds exactly the node's ca.crt
kubeconfigs_follow() {
  local n=$1 f
  for f in admin.conf controller-manager.conf scheduler.conf kubelet.conf; do
    sed -n 's/^ *certificate-authority-data: *//p' "$work/nodes/$n/etc/kubernetes/$f" | base64 -d |
      cmp -s - "$(capath "$n")" || { echo "$n/$f: certificate-authority-data is not ca.crt"; return 1; }
  done
}
# every certificate the old CA certificate issued on the node, and the kubeconfigs' client certificates
old_leaves_verify() {
  local n=$1 p=$work/nodes/$1/etc/kubernetes f
  openssl verify -CAfile "$(capath "$n")" "$p/pki/apiserver.crt" "$p/pki/apiserver-kubelet-client.crt" >/dev/null || return 1
  for f in admin.conf controller-manager.conf scheduler.conf; do
    openssl verify -CAfile "$(capath "$n")" <(kubeconfig_cert "$p/$f") >/dev/null || return 1
  done
}
# the cluster-info ConfigMap, as kubeadm init makes it, on a-cp1's real apiserver (curl with admin.conf's user)
a1=$work/nodes/a-cp1/etc/kubernetes
kubeconfig_cert "$a1/admin.conf" >"$work/admin.crt"
sed -n 's/^ *client-key-data: *//p' "$a1/admin.conf" | base64 -d >"$work/admin.key"; chmod 600 "$work/admin.key"
api() { curl -sS --fail --cacert "$a1/pki/ca.crt" --cert "$work/admin.crt" --key "$work/admin.key" "$@"; }
cm=https://${ip[a-cp1]}:6443/api/v1/namespaces/kube-public/configmaps
"$PY" - "$a1/admin.conf" "$work/cluster-info.json" <<'EOF'
import json, re, sys
data = re.search(r'certificate-authority-data: *(\S+)', open(sys.argv[1]).read()).group(1)
kubeconfig = ('apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: %s\n    server: https://k8s-api:6443\n'
              '  name: ""\ncontexts: null\ncurrent-context: ""\nkind: Config\npreferences: {}\nusers: null\n' % data)
json.dump({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'cluster-info', 'namespace': 'kube-public'},
           'data': {'kubeconfig': kubeconfig}}, open(sys.argv[2], 'w'))
EOF
api -X POST -H 'Content-Type: application/json' -d @"$work/cluster-info.json" "$cm" >/dev/null ||
  bad "cluster-info could not be made on a-cp1's apiserver"
cluster_info_ca() { api "$cm/cluster-info" | "$PY" -c '
import base64, json, re, sys
print(base64.b64decode(re.search(r"certificate-authority-data: *(\S+)", json.load(sys.stdin)["data"]["kubeconfig"]).group(1)).decode(), end="")'; }
old_ca=$work/ca.crt.before; cp "$(capath a-cp1)" "$old_ca"
export -f spki enddate capath kubeconfigs_follow old_leaves_verify kubeconfig_cert api cluster_info_ca pki_hash serial_of
export work a1 cm

# a node "rebuilt" with another CA (beta's whole /etc/kubernetes) is named by the pre-flight with both public keys,
# and a node whose ca.crt alone was replaced (its own PKI no longer holds together) by its check's failure; nothing
# anywhere is touched
k3=$work/nodes/a-cp3/etc/kubernetes
mv "$k3" "$work/a-cp3-kubernetes"; cp -a "$work/nodes/b-cp1/etc/kubernetes" "$k3"
fp1=$(sa_fp <(openssl x509 -noout -pubkey -in "$(capath a-cp1)")); fp3=$(sa_fp <(openssl x509 -noout -pubkey -in "$k3/pki/ca.crt"))
before=$(pki_hash)
if renew_ca renew-ca-differs; then bad "a node holding another CA makes the pre-flight refuse (the play passed)"; else
  check "a node holding another CA makes the pre-flight refuse, naming it and both public keys, before touching any node" bash -c "
    grep -q 'pre-flight: not renewing ca anywhere: alpha: a-cp3 hold(s) another ca certificate' '$work/log/renew-ca-differs.log' &&
    grep -q 'a-cp3 has public key SHA-256 $fp3' '$work/log/renew-ca-differs.log' &&
    grep -q 'than a-cp1 (public key SHA-256 $fp1)' '$work/log/renew-ca-differs.log' &&
    [ \"\$(pki_hash)\" = '$before' ]"
fi
rm -rf "$k3"; mv "$work/a-cp3-kubernetes" "$k3"
cp -p "$(capath a-cp3)" "$work/ca.crt.a-cp3"; cp "$(capath b-cp1)" "$(capath a-cp3)"
before=$(pki_hash)
if renew_ca renew-ca-differs2; then bad "a node whose ca.crt was replaced makes the pre-flight refuse (the play passed)"; else
  check "a node whose ca.crt alone was replaced makes the pre-flight refuse, naming it and why, before touching any node" bash -c "
    grep -q 'pre-flight: not renewing ca anywhere: alpha/a-cp3: its check failed (.*: not issued by the CA in $k3/pki/ca.crt' \
      '$work/log/renew-ca-differs2.log' && [ \"\$(pki_hash)\" = '$before' ]"
fi
cp -p "$work/ca.crt.a-cp3" "$(capath a-cp3)"

# a worker given no cluster_name (the control planes' is alpha) is refused by name, with what to set
printf 'kube_node:\n  hosts:\n    a-w1: {}\n' >"$work/workers-nocluster.yml"
if play renew-ca-nocluster k8s_pki.kubeadm.renew_ca -i "$work/workers-nocluster.yml" -e kubeadm_certs_hosts='a-cp*' \
    -e ca_renew_name=ca --check -e ca_renew_force=true; then
  bad "a worker of no control plane's cluster is refused (the play passed)"
else
  check "a worker whose cluster no control-plane node has is refused, naming it, its cluster and cluster_name" \
    grep -q "a-w1 belongs to cluster 'default' (ca_renew_cluster, by default its cluster_name), and no" \
    "$work/log/renew-ca-nocluster.log"
fi

before=$(pki_hash)
check "renew_ca --check --diff runs" renew_ca renew-ca-check --check --diff -e ca_renew_force=true
check "... changed no file on any node (PKI trees hashed), nor cluster-info" bash -c "
  [ \"\$(pki_hash)\" = '$before' ] && cluster_info_ca | cmp -s - '$old_ca'"
check "... and printed the plan for every node: renew on a-cp1, install on a-cp2 and a-cp3, cluster-info would follow" bash -c "
  grep -q 'a-cp1: renew ca (.*) here with its own key whatever its residual time (force)' '$work/log/renew-ca-check.log' &&
  grep -q 'a-cp2: would install the ca certificate a-cp1 would renew' '$work/log/renew-ca-check.log' &&
  grep -q 'a-cp3: would install the ca certificate a-cp1 would renew' '$work/log/renew-ca-check.log' &&
  grep -q 'a-w1: would install the ca certificate a-cp1 would renew' '$work/log/renew-ca-check.log' &&
  grep -q 'cluster-info: would update' '$work/log/renew-ca-check.log' && grep -q '^+serial: (new random serial)' '$work/log/renew-ca-check.log'"

: >"$work/log/restarts.log"
check "k8s_pki.kubeadm.renew_ca renews ca once (a-cp1) and installs it on a-cp2, a-cp3 and the worker a-w1" \
  renew_ca renew-ca -e ca_renew_force=true
check "... every control-plane node holds the byte-identical new ca.crt: the same public key, a new serial, a new notAfter" bash -c "
  cmp -s '$(capath a-cp1)' '$(capath a-cp2)' && cmp -s '$(capath a-cp1)' '$(capath a-cp3)' &&
  [ \"\$(spki '$(capath a-cp1)')\" = \"\$(spki '$old_ca')\" ] &&
  [ \"\$(serial_of '$(capath a-cp1)')\" != \"\$(serial_of '$old_ca')\" ] &&
  [ \"\$(enddate '$(capath a-cp1)')\" != \"\$(enddate '$old_ca')\" ]"
for n in "${alpha[@]}"; do
  check "... $n: every old leaf and kubeconfig client certificate verifies under the new ca.crt (openssl verify)" old_leaves_verify "$n"
  check "... $n: the kubeconfigs' certificate-authority-data is the new ca.crt" kubeconfigs_follow "$n"
done
check "... the worker a-w1 holds it too, and its kubelet.conf's certificate-authority-data follows" bash -c "
  cmp -s '$(capath a-cp1)' '$(capath a-w1)' && sed -n 's/^ *certificate-authority-data: *//p' \
    '$work/nodes/a-w1/etc/kubernetes/kubelet.conf' | base64 -d | cmp -s - '$(capath a-cp1)'"
check "... cluster-info (kube-public) on the real apiserver holds the new ca.crt" bash -c "cluster_info_ca | cmp -s - '$(capath a-cp1)'"
check "... nothing restarted: a-cp1's kube-apiserver reloads its client CA, nothing else runs" test ! -s "$work/log/restarts.log"
before=$(pki_hash); rc=0
renew_ca renew-ca-again || rc=$?
check "a second run changes nothing (changed=0 on every node, the worker's too, every file as it was)" bash -c "[ $rc = 0 ] &&
  [ \$(grep -cE '^a-(cp[123]|w1) +: .* changed=0 ' '$work/log/renew-ca-again.log') = 4 ] && [ \"\$(pki_hash)\" = '$before' ]"

# A run stopped after a-cp2: a-cp1 renewed (again) and a-cp2 installed it, a-cp3 still holds the previous one.
"$bin" renew ca --force --cert-dir "$a1/pki" --kubeconfig-dir "$a1" >/dev/null
a2=$work/nodes/a-cp2/etc/kubernetes
"$bin" renew ca --ca-cert "$(capath a-cp1)" --cert-dir "$a2/pki" --kubeconfig-dir "$a2" >/dev/null
stopped=$(serial_of "$(capath a-cp1)")
rc=0
renew_ca renew-ca-resume -e ca_renew_force=true || rc=$?
check "a run stopped midway is finished by running it again: no second renewal, a-cp3 gets a-cp1's certificate" bash -c "
  [ $rc = 0 ] && grep -q 'a-cp1: holds the renewed ca certificate .* an earlier run made, which a-cp3 do not hold yet' '$work/log/renew-ca-resume.log' &&
  [ \"\$(serial_of '$(capath a-cp1)')\" = '$stopped' ] && cmp -s '$(capath a-cp1)' '$(capath a-cp3)' &&
  cmp -s '$(capath a-cp1)' '$(capath a-w1)' &&
  kubeconfigs_follow a-cp3 && cluster_info_ca | cmp -s - '$(capath a-cp1)'"
rm -f "$work/admin.key"

"$repo/scripts/cluster.sh" stop "$work/nodes/a-cp1" >/dev/null

echo "== 8 a controller user without root (at ${SECONDS}s)"
if [ "$(id -u)" = 0 ]; then
  check "external_ca and check run as a controller user without sudo rights (scripts/ansible-nonroot.sh)" \
    bash -c '"$0" "$1" >"$2" 2>&1' "$repo/scripts/ansible-nonroot.sh" "$bin" "$work/log/nonroot.log"
  grep -E '^(PASS|FAIL): ' "$work/log/nonroot.log" | sed 's/^/   /'
else
  echo "SKIPPED (not counted): the non-root controller test creates a user, which needs root; run it as root"
fi
echo
if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
  echo "logs kept in $work/log"; trap - EXIT; "$repo/scripts/cluster.sh" stop "$work/nodes/a-cp1" >/dev/null 2>&1 || true
fi
echo "ansible-e2e: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
