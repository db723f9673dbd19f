#!/usr/bin/env bash
# scripts/binary-cache-test.sh: the certs action plugin's copy of the module binary kept on each target
# (ansible/plugins/plugin_utils/binary_cache.py), over real SSH to two containers (benches/ssh/image.sh's
# image: sshd, python3, a kubeadm-made PKI), on a docker network this script creates and removes.
#
# Each step asserts its cause: what is on the node afterwards, what the node received (its eth0 rx counter),
# and what Ansible printed. Prints "N passed, N failed"; exits 1 when any step failed.
# Needs root, Docker, ansible (the `ansible` package), scripts/k8s-bin.sh. Builds the release binary first (cargo
# build --release, incremental) unless KUBEADM_CERTS_E2E_BIN names a freshly built one.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tests=$repo/ansible/tests/binary_cache
NET=kc-binary-cache-$$
passed=0 failed=0
log() { echo "binary-cache-test: $*" >&2; }
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }

image=$("$repo/benches/ssh/image.sh") || exit 1
# the binary under test is built from this tree (cargo is incremental), or the one KUBEADM_CERTS_E2E_BIN names (the
# portable binary `make collection` made just before, as scripts/test-all.sh passes it), if it is newer than the sources
if [ -n "${KUBEADM_CERTS_E2E_BIN:-}" ]; then
  bin=$KUBEADM_CERTS_E2E_BIN
else
  (cd "$repo" && cargo build --release --locked --bin kubeadm-certs >&2) || exit 1
  bin=$repo/target/release/kubeadm-certs
fi
stale=$(cd "$repo" && find src Cargo.toml Cargo.lock -newer "$bin" -print -quit 2>/dev/null)
if [ ! -x "$bin" ] || [ -n "$stale" ]; then
  log "$bin is missing or older than ${stale:-src}: build it (cargo build --release, or make collection)"; exit 1
fi
sha=$(sha256sum "$bin" | cut -d' ' -f1)
version=$(awk '/^version:/ {print $2}' "$repo/ansible/galaxy.yml")
cached=/var/lib/kubeadm-certs/bin/$version-$sha

work=$(mktemp -d)
cleanup() {
  docker ps -aq --filter "label=kc-binary-cache=$NET" | xargs -r docker rm -f >/dev/null 2>&1
  docker network rm "$NET" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the collection as installed (scripts/collection-tree.sh)
"$repo/scripts/collection-tree.sh" "$work/collections" "$bin" || exit 1
export ANSIBLE_COLLECTIONS_PATH=$work/collections:${ANSIBLE_COLLECTIONS_PATH:-$HOME/.ansible/collections:/usr/share/ansible/collections}
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_DEPRECATION_WARNINGS=0
export ANSIBLE_LOCAL_TEMP=$work/ansible-local ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp

"$repo/scripts/mkpki.sh" "$work/golden" std cp1 127.0.0.11 >/dev/null || exit 1
ssh-keygen -q -t ed25519 -N '' -f "$work/id"
mkdir -p "$work/seed/root/.ssh" "$work/seed/home/bench/.ssh"
cp -a "$work/golden/etc" "$work/seed/"
cp "$work/id.pub" "$work/seed/root/.ssh/authorized_keys"
cp "$work/id.pub" "$work/seed/home/bench/.ssh/authorized_keys"
tar -C "$work/seed" -cf "$work/seed.tar" .

docker network create --internal --subnet 172.31.232.0/24 "$NET" >/dev/null
node() { echo "kc-binary-cache-$$-$1"; }
start_node() {  # NAME IP [docker run options...]
  local name=$1 ip=$2; shift 2
  docker run -d --name "$(node "$name")" --hostname "$name" --label "kc-binary-cache=$NET" --network "$NET" \
    --ip "$ip" --tmpfs /run "$@" "$image" >/dev/null
  docker exec -i "$(node "$name")" tar -C / -xf - <"$work/seed.tar"
  # an unprivileged user that can read the PKI (its group), for the run without become
  docker exec "$(node "$name")" sh -c 'useradd -M -d /home/bench -s /bin/sh bench && chown -R bench /home/bench &&
    chmod 0700 /home/bench/.ssh && chmod -R a+rX /etc/kubernetes'
}
start_node n1 172.31.232.11
start_node n2 172.31.232.12
mkdir -p "$work/readonly" && chmod 0755 "$work/readonly"
start_node ro 172.31.232.13 --mount "type=bind,source=$work/readonly,destination=/var/lib/kubeadm-certs,readonly"
for ip in 11 12 13; do
  for _ in $(seq 50); do
    ssh -q -i "$work/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=1 \
      -o BatchMode=yes "root@172.31.232.$ip" true && break
    sleep 0.2
  done
done
inventory() {  # USER HOSTS...
  local user=$1; shift
  echo "[nodes]"
  for h in "$@"; do
    case $h in n1) echo "n1 ansible_host=172.31.232.11" ;; n2) echo "n2 ansible_host=172.31.232.12" ;;
               ro) echo "ro ansible_host=172.31.232.13" ;; esac
  done
  echo "[nodes:vars]"
  echo "ansible_user=$user"
  echo "ansible_ssh_private_key_file=$work/id"
  echo "ansible_python_interpreter=/usr/bin/python3"
}
inventory root n1 n2 >"$work/n12.ini"
inventory root n1 >"$work/n1.ini"
inventory root ro >"$work/ro.ini"
inventory bench n2 >"$work/bench.ini"

rx() { docker exec "$(node "$1")" cat /sys/class/net/eth0/statistics/rx_bytes; }
on() { local n=$1; shift; docker exec "$(node "$n")" sh -c "$*"; }
play() {  # INVENTORY PLAYBOOK [ansible-playbook args...]: output in $work/out
  local inv=$1 pb=$2; shift 2
  ansible-playbook -i "$work/$inv" "$tests/$pb" "$@" >"$work/out" 2>&1
}
# whether Ansible's output said PHRASE, however it wrapped the lines
said() { tr -s '\n ' '  ' <"$work/out" | grep -qF "$1"; }
fresh_connections() { for s in "$work"/cp/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x >/dev/null 2>&1; done; }

log "1. check mode on a node with no copy: the module runs, nothing is written under /var/lib/kubeadm-certs"
if play n1.ini check.yml -e cb_check_mode=true && on n1 "[ ! -e /var/lib/kubeadm-certs ]"; then
  ok "check mode ran the module and wrote no copy"
else bad "check mode: $(tail -5 "$work/out")"; fi

# the compressed copy the first task sends (scripts/compress-binary.sh), and about what ssh's own compression (zlib
# level 6) makes of the binary sent as it is: the two must be far enough apart for steps 2 and 12 to tell them apart
xz_copy=$work/collections/ansible_collections/k8s_pki/kubeadm/bin/kubeadm-certs-x86_64.$sha.xz
xz_size=$(stat -c %s "$xz_copy")
zlib_size=$(gzip -6 -c "$bin" | wc -c)
margin=100000
[ "$zlib_size" -gt $(( xz_size + 2 * margin )) ] ||
  { log "the binary compresses to $xz_size bytes with xz and $zlib_size with zlib: too close to tell apart"; exit 1; }

log "2. the first task on a host writes the copy, sent xz-compressed: root, 0755, its sha256"
before=$(rx n1)
if play n1.ini check.yml && [ "$(on n1 "stat -c %u:%a $cached && sha256sum $cached | cut -d' ' -f1")" = "$(printf '0:755\n%s' "$sha")" ]; then
  ok "the first run kept $cached (root, 0755, sha256 matches)"
else bad "first run: $(on n1 "ls -la /var/lib/kubeadm-certs/bin" 2>&1) $(tail -5 "$work/out")"; fi
got=$(( $(rx n1) - before ))
if [ "$got" -gt "$xz_size" ] && [ "$got" -lt $(( xz_size + margin )) ]; then
  ok "the first copy crossed xz-compressed: the node received $got bytes (xz copy $xz_size, zlib about $zlib_size)"
else bad "the first copy: the node received $got bytes; the xz copy is $xz_size, zlib about $zlib_size"; fi

log "3. later tasks send only their arguments"
play n1.ini check.yml >/dev/null  # warm the SSH control connection, as any play's second task finds it
before=$(rx n1)
if play n1.ini check.yml; then
  got=$(( $(rx n1) - before ))
  if [ "$got" -lt 16384 ]; then ok "a task with the binary kept sent $got bytes to the node (< 16 KiB; the binary is $(stat -c %s "$bin"))"
  else bad "a task with the binary kept sent $got bytes (>= 16 KiB)"; fi
else bad "second run: $(tail -5 "$work/out")"; fi

log "4. a tampered copy is never run: it is replaced, with a warning"
on n1 "printf '#!/bin/sh\ntouch /tmp/tampered-copy-ran\n' > $cached && chmod 0755 $cached"
if play n1.ini check.yml && on n1 "[ ! -e /tmp/tampered-copy-ran ]" && grep -q 'is not used (mismatch)' "$work/out" &&
   [ "$(on n1 "sha256sum $cached | cut -d' ' -f1")" = "$sha" ]; then
  ok "the tampered copy did not run, was reported (mismatch) and replaced"
else bad "tampered copy: ran=$(on n1 "ls /tmp/tampered-copy-ran 2>&1") $(grep -i warn "$work/out" | head -3)"; fi

log "5. a copy others can write is not run"
on n1 "chmod 0777 $cached"
if play n1.ini check.yml && grep -q 'is not used (unsafe-file)' "$work/out" && [ "$(on n1 "stat -c %a $cached")" = 755 ]; then
  ok "a world-writable copy was refused and rewritten 0755"
else bad "unsafe copy: $(grep -i warn "$work/out" | head -3)"; fi

log "6. a target where the copy cannot be written falls back to the ordinary transfer, with a warning"
if play ro.ini check.yml && grep -q 'could not keep the module binary on ro' "$work/out" && on ro "[ ! -e $cached ]"; then
  ok "read-only /var/lib/kubeadm-certs: warned, and the task ran with the ordinary transfer"
else bad "read-only target: $(tail -8 "$work/out")"; fi

log "7. a user without root (no become) runs the ordinary way and writes nothing"
if play bench.ini check.yml && on n2 "[ ! -e /var/lib/kubeadm-certs ]"; then
  ok "no become: the module ran, no copy written"
else bad "no become: $(tail -8 "$work/out")"; fi

log "8. delegate_to: the copy is kept on the host the task runs on"
if play n12.ini check.yml --limit n1 -e cb_delegate=n2 && on n2 "[ -x $cached ]"; then
  ok "a task on n1 delegated to n2 kept the copy on n2"
else bad "delegate_to: $(tail -8 "$work/out")"; fi

log "9. async and no_log keep working"
if play n1.ini async.yml && ! grep -q '"certificates"' "$work/out"; then
  ok "async ran the module; the no_log task printed nothing of its result"
else bad "async/no_log: $(tail -8 "$work/out")"; fi

log "10. kubeadm_certs_binary_cache: false turns it off"
on n2 "rm -rf /var/lib/kubeadm-certs"
if play n12.ini check.yml --limit n2 -e kubeadm_certs_binary_cache=false && on n2 "[ ! -e /var/lib/kubeadm-certs ]"; then
  ok "with the cache off, nothing is written on the target"
else bad "cache off: $(tail -8 "$work/out")"; fi

log "11. an old version's copy is removed when a new one is written"
on n1 "cp $cached /var/lib/kubeadm-certs/bin/0.9.0-$(printf '0%.0s' $(seq 64)) && rm -f $cached"
if play n1.ini check.yml && [ "$(on n1 "ls /var/lib/kubeadm-certs/bin")" = "$(basename "$cached")" ]; then
  ok "writing the copy removed the older version"
else bad "cleanup: $(on n1 "ls /var/lib/kubeadm-certs/bin")"; fi

log "12. a target without xz is sent the binary as it is"
on n2 "rm -rf /var/lib/kubeadm-certs && mv /usr/bin/xz /usr/bin/xz.hidden"
before=$(rx n2)
if play n12.ini check.yml --limit n2 && [ "$(on n2 "sha256sum $cached | cut -d' ' -f1")" = "$sha" ]; then
  got=$(( $(rx n2) - before ))
  if [ "$got" -gt $(( xz_size + margin )) ]; then ok "no xz on the target: the binary crossed as it is ($got bytes received) and was kept"
  else bad "no xz on the target, yet the node received only $got bytes (xz copy $xz_size)"; fi
else bad "no xz on the target: $(tail -8 "$work/out")"; fi
on n2 "mv /usr/bin/xz.hidden /usr/bin/xz"

log "13. a damaged compressed copy on the controller is never run: the task falls back, with a warning"
cp "$xz_copy" "$work/good.xz"
printf '#!/bin/sh\ntouch /tmp/damaged-xz-ran\n' | xz -c >"$xz_copy"
on n1 "rm -rf /var/lib/kubeadm-certs"
if play n1.ini check.yml && said 'does not match its sha256' && on n1 "[ ! -e /tmp/damaged-xz-ran ] && [ ! -e $cached ]"; then
  ok "the damaged copy was refused by its sha256, not kept, not run; the task ran the ordinary way"
else bad "damaged compressed copy: ran=$(on n1 "ls /tmp/damaged-xz-ran 2>&1") $(grep -i warn "$work/out" | head -3)"; fi
cp "$work/good.xz" "$xz_copy"

fresh_connections
echo "binary cache: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
