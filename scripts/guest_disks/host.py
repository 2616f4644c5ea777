"""A fixture disk attached on this host as the guest's block devices, for tests to run
vmtailor's storage code on: partitions through loop + partx, and LVs through loop devices
at their extents (this kernel has no device-mapper), named as LVM names them so that
fstab's /dev/mapper paths resolve. Detached when the block ends, however it ends."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vmtailor.customizer.storage import discover
from vmtailor.customizer.storage.devices import BlockDevice, from_blkid

from .cache import CACHE
from .disk import attached
from .lvmloop import lv_loops


@contextlib.contextmanager
def attached_guest(
    image: str | Path, *, readonly: bool = False, group: str = ""
) -> Iterator[list[BlockDevice]]:
    with attached(str(image), readonly=readonly) as loop:
        devices = discover.block_devices([loop.device], group=group)
        with contextlib.ExitStack() as stack:
            for d in list(devices):
                if d.fstype != "LVM2_member":
                    continue
                lvs = stack.enter_context(
                    lv_loops(str(image), loop, d.partition, readonly=readonly)
                )
                for (vg, lv), path in sorted(lvs.items()):
                    props = discover.blkid(path)
                    devices.append(from_blkid(path, props, vg=vg, lv=lv, group=group))
            yield devices


@contextlib.contextmanager
def btrfs_lock() -> Iterator[None]:
    """One btrfs fixture mounted on this host at a time: every copy carries the same
    filesystem UUID, and the kernel takes two devices with one UUID for one filesystem.
    The kernel forgets the scanned devices afterwards."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".btrfs-mount.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            subprocess.run(["btrfs", "device", "scan", "--forget"], capture_output=True)


def dirty_xfs_log(device: str) -> None:
    """Leave the XFS on `device` as a clone of a running template has it: changes in its
    log, never replayed (written, fsynced, then the filesystem shut down under them)."""
    with tempfile.TemporaryDirectory(prefix="vmtailor-xfs-") as scratch:
        subprocess.run(["mount", device, scratch], check=True)
        try:
            for i in range(20):
                Path(scratch, f"file{i}").write_text("x")
            subprocess.run(["xfs_io", "-c", "fsync", f"{scratch}/file0"], check=True)
            subprocess.run(["xfs_io", "-x", "-c", "shutdown", scratch], check=True)
        finally:
            subprocess.run(["umount", scratch], check=True)
