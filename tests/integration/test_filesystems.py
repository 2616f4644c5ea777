"""The one recovery check (customizer/storage/filesystems.py) through both sides' callers,
on real filesystems made here: the initrd's (os.pread on the device, xfs_logprint -t) and
offline's (a libguestfs appliance's pread_device, xfs_repair -n) answer alike."""

from __future__ import annotations

import subprocess

from guest_disks.host import dirty_xfs_log

from tests.integration import guestfs_handle
from vmtailor.customizer.storage import recovery
from vmtailor.offline import mount as offline_mount

EXT4 = "its ext4 journal needs recovery"
BTRFS = "its btrfs log tree needs replaying"
XFS = "its XFS log is dirty"


def _image(path, size: str, *mkfs: str):
    subprocess.run(["truncate", "-s", size, str(path)], check=True)
    subprocess.run([*mkfs, str(path)], check=True, capture_output=True)
    return path


def _dirty_xfs(path) -> None:
    loop = subprocess.run(["losetup", "-f", "--show", str(path)], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    try:
        dirty_xfs_log(loop)
    finally:
        subprocess.run(["losetup", "-d", loop], check=True)


def test_both_sides_agree_on_real_filesystems(tmp_path):
    cases = []  # (image, fstype, expected answer)
    for unclean in (False, True):
        tag = "unclean" if unclean else "clean"
        ext4 = _image(tmp_path / f"ext4-{tag}", "16M", "mkfs.ext4", "-F", "-q")
        btrfs = _image(tmp_path / f"btrfs-{tag}", "128M", "mkfs.btrfs", "-f", "-q")
        xfs = _image(tmp_path / f"xfs-{tag}", "300M", "mkfs.xfs", "-f", "-q")
        if unclean:
            subprocess.run(["debugfs", "-w", "-R", "feature needs_recovery", str(ext4)],
                           check=True, capture_output=True)  # fmt: skip
            with open(btrfs, "r+b") as f:  # the superblock's log_root
                f.seek(0x10000 + 0x60)
                f.write((30408704).to_bytes(8, "little"))
            _dirty_xfs(xfs)
        cases += [(ext4, "ext4", EXT4 if unclean else None),
                  (btrfs, "btrfs", BTRFS if unclean else None),
                  (xfs, "xfs", XFS if unclean else None)]  # fmt: skip
    g = guestfs_handle.guestfs.GuestFS(python_return_dict=True)
    for image, _, _ in cases:
        g.add_drive_opts(str(image), format="raw", readonly=True)
    g.launch()
    try:
        appliance = g.list_devices()
        for (image, fstype, expected), device in zip(cases, appliance, strict=True):
            initrd = recovery.needs_recovery(str(image), fstype)
            offline = offline_mount.needs_recovery(g, device, fstype)
            assert (image.name, initrd, offline) == (image.name, expected, expected)
    finally:
        g.close()
