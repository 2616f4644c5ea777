"""Stage `disks`: find the guest among the disks (never the config media or a CD),
activate its LVM volume groups, find its root (os-release + fstab) and plan its fstab."""

from __future__ import annotations

from vmtailor.customizer.storage import discover
from vmtailor.customizer.storage.guest import find_guest

from . import Context, StageError, State, say


def stage(state: State, ctx: Context) -> None:
    media = [state.config_device] if state.config_device else []
    media_disks = [b.disk for b in discover.sys_block() if b.path in media]
    devices = discover.guest_devices(media_disks, only=ctx.disks)
    if not devices:
        raise StageError("no guest disks: only the customization and config media are attached")
    devices += discover.logical_volumes(devices, ctx.mounts)
    for device in devices:
        say(f"  {device.describe()}")
    found = find_guest(devices, ctx.run_dir)
    ctx.found = found
    state.root = found.root.where
    state.warnings.extend(found.warnings)
    for warning in found.warnings:
        say(f"warning: {warning}")
    say(f"guest root: {found.root.where}")
