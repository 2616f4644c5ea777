"""One libguestfs appliance per test worker: a launch costs ~20 s under TCG, so tests share
it and get a fresh filesystem (mkfs, not a new appliance) each."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")

import guestfs


def launch(scratch: Path, size_mb: int = 256):
    """A handle with one scratch raw disk (/dev/sda), launched."""
    disk = scratch / "scratch.img"
    with open(disk, "wb") as f:
        f.truncate(size_mb << 20)
    g = guestfs.GuestFS(python_return_dict=True)
    g.add_drive_opts(str(disk), format="raw")
    g.launch()
    return g


def fresh_guest(g, tree: Path, fstype: str = "ext4") -> None:
    """Make a new filesystem on the scratch disk and fill it with `tree` (owners, modes,
    symlinks and xattrs kept), mounted at the appliance's /."""
    g.umount_all()
    g.mkfs(fstype, "/dev/sda")
    g.mount("/dev/sda", "/")
    upload = tree.parent / f"{tree.name}.tar"
    # GNU tar keeps owners, modes, symlinks and security.* xattrs both ways
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", str(tree),
         "-cf", str(upload), "."],
        check=True,
    )  # fmt: skip
    g.tar_in(str(upload), "/", xattrs=True, selinux=False, acls=False)
    upload.unlink()


def download(g, dest: Path) -> Path:
    """The guest tree back out of the appliance, for comparison with local results."""
    archive = dest.parent / f"{dest.name}.tar"
    g.tar_out("/", str(archive), numericowner=True, xattrs=True)
    dest.mkdir()
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", str(dest),
         "-xpf", str(archive)],
        check=True,
    )  # fmt: skip
    archive.unlink()
    lost = dest / "lost+found"
    if lost.is_dir():
        lost.rmdir()
    return dest
