"""Which of one guest's devices an fstab `spec` names.

Only ever called with one guest's devices: clones share UUIDs and labels, so looking a
tag up among every disk attached (the customization ISO, the config media, another
clone) finds the wrong filesystem as readily as the right one.
"""

from __future__ import annotations

from collections.abc import Sequence

from .devices import BlockDevice, disk_sort_key, split_dm_name, split_kernel_name, udev_unescape

_BY_DIRS = {
    "/dev/disk/by-uuid/": "UUID",
    "/dev/disk/by-label/": "LABEL",
    "/dev/disk/by-partuuid/": "PARTUUID",
    "/dev/disk/by-partlabel/": "PARTLABEL",
}
# /dev/<first>/… directories that are not volume groups.
_NOT_VGS = frozenset({"disk", "mapper", "md", "block", "char", "cdrom", "dm", "bus", "fd"})


def _strip_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def by_tag(tag: str, value: str, devices: Sequence[BlockDevice]) -> list[BlockDevice]:
    value = _strip_quotes(value)
    if tag in ("UUID", "PARTUUID"):
        # blkid prints most UUIDs in lower case, vfat's in upper; fstabs use either
        want = value.lower()
        attr = "uuid" if tag == "UUID" else "partuuid"
        return [d for d in devices if (getattr(d, attr) or "").lower() == want]
    attr = "label" if tag == "LABEL" else "partlabel"
    return [d for d in devices if getattr(d, attr) == value]


def guest_disks(devices: Sequence[BlockDevice]) -> list[str]:
    """The guest's whole disks in firmware order: the template's first disk is the
    clone's first disk, whatever the bus calls it now."""
    return sorted({d.disk for d in devices if d.disk}, key=disk_sort_key)


def by_kernel_name(path: str, devices: Sequence[BlockDevice]) -> list[BlockDevice]:
    """/dev/sda2 in the template's fstab is the clone's second partition of its first
    disk, be that vda, xvda, hda or nvme0n1 now."""
    split = split_kernel_name(path)
    if split is None:
        return []
    _, index, part = split
    disks = guest_disks(devices)
    if index >= len(disks):
        return []
    disk = disks[index]
    if part is None:
        return [d for d in devices if d.path == disk]
    return [d for d in devices if d.disk == disk and d.partition == part and d.path != disk]


def by_lvm_name(vg: str, lv: str, devices: Sequence[BlockDevice]) -> list[BlockDevice]:
    return [d for d in devices if d.vg == vg and d.lv == lv]


def resolve(spec: str, devices: Sequence[BlockDevice]) -> list[BlockDevice]:
    """Every device of `devices` that `spec` could mean (more than one is the caller's
    problem to report); an empty list when none does."""
    key, sep, value = spec.partition("=")
    if sep and key.upper() in ("UUID", "LABEL", "PARTUUID", "PARTLABEL"):
        return by_tag(key.upper(), value, devices)
    if not spec.startswith("/dev/"):
        return []
    for prefix, tag in _BY_DIRS.items():
        if spec.startswith(prefix):
            return by_tag(tag, udev_unescape(spec[len(prefix) :]), devices)
    exact = [d for d in devices if d.path == spec or spec in d.aliases]
    if exact:
        return exact
    parts = spec[len("/dev/") :].split("/")
    if len(parts) == 2 and parts[0] == "mapper":
        names = split_dm_name(parts[1])
        return by_lvm_name(*names, devices) if names else []
    if len(parts) == 2 and parts[0] not in _NOT_VGS:
        return by_lvm_name(parts[0], parts[1], devices)
    if len(parts) == 1:
        return by_kernel_name(spec, devices)
    return []
