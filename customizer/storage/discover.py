"""Finding block devices: the kernel's list in /sys/class/block, what is on each from
`blkid -p` (low-level probing: no cache, no udev), and LVM volumes on top."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import VmtailorError
from ..run import run
from . import lvm, md
from .devices import BlockDevice, disk_sort_key, from_blkid, parse_blkid_export
from .errors import StorageError
from .mount import Mounts

SYS_BLOCK = "/sys/class/block"
# Never a guest disk: RAM disks, compressed swap, device-mapper (LVs come from lvm),
# md arrays (md_arrays() assembles a guest's own).
_NEVER = ("ram", "zram", "dm-", "md")


@dataclass(frozen=True)
class SysBlock:
    """A block device as /sys/block describes it."""

    name: str  # vda2
    disk: str  # vda (itself for a whole disk)
    partition: int | None
    size: int  # bytes
    removable: bool
    readonly: bool

    @property
    def path(self) -> str:
        return f"/dev/{self.name}"

    @property
    def kind(self) -> str:
        if self.disk.startswith("sr"):
            return "cdrom"
        if self.disk.startswith("fd"):
            return "floppy"
        return "disk"


def _read(path: str, default: str = "") -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return default


def sys_block(top: str = SYS_BLOCK) -> list[SysBlock]:
    """Every disk and partition the kernel knows, disks in firmware order."""
    out = []
    try:
        names = os.listdir(top)
    except OSError:
        return []
    for name in names:
        if name.startswith(_NEVER):
            continue
        entry = os.path.join(top, name)
        number = _read(os.path.join(entry, "partition"))
        if number.isdigit():
            disk = os.path.basename(os.path.dirname(os.path.realpath(entry)))
        else:
            disk = name
        disk_dir = os.path.join(top, disk)
        out.append(
            SysBlock(
                name=name,
                disk=disk,
                partition=int(number) if number.isdigit() else None,
                size=int(_read(os.path.join(entry, "size"), "0") or 0) * 512,
                removable=_read(os.path.join(disk_dir, "removable")) == "1",
                readonly=_read(os.path.join(entry, "ro")) == "1",
            )
        )
    return sorted(out, key=lambda b: (disk_sort_key(b.disk), b.partition or 0))


def blkid(path: str) -> dict[str, str]:
    """What blkid finds on `path` by probing it directly; {} for nothing (or no medium)."""
    return blkid_many([path]).get(path, {})


def blkid_many(paths: Sequence[str]) -> dict[str, dict[str, str]]:
    """blkid's low-level probe of every path in one run (a process per device costs ~0.1 s
    in the initrd): path -> its keys, {} for a path with nothing blkid could name — no
    medium, no signature, an I/O error or two signatures at once.

    blkid stops at the first device it cannot read at all — an empty CD drive ("No medium
    found": a VM's default drive reports a size all the same), an unbound loop device —
    and names none after it. So the devices after the last one it named go round again;
    a round that names none drops its first device (nothing there, or the one that
    stopped it). Only those rounds cost a process more."""
    found: dict[str, dict[str, str]] = {path: {} for path in paths}
    todo = list(paths)
    while todo:
        proc = run(["blkid", "-p", "-o", "export", *todo], check=False, timeout=60 * len(todo))
        # one block of KEY=value lines per device it could name, each opened by DEVNAME=
        props, last = None, -1
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            if line.startswith("DEVNAME="):
                name = line.removeprefix("DEVNAME=")
                props = found.get(name)
                if name in todo:
                    last = max(last, todo.index(name))
            elif props is not None:
                props.update(parse_blkid_export(line))
        if proc.returncode == 0:  # every one named
            break
        todo = todo[last + 1 :] if last >= 0 else todo[1:]
    return found


def probe(
    blocks: Iterable[SysBlock], group: str = "", known: Mapping[str, dict[str, str]] | None = None
) -> list[BlockDevice]:
    """What is on each of `blocks`: blkid's keys from `known` (an earlier blkid_many of
    the same devices, nothing written since) or, for the rest, from one blkid run."""
    wanted = [b for b in blocks if b.size != 0]  # not an empty CD drive, an extended stub
    props = dict(known or {})
    props.update(blkid_many([b.path for b in wanted if b.path not in props]))
    return [
        from_blkid(b.path, props[b.path], disk=f"/dev/{b.disk}", partition=b.partition, group=group)
        for b in wanted
    ]


def block_devices(disks: Sequence[str] | None = None, group: str = "") -> list[BlockDevice]:
    """Devices on `disks` (/dev/vda, /dev/loop3 — each with its partitions), or on every
    disk the kernel knows when None."""
    wanted = None if disks is None else {d.removeprefix("/dev/") for d in disks}
    blocks = [b for b in sys_block() if wanted is None or b.disk in wanted]
    if wanted is not None:
        missing = wanted - {b.disk for b in blocks}
        if missing:
            raise StorageError(f"no such disk: {', '.join(sorted(missing))}")
    return probe(blocks, group)


def logical_volumes(devices: Sequence[BlockDevice], mounts: Mounts) -> list[BlockDevice]:
    """Activate the volume groups on `devices`' LVM members and return their LVs; the
    deactivation goes on `mounts` so that it happens after the last unmount."""
    pvs = [d.path for d in devices if d.fstype == "LVM2_member"]
    if not pvs:
        return []
    lvm.activate(pvs)
    lvs = [lv for lv in lvm.list_lvs(pvs) if lv.active and lv.mountable]
    mounts.push("deactivate LVM", lambda: lvm.deactivate([lv.vg for lv in lvs], pvs))
    group = devices[0].group
    props = blkid_many([lv.dm_path for lv in lvs])
    return [
        from_blkid(
            lv.dm_path, props[lv.dm_path], vg=lv.vg, lv=lv.lv, parents=lv.devices, group=group
        )
        for lv in lvs
    ]


def md_arrays(
    devices: Sequence[BlockDevice], mounts: Mounts, examined: Sequence[md.Member] | None = None
) -> tuple[list[BlockDevice], md.Assembled]:
    """Assemble, read-only, the md arrays on `devices`' RAID members (md.assemble) and
    return them, with what was assembled (its warnings; md.readwrite takes its arrays);
    stopping them goes on `mounts`, after the LVM deactivation and unmounts that come
    later. An array's members are its `parents`."""
    members = [d.path for d in devices if d.fstype == "linux_raid_member"]
    if not members:
        return [], md.Assembled([], [])
    done = md.assemble(members, examined=examined)
    mounts.push("stop md arrays", lambda: md.stop(done.paths))
    group = devices[0].group
    props = blkid_many(done.paths)
    out = [md.as_device(array, path, props[path], group) for array, path in done.arrays]
    return out, done


def scan_btrfs(devices: Sequence[BlockDevice]) -> None:
    """Tell the kernel about every member of a multi-device btrfs before mounting one."""
    members = [d.path for d in devices if d.fstype == "btrfs"]
    if not members:
        return
    try:
        run(["btrfs", "device", "scan", *members], check=False)
    except VmtailorError:
        pass  # no btrfs tool: a single-device btrfs mounts without a scan


def guest_devices(
    exclude_disks: Iterable[str] = (),
    *,
    only: Sequence[str] | None = None,
    label: str = "VMTCONFIG",
    known: Mapping[str, dict[str, str]] | None = None,
) -> list[BlockDevice]:
    """The guest's disks as the initrd sees them: every disk (or those in `only`) but CD
    and floppy drives, `exclude_disks`, and any disk that carries an ISO 9660 filesystem
    (the customization ISO attached as a disk) or the config media's label. `known`:
    blkid's keys for devices probed already (the search for the config media)."""
    excluded = {d.removeprefix("/dev/") for d in exclude_disks}
    wanted = None if only is None else {d.removeprefix("/dev/") for d in only}
    blocks = [
        b
        for b in sys_block()
        if b.kind == "disk" and b.disk not in excluded and (wanted is None or b.disk in wanted)
    ]
    devices = probe(blocks, known=known)
    media = {d.disk for d in devices if d.fstype in ("iso9660", "udf") or d.label == label}
    return [d for d in devices if d.disk not in media]
