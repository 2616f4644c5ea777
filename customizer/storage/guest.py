"""One guest's disks, mounted: find its root, plan its fstab, refuse what must not be
mounted read-write, and mount the plan under a relocated root (the initrd's /sysroot)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .. import mountpoints
from ..errors import VmtailorError
from ..localroot import LocalRoot
from ..root import RootError
from . import md, recovery
from .devices import LINUX_FILESYSTEMS, BlockDevice
from .discover import scan_btrfs
from .errors import StorageError
from .mount import Mounts
from .plan import Mount, MountPlan, is_under, plan_mounts
from .probe import look_inside
from .roots import RootCandidate, choose_root, mounted_elsewhere

log = logging.getLogger("vmtailor.storage")


@dataclass
class FoundGuest:
    """The guest's root, its mount plan and the devices it was found among."""

    root: RootCandidate
    plan: MountPlan
    devices: list[BlockDevice]
    warnings: list[str] = field(default_factory=list)


def find_guest(devices: Sequence[BlockDevice], scratch: str) -> FoundGuest:
    """Find one guest's root among its own `devices` and plan its mounts (read-only
    probing only; nothing is left mounted)."""
    groups = {d.group for d in devices}
    if len(groups) > 1:
        raise StorageError(f"find_guest: devices of {len(groups)} guests given; pass one guest's")
    scan_btrfs(devices)
    return plan_guest(devices, lambda device: look_inside(device, scratch))


def plan_guest(
    devices: Sequence[BlockDevice],
    look: Callable[[BlockDevice], tuple[BlockDevice, list[RootCandidate]]],
    failure: type[Exception] = VmtailorError,
    text: Callable[[Exception], str] = str,
) -> FoundGuest:
    """Look inside the Linux filesystems of one guest with `look` (here: a host mount;
    offline: an appliance mount), choose its root and plan its fstab. A filesystem `look`
    cannot mount (it raises `failure`, described by `text`) is a warning, not a failure:
    it may be data the kernel at hand cannot read. The last devices are looked at first
    (a root is usually the last partition or an LV); what a found root's fstab mounts
    elsewhere (/boot, /var …) is then not looked inside at all — a mount saved per guest."""
    updated = list(devices)
    found: dict[int, list[RootCandidate]] = {}
    warnings: list[str] = []
    skip: set[str] = set()
    for i in reversed(range(len(updated))):
        device = updated[i]
        if device.fstype not in LINUX_FILESYSTEMS or device.path in skip:
            continue
        try:
            updated[i], found[i] = look(device)
        except failure as exc:
            warnings.append(f"cannot look inside {device.describe()}: {text(exc)}")
            continue
        for candidate in found[i]:
            skip |= mounted_elsewhere(candidate, updated)
    candidates = [c for i in sorted(found) for c in found[i]]
    warnings.reverse()  # in device order, like the candidates
    try:
        root = choose_root(candidates, updated)
    except StorageError as exc:
        if not warnings:
            raise
        # "no root" may well be "could not look": say both
        raise StorageError(f"{exc.args[0]}; {'; '.join(warnings)}", hint=exc.hint) from None
    # the fstab may name an array as the root's mdadm.conf does (/dev/md0 for "web01:root")
    updated = md.with_conf_names(updated, root.mdadm_conf)
    plan = plan_mounts(root.fstab or "", updated, root.location())
    return FoundGuest(root, plan, updated, warnings + plan.warnings)


def refuse_unclean(plan: MountPlan) -> None:
    """Refuse, before anything is mounted read-write, a filesystem whose journal needs
    replaying: the clone was taken from a running template."""
    recovery.refuse_unclean(plan, recovery.needs_recovery)


def _mount_point(sysroot: str, target: str, readonly: bool) -> str | None:
    """The host path for guest path `target`, resolved *inside* the guest (a symlinked
    /home must not lead a mount out of the sysroot); created when missing, unless
    read-only — then None."""
    root = LocalRoot(sysroot)
    try:
        resolved = root.resolve(target)
    except RootError as exc:
        raise StorageError(f"cannot mount the guest's {target}: {exc}") from None
    path = root.host_path(resolved)
    if not os.path.lexists(path):
        if readonly:
            return None
        log.warning("the guest has no %s to mount on: creating it", target)
        try:
            mountpoints.make(root, resolved)  # journaled: see customizer/mountpoints.py
        except VmtailorError as exc:
            raise StorageError(f"cannot create the guest's {target}: {exc}") from None
    elif not os.path.isdir(path) or os.path.islink(path):
        raise StorageError(f"cannot mount the guest's {target}: {resolved} is not a directory")
    return path


def mount_plan(
    plan: MountPlan, sysroot: str, mounts: Mounts, *, readonly: bool = False
) -> tuple[list[Mount], list[str]]:
    """Mount every planned filesystem, parents first, under `sysroot`; each unmount goes
    on `mounts`, to be undone in reverse. A nofail mount that fails is left out (with
    what is beneath it) and comes back as a warning, as the guest's own boot would.
    Returns what was mounted, and the warnings."""
    if not readonly:
        refuse_unclean(plan)

    def where(mount: Mount) -> str | None:
        return sysroot if mount.target == "/" else _mount_point(sysroot, mount.target, readonly)

    def attach(mount: Mount, point: str) -> None:
        log.debug("mounting %s (%s) on %s", mount.device.path, mount.fstype, mount.target)
        mounts.mount(mount.device.path, point, mount.fstype, mount.options, readonly=readonly)
        if not readonly:
            # undone after every filesystem mounted on this one is unmounted, before this
            # one is: the mount points vmtailor made on it that no journal keeps go then
            last = mount.target == "/"
            mounts.push("remove the mount points vmtailor made",
                        lambda: _remove_made(sysroot, plan, last))  # fmt: skip

    return mount_in_order(plan, where, attach)


def _remove_made(sysroot: str, plan: MountPlan, last: bool) -> None:
    """Step 4 of customizer/mountpoints.py, for the initrd's unwind."""
    root = LocalRoot(sysroot)
    targets = []
    for mount in plan.mounts:
        try:
            targets.append(root.resolve(mount.target))
        except RootError:
            continue  # beneath a symlink loop, say: nothing of vmtailor's there
    mountpoints.remove_unmounted(root, targets)
    if last:
        mountpoints.finish(root)


def mount_in_order(
    plan: MountPlan,
    where: Callable[[Mount], str | None],
    attach: Callable[[Mount, str], None],
    failure: type[Exception] = VmtailorError,
    text: Callable[[Exception], str] = str,
) -> tuple[list[Mount], list[str]]:
    """Mount the plan parents first: `where(mount)` gives the mount point (None: there is
    none, and it is left out with a warning), `attach` mounts it there. An attach that
    fails (raises `failure`, described by `text`) is an error, unless the mount is nofail:
    then it and what is beneath it are left out as warnings, as the guest's own boot would.
    Shared by the host (initrd) and the appliance (offline). Returns what was mounted, and
    the warnings."""
    warnings: list[str] = []
    failed: list[str] = []
    mounted: list[Mount] = []
    for mount in plan.mounts:
        if any(is_under(mount.target, t) for t in failed):
            warnings.append(f"{mount.target}: not mounted, {failed[0]} above it failed")
            continue
        point = where(mount)
        if point is None:
            warnings.append(f"{mount.target}: not mounted, the guest has no such directory")
            failed.append(mount.target)
            continue
        try:
            attach(mount, point)
        except failure as exc:
            if not mount.nofail:
                raise StorageError(
                    f"cannot mount the guest's {mount.target}: {text(exc)}"
                ) from None
            warnings.append(f"{mount.target} (nofail) not mounted: {text(exc)}")
            failed.append(mount.target)
            continue
        mounted.append(mount)
    return mounted, warnings


def mount_guest(
    devices: Sequence[BlockDevice],
    sysroot: str,
    mounts: Mounts,
    *,
    scratch: str | None = None,
    readonly: bool = False,
) -> FoundGuest:
    """Find the guest on `devices` and mount it at `sysroot` (unmounted by `mounts`)."""
    scratch = scratch or os.path.dirname(os.path.abspath(sysroot))
    found = find_guest(devices, scratch)
    _, warnings = mount_plan(found.plan, sysroot, mounts, readonly=readonly)
    found.warnings += warnings
    return found
