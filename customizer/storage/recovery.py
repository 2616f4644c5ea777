"""Does a filesystem need journal recovery? A clone taken from a running template has an
unreplayed journal; mounting it read-write would replay it silently, so vmtailor refuses
it instead and says why. ext* and btrfs are read from the superblock (pure, no tool);
XFS's log state from xfs_logprint, which reads the log and nothing else."""

from __future__ import annotations

import logging
import os
import re

from ..errors import VmtailorError
from ..run import run

EXT_SUPERBLOCK = 1024
EXT_MAGIC = 0xEF53
EXT_INCOMPAT_RECOVER = 0x4
BTRFS_SUPERBLOCK = 0x10000
BTRFS_MAGIC = b"_BHRfS_M"

log = logging.getLogger("vmtailor.storage")


def ext_needs_recovery(sb: bytes) -> bool:
    """`sb`: the 1024-byte ext2/3/4 superblock. True when its journal must be replayed."""
    if len(sb) < 0x64 or int.from_bytes(sb[0x38:0x3A], "little") != EXT_MAGIC:
        raise ValueError("not an ext2/3/4 superblock")
    return bool(int.from_bytes(sb[0x60:0x64], "little") & EXT_INCOMPAT_RECOVER)


def btrfs_needs_recovery(sb: bytes) -> bool:
    """`sb`: the btrfs superblock at 64 KiB. A log tree holds fsync()ed writes that the
    last transaction did not commit: the filesystem was not unmounted cleanly."""
    if len(sb) < 0x68 or sb[0x40:0x48] != BTRFS_MAGIC:
        raise ValueError("not a btrfs superblock")
    return int.from_bytes(sb[0x60:0x68], "little") != 0


def read_at(path: str, offset: int, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def xfs_log_state(text: str) -> str | None:
    """The log state `xfs_logprint -t` prints, "CLEAN" or "DIRTY", or None without one.
    DIRTY ("log tail: 2 head: 18 state: <DIRTY>"): changes wait to be replayed."""
    m = re.search(r"^\s*log tail: \d+ head: \d+ state: <(CLEAN|DIRTY)>", text, re.M)
    return m.group(1) if m else None


def xfs_log_dirty(path: str) -> bool:
    """xfs_logprint -t finds the log's head and tail without replaying anything. (xfs_repair
    -n would tell too, but only after checking the whole filesystem: minutes on a big one.)
    After the state line it prints the unreplayed transactions: ~half a KB per KB of log."""
    proc = run(["xfs_logprint", "-t", path], check=False, timeout=600)
    state = xfs_log_state(proc.stdout.decode("utf-8", "replace"))
    if state is None:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VmtailorError(
            f"xfs_logprint -t {path}: no log state ({err[-1] if err else 'no output'})"
        )
    return state == "DIRTY"


def needs_recovery(path: str, fstype: str | None) -> str | None:
    """Why `path` cannot be mounted read-write without a journal replay, or None."""
    try:
        if fstype in ("ext3", "ext4") and ext_needs_recovery(read_at(path, EXT_SUPERBLOCK, 1024)):
            return "its ext4 journal needs recovery"
        if fstype == "btrfs" and btrfs_needs_recovery(read_at(path, BTRFS_SUPERBLOCK, 4096)):
            return "its btrfs log tree needs replaying"
        if fstype == "xfs" and xfs_log_dirty(path):
            return "its XFS log is dirty"
    except (OSError, ValueError) as exc:
        return f"its superblock cannot be read ({exc})"
    except VmtailorError as exc:
        if "command not found" not in str(exc):
            return f"it cannot be checked ({exc})"
        # No xfsprogs here: the kernel replays the log on mount, as the guest would.
        log.warning("%s: cannot check the XFS log (no xfs_logprint)", path)
    return None
