"""The xfs and btrfs drivers (btrfs with its softdeps: crc32c, xxhash64, sha256, blake2b),
on the ISO until a guest has one of those filesystems.

The firmware reads the initrd from the CD at ~11 MB/s under emulation and the kernel
unpacks all of it before anything runs: every byte in it costs every boot. xfs and btrfs
with what only they need are 8.8 of the image's 43 MB (2.7 of its 17 MB compressed,
~0.5 s of a boot). The kernel's own CD driver reads them from the ISO in a fraction of
that, and only for the guests that have them. Which drivers: those whose filesystem
record (vmtailor.customizer.storage.filesystems) says on_iso."""

from vmtailor.customizer.storage import filesystems as records

from . import Feature

FEATURE = Feature(
    name="xfs-btrfs",
    summary="the xfs and btrfs drivers (on the ISO)",
    depends=("filesystems",),
    kernel_modules=records.drivers(on_iso=True),
    on_media=True,
)
