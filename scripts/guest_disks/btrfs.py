"""(c) btrfs: the root in subvolume @, /home in @home, both by UUID with subvol= in
fstab (Ubuntu's layout: the default subvolume stays the top level). A read-only snapshot
of @ beside it carries the same fstab, as snapper's do: it must not count as a root."""

from __future__ import annotations

import os
from pathlib import Path

from . import tree
from .disk import attached, fixed_uuid, gpt, mounted, new_image, sh, write

NAME = "btrfs"
SIZE_MIB = 1400
DISK_GUID = fixed_uuid(NAME, "disk")
FS_UUID = fixed_uuid(NAME, "fs")
PARTS = [("0", "8300", "root", fixed_uuid(NAME, "p1"))]
FSTAB = f"""\
UUID={FS_UUID} /     btrfs defaults,subvol=@     0 0
UUID={FS_UUID} /home btrfs defaults,subvol=@home 0 0
"""
HOME_MARKER = "template/on-at-home"  # in @home: /home/template/on-at-home in the guest


def build(out: Path) -> None:
    new_image(str(out), SIZE_MIB)
    gpt(str(out), DISK_GUID, PARTS)
    with attached(str(out)) as loop:
        sh("mkfs.btrfs", "-q", "-U", FS_UUID, "-L", "vmt-btrfs", loop.part(1))
        with mounted(loop.part(1)) as top:
            sh("btrfs", "subvolume", "create", f"{top}/@")
            sh("btrfs", "subvolume", "create", f"{top}/@home")
            tree.unpack(f"{top}/@", exclude=("home",))
            write(f"{top}/@/etc/fstab", FSTAB)
            write(f"{top}/@home/{HOME_MARKER}", "this file is in subvolume @home\n")
            os.makedirs(f"{top}/@/home", exist_ok=True)
            sh("btrfs", "subvolume", "snapshot", "-r", f"{top}/@", f"{top}/@snapshot-1")
