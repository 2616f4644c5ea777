"""One guest's block devices inside a shared appliance, as storage.BlockDevice data.

Only the guest's own disks are ever looked at: clones of one master carry the same
filesystem UUIDs, labels, partition GUIDs and LVM names, so anything found on another
guest's disk would be indistinguishable from the guest's own. Every device carries the
guest's name as its `group`, which plan_mounts() also checks.

Each device is probed by the appliance's `blkid -p` (one process per device: the same
low-level probing the initrd does, and the same fields — PART_ENTRY_UUID is the GPT
partition GUID or, on MBR, the disk signature and partition number).

md RAID: the appliance assembles every array it can at launch (`mdadm -As`, twice, the
second time with `--run`), over every guest's disks at once — two clones' members of
one array UUID can make one array, or one clone's array is made and the other's not.
So before a guest with RAID members is looked at, whatever the appliance assembled is
stopped, and the guest's own arrays are assembled from its own members only, read-only
(customizer.storage.md); the arrays under a read-write mount are switched to read-write
once the plan is known (writable_md)."""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..customizer.storage import md
from ..customizer.storage.devices import BlockDevice, from_blkid

log = logging.getLogger("vmtailor.offline")

_PARTITION_LABEL = re.compile(r"^(?P<disk>[a-z]+)(?P<number>\d+)$")


@dataclass
class GuestDevices:
    devices: list[BlockDevice]
    lvm: bool = False  # its volume groups are active (under a filter): deactivate after
    warnings: list[str] = field(default_factory=list)
    md: md.Assembled = field(default_factory=lambda: md.Assembled([], []))  # stop after


def partitions_by_disk(labels: dict[str, str]) -> dict[str, list[tuple[int, str]]]:
    """{disk label: [(partition number, appliance device)]} from list_disk_labels(),
    which names a labelled disk's partitions label1, label2, …"""
    out: dict[str, list[tuple[int, str]]] = {}
    for label, device in labels.items():
        m = _PARTITION_LABEL.match(label)
        if m:
            out.setdefault(m.group("disk"), []).append((int(m.group("number")), device))
    for parts in out.values():
        parts.sort()
    return out


def _blkid(g, path: str) -> dict[str, str]:
    """blkid's keys for one device; {} for nothing recognisable (an extended
    partition's stub, an empty disk)."""
    try:
        return dict(g.blkid(path))
    except RuntimeError as exc:
        log.debug("blkid %s: %s", path, exc)
        return {}


def _disk_devices(g, disk: str, parts: Sequence[tuple[int, str]], group: str):
    if not parts:  # a filesystem (or PV) on the whole disk
        return [from_blkid(disk, _blkid(g, disk), disk=disk, group=group)]
    out = []
    for number, path in parts:
        props = _blkid(g, path)
        out.append(from_blkid(path, props, disk=disk, partition=number, group=group))
    return out


def _lvm_volumes(g, pvs: list[str], group: str) -> list[BlockDevice]:
    """Activate the guest's volume groups with LVM confined to its own PVs. The filter
    is what makes this safe: unfiltered, LVM sees every clone's copy of one PV and
    refuses (or picks one). lvm_set_filter first deactivates whatever was active."""
    g.lvm_set_filter(pvs)
    pv_names = {g.pvuuid(pv): pv for pv in g.pvs()}  # both dashed, as vgpvuuids
    out = []
    for path in g.lvs():  # /dev/VG/LV
        _, _, vg, lv = path.split("/", 3)
        parents = tuple(pv_names[u] for u in g.vgpvuuids(vg) if u in pv_names)
        out.append(from_blkid(path, _blkid(g, path), vg=vg, lv=lv, parents=parents, group=group))
    return out


def appliance_shell(g) -> md.Shell:
    """md.Shell for the appliance: a command in its own root (not the guest's), its exit
    status read from the output's last line."""

    def shell(argv) -> tuple[int, str]:
        # udev in the appliance answers a stopped array by taking its members away and
        # back (and into a new inactive array): wait until it is done with them
        settle = "; udevadm settle" if list(argv[:2]) == ["mdadm", "--stop"] else ""
        out = g.debug("sh", [f'{shlex.join(argv)} 2>&1; s=$?{settle}; echo "vmtailor-status=$s"'])
        body, _, status = out.rstrip().rpartition("vmtailor-status=")
        return (int(status) if status.isdigit() else 1), body

    return shell


def stop_all_md(g) -> None:
    """Stop every array running in the appliance, its LVs deactivated first: at launch it
    assembled what it found on any guest's disks (an earlier guest's were stopped)."""
    arrays = g.list_md_devices()
    if not arrays:
        return
    g.vg_activate_all(False)
    md.stop(arrays, appliance_shell(g))


def _members_back(g, members: list[str]) -> None:
    """udev takes a stopped array's members away and adds them back, and `udevadm settle`
    right after the stop can return before it has (seen: mdadm --examine finding no
    /dev/sda1). Wait, at most ~10 s, until every member is a block device again; if one
    is not, examine says which."""
    present = " && ".join(f"test -b {shlex.quote(m)}" for m in members)
    g.debug("sh", [f"i=0; until {present}; do i=$((i+1)); [ $i -ge 100 ] && break; "
                   "sleep 0.1; udevadm settle; done; echo done"])  # fmt: skip


def _md_arrays(g, members: list[str], group: str) -> tuple[list[BlockDevice], md.Assembled]:
    stop_all_md(g)
    _members_back(g, members)
    shell = appliance_shell(g)
    done = md.assemble(members, shell)
    out = [md.as_device(array, path, _blkid(g, path), group) for array, path in done.arrays]
    return out, done


def guest_devices(
    g,
    disks: Sequence[str],
    labels: Sequence[str],
    partitions: dict[str, list[tuple[int, str]]],
    group: str,
) -> GuestDevices:
    """The devices on `disks` (appliance names, in the guest's order; `labels` their
    drive labels, `partitions` from partitions_by_disk()), with the LVs of any volume
    group on them activated."""
    devices: list[BlockDevice] = []
    for disk, label in zip(disks, labels, strict=True):
        devices += _disk_devices(g, disk, partitions.get(label, []), group)
    found = GuestDevices(devices)
    members = [d.path for d in devices if d.fstype == "linux_raid_member"]
    if members:
        arrays, found.md = _md_arrays(g, members, group)
        found.devices += arrays
        found.warnings += found.md.warnings
    pvs = [d.path for d in found.devices if d.fstype == "LVM2_member"]
    if pvs:
        found.lvm = True
        found.devices += _lvm_volumes(g, pvs, group)
    return found


def writable_md(g, found: GuestDevices, mounts: Sequence, devices: Sequence[BlockDevice]):
    """Switch the guest's arrays under `mounts` (planned read-write) to read-write."""
    under = md.holding([m.device.path for m in mounts], devices)
    for array, path in found.md.arrays:
        if path in under:
            md.readwrite(array, path, appliance_shell(g))


def release_md(g, found: GuestDevices) -> None:
    """Stop the guest's arrays (after its LVs are deactivated)."""
    md.stop(found.md.paths, appliance_shell(g))


def release_lvm(g) -> None:
    """Deactivate the guest's LVs. The filter stays on its PVs until the next guest's
    replaces it: lvm_clear_filter would reactivate every VG, and clones' duplicate PVs
    make that fail ("PVs appear on duplicate devices")."""
    g.vg_activate_all(False)
