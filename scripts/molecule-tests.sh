#!/usr/bin/env bash
# scripts/molecule-tests.sh [SCENARIO...]: the Molecule stage. Builds the node image and the control-plane images
# when they are missing or stale (molecule/image/build.sh: real kubeadm nodes, see molecule/README.md), builds the
# module binary from this tree every time (molecule/shared/collection.sh: cargo is incremental; an older binary
# is never reused) and makes the collection importable, then runs `molecule test` for each scenario (default:
# default ha external_ca schedule ca_rotation), side by side (MOLECULE_JOBS=1: one after the other; ha first, the others once
# its cluster has formed). A scenario whose cluster could not be formed (its prepare step, kubeadm init and join alone:
# no code of this project runs there) runs once more; a failure in any later step is never retried. A scenario that
# left no result counts as failed.
# Prints each scenario's wall time and a closing "N passed, N failed" line; exits 1 when any scenario failed.
#
# Each scenario's full output goes to .cache/molecule-logs/SCENARIO.log; a failing scenario's last 200 lines are
# printed too (MOLECULE_STREAM=1 prints everything as it runs). Containers and networks are removed by each
# scenario's destroy step, and once more on exit (also when interrupted): the containers named kc-* that Molecule
# labelled (with their anonymous volumes), and the kc-molecule-* networks.
# Needs: a running Docker Engine, root (debootstrap, apt), cargo, molecule + molecule-plugins[docker] + ansible
# from PyPI (installed when missing); molecule/image/build.sh installs debootstrap, etcd-server and gcc from Debian
# when missing and scripts/k8s-bin.sh builds the Kubernetes binaries (once, cached).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(default ha external_ca schedule ca_rotation)
LOGS=$ROOT/.cache/molecule-logs
mkdir -p "$LOGS"
export NO_COLOR=1 ANSIBLE_FORCE_COLOR=false PY_COLORS=0 ANSIBLE_NOCOLOR=1
log() { echo "molecule-tests: $*"; }

# a task or play variable that a result registered earlier in the same run would hide (see the script)
python3 scripts/molecule-var-shadowing.py molecule || exit 1

cleanup() {
  local c n
  for c in $(docker ps -aq --filter label=owner=molecule --filter name='^kc-' 2>/dev/null); do
    docker rm -f -v "$c" >/dev/null 2>&1
  done
  for n in $(docker network ls --format '{{.Name}}' 2>/dev/null | grep '^kc-molecule-'); do
    docker network rm "$n" >/dev/null 2>&1
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

docker info >/dev/null 2>&1 || { log "the Docker Engine does not answer (docker info)"; exit 1; }
if ! command -v molecule >/dev/null || ! python3 -c 'import molecule_plugins.docker' 2>/dev/null; then
  log "installing molecule, molecule-plugins[docker] and ansible from PyPI"
  python3 -m pip install --quiet molecule 'molecule-plugins[docker]' ansible || exit 1
fi

start=$SECONDS
built=$(molecule/image/build.sh) || { log "building the node and control-plane images failed"; exit 1; }
{ read -r KUBEADM_CERTS_NODE_IMAGE; read -r KUBEADM_CERTS_CP_IMAGES; } <<<"$built"
export KUBEADM_CERTS_NODE_IMAGE KUBEADM_CERTS_CP_IMAGES
log "node image $KUBEADM_CERTS_NODE_IMAGE and control-plane images $KUBEADM_CERTS_CP_IMAGES ready after $((SECONDS - start)) s"
t=$SECONDS
KUBEADM_CERTS_NO_BUILD= molecule/shared/collection.sh || { log "the collection's module binary could not be built"; exit 1; }
# built once above; the scenarios' dependency step then only links the collection
export KUBEADM_CERTS_NO_BUILD=1
log "collection ready after $((SECONDS - t)) s"

# The scenarios run side by side (MOLECULE_JOBS at a time, default all): much of a scenario is waiting (kubeadm
# init, the kubelet's grace periods, health polls), so together they take little more than `ha` alone. Each has its
# own containers, network and ephemeral directory.
JOBS=${MOLECULE_JOBS:-${#SCENARIOS[@]}}
passed=0; failed=0; summary=()
molecule_test() {  # SCENARIO: one `molecule test`, its output in $LOGS/SCENARIO.log; returns its exit code
  if [ -n "${MOLECULE_STREAM:-}" ]; then
    molecule test -s "$1" 2>&1 | tee "$LOGS/$1.log"; return "${PIPESTATUS[0]}"
  fi
  molecule test -s "$1" >"$LOGS/$1.log" 2>&1
}
# A scenario whose cluster could not be formed (its prepare step: kubeadm init/join on the node containers, before
# any of this project's code runs; what the product must do before converge is the side_effect step) is run once
# more, and the summary says so with the first attempt's log. A failure in any later step, where the collection
# runs, is never retried.
failed_forming() {  # SCENARIO: true when its log shows that the prepare step failed
  grep -qE "\[$1 > prepare\] Executed: Failed|$1 ➜ prepare: Executed: Failed" "$LOGS/$1.log" 2>/dev/null
}
run_one() {  # SCENARIO: molecule test (again once when forming failed), wall time and exit code in $LOGS/SCENARIO.result
  local s=$1 t=$SECONDS rc
  rm -f "$LOGS/$s.first-forming.log"
  molecule_test "$s"; rc=$?
  if [ "$rc" -ne 0 ] && failed_forming "$s"; then
    mv "$LOGS/$s.log" "$LOGS/$s.first-forming.log"
    log "$s: forming its cluster failed after $((SECONDS - t)) s (log: $LOGS/$s.first-forming.log); forming it once more"
    # what the nodes said (diagnose.yml), for a CI log that keeps only the output
    sed -n '/TASK \[Show them\]/,/PLAY RECAP/p' "$LOGS/$s.first-forming.log" | head -n 150
    molecule_test "$s"; rc=$?
  fi
  echo "$rc $((SECONDS - t))" >"$LOGS/$s.result"
}
# ha goes first and the others start once its cluster has formed: its `kubeadm join --control-plane` steps (each
# adds an etcd member, and etcd has no quorum until the new member runs) are what a loaded machine breaks. In a CI
# run where all four formed their clusters at once, cp2's new etcd member never answered and the join waited 33
# minutes. Starting the others after ha's prepare costs little: ha is the longest scenario by minutes.
formed() {  # SCENARIO: true once its prepare (forming the cluster) is over: its log reached the next step, or it ended
  # (Molecule writes "[ha > side_effect]" without colours, "ha ➜ side_effect" with them)
  grep -qE "\[$1 > (side_effect|converge)\]|$1 ➜ (side_effect|converge)" "$LOGS/$1.log" 2>/dev/null || [ -f "$LOGS/$1.result" ]
}
# ca_rotation forms a cluster of three control-plane nodes too: it starts once ha's has formed, and the single-node
# scenarios once its own has.
multi=(ha ca_rotation)
ordered=()
for m in "${multi[@]}"; do for s in "${SCENARIOS[@]}"; do [ "$s" = "$m" ] && ordered+=("$s"); done; done
for s in "${SCENARIOS[@]}"; do [[ " ${multi[*]} " == *" $s "* ]] || ordered+=("$s"); done
running=0
for s in "${ordered[@]}"; do
  rm -f "$LOGS/$s.result" "$LOGS/$s.log"
  [ -f "molecule/$s/molecule.yml" ] || { echo "127 0" >"$LOGS/$s.result"; continue; }
  if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
  log "scenario $s ..."
  run_one "$s" &
  running=$((running + 1)); began=$SECONDS
  if [[ " ${multi[*]} " == *" $s "* ]] && [ ${#ordered[@]} -gt 1 ] && [ "$JOBS" -gt 1 ]; then
    until formed "$s"; do sleep 5; done
    log "$s's cluster has formed after $((SECONDS - began)) s; starting the next"
  fi
done
wait
for s in "${SCENARIOS[@]}"; do
  rc=missing; took=0
  [ -s "$LOGS/$s.result" ] && read -r rc took <"$LOGS/$s.result"
  again=
  [ -f "$LOGS/$s.first-forming.log" ] && again=" (retried once: the first attempt's prepare step, forming the cluster \
with kubeadm init/join, failed before any of this project's code ran; its log: $LOGS/$s.first-forming.log)"
  if [ "$rc" = missing ]; then
    failed=$((failed + 1)); summary+=("$s: FAILED: it left no result (killed?), log: $LOGS/$s.log")
  elif [ "$rc" -eq 0 ]; then
    passed=$((passed + 1)); summary+=("$s: passed in ${took} s$again")
  elif [ "$rc" -eq 127 ] && [ "$took" -eq 0 ]; then
    failed=$((failed + 1)); summary+=("$s: missing")
  else
    failed=$((failed + 1)); summary+=("$s: FAILED (rc $rc) after ${took} s$again, log: $LOGS/$s.log")
    [ -n "${MOLECULE_STREAM:-}" ] || tail -n 200 "$LOGS/$s.log"
  fi
  log "${summary[-1]}"
done

log "summary (whole stage $((SECONDS - start)) s):"
for line in "${summary[@]}"; do echo "  $line"; done
echo "molecule: $passed passed, $failed failed"
[ $failed -eq 0 ]
