#!/usr/bin/env bash
# shorten.sh ROOT DAYS NAME...: re-issues the named certificates of the kubeadm PKI under ROOT/etc/kubernetes/pki
# with the same key, subject and extensions but only DAYS days of validity, signed by their CA with openssl, so
# that a scenario has some certificates due and others not; then touches ROOT/short-lived. NAME: apiserver, apiserver-kubelet-client,
# apiserver-etcd-client, front-proxy-client, etcd-server, etcd-peer, etcd-healthcheck-client.
set -euo pipefail
pki=$1/etc/kubernetes/pki; days=$2; shift 2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for name in "$@"; do
  case $name in
    apiserver|apiserver-kubelet-client) base=$name; ca=ca ;;
    apiserver-etcd-client) base=$name; ca=etcd/ca ;;
    front-proxy-client) base=$name; ca=front-proxy-ca ;;
    etcd-server) base=etcd/server; ca=etcd/ca ;;
    etcd-peer) base=etcd/peer; ca=etcd/ca ;;
    etcd-healthcheck-client) base=etcd/healthcheck-client; ca=etcd/ca ;;
    *) echo "shorten.sh: unknown certificate $name" >&2; exit 2 ;;
  esac
  openssl x509 -x509toreq -in "$pki/$base.crt" -signkey "$pki/$base.key" -copy_extensions copyall -out "$tmp/req.csr" 2>/dev/null
  openssl x509 -req -in "$tmp/req.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days "$days" -copy_extensions copyall -out "$tmp/new.crt" 2>/dev/null
  # same subject, same SANs, a CA-verified certificate: only then replace
  [ "$(openssl x509 -in "$tmp/new.crt" -noout -subject)" = "$(openssl x509 -in "$pki/$base.crt" -noout -subject)" ]
  [ "$(openssl x509 -in "$tmp/new.crt" -noout -ext subjectAltName,extendedKeyUsage)" = \
    "$(openssl x509 -in "$pki/$base.crt" -noout -ext subjectAltName,extendedKeyUsage)" ]
  openssl verify -CAfile "$pki/$ca.crt" "$tmp/new.crt" >/dev/null
  cp "$tmp/new.crt" "$pki/$base.crt"
done
touch "$pki/../../../short-lived"
