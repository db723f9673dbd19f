#!/usr/bin/python3
"""Run on a node (ansible.builtin.script) with hex-encoded byte strings: prints, one per line, every regular file
of the node's whole file system that contains any of them (/proc, /sys and /dev excluded: no files there). Used to
prove that a private key never reached a node, in any form or place (PEM or DER bytes), not only where the product
would have written it."""
import os
import sys

PATTERNS = [bytes.fromhex(h) for h in sys.argv[1:]]
CHUNK = 1 << 20
SKIP = {"/proc", "/sys", "/dev"}


def holds(path):
    keep = max(len(p) for p in PATTERNS) - 1
    tail = b""
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                return False
            data = tail + block
            if any(p in data for p in PATTERNS):
                return True
            tail = data[-keep:] if keep else b""


def main():
    for top, dirs, files in os.walk("/", followlinks=False):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in SKIP]
        for name in files:
            path = os.path.join(top, name)
            try:
                if os.path.isfile(path) and not os.path.islink(path) and holds(path):
                    print(path)
            except OSError:
                continue


if __name__ == "__main__":
    main()
