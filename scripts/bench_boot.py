#!/usr/bin/env python3
"""Benchmarks of the customization ISO, as ratios measured in one run on this machine:

- boot to power-off of a customization — the ISO, config media and a private copy of the
  Debian fixture guest (a): every stage runs, the guest gets its new host name — against
  the floor: the same VM (same disk and media) booting the same kernel the same way
  (isolinux, SeaBIOS, QEMU TCG) with a busybox initrd that only powers off.
  Target: at most 1.6x the floor.
- the same with no guest disk (drivers, Python, config media, disk scan, report): what a
  customization costs before it reaches the guest. Reported, no target.
- initrd size (target: at most 20 MB), what it leaves on the ISO, ISO size.
- the smallest guest RAM that still customizes the guest (target: 256 MB).
- ISO build time, cold (empty cache) and cached.
- where the customization's time goes: one more boot of each, its serial console stamped
  line by line on the host (firmware and initrd load, unpack, kernel, Python, stages).

The guest fixture is built on first use (minutes; cached, see scripts/guest_disks).

Usage: scripts/bench_boot.py [--runs N]"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import guest_disks  # noqa: E402

from tests.e2e.qemu import boot, command  # noqa: E402
from vmtailor.builder import boot as bootmod  # noqa: E402
from vmtailor.builder import cpio, initrd  # noqa: E402
from vmtailor.builder.iso import build_iso  # noqa: E402
from vmtailor.builder.isofs import IsoImage  # noqa: E402
from vmtailor.builder.media import write_media  # noqa: E402
from vmtailor.customizer import config as configmod  # noqa: E402
from vmtailor.customizer.run import run  # noqa: E402
from vmtailor.initrd.image import ISO_LABEL, KERNEL_CMDLINE  # noqa: E402

FLOOR_INIT = b"#!/bin/sh\n/bin/busybox poweroff -f\n"
MEMORY_STEPS = (96, 128, 160, 192, 256, 384, 512)
# (phase, the serial line that ends it); a phase's time runs from the previous one's end
PHASES = (
    ("firmware, isolinux, kernel load", r"Linux version"),
    ("kernel to initrd unpack", r"Trying to unpack rootfs"),
    ("initrd unpack", r"Freeing initrd memory"),
    ("kernel init", r"Run /init"),
    ("drivers, Python start, imports", r"\[started\] config"),
    ("stages, report, power-off", r"reboot: Power down"),
)


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
    initrd.compress(raw, raw + ".lz4")  # as the ISO's own
    iso = IsoImage(ISO_LABEL, 0)
    iso.add(bootmod.KERNEL, Path(kernel).read_bytes())
    iso.add(bootmod.INITRD, Path(raw + ".lz4").read_bytes())
    iso.add("/isolinux/isolinux.bin", Path(bootmod.ISOLINUX_BIN).read_bytes())
    iso.add("/isolinux/ldlinux.c32", Path(bootmod.LDLINUX_C32).read_bytes())
    iso.add("/isolinux/isolinux.cfg", bootmod.isolinux_cfg(KERNEL_CMDLINE))
    iso.eltorito("/isolinux/isolinux.bin", bootcatfile="/BOOT/BOOT.CAT;1",
                 rr_bootcatname="boot.cat", boot_load_size=4, boot_info_table=True)  # fmt: skip
    out = os.path.join(workdir, "floor.iso")
    iso.write(out)
    return out


class Guest:
    """A fresh private copy of the Debian fixture for every boot (a customized guest would
    be 'already applied' the second time). `path` is None for the no-guest boots."""

    def __init__(self, workdir: str | None):
        self.path = os.path.join(workdir, "guest.raw") if workdir else None

    def disks(self) -> list[str]:
        if not self.path:
            return []
        run(["cp", "--sparse=always", str(guest_disks.image("debian")), self.path])
        return [self.path]


def timed_boot(iso: str, guest: Guest, media: str):
    vm = boot(iso, timeout=180, disks=guest.disks(), cdroms=[media])
    if not vm.powered_off:
        raise SystemExit(f"{iso}: did not power off\n{vm.log[-2000:]}")
    return vm


def timeline(iso: str, guest: Guest, media: str) -> dict[str, float]:
    """{phase: seconds} of one boot, from its serial lines stamped as QEMU writes them."""
    argv = ["timeout", "180", *command(iso, "/dev/stdout", disks=guest.disks(), cdroms=[media])]
    ends, started = {}, time.monotonic()
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as proc:  # fmt: skip
        for raw in proc.stdout:
            now, line = time.monotonic() - started, raw.decode(errors="replace")
            for phase, pattern in PHASES:
                if phase not in ends and re.search(pattern, line):
                    ends[phase] = now
    out, last = {}, 0.0
    for phase, _ in PHASES:
        if phase in ends:
            out[phase], last = ends[phase] - last, ends[phase]
    return out


def print_timelines(floor: str, iso: str, media: str, guest: Guest) -> None:
    a, b = timeline(floor, guest, media), timeline(iso, guest, media)
    print("where the time goes (one boot each, s):   floor    ISO", flush=True)
    for phase, _ in PHASES:
        fa, fb = (f"{t[phase]:6.2f}" if phase in t else "     -" for t in (a, b))
        print(f"  {phase:38} {fa} {fb}", flush=True)


def min_memory(iso: str, media: str, guest: Guest) -> int | None:
    """Bisect MEMORY_STEPS for the smallest RAM that still customizes the guest."""
    lo, hi, found = 0, len(MEMORY_STEPS) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        vm = boot(iso, timeout=180, memory=MEMORY_STEPS[mid], disks=guest.disks(),
                  cdroms=[media])  # fmt: skip
        ok = vm.powered_off and (vm.result or {}).get("status") == "ok"
        print(f"  {MEMORY_STEPS[mid]:4d} MB: {'ok' if ok else 'not customized'}", flush=True)
        if ok:
            found, hi = MEMORY_STEPS[mid], mid - 1
        else:
            lo = mid + 1
    return found


def compare(label: str, floor: str, iso: str, media: str, guest: Guest, runs: int):
    """Best of `runs` boots each, floor and ISO taking turns: the host's speed drifts."""
    floor_s = custom_s = float("inf")
    for _ in range(runs):
        floor_s = min(floor_s, timed_boot(floor, guest, media).seconds)
        vm = timed_boot(iso, guest, media)
        custom_s = min(custom_s, vm.seconds)
    result = vm.result or {}
    print(f"{label}: floor {floor_s:.1f} s, customization ISO {custom_s:.1f} s "
          f"= {custom_s / floor_s:.2f}x the floor", flush=True)  # fmt: skip
    print(f"  (its result: {result.get('reason') or result.get('status')}; "
          f"stage timings {result.get('timings')})", flush=True)  # fmt: skip
    return custom_s / floor_s, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="boots per measurement (best of them)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmtailor-bench-") as tmp:
        started = time.monotonic()
        cold = build_iso(os.path.join(tmp, "c.iso"), cache_dir=os.path.join(tmp, "cache"))
        cold_s = time.monotonic() - started
        started = time.monotonic()
        build_iso(os.path.join(tmp, "c2.iso"), cache_dir=os.path.join(tmp, "cache"))
        cached_s = time.monotonic() - started
        print(f"ISO build: cold {cold_s:.1f} s, cached {cached_s:.2f} s", flush=True)
        on_iso = os.path.join(os.path.dirname(cold.initrd), initrd.MEDIA_DIR)
        left = sum(os.path.getsize(os.path.join(t, n)) for t, _, ns in os.walk(on_iso) for n in ns)
        print(f"initrd {cold.initrd_size / 1e6:.1f} MB (target <= 20), with lvm2, xfs and "
              f"btrfs ({left / 1e6:.1f} MB uncompressed) on the ISO; "
              f"ISO {cold.iso_size / 1e6:.1f} MB", flush=True)  # fmt: skip

        media = write_media(configmod.parse({"hostname": "bench"}), lambda n: b"",
                            os.path.join(tmp, "media.iso"))  # fmt: skip
        floor = floor_iso(cold.kernel, tmp)
        guest = Guest(tmp)
        ratio, result = compare("boot to power-off, Debian guest (a)", floor, cold.iso, media,
                                guest, args.runs)  # fmt: skip
        print(f"  -> {ratio:.2f}x (target <= 1.6x)", flush=True)
        if result.get("status") != "ok":
            raise SystemExit("the bench customization failed: the ratio above means nothing")
        print_timelines(floor, cold.iso, media, guest)
        compare("boot to power-off, no guest disk", floor, cold.iso, media, Guest(None), args.runs)
        print("smallest guest RAM that customizes the guest (target 256 MB):", flush=True)
        found = min_memory(cold.iso, media, guest)
        print(f"  -> {found} MB" if found else "  -> none of the sizes tried", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
