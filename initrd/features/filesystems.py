"""Filesystems a guest or its config media may use. ext4 and btrfs pull crc32c in through
their softdeps; the nls tables are what vfat and isofs ask for when mounting.
xfs_logprint tells a dirty XFS log (a clone of a running template) from a clean one, so
it is refused rather than replayed; ext4 and btrfs say so in their superblocks.

xfs and btrfs, with what only they need (8.8 of the initrd's 43 MB, 2.7 of its 17 MB
compressed), stay on the ISO until a guest has one. The firmware reads the initrd from
the CD at ~11 MB/s under emulation and the kernel unpacks all of it before anything runs
(~0.5 s of every boot for those two); the kernel's own CD driver reads them from the ISO
in a fraction of that, and only for the guests that need them."""

from . import Feature

FEATURE = Feature(
    name="filesystems",
    summary="ext4, vfat, isofs, device-mapper; xfs, btrfs from the ISO; xfs_logprint",
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
    media_modules=("xfs", "btrfs"),
)
