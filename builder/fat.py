"""A small in-process FAT12/FAT16 writer: config media (floppy and vfat images) and the
EFI boot image, with long file names, a fixed volume label, and no timestamps or serial
that vary from build to build. In-process so that media for N clones cost no N
subprocesses; enough of FAT for that, nothing more (no FAT32, no fragmentation)."""

from __future__ import annotations

import hashlib
import math
import re
import struct
import time
from dataclasses import dataclass, field

SECTOR = 512
FLOPPY_1440 = 2880  # sectors
_SHORT_OK = re.compile(r"^[A-Z0-9_$~!#%&'(){}@^`-]{1,8}(\.[A-Z0-9_$~!#%&'(){}@^`-]{1,3})?$")
ATTR_DIR, ATTR_ARCHIVE, ATTR_LABEL, ATTR_LFN = 0x10, 0x20, 0x08, 0x0F


@dataclass
class _Dir:
    entries: dict[str, _Dir | bytes] = field(default_factory=dict)
    cluster: int = 0


def _tree(files: dict[str, bytes]) -> _Dir:
    root = _Dir()
    for path, data in sorted(files.items()):
        parts = [p for p in path.split("/") if p]
        node = root
        for part in parts[:-1]:
            node = node.entries.setdefault(part, _Dir())
            if not isinstance(node, _Dir):
                raise ValueError(f"{path}: a file is in the way")
        node.entries[parts[-1]] = data
    return root


def _short_names(names: list[str]) -> dict[str, tuple[bytes, bool]]:
    """{long name: (11-byte 8.3 name, needs a long-name entry)}, unique in one folder."""
    out: dict[str, tuple[bytes, bool]] = {}
    used: set[bytes] = set()
    for name in names:
        if _SHORT_OK.match(name):
            base, _, ext = name.partition(".")
            short = base.ljust(8).encode() + ext.ljust(3).encode()
            out[name] = (short, False)
            used.add(short)
    for name in names:
        if name in out:
            continue
        clean = re.sub(r"[^A-Z0-9_$~!#%&'(){}@^`-]", "_", name.upper().lstrip("."))
        base, _, ext = clean.rpartition(".") if "." in clean else (clean, "", "")
        base, ext = base.replace(".", "")[:6] or "_", ext[:3]
        for n in range(1, 1000000):
            tail = f"~{n}"
            short = (base[: 8 - len(tail)] + tail).ljust(8).encode() + ext.ljust(3).encode()
            if short not in used:
                break
        used.add(short)
        out[name] = (short, True)
    return out


def _lfn_entries(name: str, short: bytes) -> list[bytes]:
    checksum = 0
    for b in short:
        checksum = (((checksum & 1) << 7) + (checksum >> 1) + b) & 0xFF
    units = name.encode("utf-16-le")
    chars = [units[i : i + 2] for i in range(0, len(units), 2)] + [b"\0\0"]
    count = math.ceil((len(chars) - 1) / 13)
    chars += [b"\xff\xff"] * (count * 13 - len(chars))
    entries = []
    for seq in range(count, 0, -1):  # stored last part first
        part = chars[(seq - 1) * 13 : seq * 13]
        order = seq | (0x40 if seq == count else 0)
        entries.append(
            bytes([order])
            + b"".join(part[0:5])
            + bytes([ATTR_LFN, 0, checksum])
            + b"".join(part[5:11])
            + b"\0\0"
            + b"".join(part[11:13])
        )
    return entries


def _entry_count(node: _Dir) -> int:
    """Directory entries a subfolder needs: . and .., then each name's (long name parts
    and) short entry."""
    shorts = _short_names(list(node.entries))
    return 2 + sum(
        1 + (math.ceil(len(name.encode("utf-16-le")) / 2 / 13) if shorts[name][1] else 0)
        for name in node.entries
    )


def _stamp(epoch: int) -> tuple[int, int]:
    t = time.gmtime(min(max(epoch, 315532800), 4354819198))  # FAT: 1980 to 2107
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), (
        ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    )


def _entry(short: bytes, attr: int, cluster: int, size: int, stamp: tuple[int, int]) -> bytes:
    tm, dt = stamp
    return struct.pack(
        "<11sBBBHHHHHHHI",
        short,
        attr,
        0,
        0,
        tm,
        dt,
        dt,
        cluster >> 16,
        tm,
        dt,
        cluster & 0xFFFF,
        size,
    )


class _Layout:
    def __init__(self, total: int, root_entries: int, floppy: bool):
        self.total, self.root_entries = total, root_entries
        self.root_sectors = root_entries * 32 // SECTOR
        self.spc = 1
        while True:
            self.fat_sectors = 1
            for _ in range(8):  # settle the circular FAT size / cluster count
                data = total - 1 - 2 * self.fat_sectors - self.root_sectors
                self.clusters = data // self.spc
                self.fat12 = self.clusters < 4085
                width = 1.5 if self.fat12 else 2
                self.fat_sectors = math.ceil((self.clusters + 2) * width / SECTOR)
            if self.clusters < 65525 or self.spc >= 64:
                break
            self.spc *= 2
        if floppy:
            self.fat_sectors = 9  # the standard 1.44 MB geometry
        self.data_start = 1 + 2 * self.fat_sectors + self.root_sectors
        self.cluster_bytes = self.spc * SECTOR


def image_size(files: dict[str, bytes]) -> int:
    """Sectors for a vfat image that holds `files` with some room: at least 1 MiB."""
    clusters = sum(math.ceil(len(d) / SECTOR) + 2 for d in files.values()) + 64
    return max(2048, clusters * 11 // 10 + 256)


def make_fat(
    files: dict[str, bytes],
    label: str,
    sectors: int | None = None,
    *,
    floppy: bool = False,
    epoch: int = 0,
) -> bytes:
    """A FAT image holding `files` ({"/dir/name": bytes}). `floppy` makes the standard
    1.44 MB floppy; otherwise `sectors` (default: sized to fit) picks FAT12 or FAT16."""
    if len(label) > 11 or label != label.upper():
        raise ValueError(f"FAT label {label!r}: at most 11 upper-case characters")
    sectors = FLOPPY_1440 if floppy else (sectors or image_size(files))
    lay = _Layout(sectors, 224 if floppy else 512, floppy)
    stamp = _stamp(epoch)
    root = _tree(files)
    clusters: list[bytes] = []  # contents, in cluster order, each padded
    chains: list[tuple[int, int]] = []  # (first cluster, count)

    def alloc(data: bytes) -> int:
        if not data:
            return 0
        first = 2 + len(clusters)
        count = math.ceil(len(data) / lay.cluster_bytes)
        padded = data.ljust(count * lay.cluster_bytes, b"\0")
        clusters.extend(
            padded[i * lay.cluster_bytes : (i + 1) * lay.cluster_bytes] for i in range(count)
        )
        chains.append((first, count))
        return first

    def dir_bytes(node: _Dir, parent: int, is_root: bool) -> bytes:
        out = []
        if is_root:
            out.append(_entry(label.ljust(11).encode(), ATTR_LABEL, 0, 0, stamp))
        else:
            out.append(_entry(b".          ", ATTR_DIR, node.cluster, 0, stamp))
            out.append(_entry(b"..         ", ATTR_DIR, parent, 0, stamp))
        shorts = _short_names(list(node.entries))
        for name, child in node.entries.items():
            short, long = shorts[name]
            if long:
                out += _lfn_entries(name, short)
            if isinstance(child, _Dir):
                out.append(_entry(short, ATTR_DIR, child.cluster, 0, stamp))
            else:
                out.append(
                    _entry(short, ATTR_ARCHIVE, child_clusters[id(child)], len(child), stamp)
                )
        return b"".join(out)

    # clusters: every subfolder first (its size depends only on its names), then files
    child_clusters: dict[int, int] = {}
    folders: list[tuple[_Dir, int]] = []

    def plan(node: _Dir, parent: int) -> None:
        for child in node.entries.values():
            if isinstance(child, _Dir):
                size = 32 * _entry_count(child)
                child.cluster = alloc(b"\0" * size)
                folders.append((child, node.cluster))
        for child in node.entries.values():
            if isinstance(child, _Dir):
                plan(child, child.cluster)

    plan(root, 0)
    files_in_order: list[bytes] = []

    def place_files(node: _Dir) -> None:
        for child in node.entries.values():
            if isinstance(child, _Dir):
                place_files(child)
            else:
                child_clusters[id(child)] = alloc(child)
                files_in_order.append(child)

    place_files(root)
    for folder, parent in folders:
        data = dir_bytes(folder, parent, False)
        first = folder.cluster
        for i in range(math.ceil(len(data) / lay.cluster_bytes)):
            chunk = data[i * lay.cluster_bytes : (i + 1) * lay.cluster_bytes]
            clusters[first - 2 + i] = chunk.ljust(lay.cluster_bytes, b"\0")
    root_data = dir_bytes(root, 0, True)
    if len(root_data) > lay.root_sectors * SECTOR:
        raise ValueError("too many entries in the root folder of a FAT image")
    if len(clusters) > lay.clusters:
        raise ValueError(
            f"{len(clusters) * lay.cluster_bytes} bytes do not fit a "
            f"{sectors * SECTOR}-byte FAT image"
        )

    media = 0xF0 if floppy else 0xF8
    fat = [0] * (lay.clusters + 2)
    fat[0], fat[1] = 0xF00 | media if lay.fat12 else 0xFF00 | media, 0xFFF if lay.fat12 else 0xFFFF
    eoc = 0xFFF if lay.fat12 else 0xFFFF
    for first, count in chains:
        for i in range(count):
            fat[first + i] = first + i + 1 if i < count - 1 else eoc
    if lay.fat12:
        raw = bytearray()
        for i in range(0, len(fat), 2):
            a, b = fat[i], fat[i + 1] if i + 1 < len(fat) else 0
            raw += bytes([a & 0xFF, ((a >> 8) & 0x0F) | ((b & 0x0F) << 4), b >> 4])
    else:
        raw = bytearray(struct.pack(f"<{len(fat)}H", *fat))
    fat_bytes = bytes(raw).ljust(lay.fat_sectors * SECTOR, b"\0")

    digest = hashlib.sha256(label.encode() + root_data + b"".join(clusters)).digest()
    serial = struct.unpack("<I", digest[:4])[0]  # from the content: same files, same serial
    boot = struct.pack(
        "<3s8sHBHBHHBHHHII",
        b"\xeb\x3c\x90",
        b"VMTAILOR",
        SECTOR,
        lay.spc,
        1,
        2,
        lay.root_entries,
        sectors if sectors < 65536 else 0,
        media,
        lay.fat_sectors,
        18 if floppy else 32,
        2 if floppy else 64,
        0,
        sectors if sectors >= 65536 else 0,
    ) + struct.pack(
        "<BBBI11s8s",
        0x00 if floppy else 0x80,
        0,
        0x29,
        serial,
        label.ljust(11).encode(),
        b"FAT12   " if lay.fat12 else b"FAT16   ",
    )
    boot = boot.ljust(510, b"\0") + b"\x55\xaa"
    image = bytearray(sectors * SECTOR)
    image[0:SECTOR] = boot
    offset = SECTOR
    for _ in range(2):
        image[offset : offset + len(fat_bytes)] = fat_bytes
        offset += len(fat_bytes)
    image[offset : offset + len(root_data)] = root_data
    data_at = lay.data_start * SECTOR
    blob = b"".join(clusters)
    image[data_at : data_at + len(blob)] = blob
    return bytes(image)
