"""(a) debian: the template a clone is made from, bootable on its own (SeaBIOS and OVMF).

GPT: BIOS boot partition, an ESP with GRUB at the removable path, ext4 /boot and ext4 /,
both by UUID in fstab; the kernel logs to ttyS0, where a getty runs too."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from . import tree
from .disk import attached, chroot_mounts, fixed_uuid, gpt, mounted, new_image, sh, write

NAME = "debian"
SIZE_MIB = 1400
DISK_GUID = fixed_uuid(NAME, "disk")
ROOT_UUID = fixed_uuid(NAME, "root")
BOOT_UUID = fixed_uuid(NAME, "boot")
ESP_ID = "5EC0FFEE"  # vfat volume id, shown by blkid as 5EC0-FFEE
PARTS = [
    ("+1M", "ef02", "bios", fixed_uuid(NAME, "p1")),
    ("+32M", "ef00", "esp", fixed_uuid(NAME, "p2")),
    ("+160M", "8300", "boot", fixed_uuid(NAME, "p3")),
    ("0", "8300", "root", fixed_uuid(NAME, "p4")),
]
FSTAB = f"""\
# /etc/fstab: static file system information.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID={ROOT_UUID} /               ext4    errors=remount-ro 0       1
UUID={BOOT_UUID} /boot           ext4    defaults        0       2
UUID=5EC0-FFEE  /boot/efi       vfat    umask=0077,nofail 0     1
tmpfs           /tmp            tmpfs   nosuid,nodev    0       0
"""
EARLY_CFG = f"""\
search.fs_uuid {BOOT_UUID} root
set prefix=($root)/grub
"""


def grub_cfg(boot: str) -> str:
    """Written by hand: grub-mkconfig on a host without udev would name the loop device
    as root= instead of the UUID."""
    kernel = os.path.basename(sorted(glob.glob(f"{boot}/vmlinuz-*"))[-1])
    version = kernel.removeprefix("vmlinuz-")
    return f"""\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
insmod part_gpt
insmod ext2
search --no-floppy --fs-uuid --set=root {BOOT_UUID}
menuentry 'Debian GNU/Linux (vmtailor fixture)' {{
    linux /{kernel} root=UUID={ROOT_UUID} ro console=tty0 console=ttyS0,115200n8
    initrd /initrd.img-{version}
}}
"""


def install_grub(root: str, loop_device: str, esp: str) -> None:
    with chroot_mounts(root):
        sh("chroot", root, "grub-install", "--target=i386-pc", "--modules=part_gpt ext2",
           loop_device)  # fmt: skip
        write(f"{root}/boot/grub/grub.cfg", grub_cfg(f"{root}/boot"))
        # UEFI: one image at the removable path, finding /boot by UUID as BIOS GRUB does
        sh("cp", "-r", f"{root}/usr/lib/grub/x86_64-efi", f"{root}/boot/grub/")
        write(f"{root}/tmp/early.cfg", EARLY_CFG)
        sh("chroot", root, "grub-mkimage", "-O", "x86_64-efi", "-o", "/tmp/BOOTX64.EFI",
           "-p", "/grub", "-c", "/tmp/early.cfg",
           "part_gpt", "ext2", "search_fs_uuid", "normal", "configfile", "linux",
           "serial", "terminal", "efi_gop")  # fmt: skip
    sh("mmd", "-i", esp, "::/EFI", "::/EFI/BOOT")
    sh("mcopy", "-i", esp, f"{root}/tmp/BOOTX64.EFI", "::/EFI/BOOT/BOOTX64.EFI")
    os.unlink(f"{root}/tmp/BOOTX64.EFI")
    os.unlink(f"{root}/tmp/early.cfg")


def build(out: Path) -> None:
    new_image(str(out), SIZE_MIB)
    gpt(str(out), DISK_GUID, PARTS)
    with attached(str(out)) as loop:
        sh("mkfs.vfat", "-F", "16", "-n", "EFI", "-i", ESP_ID, loop.part(2))
        sh("mkfs.ext4", "-q", "-U", BOOT_UUID, "-L", "boot", loop.part(3))
        sh("mkfs.ext4", "-q", "-U", ROOT_UUID, "-L", "root", loop.part(4))
        with mounted(loop.part(4)) as root, mounted(loop.part(3), at=f"{root}/boot"):
            tree.unpack(root)
            write(f"{root}/etc/fstab", FSTAB)
            os.makedirs(f"{root}/boot/efi", exist_ok=True)
            install_grub(root, loop.device, loop.part(2))
