#!/usr/bin/env bash
# check-binaries.sh DIR: the portable module binaries in DIR are what the collection promises: one stripped ELF per
# architecture, for the right machine, needing nothing newer than glibc 2.17. Prints each one's size.
set -euo pipefail
dir=${1:?usage: check-binaries.sh DIR}
declare -A machine=([x86_64]="Advanced Micro Devices X86-64" [aarch64]="AArch64")
status=0
for arch in x86_64 aarch64; do
  bin=$dir/kubeadm-certs-$arch
  if [ ! -f "$bin" ]; then echo "check-binaries: $bin is missing" >&2; status=1; continue; fi
  got=$(readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
  if [ "$got" != "${machine[$arch]}" ]; then echo "check-binaries: $bin is built for '$got', not $arch" >&2; status=1; fi
  # The newest GLIBC_x.y symbol version the binary asks for.
  newest=$(readelf --dyn-syms -W "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n -u | tail -1)
  if [ -n "$newest" ] && [ "$(printf '%s\n2.17\n' "$newest" | sort -t. -k1,1n -k2,2n | tail -1)" != 2.17 ]; then
    echo "check-binaries: $bin needs GLIBC_$newest, newer than the 2.17 floor" >&2; status=1
  fi
  if readelf -S -W "$bin" | grep -q '\.symtab'; then echo "check-binaries: $bin is not stripped" >&2; status=1; fi
  printf '%-8s %9d bytes (%s MiB)  needs GLIBC_%s  %s\n' "$arch" "$(stat -c %s "$bin")" \
    "$(awk -v s="$(stat -c %s "$bin")" 'BEGIN{printf "%.2f", s/1048576}')" "${newest:-none}" "$bin"
done
exit $status
