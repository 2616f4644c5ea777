#!/usr/bin/env python3
"""Benchmarks of the customization ISO, as ratios measured in one run on this machine:

- boot to power-off of the customization ISO (config media attached, no guest disk: the
  initrd loads drivers, starts Python, finds the media, scans for disks, reports) against
  the floor — the same kernel booted the same way (isolinux, SeaBIOS, QEMU TCG) with a
  busybox initrd that only powers off. Target: at most 1.6x the floor.
- initrd size (target: at most 20 MB), ISO size.
- the smallest guest RAM that still boots to power-off with a result (target: 256 MB).
- ISO build time, cold (empty cache) and cached.

Usage: scripts/bench_boot.py [--runs N]"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.qemu import boot  # noqa: E402
from vmtailor.builder import boot as bootmod  # noqa: E402
from vmtailor.builder import cpio  # noqa: E402
from vmtailor.builder.iso import build_iso  # noqa: E402
from vmtailor.builder.isofs import IsoImage  # noqa: E402
from vmtailor.builder.media import write_media  # noqa: E402
from vmtailor.customizer import config as configmod  # noqa: E402
from vmtailor.customizer.run import run  # noqa: E402
from vmtailor.initrd.image import ISO_LABEL, KERNEL_CMDLINE  # noqa: E402

FLOOR_INIT = b"#!/bin/sh\n/bin/busybox poweroff -f\n"
MEMORY_STEPS = (96, 128, 160, 192, 256, 384, 512)


def floor_iso(kernel: str, workdir: str) -> str:
    """The same kernel on the same kind of ISO with an initrd of busybox + /init only."""
    staging = os.path.join(workdir, "floor")
    os.makedirs(f"{staging}/bin")
    with open(f"{staging}/init", "wb") as f:
        f.write(FLOOR_INIT)
    os.chmod(f"{staging}/init", 0o755)
    with open("/bin/busybox", "rb") as src, open(f"{staging}/bin/busybox", "wb") as dst:
        dst.write(src.read())
    os.chmod(f"{staging}/bin/busybox", 0o755)
    os.symlink("busybox", f"{staging}/bin/sh")
    raw = os.path.join(workdir, "floor.cpio")
    with open(raw, "wb") as f:
        cpio.write(staging, f, 0)
    run(["zstd", "-q", "-19", raw, "-o", raw + ".zst"])
    iso = IsoImage(ISO_LABEL, 0)
    iso.add(bootmod.KERNEL, Path(kernel).read_bytes())
    iso.add(bootmod.INITRD, Path(raw + ".zst").read_bytes())
    iso.add("/isolinux/isolinux.bin", Path(bootmod.ISOLINUX_BIN).read_bytes())
    iso.add("/isolinux/ldlinux.c32", Path(bootmod.LDLINUX_C32).read_bytes())
    iso.add("/isolinux/isolinux.cfg", bootmod.isolinux_cfg(KERNEL_CMDLINE))
    iso.eltorito("/isolinux/isolinux.bin", bootcatfile="/BOOT/BOOT.CAT;1",
                 rr_bootcatname="boot.cat", boot_load_size=4, boot_info_table=True)  # fmt: skip
    out = os.path.join(workdir, "floor.iso")
    iso.write(out)
    return out


def timed_boot(iso: str, runs: int, **options) -> tuple[float, object]:
    best, last = None, None
    for _ in range(runs):
        last = boot(iso, timeout=180, **options)
        if not last.powered_off:
            raise SystemExit(f"{iso}: did not power off\n{last.log[-2000:]}")
        best = last.seconds if best is None else min(best, last.seconds)
    return best, last


def min_memory(iso: str, media: str) -> int | None:
    """Bisect MEMORY_STEPS for the smallest RAM that still ends with a result record."""
    lo, hi, found = 0, len(MEMORY_STEPS) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        vm = boot(iso, timeout=180, memory=MEMORY_STEPS[mid], cdroms=[media])
        ok = vm.powered_off and vm.result is not None
        print(f"  {MEMORY_STEPS[mid]:4d} MB: {'ok' if ok else 'no result'}", flush=True)
        if ok:
            found, hi = MEMORY_STEPS[mid], mid - 1
        else:
            lo = mid + 1
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="boots per measurement (best)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmtailor-bench-") as tmp:
        started = time.monotonic()
        cold = build_iso(os.path.join(tmp, "c.iso"), cache_dir=os.path.join(tmp, "cache"))
        cold_s = time.monotonic() - started
        started = time.monotonic()
        build_iso(os.path.join(tmp, "c2.iso"), cache_dir=os.path.join(tmp, "cache"))
        cached_s = time.monotonic() - started
        print(f"ISO build: cold {cold_s:.1f} s, cached {cached_s:.2f} s", flush=True)
        print(f"initrd {cold.initrd_size / 1e6:.1f} MB (target <= 20), "
              f"ISO {cold.iso_size / 1e6:.1f} MB", flush=True)  # fmt: skip

        media = write_media(configmod.parse({"hostname": "bench"}), lambda n: b"",
                            os.path.join(tmp, "media.iso"))  # fmt: skip
        floor = floor_iso(cold.kernel, tmp)
        floor_s, _ = timed_boot(floor, args.runs)
        custom_s, vm = timed_boot(cold.iso, args.runs, cdroms=[media])
        print(f"boot to power-off: floor {floor_s:.1f} s, customization ISO {custom_s:.1f} s "
              f"= {custom_s / floor_s:.2f}x the floor (target <= 1.6x)", flush=True)  # fmt: skip
        reason = (vm.result or {}).get("reason") or (vm.result or {}).get("status")
        print(f"  (its result: {reason}; stage timings {(vm.result or {}).get('timings')})")
        print("smallest guest RAM that boots to a result (target 256 MB):", flush=True)
        found = min_memory(cold.iso, media)
        print(f"  -> {found} MB" if found else "  -> none of the sizes tried", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
