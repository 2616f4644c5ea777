"""The skeleton every initrd has: busybox (static: no libraries to follow) for the shell
and tools, its modprobe included, and /init.

One modprobe, busybox's, not kmod's. busybox sh runs its own applets before anything on
PATH, so coldplug has always loaded the drivers with busybox's modprobe; kmod's was only
what the kernel ran for a filesystem or a crypto algorithm. kmod needs libcrypto (to
print module signatures), 4.7 MB of the initrd's 50 and 2.2 MB of its compressed 20 —
read by the boot loader and unpacked by the kernel at every boot — and as a dynamically
linked program starts in ~60 ms under TCG, against ~10 ms for busybox. busybox's
modprobe reads the depmod index the builder writes (modules.dep, modules.alias),
/etc/modprobe.d and module options on the kernel command line. Softdeps need no reader:
what they name (crc32c for ext4 …) is in the image, and the kernel asks for it by its
crypto alias when the filesystem starts.

/sbin/modprobe is made by /init, not shipped: while it initialises, the kernel asks
/sbin/modprobe for crypto it has built in or not at all (hmac(sha256), hmac(sha1),
cbc(aes), each twice), each ask waiting for the initrd to be unpacked, for a module no
initrd of ours has; with nothing at that path each ask fails at once, as on a kernel
booted without an initrd."""

from . import Feature

FEATURE = Feature(
    name="base",
    summary="busybox (modprobe too), /init and the directories it mounts on",
    binaries=("/bin/busybox",),
    busybox_applets=True,
    data=(
        ("init.sh", "/init", 0o755),
        ("etc/passwd", "/etc/passwd", 0o644),
        ("etc/group", "/etc/group", 0o644),
    ),
    # the kernel runs /sbin/modprobe itself to load filesystems on mount: /init links it
    reserved=("/usr/sbin/modprobe",),
    directories=("/proc", "/sys", "/dev", "/run", "/tmp", "/root", "/mnt", "/sysroot", "/var"),
)
