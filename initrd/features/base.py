"""The skeleton every initrd has: busybox (static: no libraries to follow) for the shell
and tools, kmod for modprobe with softdeps and /proc/cmdline options, and /init."""

from . import Feature

FEATURE = Feature(
    name="base",
    summary="busybox, kmod (modprobe), /init and the directories it mounts on",
    binaries=("/bin/busybox", "kmod"),
    busybox_applets=True,
    links=(
        # the kernel runs /sbin/modprobe itself to load filesystems on mount
        ("/usr/sbin/modprobe", "../bin/kmod"),
        ("/usr/sbin/insmod", "../bin/kmod"),
        ("/usr/sbin/rmmod", "../bin/kmod"),
        ("/usr/sbin/lsmod", "../bin/kmod"),
        ("/usr/sbin/modinfo", "../bin/kmod"),
        ("/usr/sbin/depmod", "../bin/kmod"),
    ),
    data=(
        ("init.sh", "/init", 0o755),
        ("etc/passwd", "/etc/passwd", 0o644),
        ("etc/group", "/etc/group", 0o644),
    ),
    directories=("/proc", "/sys", "/dev", "/run", "/tmp", "/root", "/mnt", "/sysroot", "/var"),
)
