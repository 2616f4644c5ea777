"""Guests laid out as the ones virt-inspector finds and vmtailor did not (issue #23), each
built in its own libguestfs appliance from a fixture root (scripts/fixture_roots), so
that md RAID, LVM and btrfs subvolumes are made by the appliance's kernel and tools,
never on this host (which has no device-mapper and no md). Not bootable: the tests
open them with libguestfs and boot them from the customization ISO.

    el6         MBR; ext4 /boot; LVM VolGroup: ext4 lv_root, swap. CentOS 6.10 with no
                os-release (only centos-release, redhat-release -> it) and the host name
                in /etc/sysconfig/network
    split-usr   GPT; ext4 /boot; LVM template-vg: ext4 root, /usr, /var, /home, swap.
                Debian 12 with /etc/os-release -> ../usr/lib/os-release on the /usr LV
    md-raid     GPT; ext4 /boot; two partitions in an md RAID1 (metadata 1.2, named in
                the guest's /etc/mdadm/mdadm.conf) holding LVM vg_md: ext4 root. Debian 12
    btrfs-home  GPT; one btrfs: / in subvolume @, /home in @home, and no /home directory
                in @. Ubuntu 22.04
    ubuntu-lsb  MBR; one ext4 /. Ubuntu 22.04 without os-release: /etc/lsb-release and
                /etc/debian_version only
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIB = 1 << 20

# The array as the guest's installer named it: mdadm.conf maps it to /dev/md/0.
MD_NAME = "0"
MDADM_CONF = """\
# mdadm.conf
#
# !NB! Run update-initramfs -u after updating this file.
HOMEHOST <system>
MAILADDR root

# definitions of existing MD arrays
ARRAY /dev/md/{name} metadata=1.2 UUID={uuid} name={md_name}
"""
LSB_RELEASE = """\
DISTRIB_ID=Ubuntu
DISTRIB_RELEASE=22.04
DISTRIB_CODENAME=jammy
DISTRIB_DESCRIPTION="Ubuntu 22.04.4 LTS"
"""


def roots_key() -> str:
    """What else builds them: fixture_roots.py and every YAML it reads, and the helpers
    borrowed from guest_images.py."""
    h = hashlib.sha256()
    scripts = HERE.parent
    files = [scripts / "fixture_roots.py", scripts / "guest_images.py"]
    for path in [*files, *sorted((scripts / "fixture_roots").glob("*.yaml"))]:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _el6(g, dev: str, fill: Callable) -> None:
    from guest_images import _mount, _partition

    boot, pv = _partition(g, dev, "msdos", [64, None])
    g.part_set_mbr_id(dev, 2, 0x8E)
    g.mkfs("ext4", boot)
    g.pvcreate(pv)
    g.vgcreate("VolGroup", [pv])
    g.lvcreate("lv_root", "VolGroup", 128)
    g.lvcreate("lv_swap", "VolGroup", 16)
    g.mkfs("ext4", "/dev/VolGroup/lv_root")
    g.mkswap("/dev/VolGroup/lv_swap")
    _mount(g, "/dev/VolGroup/lv_root", "/")
    _mount(g, boot, "/boot")
    fill("centos-6", f"""\

#
# /etc/fstab
# Created by anaconda on Mon Jun 11 09:12:33 2018
#
/dev/mapper/VolGroup-lv_root /                       ext4    defaults        1 1
UUID={g.vfs_uuid(boot)} /boot                   ext4    defaults        1 2
/dev/mapper/VolGroup-lv_swap swap                    swap    defaults        0 0
tmpfs                   /dev/shm                tmpfs   defaults        0 0
devpts                  /dev/pts                devpts  gid=5,mode=620  0 0
sysfs                   /sys                    sysfs   defaults        0 0
proc                    /proc                   proc    defaults        0 0
""")  # fmt: skip


SPLIT_LVS = [("root", 96, "/"), ("usr", 96, "/usr"), ("var", 48, "/var"), ("home", 32, "/home")]


def _split_usr(g, dev: str, fill: Callable) -> None:
    from guest_images import _mount, _partition

    boot, pv = _partition(g, dev, "gpt", [48, None])
    g.mkfs("ext4", boot)
    g.pvcreate(pv)
    g.vgcreate("template-vg", [pv])  # a dash: /dev/mapper doubles it
    for lv, size, _ in SPLIT_LVS:
        g.lvcreate(lv, "template-vg", size)
        g.mkfs("ext4", f"/dev/template-vg/{lv}")
    g.lvcreate("swap_1", "template-vg", 8)
    g.mkswap("/dev/template-vg/swap_1")
    for lv, _, where in SPLIT_LVS:
        _mount(g, f"/dev/template-vg/{lv}", where)
    _mount(g, boot, "/boot")
    lines = [f"/dev/mapper/template--vg-{lv} {where:6} ext4 {'errors=remount-ro' if where == '/' else 'defaults'} 0 {1 if where == '/' else 2}"
             for lv, _, where in SPLIT_LVS]  # fmt: skip
    fill("debian-12", "# /etc/fstab: static file system information.\n"
         "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
         + "\n".join(lines[:1]) + f"\nUUID={g.vfs_uuid(boot)} /boot ext4 defaults 0 2\n"
         + "\n".join(lines[1:]) + "\n/dev/mapper/template--vg-swap_1 none swap sw 0 0\n")  # fmt: skip
    # the point of the layout: the root filesystem alone has only a dangling link
    assert g.is_symlink("/etc/os-release") and g.is_file("/usr/lib/os-release")


def _md_raid(g, dev: str, fill: Callable) -> None:
    from guest_images import _mount, _partition

    boot, a, b = _partition(g, dev, "gpt", [48, 120, 120])
    for n in (2, 3):
        g.part_set_gpt_type(dev, n, "A19D880F-05FC-4D3B-A006-743F0F84911E")  # Linux RAID
    g.mkfs("ext4", boot)
    g.md_create(MD_NAME, [a, b], level="raid1", nrdevices=2)
    md = f"/dev/md/{MD_NAME}"
    detail = g.md_detail(md)
    g.pvcreate(md)
    g.vgcreate("vg_md", [md])
    g.lvcreate("root", "vg_md", 96)
    g.mkfs("ext4", "/dev/vg_md/root")
    _mount(g, "/dev/vg_md/root", "/")
    _mount(g, boot, "/boot")
    fill("debian-12", f"""\
# /etc/fstab: static file system information.
/dev/mapper/vg_md-root /     ext4 errors=remount-ro 0 1
UUID={g.vfs_uuid(boot)} /boot ext4 defaults 0 2
""")  # fmt: skip
    conf = MDADM_CONF.format(name=MD_NAME, uuid=detail["uuid"], md_name=detail["name"])
    g.mkdir_p("/etc/mdadm")
    g.write("/etc/mdadm/mdadm.conf", conf.encode())


def _btrfs_home(g, dev: str, fill: Callable) -> None:
    from guest_images import _partition

    (part,) = _partition(g, dev, "gpt", [None])
    g.mkfs_btrfs([part], label="ubuntu")
    uuid = g.vfs_uuid(part)
    g.mount(part, "/")
    g.btrfs_subvolume_create("/@")
    g.btrfs_subvolume_create("/@home")
    g.umount("/")
    g.mount_options("subvol=@", part, "/")
    fill("ubuntu-22.04", f"""\
UUID={uuid}	/	btrfs	defaults,subvol=@	0 1
UUID={uuid}	/home	btrfs	defaults,subvol=@home	0 2
""")  # fmt: skip
    # /home's files move to @home, and @ keeps no directory to mount it on
    g.mkdir("/.home")
    g.mount_options("subvol=@home", part, "/.home")
    for name in g.ls("/home"):
        g.mv(f"/home/{name}", f"/.home/{name}")
    g.umount("/.home")
    g.rmdir("/.home")
    g.rmdir("/home")


def _ubuntu_lsb(g, dev: str, fill: Callable) -> None:
    from guest_images import _mount, _partition

    (root,) = _partition(g, dev, "msdos", [None])
    g.mkfs("ext4", root)
    _mount(g, root, "/")
    fill("ubuntu-22.04", f"UUID={g.vfs_uuid(root)} / ext4 defaults 0 1\n")
    g.rm("/etc/os-release")
    g.rm("/usr/lib/os-release")
    g.write("/etc/lsb-release", LSB_RELEASE.encode())


LAYOUTS: dict[str, tuple[int, Callable]] = {  # name -> (disk MiB, build(g, disk, fill))
    "el6": (224, _el6),
    "split-usr": (352, _split_usr),
    "md-raid": (304, _md_raid),
    "btrfs-home": (256, _btrfs_home),
    "ubuntu-lsb": (96, _ubuntu_lsb),
}


def builder(name: str) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
        os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
        import fixture_roots
        import guestfs
        from guest_images import _fill

        size, lay_out = LAYOUTS[name]
        with open(out, "wb") as f:
            f.truncate(size * MIB)
        g = guestfs.GuestFS(python_return_dict=True)
        try:
            g.add_drive_opts(str(out), format="raw")
            g.launch()
            with tempfile.TemporaryDirectory() as tmp:

                def fill(root: str, fstab: str) -> None:
                    _fill(g, fixture_roots.build(root, Path(tmp, root)), fstab)

                lay_out(g, g.list_devices()[0], fill)
            g.sync()
            g.umount_all()
            g.vg_activate_all(False)
            for md in g.list_md_devices():
                g.md_stop(md)
            g.shutdown()
        finally:
            g.close()

    return build
