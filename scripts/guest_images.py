#!/usr/bin/env python3
"""Fixture clone images for the offline (libguestfs) tests: small raw masters, built in
one libguestfs appliance from the fixture roots (scripts/fixture_roots.py), and cached in
/var/cache/vmtailor/images/<key>/ where key is the sha256 of this script and of every
fixture root file. Tests never write them (they are 0444): they clone them as qcow2
overlays, as a utility server clones its masters.

    python3 scripts/guest_images.py            # build (or find) them; print where
    sys.path.insert(0, "<repo>/scripts"); import guest_images
    guest_images.disks("debian")               # -> [Path] of the layout's raw disks

Layouts (fstab as a real install writes it; the journal lands on /var where /var is
separate, so that those mounts are exercised):
    debian     GPT; ext4 /boot by PARTUUID, ext4 / by UUID             (debian-12, ifupdown)
    lvm        MBR; ext4 /boot by UUID, PV with XFS root and /var LVs  (rocky-9)
    btrfs      GPT; one btrfs, / in subvolume @, /var in @var         (ubuntu-22.04, netplan)
    two-disk   disk 1: MBR ext4 / by LABEL; disk 2: whole-disk ext4 /var by UUID (alpine)
    data       MBR; ext4 with data only — not a guest
    corrupt    a qcow2 whose L1 table offset points past its end
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("VMTAILOR_IMAGE_CACHE", "/var/cache/vmtailor/images"))
MIB = 1 << 20
SECTOR = 512


@dataclass(frozen=True)
class Layout:
    name: str
    root: str | None  # the fixture root the guest's files come from
    disks: tuple[int, ...]  # sizes, MiB
    build: Callable  # build(g, devices, tree) -> fstab text


def key() -> str:
    """What the images are built from: this script, fixture_roots.py and its YAML."""
    h = hashlib.sha256()
    files = [Path(__file__).resolve(), HERE / "fixture_roots.py"]
    files += sorted((HERE / "fixture_roots").glob("*.yaml"))
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


# -- building, inside one appliance --------------------------------------------------
def _partition(g, dev: str, table: str, sizes_mib: list[int | None]) -> list[str]:
    """Partitions of the given sizes from 1 MiB on; None is the rest of the disk."""
    g.part_init(dev, table)
    start = MIB // SECTOR
    for size in sizes_mib:
        end = -34 if size is None and table == "gpt" else -1 if size is None else None
        if end is None:
            end = start + size * MIB // SECTOR - 1
        g.part_add(dev, "p", start, end)
        start = end + 1
    return [f"{dev}{i}" for i in range(1, len(sizes_mib) + 1)]


def _fill(g, tree: Path, fstab: str) -> None:
    """The fixture tree into whatever is mounted at the appliance's /, then its fstab.
    GNU tar keeps owners, modes, symlinks and xattrs."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = os.path.join(tmp, "tree.tar")
        subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner",
                        "-C", str(tree), "-cf", archive, "."], check=True)  # fmt: skip
        g.tar_in(archive, "/", xattrs=True)
    g.write("/etc/fstab", fstab.encode())
    if g.is_dir("/boot"):
        g.write("/boot/vmlinuz-6.1.0-vmt", b"not a kernel\n")


def _mount(g, dev: str, where: str, options: str = "") -> None:
    if where != "/":
        g.mkdir_p(where)
    g.mount_options(options, dev, where)


def _debian(g, devs, tree) -> str:
    boot, root = _partition(g, devs[0], "gpt", [64, None])
    g.part_set_name(devs[0], 1, "boot")
    g.part_set_name(devs[0], 2, "root")
    g.mkfs("ext4", boot, label="boot")
    g.mkfs("ext4", root)
    _mount(g, root, "/")
    _mount(g, boot, "/boot")
    fstab = f"""\
# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID={g.vfs_uuid(root)} /               ext4    errors=remount-ro 0       1
PARTUUID={g.part_get_gpt_guid(devs[0], 1).lower()} /boot  ext4    defaults        0       2
tmpfs           /tmp            tmpfs   nosuid,nodev    0       0
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto 0       0
"""
    _fill(g, tree, fstab)
    return fstab


def _lvm(g, devs, tree) -> str:
    boot, pv = _partition(g, devs[0], "msdos", [64, None])
    g.part_set_mbr_id(devs[0], 2, 0x8E)
    g.mkfs("ext4", boot)
    g.pvcreate(pv)
    g.vgcreate("vmtvg", [pv])
    g.lvcreate("root", "vmtvg", 320)
    g.lvcreate("var", "vmtvg", 320)
    g.lvcreate("swap", "vmtvg", 16)
    g.mkfs("xfs", "/dev/vmtvg/root")
    g.mkfs("xfs", "/dev/vmtvg/var")
    g.mkswap("/dev/vmtvg/swap")
    _mount(g, "/dev/vmtvg/root", "/")
    _mount(g, "/dev/vmtvg/var", "/var")
    _mount(g, boot, "/boot")
    fstab = f"""\
/dev/mapper/vmtvg-root  /                       xfs     defaults        0 0
UUID={g.vfs_uuid(boot)} /boot                   ext4    defaults        1 2
/dev/vmtvg/var          /var                    xfs     defaults        0 0
/dev/mapper/vmtvg-swap  none                    swap    defaults        0 0
"""
    _fill(g, tree, fstab)
    return fstab


def _btrfs(g, devs, tree) -> str:
    (part,) = _partition(g, devs[0], "gpt", [None])
    g.mkfs_btrfs([part], label="ubuntu")
    uuid = g.vfs_uuid(part)
    g.mount(part, "/")
    g.btrfs_subvolume_create("/@")
    g.btrfs_subvolume_create("/@var")
    g.umount("/")
    _mount(g, part, "/", "subvol=@")
    _mount(g, part, "/var", "subvol=@var")
    fstab = f"""\
UUID={uuid}	/	btrfs	defaults,subvol=@	0 1
UUID={uuid}	/var	btrfs	defaults,subvol=@var	0 2
LABEL=UEFI	/boot/efi	vfat	umask=0077,nofail	0 1
"""
    _fill(g, tree, fstab)
    return fstab


def _two_disk(g, devs, tree) -> str:
    (root,) = _partition(g, devs[0], "msdos", [None])
    g.mkfs("ext4", root, label="alproot")
    g.mkfs("ext4", devs[1])  # no partition table: the filesystem is the whole disk
    _mount(g, root, "/")
    _mount(g, devs[1], "/var")
    fstab = f"""\
LABEL=alproot	/	ext4	rw,relatime 0 1
UUID={g.vfs_uuid(devs[1])}	/var	ext4	rw,relatime 0 2
/dev/cdrom	/media/cdrom	iso9660	noauto,ro 0 0
tmpfs	/tmp	tmpfs	nosuid,nodev	0	0
"""
    _fill(g, tree, fstab)
    return fstab


def _data(g, devs, tree) -> str:
    (part,) = _partition(g, devs[0], "msdos", [None])
    g.mkfs("ext4", part, label="data")
    g.mount(part, "/")
    g.mkdir_p("/backups")
    g.write("/backups/readme.txt", b"data only: no operating system here\n")
    return ""


LAYOUTS = {
    layout.name: layout
    for layout in (
        Layout("debian", "debian-12", (160,), _debian),
        Layout("lvm", "rocky-9", (768,), _lvm),
        Layout("btrfs", "ubuntu-22.04", (320,), _btrfs),
        Layout("two-disk", "alpine-3.20", (96, 64), _two_disk),
        Layout("data", None, (32,), _data),
    )
}


def _disk_names(layout: Layout) -> list[str]:
    if len(layout.disks) == 1:
        return [f"{layout.name}.raw"]
    return [f"{layout.name}-{i}.raw" for i in range(1, len(layout.disks) + 1)]


def _corrupt(path: Path) -> None:
    """A qcow2 that qemu refuses to open: its L1 table offset is past the end."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    with open(path, "r+b") as f:
        f.seek(40)  # QCowHeader.l1_table_offset
        f.write(struct.pack(">Q", 0x7FFFFFFF000))


def _build(out: Path) -> dict:
    os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
    os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
    import fixture_roots
    import guestfs

    manifest: dict = {}
    g = guestfs.GuestFS(python_return_dict=True)
    plan = []
    for layout in LAYOUTS.values():
        paths = [out / n for n in _disk_names(layout)]
        for path, size in zip(paths, layout.disks, strict=True):
            with open(path, "wb") as f:
                f.truncate(size * MIB)
            g.add_drive_opts(str(path), format="raw")
        plan.append((layout, paths))
    g.launch()
    devices = iter(g.list_devices())
    with tempfile.TemporaryDirectory() as tmp:
        for layout, paths in plan:
            devs = [next(devices) for _ in paths]
            tree = None
            if layout.root:
                tree = fixture_roots.build(layout.root, Path(tmp, layout.name))
            fstab = layout.build(g, devs, tree)
            g.umount_all()
            if layout.name == "lvm":
                g.vg_activate_all(False)
            manifest[layout.name] = {
                "disks": [p.name for p in paths],
                "root": layout.root,
                "fstab": fstab,
            }
    g.shutdown()
    g.close()
    _corrupt(out / "corrupt.qcow2")
    manifest["corrupt"] = {"disks": ["corrupt.qcow2"], "root": None, "fstab": ""}
    for path in out.iterdir():
        path.chmod(0o444)  # masters: only ever read, through overlays
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


@contextlib.contextmanager
def _locked():
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # two pytest-xdist workers: one builds, one waits
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_all() -> Path:
    """The cache directory holding every layout, built first when missing."""
    final = CACHE / key()[:16]
    if (final / "manifest.json").exists():
        return final
    with _locked():
        if (final / "manifest.json").exists():
            return final
        tmp = CACHE / f".build-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        started = time.monotonic()
        try:
            _build(tmp)
            (tmp / "buildtime").write_text(f"{time.monotonic() - started:.1f}\n")
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for old in CACHE.iterdir():  # an edited script or fixture root: older builds go
            if old.is_dir() and old != final and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
    return final


def disks(name: str) -> list[Path]:
    """The raw (or, for corrupt, qcow2) disks of layout `name`, in the guest's order."""
    top = build_all()
    manifest = json.loads((top / "manifest.json").read_text())
    return [top / d for d in manifest[name]["disks"]]


def manifest() -> dict:
    return json.loads((build_all() / "manifest.json").read_text())


def main() -> int:
    started = time.monotonic()
    top = build_all()
    took = time.monotonic() - started
    print(f"{top} ({took:.1f} s; built in {(top / 'buildtime').read_text().strip()} s)")
    for name, entry in manifest().items():
        print(f"  {name:9} {' '.join(entry['disks'])}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
