"""Block devices as plain data: what planning needs to know about a guest's disks,
whoever found them (blkid in the initrd, libguestfs on a utility server, a test)."""

from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass, field, replace

from .filesystems import LINUX_FILESYSTEMS  # noqa: F401  (its home: one record each)

# Containers and things that are never mounted themselves.
NOT_FILESYSTEMS = frozenset({"LVM2_member", "crypto_LUKS", "swap", "linux_raid_member"})


@dataclass(frozen=True)
class Subvolume:
    """A btrfs subvolume, by id and path from the top level."""

    id: int
    path: str  # relative to the btrfs top level, no leading slash: "@", "@home"


@dataclass(frozen=True)
class BlockDevice:
    """A block device as blkid sees it: what it holds and where it sits."""

    path: str  # how to reach it here and now: /dev/vda2, /dev/mapper/vg-root
    fstype: str | None = None  # blkid TYPE: ext4, xfs, btrfs, swap, crypto_LUKS, LVM2_member
    uuid: str | None = None
    label: str | None = None
    partuuid: str | None = None
    partlabel: str | None = None
    disk: str | None = None  # the whole disk it is on (itself for a disk); None for an LV
    partition: int | None = None
    vg: str | None = None  # for an LVM logical volume
    lv: str | None = None
    array: str | None = None  # for an md array: its name or UUID, from its superblocks
    array_uuid: str | None = None  # for an md array: its UUID (what mdadm.conf names it by)
    # what it is built on: an LV's PVs, an md array's members (device paths)
    parents: tuple[str, ...] = field(default=())
    # btrfs subvolumes; None when nobody looked (then subvol= options are not checked)
    subvolumes: tuple[Subvolume, ...] | None = None
    # The guest the device belongs to. Clones share UUIDs and labels, so a tag is only
    # ever looked up among one guest's devices; "" when there is only one guest.
    group: str = ""
    aliases: tuple[str, ...] = field(default=())  # other names: /dev/disk/by-id/… links

    def to_dict(self) -> dict:
        data = asdict(self)
        return {k: v for k, v in data.items() if v not in (None, (), [], "")}

    @classmethod
    def from_dict(cls, data: dict) -> BlockDevice:
        data = dict(data)
        if data.get("subvolumes") is not None:
            data["subvolumes"] = tuple(Subvolume(**s) for s in data["subvolumes"])
        data["aliases"] = tuple(data.get("aliases", ()))
        data["parents"] = tuple(data.get("parents", ()))
        return cls(**data)

    def with_(self, **changes) -> BlockDevice:
        return replace(self, **changes)

    def describe(self) -> str:
        what = self.fstype or "no filesystem"
        name = f"{self.vg}/{self.lv}" if self.vg else None
        if self.array:
            name = f"md {self.array}"
        return f"{self.path} ({name + ', ' if name else ''}{what})"


def parse_blkid_export(text: str) -> dict[str, str]:
    """`blkid -o export` (or `-p -o export`) output for one device: KEY=value lines,
    values shell-quoted by blkid when they hold blanks."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value]
        out[key.strip()] = parts[0] if parts else ""
    return out


def from_blkid(path: str, props: dict[str, str], **extra) -> BlockDevice:
    """A device from blkid's keys: low-level probing (-p) names partition-table fields
    PART_ENTRY_*, the cache-based output PARTUUID/PARTLABEL."""
    number = props.get("PART_ENTRY_NUMBER")
    if number and number.isdigit():
        extra["partition"] = int(number)
    return BlockDevice(
        path=path,
        fstype=props.get("TYPE") or None,
        uuid=props.get("UUID") or None,
        label=props.get("LABEL") or None,
        partuuid=props.get("PARTUUID") or props.get("PART_ENTRY_UUID") or None,
        partlabel=props.get("PARTLABEL") or props.get("PART_ENTRY_NAME") or None,
        **extra,
    )


# -- kernel device names ------------------------------------------------------------
# The same disk is sda on SATA/SCSI, vda on virtio, xvda on Xen, hda on old IDE and
# nvme0n1 on NVMe: a clone attached differently than its template keeps its fstab.
_LETTERED = re.compile(r"^(?P<kind>sd|vd|xvd|hd)(?P<letters>[a-z]+)(?P<part>\d+)?$")
_NVME = re.compile(r"^nvme(?P<ctrl>\d+)n(?P<ns>\d+)(?:p(?P<part>\d+))?$")
_NUMBERED = re.compile(r"^(?P<kind>mmcblk|loop|nbd)(?P<num>\d+)(?:p(?P<part>\d+))?$")


def _letters_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - ord("a") + 1)
    return n - 1


def split_kernel_name(name: str) -> tuple[str, int, int | None] | None:
    """("sd", disk index, partition) for a kernel disk or partition name, or None.
    nvme1n1p2 -> ("nvme", 1, 2): one namespace per controller, as hypervisors attach."""
    name = name.removeprefix("/dev/")
    m = _LETTERED.match(name)
    if m:
        part = m.group("part")
        return m.group("kind"), _letters_index(m.group("letters")), int(part) if part else None
    m = _NVME.match(name)
    if m:
        part = m.group("part")
        return "nvme", int(m.group("ctrl")) + int(m.group("ns")) - 1, int(part) if part else None
    m = _NUMBERED.match(name)
    if m:
        part = m.group("part")
        return m.group("kind"), int(m.group("num")), int(part) if part else None
    return None


def disk_sort_key(path: str) -> tuple:
    """Disks in the order the firmware would number them: by index, then by name."""
    split = split_kernel_name(path)
    name = path.removeprefix("/dev/")
    if split is None:
        return (1, 0, name)
    return (0, split[1], name)


# -- LVM names ----------------------------------------------------------------------
def dm_name(vg: str, lv: str) -> str:
    """The device-mapper name LVM gives an LV: dashes in either name doubled."""
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


def split_dm_name(name: str) -> tuple[str, str] | None:
    """("vg", "lv") from a device-mapper name such as my--vg-root, or None."""
    i = 0
    while i < len(name):
        if name[i] == "-":
            if i + 1 < len(name) and name[i + 1] == "-":
                i += 2
                continue
            vg, lv = name[:i], name[i + 1 :]
            if vg and lv:
                return vg.replace("--", "-"), lv.replace("--", "-")
            return None
        i += 1
    return None


# -- udev's /dev/disk/by-* names ------------------------------------------------------
def udev_unescape(text: str) -> str:
    """udev writes a blank in a by-label link as \\x20 and a slash as \\x2f."""
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)
