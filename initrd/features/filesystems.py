"""Filesystems a guest or its config media may use; xfs and btrfs have a feature of their
own (xfs_btrfs.py), which stays on the ISO. ext4 pulls crc32c in through its softdep;
the nls tables are what vfat and isofs ask for when mounting. xfs_logprint tells a dirty
XFS log (a clone of a running template) from a clean one, so it is refused rather than
replayed; ext4 and btrfs say so in their superblocks."""

from . import Feature

FEATURE = Feature(
    name="filesystems",
    summary="ext4, vfat, isofs, device-mapper; xfs_logprint",
    depends=("base",),
    binaries=("xfs_logprint",),
    kernel_modules=(
        "ext4",
        "vfat",
        "isofs",
        "dm_mod",
        "nls_cp437",
        "nls_iso8859_1",
        "nls_utf8",
        "nls_ascii",
    ),
)
