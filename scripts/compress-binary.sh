#!/usr/bin/env bash
# scripts/compress-binary.sh BINARY: writes BINARY.SHA256.xz, the xz-compressed copy the certs action plugin sends
# to a target the first time it keeps the module binary there (plugin_utils/binary_cache.py), named after the sha256
# of BINARY so that a copy left from another build is never taken for this one; removes such older copies.
# xz -6 on one thread: the same bytes on every machine, 1.31 MB for an x86_64 binary of 3.79 MB (gzip -9: 1.78 MB).
set -euo pipefail
bin=${1:?usage: compress-binary.sh BINARY}
sha=$(sha256sum "$bin" | cut -d' ' -f1)
out=$bin.$sha.xz
for old in "$bin".*.xz; do [ "$old" = "$out" ] || rm -f "$old"; done
[ -f "$out" ] && exit 0
xz -6 -T1 -c "$bin" >"$out.tmp"
mv -f "$out.tmp" "$out"
