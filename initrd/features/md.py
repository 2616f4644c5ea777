"""md RAID: mdadm and the md drivers, on the ISO until a guest has a RAID member (see
xfs_btrfs.py for why every byte of the initrd counts). The stages assemble a guest's
arrays from their members only, read-only (vmtailor.customizer.storage.md)."""

from . import Feature

FEATURE = Feature(
    name="md",
    summary="mdadm, md RAID 0/1/10/4/5/6 drivers (on the ISO)",
    depends=("filesystems",),
    binaries=("mdadm",),
    kernel_modules=("md_mod", "raid0", "raid1", "raid10", "raid456"),
    on_media=True,
)
