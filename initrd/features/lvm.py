"""LVM: one lvm binary (the vg*/lv*/pv* commands are links to it) and a config that tells
it there is no udev to wait for."""

from . import Feature

_COMMANDS = ("vgchange", "vgscan", "vgs", "lvs", "pvs", "lvscan", "pvscan", "lvchange")

FEATURE = Feature(
    name="lvm",
    summary="lvm2 (vgchange -ay without udev), device-mapper",
    depends=("filesystems",),
    binaries=("lvm",),
    links=tuple((f"/usr/sbin/{c}", "lvm") for c in _COMMANDS),
    kernel_modules=("dm_mod", "dm_snapshot", "dm_mirror"),
    data=(("etc/lvm.conf", "/etc/lvm/lvm.conf", 0o644),),
)
