"""An md RAID guest built in a libguestfs appliance (this host's kernel has no md
driver), and its members' superblocks read on the host with mdadm --examine: for the
offline tests (test_md.py) and the boot from the ISO (tests/e2e/test_md_boot.py).

One disk: partitions 1+2 are RAID1 "vmtroot" with LVM vmt-md/root (ext4, /) on it, 5+6
RAID1 "vmtsrv" with ext4 right on the array (/srv, named /dev/md/vmtsrv in the fstab)."""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from vmtailor.customizer.storage import md

# as every libguestfs test here: no KVM to rely on (a broken /dev/kvm kills QEMU at start)
os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")

OS_RELEASE = 'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n'
FSTAB = """\
/dev/mapper/vmt--md-root  /     ext4  defaults  0 1
/dev/md/vmtsrv            /srv  ext4  defaults  0 2
"""


def build(path: Path) -> None:
    import guestfs

    g = guestfs.GuestFS(python_return_dict=True)
    g.disk_create(str(path), "raw", 320 * 1024 * 1024)
    g.add_drive_opts(str(path), format="raw")
    g.launch()
    try:
        g.part_init("/dev/sda", "mbr")
        g.part_add("/dev/sda", "p", 2048, 264191)
        g.part_add("/dev/sda", "p", 264192, 526335)
        g.part_add("/dev/sda", "e", 526336, -1)
        g.part_add("/dev/sda", "l", 528384, 585727)
        g.part_add("/dev/sda", "l", 587776, 645119)
        parts = ["/dev/sda1", "/dev/sda2", "/dev/sda5", "/dev/sda6"]
        for part in parts:
            g.part_set_mbr_id("/dev/sda", int(part[-1]), 0xFD)
        g.md_create("vmtroot", parts[:2], level="raid1")
        g.md_create("vmtsrv", parts[2:], level="raid1")
        g.pvcreate("/dev/md/vmtroot")
        g.vgcreate("vmt-md", ["/dev/md/vmtroot"])
        g.lvcreate("root", "vmt-md", 96)
        g.mkfs("ext4", "/dev/vmt-md/root")
        g.mkfs("ext4", "/dev/md/vmtsrv")
        g.mount("/dev/vmt-md/root", "/")
        for folder in ("/etc/mdadm", "/srv", "/root", "/var/lib"):
            g.mkdir_p(folder)
        g.write("/etc/os-release", OS_RELEASE)
        g.write("/etc/fstab", FSTAB)
        g.write("/etc/hostname", "template\n")
        g.write("/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 template\n")
        scan = g.debug("sh", ["mdadm --examine --scan"])
        g.write("/etc/mdadm/mdadm.conf", scan)
        g.mount("/dev/md/vmtsrv", "/srv")
        g.write("/srv/on-the-srv-array", "srv\n")
        g.umount_all()
        g.vg_activate_all(False)
        for array in g.list_md_devices():
            g.md_stop(array)
        g.shutdown()
    finally:
        g.close()


def copy(src: Path, dest: Path) -> Path:
    subprocess.run(["cp", "--sparse=always", str(src), str(dest)], check=True)
    return dest


@contextmanager
def _partitions(image: Path):
    """The image loop-attached read-only on the host with its partitions (partx: losetup
    -P makes none here); always detached."""
    loop = subprocess.run(["losetup", "-f", "--show", "-r", str(image)], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    try:
        subprocess.run(["partx", "-a", loop], check=False, capture_output=True)
        for _ in range(50):
            if os.path.exists(f"{loop}p6"):
                break
            time.sleep(0.1)
        yield loop
    finally:
        subprocess.run(["partx", "-d", loop], check=False, capture_output=True)
        subprocess.run(["losetup", "-d", loop], check=False)


def superblocks(image: Path) -> dict[int, md.Member]:
    """{partition number: its md superblock}, read by the host's mdadm."""
    with _partitions(image) as loop:
        paths = [f"{loop}p{n}" for n in (1, 2, 5, 6)]
        out = subprocess.run(["mdadm", "--examine", *paths], capture_output=True, text=True)
    return {int(m.path.rpartition("p")[2]): m for m in md.parse_examine(out.stdout)}
