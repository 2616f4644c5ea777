"""Which filesystem is the guest's root: the one holding /etc/fstab and an OS release file
(os-release, or an older release file such as /etc/redhat-release: the list detection
reads, families.RELEASE_FILES). What each filesystem holds is read through a Root the
caller opened on it (look_for_root); choosing among them is pure (choose_root)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..families import RELEASE_FILES
from ..root import Root, RootError
from . import md
from .devices import BlockDevice
from .errors import StorageError
from .fstab import parse_fstab
from .plan import VIRTUAL_FS, RootLocation, is_under, normalize_target, plan_mounts

log = logging.getLogger("vmtailor.storage")


@dataclass(frozen=True)
class RootCandidate:
    """A filesystem (or btrfs subvolume) that may hold the guest's root."""

    device: BlockDevice
    # btrfs: the subvolume looked in, from the top level ("" is the top level itself);
    # None on other filesystems
    subvol: str | None
    # the first of RELEASE_FILES it holds (as the guest sees it), None when it holds none
    release_file: str | None
    fstab: str | None  # the text of its etc/fstab, None when it has none
    is_default_subvol: bool = True  # what a mount without subvol= gives
    # where its /etc/os-release symlink leads when that is not on this filesystem
    # (../usr/lib/os-release with /usr on its own): the fstab says whether it is the guest's
    os_release_link: str | None = None
    mdadm_conf: str | None = None  # the text of its mdadm.conf, None when it has none

    @property
    def where(self) -> str:
        if self.subvol is None:
            return self.device.path
        return f"{self.device.path} subvolume {self.subvol or '/'}"

    def location(self) -> RootLocation:
        return RootLocation(self.device, self.subvol)

    @property
    def release(self) -> str | None:
        """The release file that makes this a guest's root, or None. A dangling
        /etc/os-release counts when its own fstab mounts the filesystem it leads to, as
        at boot: the guest's fstab decides where /usr is, not which filesystem we looked
        in first."""
        if self.release_file is not None:
            return self.release_file
        if self.os_release_link is None or self.fstab is None:
            return None
        for entry in parse_fstab(self.fstab).entries:
            target = normalize_target(entry.target)
            if target in (None, "/") or entry.fstype in VIRTUAL_FS:
                continue
            if is_under(self.os_release_link, target):
                return "/etc/os-release"
        return None


def look_for_root(
    root: Root, device: BlockDevice, subvol: str | None, is_default: bool = True
) -> RootCandidate:
    """What one filesystem (`root` opened on it, read-only) holds that makes a guest's
    root. Through a Root, never the host's paths: /etc/os-release is often a link
    (../usr/lib/os-release, or absolute) that followed on the host finds the host's file."""
    try:
        release = next((p for p in RELEASE_FILES if root.is_file(p)), None)
        link = None
        if release is None and root.is_symlink("/etc/os-release"):
            link = root.resolve("/etc/os-release")
        fstab = root.read_text("/etc/fstab") if root.is_file("/etc/fstab") else None
    except RootError as exc:
        log.warning("%s: %s", device.path, exc)
        release, link, fstab = None, None, None
    conf = md.read_conf(root) if fstab is not None else None  # only a root's is read
    return RootCandidate(
        device, subvol, release, fstab, is_default, os_release_link=link, mdadm_conf=conf
    )


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
    full = [c for c in candidates if c.release is not None and c.fstab is not None]
    if len(full) > 1:
        full = [c for c in full if _names_itself(c)] or full
    if len(full) == 1:
        return full[0]
    if len(full) > 1:
        raise StorageError(
            "two guest roots: "
            + " and ".join(c.where for c in full)
            + " both hold /etc/fstab and an OS release file",
            hint="attach one guest's disks only (a clone's disk attached twice?)",
        )
    partial = [c for c in candidates if c.release is not None]
    if partial:
        raise StorageError(
            f"the guest's root on {partial[0].where} has {partial[0].release} but no /etc/fstab",
            hint="vmtailor mounts a guest's filesystems as its /etc/fstab says",
        )
    luks = [d for d in devices if d.fstype == "crypto_LUKS"]
    if luks:
        raise StorageError(
            f"the guest's root is encrypted: {luks[0].path} is a LUKS volume and no "
            "unencrypted filesystem holds an OS release file",
            hint="vmtailor does not open encrypted volumes",
        )
    looked = ", ".join(c.where for c in candidates) or "no Linux filesystems at all"
    raise StorageError(
        "no guest root found: none of the guest's filesystems holds /etc/fstab and an OS "
        "release file such as /etc/os-release, /etc/redhat-release or /etc/debian_version "
        f"(looked in {looked})"
    )


def mounted_elsewhere(root: RootCandidate, devices: Sequence[BlockDevice]) -> set[str]:
    """The devices a root's own fstab mounts somewhere other than / (its /boot, /var …):
    this guest's, and not roots of it, so they need not be looked inside. Never btrfs
    (its subvolumes are only known by looking) and nothing when the fstab doesn't plan."""
    if root.release is None or root.fstab is None:
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
