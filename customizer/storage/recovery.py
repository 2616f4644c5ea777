"""Does a filesystem need journal recovery? A clone taken from a running template has an
unreplayed journal; mounting it read-write would replay it silently, so vmtailor refuses
it instead and says why. The check itself is the filesystem's record's
(filesystems.needs_recovery); here are this side's ways to read a device (os.pread) and
to ask xfs_logprint, which reads XFS's log and nothing else, and the refusal that the
initrd and offline/ share."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable

from ..errors import VmtailorError
from ..run import run
from .errors import StorageError
from .filesystems import FILESYSTEMS, Read
from .filesystems import needs_recovery as record_needs_recovery
from .plan import MountPlan

log = logging.getLogger("vmtailor.storage")

# "xfs_logprint -t": the XFS record names the tool each side asks
INITRD_XFS_TOOL = dict(FILESYSTEMS["xfs"].journal.tools)["initrd"]  # type: ignore[union-attr]


def reader(path: str) -> Read:
    """read(offset, size) on the device at `path`."""

    def read(offset: int, size: int) -> bytes:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    return read


def xfs_log_state(text: str) -> str | None:
    """The log state `xfs_logprint -t` prints, "CLEAN" or "DIRTY", or None without one.
    DIRTY ("log tail: 2 head: 18 state: <DIRTY>"): changes wait to be replayed."""
    m = re.search(r"^\s*log tail: \d+ head: \d+ state: <(CLEAN|DIRTY)>", text, re.M)
    return m.group(1) if m else None


def xfs_log_dirty(path: str) -> bool:
    """xfs_logprint -t (the XFS record's initrd tool) finds the log's head and tail
    without replaying anything. (xfs_repair -n would tell too, but only after checking the
    whole filesystem: minutes on a big one.) After the state line it prints the unreplayed
    transactions: ~half a KB per KB of log. OSError when it cannot tell."""
    argv = [*INITRD_XFS_TOOL.split(), path]
    try:
        proc = run(argv, check=False, timeout=600)
    except VmtailorError as exc:
        if "command not found" not in str(exc):
            raise OSError(str(exc)) from None
        # No xfsprogs here: the kernel replays the log on mount, as the guest would.
        log.warning("%s: cannot check the XFS log (no %s)", path, argv[0])
        return False
    state = xfs_log_state(proc.stdout.decode("utf-8", "replace"))
    if state is None:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OSError(f"{' '.join(argv)}: no log state ({err[-1] if err else 'no output'})")
    return state == "DIRTY"


def needs_recovery(path: str, fstype: str | None) -> str | None:
    """Why the device at `path` cannot be mounted read-write without a journal replay,
    or None."""
    return record_needs_recovery(fstype, reader(path), lambda: xfs_log_dirty(path))


def refuse_unclean(plan: MountPlan, why: Callable[[str, str | None], str | None]) -> None:
    """Refuse, before anything is mounted read-write, a filesystem whose journal needs
    replaying: the clone was taken from a running template. `why(path, fstype)`: this
    side's needs_recovery."""
    for mount in plan.mounts:
        reason = why(mount.device.path, mount.fstype)
        if reason:
            raise StorageError(
                f"{mount.device.path} ({mount.fstype}, the guest's {mount.target}) was not "
                f"cleanly unmounted: {reason}",
                hint="shut the template down cleanly before cloning it, or fsck the clone",
            )
