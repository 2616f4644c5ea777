"""util-linux's blkid (labels, UUIDs, PARTUUIDs without udev) and mount/umount, which
understand every option a guest's fstab may carry (busybox's do not)."""

from . import Feature

FEATURE = Feature(
    name="blkid",
    summary="util-linux blkid, mount, umount",
    depends=("base",),
    binaries=("blkid", "mount", "umount"),
)
