"""The mount plan: which of a guest's filesystems go where under a relocated root, in
order, from the guest's own /etc/fstab. Pure: devices come in as data, so the initrd
(blkid) and the offline path (libguestfs) plan exactly alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .devices import NOT_FILESYSTEMS, BlockDevice
from .errors import StorageError
from .fstab import Fstab, FstabEntry, parse_fstab
from .resolve import resolve

NETWORK_FS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smbfs", "smb3", "ncpfs", "ceph", "glusterfs", "9p",
        "afs", "lustre", "gfs2", "ocfs2", "virtiofs", "davfs", "sshfs",
    }
)  # fmt: skip
VIRTUAL_FS = frozenset(
    {
        "tmpfs", "proc", "sysfs", "devpts", "devtmpfs", "securityfs", "cgroup", "cgroup2",
        "debugfs", "tracefs", "mqueue", "hugetlbfs", "pstore", "efivarfs", "configfs",
        "binfmt_misc", "fusectl", "rpc_pipefs", "nfsd", "autofs", "ramfs", "overlay",
        "bpf", "usbfs", "none",
    }
)  # fmt: skip
REMOVABLE_FS = frozenset({"iso9660", "udf"})
REMOVABLE_SPECS = ("/dev/sr", "/dev/cdrom", "/dev/dvd", "/dev/fd", "/dev/floppy")
# Options that choose *what* is mounted; the rest (noatime, errors=…) only tune how the
# guest mounts it, and an option this kernel lacks must not stop a customization.
KEPT_OPTIONS = ("subvol", "subvolid")
# vmtailor writes under these; a mount that holds one of them cannot be left out.
ESSENTIAL_PATHS = ("/etc", "/usr/lib/vmtailor", "/var/lib/vmtailor", "/var/log")


@dataclass(frozen=True)
class RootLocation:
    """Where the guest's / is: a device and, on btrfs, the subvolume from the top level
    ("" for the top level itself; None on other filesystems)."""

    device: BlockDevice
    subvol: str | None = None


@dataclass(frozen=True)
class Mount:
    """One filesystem of the guest to mount, resolved to its device."""

    target: str  # guest path
    device: BlockDevice
    fstype: str
    options: tuple[str, ...] = ()
    spec: str = ""  # the fstab's first field, for messages
    line: int | None = None
    nofail: bool = False  # failing to mount it is a warning (never for an essential one)

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "device": self.device.path,
            "fstype": self.fstype,
            "options": list(self.options),
            "spec": self.spec,
            "line": self.line,
        }


@dataclass(frozen=True)
class Skipped:
    """An fstab entry that is not mounted, and why."""

    target: str
    spec: str
    reason: str
    line: int


@dataclass
class MountPlan:
    """Where the guest's root is and what to mount on it, parents first."""

    root: RootLocation
    mounts: list[Mount] = field(default_factory=list)  # parents first; mounts[0] is /
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "mounts": [m.to_dict() for m in self.mounts],
            "skipped": [s.__dict__ for s in self.skipped],
            "warnings": list(self.warnings),
        }


class _Missing(Exception):
    """The entry's filesystem is not there (a warning with nofail, else an error)."""


def normalize_target(target: str) -> str | None:
    if not target.startswith("/"):
        return None
    parts = [p for p in target.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/" + "/".join(parts)


def is_under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def essential(target: str) -> bool:
    return any(is_under(p, target) for p in ESSENTIAL_PATHS)


def skip_reason(entry: FstabEntry) -> str | None:
    """Why an entry is not mounted for a customization, or None to mount it."""
    fstype = entry.fstype.lower()
    if fstype == "swap" or entry.target in ("swap", "none"):
        return "swap"
    if entry.has("noauto"):
        return "noauto"
    if entry.has("bind") or entry.has("rbind"):
        return "bind mount"
    if fstype in NETWORK_FS or fstype.startswith("fuse") or entry.has("_netdev"):
        return "network filesystem"
    # server:/export or //server/share; a /dev/disk/by-path/pci-0000:00:04.0 name is local
    spec = entry.spec
    if spec.startswith("//") or (":" in spec and not spec.startswith("/") and "=" not in spec):
        return "network filesystem"
    if fstype in VIRTUAL_FS:
        return f"{fstype}: not on a disk"
    if fstype in REMOVABLE_FS or entry.spec.startswith(REMOVABLE_SPECS):
        return "removable media"
    return None


def _norm_subvol(value: str) -> str:
    return value.strip("/")


def _subvol_missing(entry: FstabEntry, device: BlockDevice) -> str | None:
    if device.fstype != "btrfs" or device.subvolumes is None:
        return None
    subvol, subvolid = entry.value("subvol"), entry.value("subvolid")
    if subvol is not None and _norm_subvol(subvol) not in (
        "",
        *(s.path for s in device.subvolumes),
    ):
        return f"{device.path} has no btrfs subvolume {subvol!r}"
    if subvolid is not None and subvolid.isdigit():
        ids = {5, *(s.id for s in device.subvolumes)}
        if int(subvolid) not in ids:
            return f"{device.path} has no btrfs subvolume with id {subvolid}"
    return None


def pick_device(entry: FstabEntry, devices: Sequence[BlockDevice]) -> BlockDevice:
    """The one device `entry` names among one guest's devices. Raises _Missing when it is
    not there (or not mountable) and StorageError when the name is ambiguous."""
    found = resolve(entry.spec, devices)
    if not found:
        raise _Missing(f"{entry.spec} is not among the guest's disks")
    if len(found) > 1:
        uuids = {(d.fstype, d.uuid) for d in found}
        if len(uuids) == 1 and found[0].fstype == "btrfs":
            found = sorted(found, key=lambda d: d.path)  # members of one multi-device btrfs
        else:
            raise StorageError(
                f"{entry.describe()}: {entry.spec} matches several of the guest's devices: "
                + ", ".join(d.path for d in found),
                hint="is one disk attached twice, or two clones attached to one VM?",
            )
    device = found[0]
    if device.fstype == "crypto_LUKS":
        raise _Missing(f"{device.path} is encrypted (LUKS); vmtailor does not open it")
    if device.fstype is None or device.fstype in NOT_FILESYSTEMS:
        raise _Missing(f"{device.path} holds no mountable filesystem ({device.fstype or 'none'})")
    why = _subvol_missing(entry, device)
    if why:
        raise _Missing(why)
    return device


def _fstype(entry: FstabEntry, device: BlockDevice, warnings: list[str]) -> str:
    declared = entry.fstype.lower()
    actual = device.fstype or declared
    if declared not in ("auto", "", actual) and "," not in declared:
        if not (declared.startswith("ext") and actual.startswith("ext")):
            warnings.append(
                f"{entry.describe()}: fstab says {declared} but {device.path} is {actual}"
            )
    return actual


def _kept_options(entry: FstabEntry) -> tuple[str, ...]:
    return tuple(o for o in entry.options if o.partition("=")[0] in KEPT_OPTIONS)


def _root_mount(
    entry: FstabEntry | None, root: RootLocation, devices: Sequence[BlockDevice], warnings
) -> Mount:
    device = root.device
    if entry is None:
        warnings.append(f"the guest's fstab has no / entry: using {device.path}")
    else:
        found = resolve(entry.spec, devices)
        if found and device.path not in {d.path for d in found}:
            raise StorageError(
                f"{entry.describe()}: names {found[0].path}, but the guest's root "
                f"(its /etc/fstab and OS release file) is on {device.path}"
            )
        if not found:
            warnings.append(f"{entry.describe()}: not found; using {device.path}")
    options = _kept_options(entry) if entry else ()
    subvol = entry.value("subvol") if entry else None
    if subvol is not None and root.subvol is not None:
        if _norm_subvol(subvol) != _norm_subvol(root.subvol):
            raise StorageError(
                f"{entry.describe()}: / is subvolume {subvol!r}, but the guest's root was "
                f"found in subvolume {root.subvol!r}"
            )
    if not options and root.subvol is not None:
        options = (f"subvol=/{root.subvol}",)
    return Mount(
        "/",
        device,
        device.fstype or "auto",
        options,
        entry.spec if entry else "",
        entry and entry.line,
    )


def plan_mounts(
    fstab: str | Fstab, devices: Sequence[BlockDevice], root: RootLocation
) -> MountPlan:
    """Plan the guest's mounts under a relocated root. `devices` may hold other guests'
    devices too: only those in the root's group are ever considered."""
    if isinstance(fstab, str):
        fstab = parse_fstab(fstab)
    own = [d for d in devices if d.group == root.device.group]
    plan = MountPlan(root, warnings=list(fstab.warnings))
    root_entry: FstabEntry | None = None
    chosen: dict[str, Mount] = {}
    missing: list[str] = []
    for entry in fstab.entries:
        reason = skip_reason(entry)
        if reason:
            plan.skipped.append(Skipped(entry.target, entry.spec, reason, entry.line))
            continue
        target = normalize_target(entry.target)
        if target is None:
            raise StorageError(
                f"{entry.describe()}: a mount point must be an absolute path without '..'"
            )
        if target == "/":
            root_entry = entry
            continue
        try:
            device = pick_device(entry, own)
        except _Missing as exc:
            if entry.has("nofail") and not essential(target):
                plan.warnings.append(f"{entry.describe()}: {exc}; skipped (nofail)")
                plan.skipped.append(Skipped(target, entry.spec, f"missing: {exc}", entry.line))
                missing.append(target)
                continue
            raise StorageError(
                f"{entry.describe()}: {exc}",
                hint=None if essential(target) else "attach that disk, or mark it nofail",
            ) from None
        if target in chosen:
            plan.warnings.append(f"{entry.describe()}: {target} listed twice; the last one wins")
        fstype = _fstype(entry, device, plan.warnings)
        nofail = entry.has("nofail") and not essential(target)
        options = _kept_options(entry)
        chosen[target] = Mount(target, device, fstype, options, entry.spec, entry.line, nofail)
    mounts = [_root_mount(root_entry, root, own, plan.warnings)]
    for mount in sorted(chosen.values(), key=lambda m: m.target.count("/")):
        # Beneath a missing mount its children would land on the wrong filesystem.
        above = [t for t in missing if is_under(mount.target, t)]
        if above:
            plan.warnings.append(f"{mount.target}: skipped, {above[0]} above it is missing")
            plan.skipped.append(
                Skipped(mount.target, mount.spec, "parent missing", mount.line or 0)
            )
            continue
        mounts.append(mount)
    plan.mounts = mounts
    return plan
