"""LVM: one lvm binary (the vg*/lv*/pv* commands are links to it) and a config that tells
it there is no udev to wait for. On the ISO until a guest has an LVM physical volume:
lvm and the libraries only it needs (libsystemd's chain, libdevmapper, libedit …) are
9.3 MB of the image, 3.9 MB compressed (see xfs_btrfs.py for why that matters)."""

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
    on_media=True,
)
