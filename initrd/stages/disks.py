"""Stage `disks`: find the guest among the disks (never the config media or a CD),
assemble its md arrays (read-only) and activate its LVM volume groups, find its root
(os-release + fstab), plan its fstab, and let the arrays under a planned mount be
written."""

from __future__ import annotations

import os
from collections.abc import Sequence

from vmtailor.customizer.run import run
from vmtailor.customizer.storage import discover, filesystems, md
from vmtailor.customizer.storage.devices import BlockDevice
from vmtailor.customizer.storage.guest import find_guest

from .. import image
from ..modules import ModuleIndex
from . import Context, StageError, State, say

# lvm2 and mdadm stay on the ISO (initrd/features/lvm.py, md.py): a symlink to each
# until it is mounted
LVM = "/usr/sbin/lvm"
MDADM = "/usr/sbin/mdadm"


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


def _load(modules: list[str], ctx: Context, what: str) -> None:
    """modprobe `modules` with their softdeps in one run, from the ISO (mounted first)
    when the initrd left them there."""
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
                    f"(one from another vmtailor build?){what}"
                )
    run(["modprobe", "-a", "-q", *modules], check=False)


def assemble_md(devices: Sequence[BlockDevice], ctx: Context):
    """The guest's md arrays, read-only: mdadm and the md drivers from the ISO first."""
    members = [d for d in devices if d.fstype == "linux_raid_member"]
    if not members:
        return [], md.Assembled([], [])
    if not os.path.exists(MDADM):
        _mount_iso(ctx, ["mdadm"])
    examined = md.examine([d.path for d in members])
    levels = {m.level for m in examined}
    # a level not in LEVEL_MODULES (a newer one): the kernel asks modprobe by its alias
    wanted = {md.LEVEL_MODULES.get(level, "") for level in levels} - {""}
    _load(["md_mod", *sorted(wanted)], ctx, " — the guest's md RAID needs it")
    arrays, done = discover.md_arrays(devices, ctx.mounts, examined)
    for warning in done.warnings:
        say(f"warning: {warning}")
    return arrays, done


def writable_md(found, done: md.Assembled) -> None:
    """Switch the arrays under a planned mount to read-write; the rest stay read-only."""
    under = md.holding([m.device.path for m in found.plan.mounts], found.devices)
    for array, path in done.arrays:
        if path in under:
            md.readwrite(array, path)
            say(f"  {path}: read-write")


def load_filesystems(devices: Sequence[BlockDevice], ctx: Context) -> None:
    """The drivers for the filesystems on the guest's devices, with their softdeps, in one
    modprobe run — from the ISO, mounted first, if the initrd left them there. The kernel
    would load each at its first mount, one modprobe process per module; a module this
    leaves out (another nls table), it still loads on demand."""
    modules = filesystems.modules_for(d.fstype for d in devices)  # only what the image has
    if modules:
        _load(list(modules), ctx, "")


def stage(state: State, ctx: Context) -> None:
    media = [state.config_device] if state.config_device else []
    media_disks = [b.disk for b in discover.sys_block() if b.path in media]
    devices = discover.guest_devices(media_disks, only=ctx.disks, known=ctx.probed)
    if not devices:
        raise StageError("no guest disks: only the customization and config media are attached")
    arrays, assembled = assemble_md(devices, ctx)
    devices += arrays
    if any(d.fstype == "LVM2_member" for d in devices) and not os.path.exists(LVM):
        _mount_iso(ctx, ["lvm2"])
    devices += discover.logical_volumes(devices, ctx.mounts)
    for device in devices:
        say(f"  {device.describe()}")
    load_filesystems(devices, ctx)
    found = find_guest(devices, ctx.run_dir)
    ctx.found = found
    state.root = found.root.where
    writable_md(found, assembled)
    state.warnings.extend(assembled.warnings + found.warnings)
    for warning in found.warnings:
        say(f"warning: {warning}")
    say(f"guest root: {found.root.where}")
