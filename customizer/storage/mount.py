"""Mounting through run(), always undone: every mount (and anything else that must be
undone, such as LVM activation) is pushed on a stack that close() unwinds in reverse."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

from ..errors import VmtailorError
from ..run import CommandError, run
from .errors import StorageError
from .filesystems import mount_options

log = logging.getLogger("vmtailor.storage")


def mount_program() -> list[str]:
    """busybox's mount where there is one, util-linux's otherwise. The options are only
    ever vmtailor's own — ro or rw, what a look inside needs (noload, norecovery, nouuid,
    rescue=nologreplay) and, of a guest's fstab, subvol= and subvolid= alone
    (plan.KEPT_OPTIONS) — which either passes to the kernel as they are; busybox's, a
    static program, starts in ~10 ms under emulation against ~60 ms for util-linux's."""
    path = os.get_exec_path()
    if any(os.access(os.path.join(d, "busybox"), os.X_OK) for d in path):
        return ["busybox", "mount"]
    return ["mount"]


class Mounts:
    """A stack of things to undo. Use as a context manager, or call close() in a finally."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], None]]] = []

    def __enter__(self) -> Mounts:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def push(self, what: str, undo: Callable[[], None]) -> None:
        self._undo.append((what, undo))

    def mount(
        self,
        source: str,
        target: str,
        fstype: str | None = None,
        options: Sequence[str] = (),
        *,
        readonly: bool = False,
    ) -> None:
        """Mount `source` on `target`, to be unmounted by close()."""
        argv = mount_program()
        if fstype:
            argv += ["-t", fstype]
        argv += ["-o", ",".join(mount_options(fstype, options, readonly=readonly))]
        try:
            run([*argv, source, target])
        except CommandError as exc:
            # mount's last line only says "dmesg(1) may have more information"
            first = exc.stderr.strip().splitlines()[0] if exc.stderr.strip() else exc
            raise StorageError(f"mount {source} on {target} failed: {first}") from None
        self.push(f"umount {target}", lambda: umount(target))

    @property
    def targets(self) -> list[str]:
        return [
            what.removeprefix("umount ") for what, _ in self._undo if what.startswith("umount ")
        ]

    def close(self) -> list[str]:
        """Undo everything, last first; keep going past failures and return them."""
        errors = []
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except (VmtailorError, OSError) as exc:
                log.warning("%s failed: %s", what, exc)
                errors.append(f"{what}: {exc}")
        return errors


def umount(target: str) -> None:
    try:
        run(["umount", target])
    except VmtailorError:
        # Something still holds it (a process started in the guest tree): detach it lazily
        # so the reverse unwind can go on, then report the first failure.
        run(["umount", "-l", target], check=False)
        raise
    finally:
        os.sync()
