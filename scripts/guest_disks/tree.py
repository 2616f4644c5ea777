"""The one Debian tree every bootable fixture is cut from: debootstrap bookworm (minbase
plus a kernel, GRUB for BIOS and UEFI, systemd, udev, ifupdown with a DHCP client,
ifenslave and bridge-utils), configured as a template (hostname, serial console, locked
root), trimmed to what a VM under QEMU needs, and cached as a zstd tarball so only one
debootstrap ever runs cold."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import cache
from .disk import chroot_mounts, sh, write

SUITE = "bookworm"
MIRROR = os.environ.get("VMTAILOR_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = [
    "systemd-sysv",
    "udev",
    "kmod",
    "linux-image-amd64",
    "grub-pc-bin",
    "grub-efi-amd64-bin",
    "grub2-common",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    # what vmtailor's ifupdown config needs for a bond and a bridge (VLANs it makes with
    # iproute2): the boot test brings up a bond, a VLAN on it and a bridge over that
    "ifenslave",
    "bridge-utils",
]
HOSTNAME = "vmt-template"
# Kernel modules a VM never needs (GPUs, sound, wireless, cameras, …): most of the
# kernel's size, and of the initramfs that MODULES=most builds from them.
PRUNE_MODULES = [
    "sound",
    "drivers/gpu",
    "drivers/media",
    "drivers/net/wireless",
    "drivers/net/can",
    "drivers/net/usb",
    "drivers/infiniband",
    "drivers/iio",
    "drivers/staging",
    "drivers/comedi",
    "drivers/isdn",
    "drivers/mtd",
    "drivers/hwmon",
    "drivers/bluetooth",
    "drivers/usb/gadget",
    "drivers/usb/serial",
    "drivers/target",
    "drivers/nfc",
    "drivers/leds",
    "drivers/thunderbolt",
    "net/wireless",
    "net/mac80211",
    "net/bluetooth",
    "fs/ocfs2",
    "fs/gfs2",
    "fs/nfsd",
]
PRUNE_PATHS = [
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
]

GRUB_DEFAULT = """\
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="serial console"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
"""
INTERFACES = """\
# The template configures only loopback: each clone's network comes from vmtailor.
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
"""


def key() -> str:
    return cache.digest(cache.source_digest("tree"), SUITE, MIRROR, *PACKAGES)


def _chroot(root: str, *argv: str) -> str:
    return sh("chroot", root, *argv)


def _configure(root: str) -> None:
    write(f"{root}/etc/hostname", HOSTNAME + "\n")
    write(f"{root}/etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n")
    write(f"{root}/etc/default/grub", GRUB_DEFAULT)
    write(f"{root}/etc/network/interfaces", INTERFACES)
    os.makedirs(f"{root}/etc/network/interfaces.d", exist_ok=True)
    # Templates carry no machine identity: systemd makes one at first boot.
    write(f"{root}/etc/machine-id", "", 0o444)
    with open(f"{root}/etc/shadow") as f:
        lines = [
            "root:!*:" + line.split(":", 2)[2] if line.startswith("root:") else line
            for line in f.read().splitlines()
        ]
    write(f"{root}/etc/shadow", "\n".join(lines) + "\n", 0o640)
    wants = f"{root}/etc/systemd/system/getty.target.wants"
    os.makedirs(wants, exist_ok=True)
    link = f"{wants}/serial-getty@ttyS0.service"
    if not os.path.lexists(link):
        os.symlink("/lib/systemd/system/serial-getty@.service", link)


def _prune(root: str) -> None:
    for kernel_dir in Path(root, "usr/lib/modules").glob("*"):
        for rel in PRUNE_MODULES:
            shutil.rmtree(kernel_dir / "kernel" / rel, ignore_errors=True)
        _chroot(root, "depmod", kernel_dir.name)
    for rel in PRUNE_PATHS:
        target = Path(root, rel)
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    _chroot(root, "update-initramfs", "-u", "-k", "all")


def _debootstrap(root: str) -> None:
    sh(
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(PACKAGES),
        SUITE,
        root,
        MIRROR,
    )


def _build(out: Path) -> None:
    work = tempfile.mkdtemp(prefix="vmt-tree-", dir="/var/tmp")
    root = os.path.join(work, "root")
    try:
        _debootstrap(root)
        _configure(root)
        with chroot_mounts(root):
            _prune(root)
        with open(out, "wb") as f:
            tar = subprocess.Popen(
                ["tar", "--numeric-owner", "--xattrs", "-cpf", "-", "-C", root, "."],
                stdout=subprocess.PIPE,
            )
            sh("zstd", "-q", "-T0", "-3", stdin=tar.stdout, stdout=f)
            tar.stdout.close()
            if tar.wait() != 0:
                raise RuntimeError("tar of the debootstrap tree failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def tarball() -> Path:
    return cache.cached("debian-tree", key(), ".tar.zst", _build)


def unpack(dest: str, *, only: str | None = None, exclude: tuple[str, ...] = ()) -> None:
    """Unpack the cached tree into `dest` (a mounted filesystem), keeping owners: all of
    it but `exclude`d subtrees' contents, or `only` one subtree's contents (for a
    filesystem mounted there, such as /var or /boot)."""
    zstd = subprocess.Popen(["zstd", "-q", "-d", "-c", str(tarball())], stdout=subprocess.PIPE)
    try:
        argv = ["tar", "--numeric-owner", "--xattrs", "-xpf", "-", "-C", dest]
        argv += [f"--exclude=./{e}/*" for e in exclude]
        if only:
            argv += [f"--strip-components={only.count('/') + 2}", f"./{only}"]
        sh(*argv, stdin=zstd.stdout)
    finally:
        zstd.stdout.close()
        zstd.wait()
