"""util-linux's blkid (labels, UUIDs, PARTUUIDs without udev) and mount, which understands
every option a guest's fstab may carry (busybox's does not). umount is busybox's: it only
ever gets a mount point (and -l), and as a static binary it starts in a seventh of the
time util-linux's takes under TCG (~8 against ~60 ms: no libraries to load)."""

from . import Feature

FEATURE = Feature(
    name="blkid",
    summary="util-linux blkid and mount",
    depends=("base",),
    binaries=("blkid", "mount"),
)
