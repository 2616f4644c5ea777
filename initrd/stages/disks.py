"""Stage `disks`: find the guest among the disks (never the config media or a CD),
activate its LVM volume groups, find its root (os-release + fstab) and plan its fstab."""

from __future__ import annotations

from collections.abc import Sequence

from vmtailor.customizer.run import run
from vmtailor.customizer.storage import discover
from vmtailor.customizer.storage.devices import BlockDevice
from vmtailor.customizer.storage.guest import find_guest

from . import Context, StageError, State, say

# The driver the image has for each filesystem a guest may mount (initrd/features/
# filesystems.py), and the nls tables FAT's default codepage and iocharset need
# (Debian's kernel: cp437, ascii). Only what the image has: a name modprobe cannot find
# is an error on the console, and kmod's modprobe gives up at the first one.
DRIVERS = {"ext2": "ext4", "ext3": "ext4", "ext4": "ext4", "xfs": "xfs", "btrfs": "btrfs"}
FAT = ("vfat", "nls_cp437", "nls_ascii")


def load_filesystems(devices: Sequence[BlockDevice]) -> None:
    """The drivers for the filesystems on the guest's devices, in one modprobe run. The
    kernel would load each at its first mount, one modprobe process per module; a module
    this leaves out (another nls table), the kernel still loads on demand."""
    fstypes = {d.fstype for d in devices}
    modules = sorted({DRIVERS[t] for t in fstypes if t in DRIVERS})
    if "vfat" in fstypes:
        modules += FAT
    if modules:
        run(["modprobe", "-a", "-q", *modules], check=False)


def stage(state: State, ctx: Context) -> None:
    media = [state.config_device] if state.config_device else []
    media_disks = [b.disk for b in discover.sys_block() if b.path in media]
    devices = discover.guest_devices(media_disks, only=ctx.disks, known=ctx.probed)
    if not devices:
        raise StageError("no guest disks: only the customization and config media are attached")
    devices += discover.logical_volumes(devices, ctx.mounts)
    for device in devices:
        say(f"  {device.describe()}")
    load_filesystems(devices)
    found = find_guest(devices, ctx.run_dir)
    ctx.found = found
    state.root = found.root.where
    state.warnings.extend(found.warnings)
    for warning in found.warnings:
        say(f"warning: {warning}")
    say(f"guest root: {found.root.where}")
