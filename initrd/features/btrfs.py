"""The btrfs driver and its softdeps (crc32c, xxhash64, sha256, blake2b), on the ISO until a
guest has a btrfs filesystem: see xfs.py for why."""

from . import Feature

FEATURE = Feature(
    name="btrfs",
    summary="the btrfs driver (on the ISO)",
    depends=("filesystems",),
    kernel_modules=("btrfs",),
    on_media=True,
)
