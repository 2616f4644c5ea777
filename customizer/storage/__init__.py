"""A guest's disks: fstab parsing and mount planning (pure, shared by the initrd and
the offline path), and device discovery and mounting (the initrd, a utility server).

- fstab: /etc/fstab as data
- devices: block devices as data, kernel and LVM names
- resolve: which of one guest's devices an fstab spec names
- plan: the ordered mounts under a relocated root
- roots: which filesystem is the guest's root
- filesystems: one record per filesystem (driver, mount options, recovery check)
- recovery: does a filesystem need journal recovery (this side's reads, the refusal)
- discover, lvm, probe, mount, guest: device access, all through run()
"""

from .devices import BlockDevice, Subvolume
from .errors import StorageError
from .fstab import Fstab, FstabEntry, parse_fstab
from .plan import Mount, MountPlan, RootLocation, plan_mounts
from .roots import RootCandidate, choose_root

__all__ = [
    "BlockDevice",
    "Fstab",
    "FstabEntry",
    "Mount",
    "MountPlan",
    "RootCandidate",
    "RootLocation",
    "StorageError",
    "Subvolume",
    "choose_root",
    "parse_fstab",
    "plan_mounts",
]
