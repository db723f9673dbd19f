# -*- coding: utf-8 -*-
# Copyright: kubeadm-certs contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The module binary, kept once per version on each target (the certs action plugin's "copy once").

Ansible copies a binary module to the target for every task (pipelining cannot help binary modules): a play
that runs the 3 MiB module five times per host moves 16 MiB per host. The action plugin instead keeps the
binary of the collection's version on the target, under CACHE_DIR, named VERSION-SHA256, and from then on a
task sends only its arguments.

What makes that safe is in the shell scripts below, which run on the target:
- the copy is used only when it and the two folders above it are owned by root and writable by root alone
  (mode 0755 exactly), it is a regular file and not a link, and its sha256 is the one the controller computed
  from the collection's own binary, checked before every use: a corrupted or tampered copy is never run;
- it is written by root through a temporary name in the same folder, checked, then renamed: a reader sees the
  old file or the whole new one;
- other versions in the folder are removed when a new one is written.

The first task on a host sends the binary xz-compressed when the collection holds the compressed copy
(bin/kubeadm-certs-ARCH.SHA256.xz, made by `make collection`, named after the sha256 of what it decompresses to)
and the target has xz: about a third of the binary's size instead of the half that ssh's own compression makes
of it, and the controller's ssh no longer compresses the whole binary for every host. What is written is checked
against the sha256 of the binary itself either way, so a damaged compressed copy is never run.

These functions only build scripts and read their answers; the action plugin runs them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex

CACHE_ROOT = '/var/lib/kubeadm-certs'
CACHE_DIR = CACHE_ROOT + '/bin'

# What the use script prints, alone on its first line, when it will not run the cached copy. The module's
# own output is one JSON object, so the marker cannot be mistaken for it.
MISS_MARKER = 'KUBEADM_CERTS_CACHE_MISS'
# The exit code that goes with the marker (the binary itself exits 0 to 3).
MISS_RC = 97
# What the use script prints on a line of its own after the miss marker when the target has xz.
UNXZ_MARKER = 'KUBEADM_CERTS_CAN_UNXZ'

_VERSION_RE = re.compile(r'^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$')
_SHA256_RE = re.compile(r'^[0-9a-f]{64}$')

_SHA_CACHE = {}


def file_sha256(path):
    """sha256 of a local file, computed once per controller process and path."""
    digest = _SHA_CACHE.get(path)
    if digest is None:
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                h.update(block)
        digest = _SHA_CACHE[path] = h.hexdigest()
    return digest


def cached_path(version, sha256):
    """Where the target keeps the binary of this version: CACHE_DIR/VERSION-SHA256."""
    if not _VERSION_RE.match(version or ''):
        raise ValueError('collection version %r cannot name a file' % (version,))
    if not _SHA256_RE.match(sha256 or ''):
        raise ValueError('%r is not a sha256' % (sha256,))
    return '%s/%s-%s' % (CACHE_DIR, version, sha256)


def compressed_path(local_binary, sha256):
    """The xz-compressed copy of LOCAL_BINARY the collection holds, or None: bin/NAME.SHA256.xz beside the file
    the module link points to. A copy named after another sha256 (an older build) is not this binary's."""
    path = '%s.%s.xz' % (os.path.realpath(local_binary), sha256)
    return path if os.path.isfile(path) else None


def _checks(path, sha256):
    """Shell that exits non-zero, printing why on stdout, unless PATH is the safe copy described above.

    On a miss it also says whether the target has xz, so that the copy that follows can be sent compressed.
    """
    q = shlex.quote
    return (
        'p={path}; '
        'miss() {{ echo "{marker} $1"; command -v xz >/dev/null 2>&1 && echo {unxz}; exit {rc}; }}; '
        '[ -e "$p" ] || miss absent; '
        'for d in {root} {dir}; do '
        '[ -d "$d" ] && [ ! -L "$d" ] && [ "$(stat -c %u:%a "$d" 2>/dev/null)" = 0:755 ] '
        '|| miss "unsafe-dir $d"; done; '
        '[ -f "$p" ] && [ ! -L "$p" ] && [ "$(stat -c %u:%a "$p" 2>/dev/null)" = 0:755 ] '
        '|| miss unsafe-file; '
        'printf "%s  %s\\n" {sha} "$p" | sha256sum -c --status 2>/dev/null '
        '|| miss mismatch; '
    ).format(path=q(path), root=q(CACHE_ROOT), dir=q(CACHE_DIR), sha=q(sha256), marker=MISS_MARKER, rc=MISS_RC,
             unxz=UNXZ_MARKER)


def use_script(path, sha256, args_path=None):
    """Shell that runs the cached binary with the task's args file, after the checks.

    With ARGS_PATH None the arguments come on standard input (connections that can send data with a command:
    one round trip per task); they go to a 0600 temporary file, removed when the module has run.
    """
    q = shlex.quote
    script = _checks(path, sha256)
    if args_path is None:
        script += ('umask 077; a=$(mktemp) || exit 1; cat >"$a" || { rm -f "$a"; exit 1; }; '
                   '"$p" "$a"; rc=$?; rm -f "$a"; exit $rc')
    else:
        script += '"$p" %s' % q(args_path)
    return script


def _unpack(xz):
    """The command that writes standard input to the file "$t": as it is, or decompressed."""
    return 'xz -dc >"$t"' if xz else 'cat >"$t"'


def _folders():
    """Shell that makes CACHE_ROOT and CACHE_DIR folders owned by root, mode 0755 (a link in their place removed)."""
    q = shlex.quote
    return ('for d in {root} {dir}; do [ -L "$d" ] && rm -f "$d"; mkdir -p "$d"; chown 0:0 "$d"; chmod 0755 "$d"; '
            'done; ').format(root=q(CACHE_ROOT), dir=q(CACHE_DIR))


def _keep(path, sha256, unpack):
    """Shell (under set -e) that writes the binary to the temporary "$t" with UNPACK, checks its sha256, renames
    it to PATH and removes the other versions and the temporary files of installs that died."""
    q = shlex.quote
    return (
        '{unpack}; chown 0:0 "$t"; chmod 0755 "$t"; sync "$t" 2>/dev/null || sync; '
        'printf "%s  %s\\n" {sha} "$t" | sha256sum -c --status '
        '|| {{ echo "the copy written does not match its sha256" >&2; exit 1; }}; '
        'mv -f "$t" {path}; '
        'for f in {dir}/*; do [ "$f" = {path} ] || [ ! -e "$f" ] || rm -f "$f"; done; '
        # temporary files of installs that died: an hour is long past any install still running
        'find {dir} -maxdepth 1 -name ".new-*" -mmin +60 -delete 2>/dev/null || true'
    ).format(unpack=unpack, sha=q(sha256), path=q(path), dir=q(CACHE_DIR))


def install_script(path, sha256, source, xz=False):
    """Shell (run as root) that writes SOURCE (xz-compressed when XZ) as the cached binary, checked, atomically,
    and removes others."""
    q = shlex.quote
    return (
        'set -e; umask 022; {folders}'
        't={dir}/.new-$$; trap \'rm -f "$t"\' EXIT; '
        '{keep}'
    ).format(folders=_folders(), dir=q(CACHE_DIR), keep=_keep(path, sha256, '%s <%s' % (_unpack(xz), q(source))))


def install_and_use_script(path, sha256, args_len, xz=False):
    """Shell (run as root) for a first use in one round trip: standard input carries the task's arguments
    (ARGS_LEN bytes) and then the binary (xz-compressed when XZ). It writes the binary as install_script does,
    then runs it as use_script does (the same checks first). When the writing fails it prints the miss marker
    with "install-failed" and the reason, and runs nothing.

    The arguments are read with dd one byte at a time (a few hundred bytes): a buffered reader such as head could
    read into the binary that follows and lose it.
    """
    q = shlex.quote
    install = (
        'set -e; umask 022; {folders}'
        'dd bs=1 count={n} of="$a" 2>/dev/null; [ "$(wc -c <"$a")" -eq {n} ]; '
        '{keep}'
    ).format(folders=_folders(), n=int(args_len), keep=_keep(path, sha256, _unpack(xz)))
    return (
        'a=$(umask 077; mktemp) || exit 1; t={dir}/.new-$$; trap \'rm -f "$a" "$t"\' EXIT; '
        'err=$( ( {install} ) 2>&1 ) || {{ echo "{marker} install-failed $(echo "$err" | tail -n 3 | tr "\\n" " ")"; '
        'exit {rc}; }}; '
        '{checks}"$p" "$a"; rc=$?; rm -f "$a"; exit $rc'
    ).format(dir=q(CACHE_DIR), install=install, marker=MISS_MARKER, rc=MISS_RC, checks=_checks(path, sha256))


def miss_reason(stdout):
    """The reason the use script gave for not running the copy, or None when the module ran."""
    first = (stdout or '').lstrip().split('\n', 1)[0].strip()
    if not first.startswith(MISS_MARKER):
        return None
    return first[len(MISS_MARKER):].strip() or 'unknown'


def can_unxz(stdout):
    """Whether the use script's miss answer says the target has xz."""
    return UNXZ_MARKER in [line.strip() for line in (stdout or '').split('\n')[1:]]
