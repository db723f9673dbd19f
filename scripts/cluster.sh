#!/usr/bin/env bash
# scripts/cluster.sh start ROOT [IP] | start-etcd ROOT [IP] | stop ROOT | status ROOT [IP] | run COMPONENT ROOT [IP]
#                   | spawn COMPONENT ROOT [IP]
#
# Real control-plane components from the kubeadm PKI under ROOT/etc/kubernetes (scripts/mkpki.sh), bound to IP
# only (default 127.0.0.11; on this machine keep it in 127.0.0.0/8: nothing here dials any other address):
#   etcd (Debian's 3.4)             TLS with etcd/server + etcd/peer, client certificates required. A PKI without
#                                   etcd certificates (mkpki.sh extetcd) gets a plain-HTTP etcd on IP instead,
#                                   standing in for the external etcd.
#   kube-apiserver (1.20.2)         serving apiserver.crt, reaching etcd with apiserver-etcd-client, clients
#                                   checked against ca.crt, front-proxy-client for aggregation.
#   kube-controller-manager         only with WITH_KCM=1: the built-in CSR signer (csrsigning, csrapproving,
#                                   csrcleaner) with ca.crt/ca.key, through controller-manager.conf.
#   kube-scheduler                  only with WITH_SCHEDULER=1 (and a kube-scheduler binary in K8S_BIN), through
#                                   scheduler.conf.
#
#   start   starts what is not running, waits until etcd is healthy and the apiserver's /readyz answers (and,
#           with WITH_KCM / WITH_SCHEDULER, until their /healthz answers)
#           (READY_TIMEOUT seconds, default 60); pids and logs in RUN_DIR (default ROOT/run): NAME.pid, NAME.log;
#           etcd data in RUN_DIR/etcd-data (kept across restarts).
#   start-etcd  starts etcd only (for a multi-member etcd: start every member, then `start` each node).
#   stop    stops what start started (SIGTERM, then SIGKILL after 10 s).
#   status  exit 0 when the apiserver at IP answers /readyz.
#   run     execs one component in the foreground (etcd | kube-apiserver | kube-controller-manager |
#           kube-scheduler): for supervisors (the Molecule node image restarts components this way).
#   spawn   starts one component in the background, as `start` does, and returns at once without waiting until it
#           is healthy: the restart stand-in of tests whose point is the product's own health gate.
#
# Environment (all optional):
#   PORT_BASE=N          API_PORT=N, ETCD_CLIENT_PORT=N+1, ETCD_PEER_PORT=N+2, KCM_PORT=N+3, SCHEDULER_PORT=N+4
#   API_PORT=6443 ETCD_CLIENT_PORT=2379 ETCD_PEER_PORT=2380 KCM_PORT=10257 SCHEDULER_PORT=10259   one by one
#   Several clusters side by side: give each its own loopback IP (127.0.0.x) or its own PORT_BASE.
#   WITH_KCM=1           also run kube-controller-manager
#   WITH_SCHEDULER=1     also run kube-scheduler
#   KUBEADM_BINDINGS=1   bind as kubeadm's static pods do (only inside a node container, never on a shared host):
#                        etcd's clients on 127.0.0.1 and IP, the apiserver on every address, kube-controller-manager
#                        and kube-scheduler on 127.0.0.1
#   K8S_BIN=dir          where kube-apiserver and kube-controller-manager are (default: scripts/k8s-bin.sh)
#   ETCD_MEMBER_NAME     member name (default: the node name, i.e. etcd/server.crt's CN; "etcd" without TLS)
#   ETCD_MEMBERS         etcd's --initial-cluster: name=https://ip:port,... (default: this member alone)
#   ETCD_MEMBERS_STATE   etcd's --initial-cluster-state (default new)
#   (etcd reads ETCD_<FLAG> variables itself; the ones above are removed from its environment.)
#   ETCD_SERVERS         the apiserver's --etcd-servers (default: this node's etcd)
#   RUN_DIR              pids, logs, etcd data (default ROOT/run)
#   CONF_DIR             where kube-controller-manager and kube-scheduler find their kubeconfigs (default
#                        ROOT/etc/kubernetes): tests/fixtures/as-pod.sh bind-mounts them there one by one, as
#                        kubeadm's static pods see them
# shellcheck disable=SC2054 # commas inside flag values (--authorization-mode=Node,RBAC)
set -euo pipefail
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1; shift
COMPONENT=
if [ "$cmd" = run ] || [ "$cmd" = spawn ]; then COMPONENT=$1; shift; fi
[ $# -ge 1 ] || usage
ROOT=$(cd "$1" && pwd); IP=${2:-127.0.0.11}
HERE=$(cd "$(dirname "$0")" && pwd)
K=$ROOT/etc/kubernetes; P=$K/pki
RUN=${RUN_DIR:-$ROOT/run}
if [ -n "${PORT_BASE:-}" ]; then
  API_PORT=${API_PORT:-$PORT_BASE}; ETCD_CLIENT_PORT=${ETCD_CLIENT_PORT:-$((PORT_BASE + 1))}
  ETCD_PEER_PORT=${ETCD_PEER_PORT:-$((PORT_BASE + 2))}; KCM_PORT=${KCM_PORT:-$((PORT_BASE + 3))}
  SCHEDULER_PORT=${SCHEDULER_PORT:-$((PORT_BASE + 4))}
fi
API_PORT=${API_PORT:-6443}; ETCD_CLIENT_PORT=${ETCD_CLIENT_PORT:-2379}; ETCD_PEER_PORT=${ETCD_PEER_PORT:-2380}
KCM_PORT=${KCM_PORT:-10257}; SCHEDULER_PORT=${SCHEDULER_PORT:-10259}
if [ -n "${KUBEADM_BINDINGS:-}" ]; then
  LISTEN_CLIENT_URLS="https://127.0.0.1:$ETCD_CLIENT_PORT,https://$IP:$ETCD_CLIENT_PORT"
  API_BIND=0.0.0.0; LOCAL_BIND=127.0.0.1
else
  LISTEN_CLIENT_URLS="https://$IP:$ETCD_CLIENT_PORT"; API_BIND=$IP; LOCAL_BIND=$IP
fi

etcd_tls() { [ -f "$P/etcd/server.crt" ]; }
etcd_url() { if etcd_tls; then echo "https://$IP:$ETCD_CLIENT_PORT"; else echo "http://$IP:$ETCD_CLIENT_PORT"; fi; }
k8s_bin() { echo "${K8S_BIN:-$("$HERE/k8s-bin.sh")}"; }

# The command line of one component, into the array `argv`.
component_argv() {
  local bin
  case $1 in
  etcd)
    local name=${ETCD_MEMBER_NAME:-}
    if etcd_tls; then
      [ -n "$name" ] || name=$(openssl x509 -in "$P/etcd/server.crt" -noout -subject -nameopt multiline |
        awk -F' = ' '/commonName/{print $2}')
      argv=(etcd --name "$name" --data-dir "$RUN/etcd-data"
        --listen-client-urls "$LISTEN_CLIENT_URLS" --advertise-client-urls "https://$IP:$ETCD_CLIENT_PORT"
        --listen-peer-urls "https://$IP:$ETCD_PEER_PORT" --initial-advertise-peer-urls "https://$IP:$ETCD_PEER_PORT"
        --initial-cluster "${ETCD_MEMBERS:-$name=https://$IP:$ETCD_PEER_PORT}"
        --initial-cluster-state "${ETCD_MEMBERS_STATE:-new}"
        --cert-file "$P/etcd/server.crt" --key-file "$P/etcd/server.key" --trusted-ca-file "$P/etcd/ca.crt"
        --client-cert-auth
        --peer-cert-file "$P/etcd/peer.crt" --peer-key-file "$P/etcd/peer.key"
        --peer-trusted-ca-file "$P/etcd/ca.crt" --peer-client-cert-auth
        --snapshot-count 10000)
    else
      name=${name:-etcd}
      argv=(etcd --name "$name" --data-dir "$RUN/etcd-data"
        --listen-client-urls "http://$IP:$ETCD_CLIENT_PORT" --advertise-client-urls "http://$IP:$ETCD_CLIENT_PORT"
        --listen-peer-urls "http://$IP:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://$IP:$ETCD_PEER_PORT"
        --initial-cluster "${ETCD_MEMBERS:-$name=http://$IP:$ETCD_PEER_PORT}"
        --initial-cluster-state "${ETCD_MEMBERS_STATE:-new}")
    fi
    ;;
  kube-apiserver)
    bin=$(k8s_bin)
    argv=("$bin/kube-apiserver" --advertise-address="$IP" --bind-address="$API_BIND" --secure-port="$API_PORT"
      --insecure-port=0
      --etcd-servers="${ETCD_SERVERS:-$(etcd_url)}"
      --client-ca-file="$P/ca.crt" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key"
      --kubelet-client-certificate="$P/apiserver-kubelet-client.crt"
      --kubelet-client-key="$P/apiserver-kubelet-client.key"
      --proxy-client-cert-file="$P/front-proxy-client.crt" --proxy-client-key-file="$P/front-proxy-client.key"
      --requestheader-client-ca-file="$P/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client
      --requestheader-extra-headers-prefix=X-Remote-Extra- --requestheader-group-headers=X-Remote-Group
      --requestheader-username-headers=X-Remote-User
      --service-account-issuer=https://kubernetes.default.svc.cluster.local
      --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key"
      --service-cluster-ip-range=10.96.0.0/12 --authorization-mode=Node,RBAC
      --enable-admission-plugins=NodeRestriction)
    if etcd_tls; then
      argv+=(--etcd-cafile="$P/etcd/ca.crt"
        --etcd-certfile="$P/apiserver-etcd-client.crt" --etcd-keyfile="$P/apiserver-etcd-client.key")
    fi
    ;;
  kube-controller-manager)
    bin=$(k8s_bin)
    local c=${CONF_DIR:-$K}
    argv=("$bin/kube-controller-manager" --kubeconfig="$c/controller-manager.conf"
      --authentication-kubeconfig="$c/controller-manager.conf" --authorization-kubeconfig="$c/controller-manager.conf"
      --bind-address="$LOCAL_BIND" --secure-port="$KCM_PORT" --port=0 --leader-elect=false
      --use-service-account-credentials=true
      --root-ca-file="$P/ca.crt" --service-account-private-key-file="$P/sa.key")
    # kubeadm leaves the signer out in external CA mode (no ca.key): so do we
    if [ -f "$P/ca.key" ]; then
      argv+=(--controllers=csrsigning,csrapproving,csrcleaner
        --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key")
    else
      argv+=(--controllers=csrapproving,csrcleaner)
    fi
    ;;
  kube-scheduler)
    bin=$(k8s_bin)
    local c=${CONF_DIR:-$K}
    argv=("$bin/kube-scheduler" --kubeconfig="$c/scheduler.conf"
      --authentication-kubeconfig="$c/scheduler.conf" --authorization-kubeconfig="$c/scheduler.conf"
      --bind-address="$LOCAL_BIND" --secure-port="$SCHEDULER_PORT" --port=0 --leader-elect=false)
    ;;
  *) echo "cluster.sh: unknown component '$1' (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)" >&2
     exit 2 ;;
  esac
  # etcd takes every ETCD_* variable as a flag and refuses one that a command-line flag shadows
  argv=(env -u ETCD_MEMBER_NAME -u ETCD_MEMBERS -u ETCD_MEMBERS_STATE -u ETCD_SERVERS -u ETCD_CLIENT_PORT
    -u ETCD_PEER_PORT "${argv[@]}")
}

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

stop_one() {
  local pid
  [ -f "$RUN/$1.pid" ] || return 0
  pid=$(cat "$RUN/$1.pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$1.pid"
}

start_one() {
  alive "$1" && return 0
  component_argv "$1"
  mkdir -p "$RUN"
  # setsid: its own session, so that a Ctrl-C or the test harness's process group does not reach it
  setsid "${argv[@]}" >>"$RUN/$1.log" 2>&1 </dev/null &
  echo $! >"$RUN/$1.pid"
}

etcd_healthy() {
  if etcd_tls; then
    curl -sf --max-time 2 --cacert "$P/etcd/ca.crt" --cert "$P/etcd/healthcheck-client.crt" \
      --key "$P/etcd/healthcheck-client.key" "$(etcd_url)/health" 2>/dev/null | grep -q '"health":"true"'
  else
    curl -sf --max-time 2 "$(etcd_url)/health" 2>/dev/null | grep -q '"health":"true"'
  fi
}

# kube-controller-manager and kube-scheduler answer /healthz on their secure ports without credentials (an
# always-allowed path); until then the process may still be `env` exec'ing the binary, not yet the component
healthz_on() { curl -skf --max-time 2 "https://$LOCAL_BIND:$1/healthz" >/dev/null 2>&1; }
kcm_healthy() { healthz_on "$KCM_PORT"; }
scheduler_healthy() { healthz_on "$SCHEDULER_PORT"; }

apiserver_ready() {
  curl -sf --max-time 2 --cacert "$P/ca.crt" --cert "$P/apiserver-kubelet-client.crt" \
    --key "$P/apiserver-kubelet-client.key" "https://$IP:$API_PORT/readyz" >/dev/null 2>&1
}

# wait_for WHAT CHECK: polls CHECK every 0.2 s until READY_TIMEOUT; fails naming the log if the process died.
wait_for() {
  local what=$1 check=$2 deadline=$((SECONDS + ${READY_TIMEOUT:-60}))
  while ! $check; do
    if ! alive "$what"; then echo "cluster.sh: $what exited; see $RUN/$what.log" >&2; return 1; fi
    if [ $SECONDS -ge $deadline ]; then echo "cluster.sh: $what not ready in time; see $RUN/$what.log" >&2; return 1; fi
    sleep 0.2
  done
}

case $cmd in
run)
  component_argv "$COMPONENT"
  mkdir -p "$RUN"
  exec "${argv[@]}"
  ;;
spawn)
  start_one "$COMPONENT"
  ;;
stop)
  for n in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_one "$n"; done
  ;;
status)
  apiserver_ready
  ;;
start-etcd)
  start_one etcd
  if [ -z "${ETCD_MEMBERS:-}" ]; then wait_for etcd etcd_healthy; fi
  ;;
start)
  # A member of a multi-member etcd cannot be healthy alone: only wait for it when it is alone.
  start_one etcd
  if [ -z "${ETCD_MEMBERS:-}" ]; then wait_for etcd etcd_healthy; fi
  start_one kube-apiserver
  wait_for kube-apiserver apiserver_ready
  if [ -n "${WITH_KCM:-}" ]; then
    [ -f "$P/ca.key" ] || { echo "cluster.sh: WITH_KCM needs pki/ca.key (the signer's key)" >&2; exit 1; }
    start_one kube-controller-manager
  fi
  if [ -n "${WITH_SCHEDULER:-}" ]; then start_one kube-scheduler; fi
  # started means serving: a caller that looks for the processes right away finds the components, not `env`
  if [ -n "${WITH_KCM:-}" ]; then wait_for kube-controller-manager kcm_healthy; fi
  if [ -n "${WITH_SCHEDULER:-}" ]; then wait_for kube-scheduler scheduler_healthy; fi
  ;;
*) usage ;;
esac
