#!/usr/bin/env bash
# scripts/alert-rules-test.sh TEXTFILE...: the alert rules examples/prometheus/kubeadm-certs.rules.yml against the
# series the collection's node_exporter textfiles hold. `promtool check rules`, then `promtool test rules` with the
# test scripts/promtool-test-from-textfiles.py makes from TEXTFILE: each alert expected to fire, or not, on either
# side of its threshold, as an independent reading of the same values says. A metric renamed in the textfile
# template (or misspelt in a rule) fails here. scripts/ansible-e2e.sh passes the textfiles its check playbooks wrote
# from kubeadm-made PKIs. promtool: scripts/setup.sh all (from Debian's prometheus package).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rules=$repo/examples/prometheus/kubeadm-certs.rules.yml
[ $# -gt 0 ] || { echo "usage: alert-rules-test.sh TEXTFILE..." >&2; exit 2; }
command -v promtool >/dev/null || { echo "alert-rules-test: no promtool on PATH (scripts/setup.sh all)" >&2; exit 1; }
promtool check rules "$rules"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${PYTHON:-python3}" "$repo/scripts/promtool-test-from-textfiles.py" "$rules" "$@" >"$tmp/kubeadm-certs.test.yml"
echo "$(grep -c '"eval_time"' "$tmp/kubeadm-certs.test.yml") alert checks at $(grep -c '"interval"' "$tmp/kubeadm-certs.test.yml") moments over $(cat "$@" | grep -vc '^#') series from $# textfile(s)"
promtool test rules "$tmp/kubeadm-certs.test.yml"
