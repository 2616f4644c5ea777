"""Fixture guest disks for integration and boot tests, built as root on the host with
loop devices, partx, mkfs and debootstrap, and cached in /var/cache/vmtailor/guests/
(see cache.py). One debootstrap tree (tree.py) is cut into every bootable layout. The
layouts virt-inspector is the oracle for (oracle.py) are built in a libguestfs appliance
from the fixture roots instead: md RAID and LVM need a kernel this host lacks.

    sys.path.insert(0, "<repo>/scripts"); import guest_disks
    guest_disks.image("debian")        # -> Path of the cached raw image, built if needed

    python3 scripts/guest_disks all     # build them all (the first run takes minutes)
    python3 scripts/guest_disks --list

Images: debian (a), el-lvm (b), btrfs (c), nofstab and luks (d); el6, split-usr,
md-raid, btrfs-home and ubuntu-lsb (oracle.py). Raw, sparse: copy one
(`cp --sparse=always`) before anything writes to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import broken, btrfs, cache, debian, el_lvm, oracle, tree


@dataclass(frozen=True)
class Layout:
    name: str
    build: Callable[[Path], None]
    modules: tuple[str, ...]  # what builds it: its key is their sha256
    uses_tree: bool = True
    extra_key: Callable[[], str] | None = None  # what else it is built from


_COMMON = ("disk", "cache")
LAYOUTS = {
    layout.name: layout
    for layout in (
        Layout("debian", debian.build, ("debian", *_COMMON)),
        Layout("el-lvm", el_lvm.build, ("el_lvm", "lvmloop", *_COMMON)),
        Layout("btrfs", btrfs.build, ("btrfs", *_COMMON)),
        Layout("nofstab", broken.build_nofstab, ("broken", *_COMMON), uses_tree=False),
        Layout("luks", broken.build_luks, ("broken", *_COMMON), uses_tree=False),
        *(
            Layout(
                name,
                oracle.builder(name),
                ("oracle", *_COMMON),
                uses_tree=False,
                extra_key=oracle.roots_key,
            )
            for name in oracle.LAYOUTS
        ),
    )
}


def key(name: str) -> str:
    layout = LAYOUTS[name]
    parts = [cache.source_digest(*layout.modules), name]
    if layout.uses_tree:
        parts.append(tree.key())
    if layout.extra_key:
        parts.append(layout.extra_key())
    return cache.digest(*parts)


def image(name: str) -> Path:
    """The cached raw image of fixture `name`, built first when missing."""
    layout = LAYOUTS[name]
    if layout.uses_tree:
        tree.tarball()  # built first, so no loop device stays attached during debootstrap
    return cache.cached(name, key(name), ".raw", layout.build)


__all__ = ["LAYOUTS", "image", "key"]
