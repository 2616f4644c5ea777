"""One record per filesystem (customizer/storage/filesystems.py): every filesystem probing
looks inside has one; mount options come from it; and the one recovery check answers
alike for the initrd (os.pread on the device, xfs_logprint) and offline (the appliance's
pread_device, xfs_repair -n) on real superblocks made by mkfs here."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from vmtailor.customizer.storage import devices, filesystems, mount, recovery
from vmtailor.customizer.storage.errors import StorageError
from vmtailor.customizer.storage.plan import RootLocation, plan_mounts
from vmtailor.initrd import features
from vmtailor.offline import mount as offline_mount

UNCLEAN_EXT4 = "its ext4 journal needs recovery"
UNCLEAN_BTRFS = "its btrfs log tree needs replaying"


class Appliance:
    """What offline/mount.py asks of a libguestfs handle, on host files: pread_device
    with guestfs's (device, count, offset) order, failing with RuntimeError as it does."""

    def __init__(self, xfs_repair_status: int = 0) -> None:
        self.status = xfs_repair_status

    def pread_device(self, device: str, count: int, offset: int) -> bytes:
        try:
            with open(device, "rb") as f:
                f.seek(offset)
                return f.read(count)
        except OSError as exc:
            raise RuntimeError(f"pread_device: {device}: {exc.strerror}") from None

    def xfs_repair(self, device: str, nomodify: bool) -> int:
        assert nomodify  # never a repair
        return self.status


def both_sides(path, fstype, g=None):
    """(initrd's answer, offline's answer) for the device at `path`."""
    return (
        recovery.needs_recovery(str(path), fstype),
        offline_mount.needs_recovery(g or Appliance(), str(path), fstype),
    )


@pytest.fixture(scope="module")
def ext4(tmp_path_factory):
    path = tmp_path_factory.mktemp("ext4") / "ext4.img"
    path.write_bytes(b"")
    subprocess.run(["truncate", "-s", "8M", str(path)], check=True)
    subprocess.run(["mkfs.ext4", "-F", "-q", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def btrfs(tmp_path_factory):
    path = tmp_path_factory.mktemp("btrfs") / "btrfs.img"
    subprocess.run(["truncate", "-s", "128M", str(path)], check=True)
    subprocess.run(["mkfs.btrfs", "-q", "-f", str(path)], check=True)
    return path


def copy(path, tmp_path):
    dest = tmp_path / path.name
    shutil.copyfile(path, dest)
    return dest


# -- the table ---------------------------------------------------------------------------


def test_every_filesystem_probing_looks_inside_has_a_record():
    # the set probing has always mounted, now the records' (devices re-exports it)
    probed = {
        "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs", "nilfs2", "bcachefs",
    }  # fmt: skip
    assert probed == devices.LINUX_FILESYSTEMS
    for name in devices.LINUX_FILESYSTEMS:
        fs = filesystems.record(name)
        assert fs is not None and fs.name == name and fs.linux
    assert not filesystems.record("vfat").linux
    assert filesystems.record("swap") is None and filesystems.record(None) is None


def test_the_initrd_features_carry_the_records_drivers_and_tools():
    fs_feature, on_iso = features.FEATURES["filesystems"], features.FEATURES["xfs-btrfs"]
    assert on_iso.on_media and set(on_iso.kernel_modules) == {"xfs", "btrfs"}
    assert {"ext4", "vfat", "nls_cp437", "nls_ascii"} <= set(fs_feature.kernel_modules)
    assert not {"xfs", "btrfs"} & set(fs_feature.kernel_modules)
    assert "xfs_logprint" in fs_feature.binaries  # the XFS record's initrd tool
    for fs in filesystems.FILESYSTEMS.values():
        if fs.driver:
            assert fs.driver in (on_iso if fs.on_iso else fs_feature).kernel_modules


def test_modules_for_a_guests_filesystems():
    # ext2/3 are mounted by ext4's driver; vfat brings its codepage and iocharset tables
    assert filesystems.modules_for(["ext3", "ext2", None, "swap", "LVM2_member"]) == ["ext4"]
    assert filesystems.modules_for(["vfat", "xfs", "ext4"]) == [
        "ext4", "vfat", "xfs", "nls_cp437", "nls_ascii",
    ]  # fmt: skip
    assert filesystems.modules_for(["f2fs", "iso9660"]) == []  # none in the image


@pytest.mark.parametrize(
    ("fstype", "options", "ro", "rw"),
    [
        ("ext4", (), ["ro", "noload"], ["rw"]),
        ("ext3", ("errors=remount-ro",), ["ro", "errors=remount-ro", "noload"],
         ["rw", "errors=remount-ro"]),
        ("ext2", (), ["ro"], ["rw"]),
        ("xfs", (), ["ro", "norecovery", "nouuid"], ["rw", "nouuid"]),
        ("xfs", ("nouuid",), ["ro", "nouuid", "norecovery"], ["rw", "nouuid"]),
        ("btrfs", ("subvol=@",), ["ro", "subvol=@", "rescue=nologreplay"], ["rw", "subvol=@"]),
        ("vfat", (), ["ro"], ["rw"]),
        (None, ("ro",), ["ro"], ["rw", "ro"]),
    ],
)  # fmt: skip
def test_mount_options_per_record(fstype, options, ro, rw):
    assert filesystems.mount_options(fstype, options, readonly=True) == ro
    assert filesystems.mount_options(fstype, options, readonly=False) == rw
    # what the initrd's Mounts and offline's probe and mount_plan use
    assert mount.mount_options is filesystems.mount_options


def test_only_journaled_filesystems_count_as_flushed_on_unmount():
    flushed = {n for n, fs in filesystems.FILESYSTEMS.items() if fs.flushed_on_unmount}
    assert flushed == {"ext3", "ext4", "xfs", "btrfs"}


# -- the recovery check, on real superblocks ----------------------------------------------


def test_clean_filesystems_pass_on_both_sides(ext4, btrfs):
    assert both_sides(ext4, "ext4") == (None, None)
    assert both_sides(ext4, "ext3") == (None, None)
    assert both_sides(btrfs, "btrfs") == (None, None)


def test_ext4_needing_recovery_is_told_alike(ext4, tmp_path):
    unclean = copy(ext4, tmp_path)
    subprocess.run(["debugfs", "-w", "-R", "feature needs_recovery", str(unclean)],
                   check=True, capture_output=True)  # fmt: skip
    assert both_sides(unclean, "ext4") == (UNCLEAN_EXT4, UNCLEAN_EXT4)
    assert both_sides(unclean, "ext3") == (UNCLEAN_EXT4, UNCLEAN_EXT4)
    assert both_sides(unclean, "ext2") == (None, None)  # no journal to replay


def test_btrfs_with_a_log_tree_is_told_alike(btrfs, tmp_path):
    unclean = copy(btrfs, tmp_path)
    with open(unclean, "r+b") as f:  # the superblock's log_root: fsync()ed, not committed
        f.seek(0x10000 + 0x60)
        f.write((30408704).to_bytes(8, "little"))
    assert both_sides(unclean, "btrfs") == (UNCLEAN_BTRFS, UNCLEAN_BTRFS)
    assert both_sides(btrfs, "btrfs") == (None, None)  # the original is untouched


def test_a_superblock_other_than_blkid_said_is_told_alike(ext4, btrfs, tmp_path):
    short = tmp_path / "short.img"
    short.write_bytes(bytes(4096))  # a superblock cut short: no magic there
    for path, fstype, what in [(btrfs, "ext4", "ext2/3/4"), (ext4, "btrfs", "btrfs"),
                               (short, "btrfs", "btrfs")]:  # fmt: skip
        expected = f"its superblock is not what blkid said (not a {what} superblock)"
        if what == "ext2/3/4":
            expected = f"its superblock is not what blkid said (not an {what} superblock)"
        assert both_sides(path, fstype) == (expected, expected)


def test_a_device_that_cannot_be_read_is_told_alike(tmp_path):
    initrd, offline = both_sides(tmp_path / "gone", "ext4")
    assert initrd.startswith("its superblock cannot be read (")
    assert offline.startswith("its superblock cannot be read (")


def test_xfs_is_asked_of_each_sides_tool_and_told_alike(monkeypatch, tmp_path):
    dirty = "    log tail: 2 head: 18 state: <DIRTY>\n"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "xfs_logprint").write_text(f"#!/bin/sh\nprintf '{dirty}'\n")
    (fake / "xfs_logprint").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")
    dev = str(tmp_path / "xfs.img")
    assert recovery.needs_recovery(dev, "xfs") == "its XFS log is dirty"
    assert offline_mount.needs_recovery(Appliance(1), dev, "xfs") == "its XFS log is dirty"
    assert offline_mount.needs_recovery(Appliance(0), dev, "xfs") is None


def test_a_clean_xfs_passes_xfs_logprint(tmp_path):
    path = tmp_path / "xfs.img"
    subprocess.run(["truncate", "-s", "300M", str(path)], check=True)
    subprocess.run(["mkfs.xfs", "-q", str(path)], check=True)
    assert recovery.needs_recovery(str(path), "xfs") is None
    assert recovery.needs_recovery(str(tmp_path / "gone"), "xfs").startswith(
        "it cannot be checked (xfs_logprint -t "
    )


def test_the_refusal_names_the_device_the_mount_and_why_on_both_sides(ext4, tmp_path):
    unclean = copy(ext4, tmp_path)
    subprocess.run(["debugfs", "-w", "-R", "feature needs_recovery", str(unclean)],
                   check=True, capture_output=True)  # fmt: skip
    dev = devices.BlockDevice(path=str(unclean), fstype="ext4", uuid="u1")
    plan = plan_mounts("UUID=u1 / ext4 defaults 0 1\n", [dev], RootLocation(dev))
    expected = f"{unclean} (ext4, the guest's /) was not cleanly unmounted: {UNCLEAN_EXT4}"
    for refuse in (lambda: recovery.refuse_unclean(plan, recovery.needs_recovery),
                   lambda: offline_mount.refuse_unclean(Appliance(), plan)):  # fmt: skip
        with pytest.raises(StorageError) as exc:
            refuse()
        assert str(exc.value.args[0]) == expected
        assert "fsck the clone" in exc.value.hint
