"""Filesystems a guest or its config media may use: the drivers of those whose record
(vmtailor.customizer.storage.filesystems) keeps them in the initrd, with what each asks
for when mounting; xfs and btrfs wait on the ISO (xfs_btrfs.py). ext4 pulls crc32c in
through its softdep. isofs and its nls tables are for the config media and the ISO,
dm_mod for LVM. The tools the records name for telling an unclean journal in the initrd
(xfs_logprint for a dirty XFS log, a clone of a running template) are here, so it is
refused rather than replayed; ext4 and btrfs say so in their superblocks."""

from vmtailor.customizer.storage import filesystems as records

from . import Feature

TOOLS = tuple(
    tool.split()[0]
    for fs in records.FILESYSTEMS.values()
    if fs.journal and (tool := fs.journal.tool("initrd"))
)

FEATURE = Feature(
    name="filesystems",
    summary=f"ext4, vfat, isofs, device-mapper; {', '.join(TOOLS)}",
    depends=("base",),
    binaries=TOOLS,
    kernel_modules=(
        *records.drivers(on_iso=False),
        "isofs",
        "dm_mod",
        "nls_iso8859_1",
        "nls_utf8",
    ),
)
