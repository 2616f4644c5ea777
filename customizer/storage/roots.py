"""Which filesystem is the guest's root: the one holding /etc/os-release and /etc/fstab.
Pure: the caller looked inside each filesystem and hands over what it saw."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .devices import BlockDevice
from .errors import StorageError
from .fstab import parse_fstab
from .plan import RootLocation, normalize_target, plan_mounts


@dataclass(frozen=True)
class RootCandidate:
    """A filesystem (or btrfs subvolume) that may hold the guest's root."""

    device: BlockDevice
    # btrfs: the subvolume looked in, from the top level ("" is the top level itself);
    # None on other filesystems
    subvol: str | None
    has_os_release: bool
    fstab: str | None  # the text of its etc/fstab, None when it has none
    is_default_subvol: bool = True  # what a mount without subvol= gives

    @property
    def where(self) -> str:
        if self.subvol is None:
            return self.device.path
        return f"{self.device.path} subvolume {self.subvol or '/'}"

    def location(self) -> RootLocation:
        return RootLocation(self.device, self.subvol)


def _names_itself(c: RootCandidate) -> bool:
    """On btrfs, snapshots of the root carry the root's fstab too: only the subvolume
    that fstab mounts as / is the root."""
    if c.device.fstype != "btrfs" or c.fstab is None:
        return True
    entries = [e for e in parse_fstab(c.fstab).entries if normalize_target(e.target) == "/"]
    if not entries:
        return c.is_default_subvol
    entry = entries[-1]
    subvol, subvolid = entry.value("subvol"), entry.value("subvolid")
    if subvol is not None:
        return c.subvol is not None and subvol.strip("/") == c.subvol.strip("/")
    if subvolid is not None and subvolid.isdigit() and c.subvol is not None:
        if int(subvolid) == 5:
            return c.subvol == ""
        known = c.device.subvolumes or ()
        return any(s.id == int(subvolid) and s.path == c.subvol for s in known)
    return c.is_default_subvol


def choose_root(
    candidates: Sequence[RootCandidate], devices: Sequence[BlockDevice]
) -> RootCandidate:
    """The guest's root among one guest's filesystems; StorageError naming what was found
    otherwise — no root, two roots, a root without fstab, or an encrypted root."""
    full = [c for c in candidates if c.has_os_release and c.fstab is not None]
    if len(full) > 1:
        full = [c for c in full if _names_itself(c)] or full
    if len(full) == 1:
        return full[0]
    if len(full) > 1:
        raise StorageError(
            "two guest roots: "
            + " and ".join(c.where for c in full)
            + " both hold /etc/os-release and /etc/fstab",
            hint="attach one guest's disks only (a clone's disk attached twice?)",
        )
    partial = [c for c in candidates if c.has_os_release]
    if partial:
        raise StorageError(
            f"the guest's root on {partial[0].where} has /etc/os-release but no /etc/fstab",
            hint="vmtailor mounts a guest's filesystems as its /etc/fstab says",
        )
    luks = [d for d in devices if d.fstype == "crypto_LUKS"]
    if luks:
        raise StorageError(
            f"the guest's root is encrypted: {luks[0].path} is a LUKS volume and no "
            "unencrypted filesystem holds /etc/os-release",
            hint="vmtailor does not open encrypted volumes",
        )
    looked = ", ".join(c.where for c in candidates) or "no Linux filesystems at all"
    raise StorageError(
        f"no guest root found: none of the guest's filesystems holds /etc/os-release "
        f"and /etc/fstab (looked in {looked})"
    )


def mounted_elsewhere(root: RootCandidate, devices: Sequence[BlockDevice]) -> set[str]:
    """The devices a root's own fstab mounts somewhere other than / (its /boot, /var …):
    this guest's, and not roots of it, so they need not be looked inside. Never btrfs
    (its subvolumes are only known by looking) and nothing when the fstab doesn't plan."""
    if not root.has_os_release or root.fstab is None:
        return set()
    try:
        plan = plan_mounts(root.fstab, devices, root.location())
    except StorageError:
        return set()
    return {
        m.device.path
        for m in plan.mounts
        if m.target != "/" and m.device.fstype != "btrfs" and m.device.path != root.device.path
    }
