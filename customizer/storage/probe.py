"""Looking inside a guest's filesystems for its root: each Linux filesystem is mounted
read-only without any journal replay, checked for etc/fstab and an OS release file
(roots.look_for_root), and unmounted again. On btrfs the top level and its subvolumes are
looked at, since the root usually lives in a subvolume such as @."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import stat

from ..errors import VmtailorError
from ..localroot import LocalRoot
from ..run import run
from .devices import BlockDevice, Subvolume
from .mount import Mounts
from .roots import RootCandidate, look_for_root

log = logging.getLogger("vmtailor.storage")

BTRFS_SUBVOL_INODE = 256
_probe_numbers = itertools.count()
_SUBVOL_LINE = re.compile(r"^ID (\d+) gen \d+ (?:cgen \d+ )?top level (\d+) .*?path (.*)$")


def parse_subvolume_list(text: str) -> list[tuple[int, int, str]]:
    """`btrfs subvolume list` lines -> (id, parent id, path from the top level)."""
    out = []
    for line in text.splitlines():
        m = _SUBVOL_LINE.match(line.strip())
        if m:
            out.append((int(m.group(1)), int(m.group(2)), m.group(3).removeprefix("<FS_TREE>/")))
    return out


def parse_default_subvolume(text: str) -> int:
    """`btrfs subvolume get-default` says "ID 5 (FS_TREE)" or "ID 256 gen … path @"."""
    m = re.match(r"^ID (\d+)", text.strip())
    return int(m.group(1)) if m else 5


def _candidate(device: BlockDevice, top: str, subvol: str | None, is_default: bool):
    return look_for_root(LocalRoot(top), device, subvol, is_default)


def _scan_subvolumes(mnt: str) -> list[tuple[int | None, int, str]]:
    """Without the btrfs tool: a subvolume's root directory is always inode 256, so the
    top level's subvolumes can be told from plain directories (ids stay unknown)."""
    out: list[tuple[int | None, int, str]] = []
    for name in sorted(os.listdir(mnt)):
        st = os.lstat(os.path.join(mnt, name))
        if stat.S_ISDIR(st.st_mode) and st.st_ino == BTRFS_SUBVOL_INODE:
            out.append((None, 5, name))
    return out


def _btrfs_subvolumes(mnt: str) -> tuple[list[tuple[int | None, int, str]], int, bool]:
    """(id, parent id, path) of every subvolume, the default subvolume's id, and whether
    the ids are known."""
    try:
        listed = parse_subvolume_list(run(["btrfs", "subvolume", "list", mnt]).stdout.decode())
        out = run(["btrfs", "subvolume", "get-default", mnt]).stdout.decode()
        return list(listed), parse_default_subvolume(out), True
    except VmtailorError as exc:
        log.warning("no btrfs subvolume list (%s): looking at the top level only", exc)
        return _scan_subvolumes(mnt), 5, False


def _fresh_dir(scratch: str) -> str:
    """A new, empty, private directory under `scratch`. Not tempfile.mkdtemp: importing
    tempfile seeds `random` from /dev/urandom, and in the initrd that first read makes
    the kernel gather jitter entropy (about a second of CPU under TCG) for names nobody
    needs to guess. os.mkdir fails on anything already there, a symlink included."""
    while True:
        path = os.path.join(scratch, f"probe-{os.getpid()}-{next(_probe_numbers)}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def look_inside(device: BlockDevice, scratch: str) -> tuple[BlockDevice, list[RootCandidate]]:
    """Mount `device` read-only at a fresh directory under `scratch`, see what it holds,
    unmount it. Returns the device (with its btrfs subvolumes filled in) and what it saw
    in each place a root could be."""
    mnt = _fresh_dir(scratch)
    try:
        with Mounts() as mounts:
            if device.fstype == "btrfs":
                mounts.mount(device.path, mnt, "btrfs", ("subvolid=5",), readonly=True)
                listed, default, known = _btrfs_subvolumes(mnt)
                if known:
                    subvols = tuple(Subvolume(i, p) for i, _, p in listed if i is not None)
                    device = device.with_(subvolumes=subvols)
                found = [_candidate(device, mnt, "", default == 5)]
                for sid, parent, path in listed:
                    if parent == 5 or sid == default:
                        top = os.path.join(mnt, path)
                        found.append(_candidate(device, top, path, sid == default))
            else:
                mounts.mount(device.path, mnt, device.fstype, readonly=True)
                found = [_candidate(device, mnt, None, True)]
    finally:
        with contextlib.suppress(OSError):  # still mounted: close() logged why
            os.rmdir(mnt)
    return device, found
