#!/usr/bin/env bash
# benches/ssh/run.sh: expiry reports across N nodes reached over real SSH, side by side in one run:
#
#   ours-check      k8s_pki.kubeadm.certs state=check                                 1 module run per host
#   check-playbook  the k8s_pki.kubeadm.check playbook (table + Prometheus textfile)   module + template per host
#   crypto-info     community.crypto.x509_certificate_info over the same files          13 runs + 3 slurps per host
#   kubeadm-check   command: kubeadm certs check-expiration                              1 module run per host
#   ours-check-plain  ours-check with a collection that holds no compressed copy of the binary, so that the first
#                   run sends it as it is (ssh compresses it): the alternative to the xz-compressed first copy
#
# NODES containers (default 50) of benches/ssh/image.sh's image (sshd, python3, kubeadm 1.20.2) on a private,
# internal docker network this script creates and removes, each with a copy of one kubeadm-made PKI under
# /etc/kubernetes. ansible-playbook connects as root over ssh with Ansible's usual settings (ControlMaster auto,
# ControlPersist 60s, compression on), with FORKS_LIST forks (default "10 50").
#
# Each playbook runs three times in a row:
#   first   no SSH control connections and, for the collection, no module binary kept on the nodes
#           (/var/lib/kubeadm-certs removed): a fleet's first run of a new collection version;
#   cached  the binary kept from the first run, the control connections closed again: every later run of a
#           scheduled check, which comes long after ControlPersist's 60 s;
#   warm    the binary kept and the control connections still open: a second playbook within 60 s.
# For the playbooks that keep nothing on the nodes (crypto-info, kubeadm-check) first and cached are the same
# conditions, so they run first and warm only, and their cached row repeats the first run (marked "= first").
# Per run: wall time in total and per host, bytes the nodes received per host (their eth0 rx counters) and per
# module run (counted from Ansible's JSON output), the CPU time the nodes (their containers' cgroups) and
# everything else on the machine (controller: ansible-playbook, its ssh clients) used, and the ratio to
# ours-check's run of the same kind. The table goes to stdout and to target/bench/ssh.md.
#
# Needs root, Docker, ansible (with community.crypto and ansible.posix: the `ansible` package), scripts/k8s-bin.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/benches/ssh
NODES=${NODES:-50}
FORKS_LIST=${FORKS_LIST:-10 50}
PLAYS=${PLAYS:-ours-check ours-check-plain check-playbook crypto-info kubeadm-check}
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

# the collection as installed (scripts/collection-tree.sh), and a copy of it without the compressed binary
"$repo/scripts/collection-tree.sh" "$work/collections" "$bin"
cp -a "$work/collections" "$work/collections-plain"
rm -f "$work"/collections-plain/ansible_collections/k8s_pki/kubeadm/bin/*.xz
other_collections=${ANSIBLE_COLLECTIONS_PATH:-$HOME/.ansible/collections:/usr/share/ansible/collections}
export ANSIBLE_COLLECTIONS_PATH=$work/collections:$other_collections
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

containers() { docker ps -q --no-trunc --filter "label=kc-bench-ssh=$NET"; }
rx_total() { containers | xargs -r -I{} docker exec {} cat /sys/class/net/eth0/statistics/rx_bytes | paste -sd+ | bc; }
# CPU time in ns: of the whole machine, and of the nodes' containers (cgroup v1 cpuacct, or v2 cpu.stat)
cpu_machine() {
  if [ -f /sys/fs/cgroup/cpuacct/cpuacct.usage ]; then cat /sys/fs/cgroup/cpuacct/cpuacct.usage
  else awk '/^usage_usec/ {print $2 * 1000}' /sys/fs/cgroup/cpu.stat; fi
}
cpu_nodes() {
  local id f total=0
  for id in $(containers); do
    for f in /sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage /sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat \
             /sys/fs/cgroup/docker/$id/cpu.stat; do
      [ -f "$f" ] || continue
      case $f in *.usage) total=$(( total + $(cat "$f") )) ;; *) total=$(( total + $(awk '/^usage_usec/ {print $2}' "$f") * 1000 )) ;; esac
      break
    done
  done
  echo "$total"
}
close_masters() { for s in "$work"/cp/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit dummy >/dev/null 2>&1; done; rm -rf "$work/cp"; mkdir -p "$work/cp"; }
forget_binary() { containers | xargs -r -I{} docker exec {} rm -rf /var/lib/kubeadm-certs; }
now() { date +%s.%N; }
keeps_binary() { case $1 in ours-check|ours-check-plain|check-playbook) return 0 ;; *) return 1 ;; esac; }

# run PLAY FORKS KIND: one timed ansible-playbook; prints
# "seconds bytes_per_host runs_per_host node_cpu_seconds controller_cpu_seconds"
run() {
  local play=$1 forks=$2 kind=$3 start end rx0 rx1 m0 m1 n0 n1 out=$work/$1-$2-$3.json
  case $kind in
    first) close_masters; forget_binary ;;
    cached) close_masters ;;
  esac
  local book=$play.yml collections=$work/collections
  [ "$play" = ours-check-plain ] && { book=ours-check.yml; collections=$work/collections-plain; }
  rx0=$(rx_total); m0=$(cpu_machine); n0=$(cpu_nodes)
  start=$(now)
  if ! ANSIBLE_COLLECTIONS_PATH=$collections:$other_collections \
       ansible-playbook -i "$inv" -f "$forks" "$here/$book" >"$out" 2>"$out.err"; then
    log "$play (forks $forks, $kind run) failed:"; tail -c 3000 "$out" >&2; tail -20 "$out.err" >&2; exit 1
  fi
  end=$(now)
  rx1=$(rx_total); m1=$(cpu_machine); n1=$(cpu_nodes)
  echo "$(echo "$end - $start" | bc) $(( (rx1 - rx0) / NODES )) $(python3 "$here/count.py" "$out" node001)" \
    "$(echo "scale=1; ($n1 - $n0) / 1000000000" | bc) $(echo "scale=1; (($m1 - $m0) - ($n1 - $n0)) / 1000000000" | bc)"
}

KINDS="first cached warm"
declare -A res
for forks in $FORKS_LIST; do
  for play in $PLAYS; do
    for kind in $KINDS; do
      if [ "$kind" = cached ] && ! keeps_binary "$play"; then res[$play/$forks/$kind]="same"; continue; fi
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
  echo "playbook | forks | run | total (s) | per host (s) | ratio to ours-check | bytes to each host | module runs per host | bytes per host per module run | CPU s: nodes / controller"
  echo "---|---|---|---|---|---|---|---|---|---"
  for forks in $FORKS_LIST; do
    for kind in $KINDS; do
      read -r base _ _ _ _ <<<"${res[ours-check/$forks/$kind]:-0 0 1 0 0}"
      for play in $PLAYS; do
        r=${res[$play/$forks/$kind]} label=$kind
        [ "$r" = same ] && { r=${res[$play/$forks/first]}; label="$kind (= first)"; }
        read -r t bytes runs ncpu ccpu <<<"$r"
        printf '%s | %s | %s | %.1f | %.3f | %s | %s | %s | %s | %s / %s\n' "$play" "$forks" "$label" "$t" \
          "$(echo "scale=4; $t / $NODES" | bc)" "$(echo "scale=2; $t / $base" | bc)" "$bytes" "$runs" \
          "$([ "$runs" -gt 0 ] && echo $(( bytes / runs )) || echo -)" "$ncpu" "$ccpu"
      done
    done
  done
  echo
  for forks in $FORKS_LIST; do
    read -r f _ <<<"${res[ours-check/$forks/first]:-0}"; read -r c _ <<<"${res[ours-check/$forks/cached]:-1}"
    read -r w _ <<<"${res[ours-check/$forks/warm]:-1}"
    echo "ours-check, forks $forks: first run / cached run $(echo "scale=2; $f / $c" | bc)x," \
      "first run / warm run $(echo "scale=2; $f / $w" | bc)x"
  done
} | tee "$out"
