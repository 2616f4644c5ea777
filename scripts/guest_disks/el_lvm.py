"""(b) el-lvm: a RHEL-like layout (the Debian userland is fine: the layout is the point).
/boot ext4 by UUID; an LVM volume group whose name has a dash (so /dev/mapper doubles
it) with an XFS root, a separate XFS /var and swap, all by /dev/mapper path in fstab."""

from __future__ import annotations

from pathlib import Path

from . import tree
from .disk import attached, fixed_uuid, gpt, mounted, new_image, sh, write
from .lvmloop import lv_loops, lvm

NAME = "el-lvm"
SIZE_MIB = 1900
VG = "vmt-el"
LVS = [("root", "1100M", "xfs"), ("var", "400M", "xfs"), ("swap", "64M", "swap")]
DISK_GUID = fixed_uuid(NAME, "disk")
BOOT_UUID = fixed_uuid(NAME, "boot")
FS_UUID = {lv: fixed_uuid(NAME, lv) for lv, _, _ in LVS}
PARTS = [
    ("+160M", "8300", "boot", fixed_uuid(NAME, "p1")),
    ("0", "8e00", "lvm", fixed_uuid(NAME, "p2")),
]
FSTAB = f"""\
#
# /etc/fstab
# Created by anaconda (as it would be)
#
/dev/mapper/vmt--el-root   /                       xfs     defaults        0 0
UUID={BOOT_UUID} /boot                   ext4    defaults        1 2
/dev/mapper/vmt--el-var    /var                    xfs     defaults        0 0
/dev/mapper/vmt--el-swap   none                    swap    defaults        0 0
"""


def build(out: Path) -> None:
    new_image(str(out), SIZE_MIB)
    gpt(str(out), DISK_GUID, PARTS)
    with attached(str(out)) as loop:
        sh("mkfs.ext4", "-q", "-U", BOOT_UUID, "-L", "boot", loop.part(1))
        pv = loop.part(2)
        lvm("pvcreate", pv, pv=pv)
        lvm("vgcreate", VG, pv, pv=pv)
        for lv, size, _ in LVS:
            lvm("lvcreate", "-an", "-Zn", "-L", size, "-n", lv, VG, pv=pv)
        with lv_loops(str(out), loop, 2) as lvs:
            for lv, _, fstype in LVS:
                dev = lvs[(VG, lv)]
                if fstype == "xfs":
                    sh("mkfs.xfs", "-q", "-m", f"uuid={FS_UUID[lv]}", "-L", lv, dev)
                else:
                    sh("mkswap", "-U", FS_UUID[lv], "-L", lv, dev)
            with mounted(lvs[(VG, "root")]) as root:
                tree.unpack(root, exclude=("boot", "var"))
                write(f"{root}/etc/fstab", FSTAB)
                with mounted(lvs[(VG, "var")]) as var:
                    tree.unpack(var, only="var")
                with mounted(loop.part(1)) as boot:
                    tree.unpack(boot, only="boot")
