"""python3 scripts/guest_disks [--list] [all | NAME…]: build (or find) fixture disks."""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import guest_disks


def main(argv: list[str]) -> int:
    if not argv or argv == ["--list"]:
        print("\n".join(guest_disks.LAYOUTS))
        return 0
    names = list(guest_disks.LAYOUTS) if argv == ["all"] else argv
    for name in names:
        if name not in guest_disks.LAYOUTS:
            print(f"unknown fixture disk {name!r}; try --list", file=sys.stderr)
            return 2
        started = time.monotonic()
        path = guest_disks.image(name)
        used = os.stat(path).st_blocks * 512 >> 20
        size = os.stat(path).st_size >> 20
        took = time.monotonic() - started
        print(f"{name}: {path} ({used} MiB used of {size} MiB) in {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
