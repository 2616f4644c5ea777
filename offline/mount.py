"""Mounting one guest's plan inside the appliance, parents first, at the appliance's /
(the guest's own paths), after refusing filesystems that need a journal replay."""

from __future__ import annotations

import logging

from ..customizer import mountpoints
from ..customizer.journal_schema import JournalError
from ..customizer.root import RootError
from ..customizer.storage import recovery
from ..customizer.storage.errors import StorageError
from ..customizer.storage.filesystems import needs_recovery as record_needs_recovery
from ..customizer.storage.filesystems import record
from ..customizer.storage.guest import mount_in_order
from ..customizer.storage.mount import mount_options
from ..customizer.storage.plan import Mount, MountPlan, is_under
from .guestfs_root import GuestfsRoot, error_text

log = logging.getLogger("vmtailor.offline")

NO_BARRIER = frozenset({"nobarrier", "barrier=0"})


def needs_recovery(g, path: str, fstype: str | None) -> str | None:
    """Why `path` cannot be mounted read-write without a journal replay, or None: the
    filesystem record's check, its superblock read through the appliance. XFS's log state
    only xfs_repair -n tells here (the record's offline tool); it fails on a damaged
    filesystem too."""

    def read(offset: int, size: int) -> bytes:
        try:
            return g.pread_device(path, size, offset)
        except RuntimeError as exc:
            raise OSError(error_text(exc)) from None

    def xfs_log_dirty() -> bool:
        try:
            return g.xfs_repair(path, nomodify=True) != 0
        except RuntimeError as exc:
            raise OSError(error_text(exc)) from None

    return record_needs_recovery(fstype, read, xfs_log_dirty)


def refuse_unclean(g, plan: MountPlan) -> None:
    """A clone taken from a running template has an unreplayed journal: mounting it
    read-write would replay it silently, so it is refused and nothing is written."""
    recovery.refuse_unclean(plan, lambda path, fstype: needs_recovery(g, path, fstype))


def _mount_point(g, target: str, readonly: bool) -> str | None:
    """The appliance path to mount the guest's `target` on, resolved inside the guest (a
    symlinked /home must not lead elsewhere); created when missing, unless read-only —
    then None."""
    root = GuestfsRoot(g)  # fresh: what is mounted changes between calls
    try:
        resolved = root.resolve(target)
        st = root.stat(resolved)
    except RootError as exc:
        raise StorageError(f"cannot mount the guest's {target}: {exc}") from None
    if st is None:
        if readonly:
            return None
        log.warning("the guest has no %s to mount on: creating it", target)
        try:
            mountpoints.make(root, resolved)  # journaled: see customizer/mountpoints.py
        except (RootError, JournalError) as exc:
            raise StorageError(f"cannot create the guest's {target}: {exc}") from None
    elif st.kind != "dir":
        raise StorageError(f"cannot mount the guest's {target}: {resolved} is not a directory")
    return resolved


def mount_plan(g, plan: MountPlan, *, readonly: bool) -> tuple[list[Mount], list[str]]:
    """Mount every planned filesystem; a nofail one that fails is left out (with what is
    beneath it) as a warning, as the guest's own boot would. Undone by umount_all()."""
    if not readonly:
        refuse_unclean(g, plan)

    def where(mount: Mount) -> str | None:
        return "/" if mount.target == "/" else _mount_point(g, mount.target, readonly)

    def attach(mount: Mount, point: str) -> None:
        options = ",".join(no_atime(mount_options(mount.fstype, mount.options, readonly=readonly)))
        g.mount_vfs(options, mount.fstype, mount.device.path, point)

    return mount_in_order(plan, where, attach, RuntimeError, error_text)


# Every way a mount option sets how reads update access times; strictatime after noatime
# would turn it off again (the kernel applies it last).
ATIME_OPTIONS = frozenset({"atime", "noatime", "strictatime", "relatime", "norelatime",
                           "diratime", "nodiratime"})  # fmt: skip


def no_atime(options: list[str]) -> list[str]:
    """The guest's options with noatime for its own: what vmtailor reads (planning,
    backups) keeps its access time, so the atime a journal records, and a revert puts
    back, is the guest's own. It changes nothing on disk (the guest's fstab decides at boot)."""
    return [*(o for o in options if o not in ATIME_OPTIONS), "noatime"]


def unmount_made(g, plan: MountPlan, mounted: list[Mount]) -> bool:
    """Unmount the guest's filesystems but /, deepest first, removing after each unmount
    the mount points vmtailor made that no journal keeps (step 4 of
    customizer/mountpoints.py); then the marker. Nothing to do (and nothing unmounted)
    without the marker: umount_all does the rest. Whether it changed the guest."""
    if not GuestfsRoot(g).lexists(mountpoints.MARKER):
        return False
    resolved = {}
    for mount in plan.mounts:
        try:
            resolved[mount.target] = GuestfsRoot(g).resolve(mount.target)
        except RootError:
            continue  # beneath a symlink loop, say: nothing of vmtailor's there
    targets = list(resolved.values())
    points = sorted((resolved[m.target] for m in mounted if m.target in resolved and m.target != "/"),
                    key=len, reverse=True)  # fmt: skip
    try:
        for point in points:
            g.umount(point)
            # a fresh Root each time: its stat cache knew the mounted filesystem
            mountpoints.remove_unmounted(GuestfsRoot(g), targets)
        mountpoints.remove_unmounted(GuestfsRoot(g), targets)
        mountpoints.finish(GuestfsRoot(g))
    except RuntimeError as exc:
        raise StorageError(f"cannot unmount the guest: {error_text(exc)}") from None
    return True


def needs_sync(mounted: list[Mount], changed: set[str]) -> bool:
    """Whether a change in `changed` (guest paths) is on a mounted filesystem whose
    unmount does not flush its disk."""
    for path in changed:
        owner = max((m for m in mounted if is_under(path, m.target)),
                    key=lambda m: len(m.target), default=None)  # fmt: skip
        if owner is None:
            return True  # not on any of the guest's mounts: be safe
        fs = record(owner.fstype)
        if fs is None or not fs.flushed_on_unmount or NO_BARRIER & set(owner.options):
            return True
    return False
