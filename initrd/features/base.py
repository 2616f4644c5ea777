"""The skeleton every initrd has: busybox (static: no libraries to follow) for the shell
and tools, kmod for modprobe with softdeps and /proc/cmdline options, and /init.

/sbin/modprobe is made by /init, not shipped: while it initialises, the kernel asks
/sbin/modprobe for crypto it has built in or not at all (hmac(sha256), hmac(sha1),
cbc(aes), each twice). Every ask would start kmod — about 60 ms under TCG, and it waits
for the initrd to be unpacked — for a module no initrd of ours has; with nothing at that
path each ask fails at once, as on a kernel booted without an initrd."""

from . import Feature

FEATURE = Feature(
    name="base",
    summary="busybox, kmod (modprobe), /init and the directories it mounts on",
    binaries=("/bin/busybox", "kmod"),
    busybox_applets=True,
    links=(
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
    # the kernel runs /sbin/modprobe itself to load filesystems on mount: /init links it
    reserved=("/usr/sbin/modprobe",),
    directories=("/proc", "/sys", "/dev", "/run", "/tmp", "/root", "/mnt", "/sysroot", "/var"),
)
