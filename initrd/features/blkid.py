"""util-linux's blkid: labels, UUIDs, PARTUUIDs and PARTLABELs without udev, which
busybox's blkid does not all give. mount and umount are busybox's: vmtailor passes them
only options of its own (of a guest's fstab, subvol= and subvolid= alone: storage.plan.
KEPT_OPTIONS), which any mount hands to the kernel as they are, and as static programs
they start in ~10 ms under TCG against ~60 ms for util-linux's."""

from . import Feature

FEATURE = Feature(
    name="blkid",
    summary="util-linux blkid",
    depends=("base",),
    binaries=("blkid",),
)
