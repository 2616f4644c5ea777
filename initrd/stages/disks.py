"""Stage `disks`: find the guest among the disks (never the config media or a CD),
activate its LVM volume groups, find its root (os-release + fstab) and plan its fstab."""

from __future__ import annotations

import os
from collections.abc import Sequence

from vmtailor.customizer.run import run
from vmtailor.customizer.storage import discover, filesystems
from vmtailor.customizer.storage.devices import BlockDevice
from vmtailor.customizer.storage.guest import find_guest

from .. import image
from ..modules import ModuleIndex
from . import Context, StageError, State, say

# lvm2 stays on the ISO (initrd/features/lvm.py): a symlink to it until it is mounted
LVM = "/usr/sbin/lvm"


def _mount_iso(ctx: Context, missing: list[str]) -> None:
    """Mount the customization ISO where the files the initrd left on it are expected.
    Only a CD drive's: a guest's disk may carry any label (and the guest is not trusted
    with what the kernel loads or vmtailor runs); the hypervisor attaches the CDs."""
    if os.path.ismount(image.ISO_MOUNT):
        return
    cds = [
        path
        for path, keys in sorted(ctx.probed.items())
        if os.path.basename(path).startswith("sr")
        and keys.get("TYPE") == "iso9660"
        and keys.get("LABEL") == image.ISO_LABEL
    ]
    if not cds:
        raise StageError(
            f"the guest needs {', '.join(missing)}, which the customization ISO carries: "
            f"no CD labelled {image.ISO_LABEL} is attached (boot it from the ISO as a CD)"
        )
    os.makedirs(image.ISO_MOUNT, exist_ok=True)
    ctx.mounts.mount(cds[0], image.ISO_MOUNT, "iso9660", readonly=True)
    say(f"  from the ISO on {cds[0]}: {', '.join(missing)}")


def load_filesystems(devices: Sequence[BlockDevice], ctx: Context) -> None:
    """The drivers for the filesystems on the guest's devices, with their softdeps, in one
    modprobe run — from the ISO, mounted first, if the initrd left them there. The kernel
    would load each at its first mount, one modprobe process per module; a module this
    leaves out (another nls table), it still loads on demand."""
    modules = filesystems.modules_for(d.fstype for d in devices)  # only what the image has
    if not modules:
        return
    index = ModuleIndex.load()
    if index is not None:
        modules = index.with_softdeps(modules)
        missing = index.missing(modules)
        if missing:
            _mount_iso(ctx, missing)
            missing = index.missing(modules)  # what the ISO did not bring
            if missing:
                raise StageError(
                    f"{', '.join(missing)}: not on the customization ISO "
                    "(one from another vmtailor build?)"
                )
    run(["modprobe", "-a", "-q", *modules], check=False)


def stage(state: State, ctx: Context) -> None:
    media = [state.config_device] if state.config_device else []
    media_disks = [b.disk for b in discover.sys_block() if b.path in media]
    devices = discover.guest_devices(media_disks, only=ctx.disks, known=ctx.probed)
    if not devices:
        raise StageError("no guest disks: only the customization and config media are attached")
    if any(d.fstype == "LVM2_member" for d in devices) and not os.path.exists(LVM):
        _mount_iso(ctx, ["lvm2"])
    devices += discover.logical_volumes(devices, ctx.mounts)
    for device in devices:
        say(f"  {device.describe()}")
    load_filesystems(devices, ctx)
    found = find_guest(devices, ctx.run_dir)
    ctx.found = found
    state.root = found.root.where
    state.warnings.extend(found.warnings)
    for warning in found.warnings:
        say(f"warning: {warning}")
    say(f"guest root: {found.root.where}")
