"""Finding one guest's root inside the appliance: each of its Linux filesystems mounted
read-only without any journal replay, checked for etc/fstab and an OS release file
(roots.look_for_root), and unmounted again — then storage's own choose_root() and
plan_mounts() decide, exactly as they do in the initrd. On btrfs the top level and each of
its subvolumes is looked at through one mount (a GuestfsRoot whose / is the subvolume's
directory)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..customizer.storage.devices import BlockDevice, Subvolume
from ..customizer.storage.guest import FoundGuest, plan_guest
from ..customizer.storage.mount import mount_options
from ..customizer.storage.roots import RootCandidate, look_for_root
from .guestfs_root import GuestfsRoot, error_text

log = logging.getLogger("vmtailor.offline")


def _candidate(g, device: BlockDevice, top: str, subvol: str | None, is_default: bool):
    return look_for_root(GuestfsRoot(g, device.path, top=top), device, subvol, is_default)


def _mount_ro(g, device: BlockDevice, options: Sequence[str] = ()) -> None:
    opts = ",".join(mount_options(device.fstype, options, readonly=True))
    g.mount_vfs(opts, device.fstype, device.path, "/")


def look_inside(g, device: BlockDevice) -> tuple[BlockDevice, list[RootCandidate]]:
    """What `device` holds where a root could be, and the device with its btrfs
    subvolumes filled in. Leaves nothing mounted."""
    try:
        if device.fstype != "btrfs":
            _mount_ro(g, device)
            return device, [_candidate(g, device, "/", None, True)]
        _mount_ro(g, device, ("subvolid=5",))
        listed = [
            (s["btrfssubvolume_id"], s["btrfssubvolume_top_level_id"], s["btrfssubvolume_path"])
            for s in g.btrfs_subvolume_list("/")
        ]
        default = g.btrfs_subvolume_get_default("/")
        device = device.with_(subvolumes=tuple(Subvolume(i, p) for i, _, p in listed))
        found = [_candidate(g, device, "/", "", default == 5)]
        for sid, parent, path in listed:
            if parent == 5 or sid == default:
                found.append(_candidate(g, device, "/" + path, path, sid == default))
        return device, found
    finally:
        g.umount_all()


def find_guest(g, devices: Sequence[BlockDevice]) -> FoundGuest:
    """One guest's root among its own `devices`, and its mounts planned from its fstab."""
    return plan_guest(devices, lambda device: look_inside(g, device), RuntimeError, error_text)
