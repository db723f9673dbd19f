#!/usr/bin/env bash
# benches/ssh/run.sh: expiry reports across N nodes reached over real SSH, side by side in one run:
#
#   ours-check      k8s_pki.kubeadm.certs state=check                                 1 module run per host
#   check-playbook  the k8s_pki.kubeadm.check playbook (table + Prometheus textfile)   module + template per host
#   crypto-info     community.crypto.x509_certificate_info over the same files          13 runs + 3 slurps per host
#   kubeadm-check   command: kubeadm certs check-expiration                              1 module run per host
#
# NODES containers (default 50) of benches/ssh/image.sh's image (sshd, python3, kubeadm 1.20.2) on a private,
# internal docker network this script creates and removes, each with a copy of one kubeadm-made PKI under
# /etc/kubernetes. ansible-playbook connects as root over ssh with Ansible's usual settings (ControlMaster auto,
# ControlPersist 60s, compression on), with FORKS_LIST forks (default "10 50").
#
# Each playbook runs twice in a row: the first run starts with no SSH control connections and, for the collection,
# no module binary kept on the nodes (/var/lib/kubeadm-certs removed); the second reuses both. Per run: wall time in
# total and per host, bytes the nodes received per host (their eth0 rx counters) and per module run (counted from
# Ansible's JSON output), and the ratio to ours-check's run of the same kind. The table goes to stdout and to
# target/bench/ssh.md.
#
# Needs root, Docker, ansible (with community.crypto and ansible.posix: the `ansible` package), scripts/k8s-bin.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/benches/ssh
NODES=${NODES:-50}
FORKS_LIST=${FORKS_LIST:-10 50}
PLAYS=${PLAYS:-ours-check check-playbook crypto-info kubeadm-check}
NET=kc-bench-ssh-$$
log() { echo "benches/ssh: $*" >&2; }

image=$("$here/image.sh")
(cd "$repo" && cargo build --release --locked --bin kubeadm-certs >&2)
bin=$repo/target/release/kubeadm-certs

work=$(mktemp -d)
cleanup() {
  docker ps -aq --filter "label=kc-bench-ssh=$NET" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the collection as installed (scripts/collection-tree.sh)
"$repo/scripts/collection-tree.sh" "$work/collections" "$bin"
export ANSIBLE_COLLECTIONS_PATH=$work/collections:${ANSIBLE_COLLECTIONS_PATH:-$HOME/.ansible/collections:/usr/share/ansible/collections}
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_DEPRECATION_WARNINGS=0
export ANSIBLE_LOCAL_TEMP=$work/ansible-local ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp
export ANSIBLE_STDOUT_CALLBACK=ansible.posix.json

log "one kubeadm-made PKI"
"$repo/scripts/mkpki.sh" "$work/golden" std cp1 127.0.0.11 >/dev/null
cp "$work/golden/kubeadm-config.yaml" "$work/golden/etc/kubernetes/kubeadm-config.yaml"
ssh-keygen -q -t ed25519 -N '' -f "$work/id"
mkdir -p "$work/seed/root/.ssh" "$work/seed/var/lib/node_exporter"
cp -a "$work/golden/etc" "$work/seed/"
cp "$work/id.pub" "$work/seed/root/.ssh/authorized_keys"
chmod 0700 "$work/seed/root/.ssh"; chmod 0600 "$work/seed/root/.ssh/authorized_keys"
tar -C "$work/seed" -cf "$work/seed.tar" .

log "$NODES nodes on $NET"
docker network create --internal --subnet 172.31.236.0/22 "$NET" >/dev/null
ip_of() { local n=$(( $1 + 9 )); echo "172.31.$(( 236 + n / 256 )).$(( n % 256 ))"; }
inv=$work/inventory.ini
{
  echo "[nodes]"
  for i in $(seq 1 "$NODES"); do
    name=$(printf 'node%03d' "$i")
    docker run -d --name "kc-bench-ssh-$$-$name" --hostname "$name" --label "kc-bench-ssh=$NET" \
      --network "$NET" --ip "$(ip_of "$i")" --tmpfs /run "$image" >/dev/null
    docker exec -i "kc-bench-ssh-$$-$name" tar -C / -xf - <"$work/seed.tar"
    echo "$name ansible_host=$(ip_of "$i")"
  done
  echo
  echo "[nodes:vars]"
  echo "ansible_user=root"
  echo "ansible_ssh_private_key_file=$work/id"
  echo "ansible_python_interpreter=/usr/bin/python3"
} >"$inv"
for i in $(seq 1 "$NODES"); do
  for _ in $(seq 50); do
    ssh -q -i "$work/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=1 \
      -o BatchMode=yes "root@$(ip_of "$i")" true && break
    sleep 0.2
  done
done

containers() { docker ps -q --filter "label=kc-bench-ssh=$NET"; }
rx_total() { containers | xargs -r -I{} docker exec {} cat /sys/class/net/eth0/statistics/rx_bytes | paste -sd+ | bc; }
close_masters() { for s in "$work"/cp/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit dummy >/dev/null 2>&1; done; rm -rf "$work/cp"; mkdir -p "$work/cp"; }
forget_binary() { containers | xargs -r -I{} docker exec {} rm -rf /var/lib/kubeadm-certs; }
now() { date +%s.%N; }

# run PLAY FORKS KIND: one timed ansible-playbook; prints "seconds bytes_per_host runs_per_host"
run() {
  local play=$1 forks=$2 kind=$3 start end rx0 rx1 out=$work/$1-$2-$3.json
  if [ "$kind" = first ]; then close_masters; forget_binary; fi
  rx0=$(rx_total)
  start=$(now)
  if ! ansible-playbook -i "$inv" -f "$forks" "$here/$play.yml" >"$out" 2>"$out.err"; then
    log "$play (forks $forks, $kind run) failed:"; tail -c 3000 "$out" >&2; tail -20 "$out.err" >&2; exit 1
  fi
  end=$(now)
  rx1=$(rx_total)
  echo "$(echo "$end - $start" | bc) $(( (rx1 - rx0) / NODES )) $(python3 "$here/count.py" "$out" node001)"
}

declare -A res
for forks in $FORKS_LIST; do
  for play in $PLAYS; do
    for kind in first second; do
      log "$play, forks $forks, $kind run"
      res[$play/$forks/$kind]=$(run "$play" "$forks" "$kind")
    done
  done
done

out=$repo/target/bench/ssh.md
mkdir -p "$(dirname "$out")"
{
  echo "## Fleet over SSH: $NODES nodes, $(nproc) CPUs, $(ansible --version 2>/dev/null | sed -n 1p)"
  echo
  echo "playbook | forks | run | total (s) | per host (s) | ratio to ours-check | bytes to each host | module runs per host | bytes per host per module run"
  echo "---|---|---|---|---|---|---|---|---"
  for forks in $FORKS_LIST; do
    for kind in first second; do
      read -r base _ _ <<<"${res[ours-check/$forks/$kind]:-0 0 1}"
      for play in $PLAYS; do
        read -r t bytes runs <<<"${res[$play/$forks/$kind]}"
        printf '%s | %s | %s | %.1f | %.3f | %s | %s | %s | %s\n' "$play" "$forks" "$kind" "$t" \
          "$(echo "scale=4; $t / $NODES" | bc)" "$(echo "scale=2; $t / $base" | bc)" "$bytes" "$runs" \
          "$([ "$runs" -gt 0 ] && echo $(( bytes / runs )) || echo -)"
      done
    done
  done
} | tee "$out"
