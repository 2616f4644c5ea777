"""Boot loaders for the customization ISO: isolinux for BIOS (El Torito, no emulation)
and a GRUB EFI image inside a small FAT image for UEFI (El Torito platform 0xEF). Both
boot at once (no menu, no timeout) with the console on VGA and the first serial port."""

from __future__ import annotations

import os
import tempfile

from ..customizer.run import run
from ..initrd.image import ISO_LABEL
from . import fat

ISOLINUX_BIN = "/usr/lib/ISOLINUX/isolinux.bin"  # Debian isolinux
LDLINUX_C32 = "/usr/lib/syslinux/modules/bios/ldlinux.c32"  # Debian syslinux-common
GRUB_EFI_DIR = "/usr/lib/grub/x86_64-efi"  # Debian grub-efi-amd64-bin

# Paths on the ISO (Rock Ridge names; isolinux matches ISO 9660 names case-insensitively)
KERNEL = "/boot/vmlinuz"
INITRD = "/boot/initrd.lz4"

# Built into the EFI image: no modules are loaded from the ISO at boot.
GRUB_MODULES = (
    "boot", "echo", "fat", "iso9660", "linux", "part_gpt", "part_msdos", "search",
    "search_label", "serial", "terminal", "test", "efi_gop", "all_video",
)  # fmt: skip


def isolinux_cfg(cmdline: str) -> bytes:
    # TIMEOUT 0 + PROMPT 0: boot the default at once (a prompt only if Shift is held)
    return (
        "SERIAL 0 115200\n"
        "PROMPT 0\n"
        "TIMEOUT 0\n"
        "DEFAULT vmtailor\n"
        "LABEL vmtailor\n"
        f"  LINUX {KERNEL}\n"
        f"  INITRD {INITRD}\n"
        f"  APPEND {cmdline}\n"
    ).encode()


def grub_cfg(cmdline: str) -> str:
    # embedded in the EFI image: found by label, so it works whatever the firmware calls
    # the CD; the modules it uses are built in, nothing is read from the ISO but the kernel
    return (
        "serial --unit=0 --speed=115200\n"
        "terminal_input console serial\n"
        "terminal_output console serial\n"
        f"search --no-floppy --set=root --label {ISO_LABEL}\n"
        f"linux {KERNEL} {cmdline}\n"
        f"initrd {INITRD}\n"
        "boot\n"
    )


def grub_efi(cmdline: str) -> bytes:
    """BOOTX64.EFI with the config built in. grub-mkimage, not grub-mkstandalone: the
    latter packs a memdisk tar whose timestamps differ on every run; this is
    byte-identical for the same modules and config."""
    with tempfile.TemporaryDirectory(prefix="vmtailor-grub-") as tmp:
        cfg = os.path.join(tmp, "grub.cfg")
        with open(cfg, "w") as f:
            f.write(grub_cfg(cmdline))
        out = os.path.join(tmp, "BOOTX64.EFI")
        run(["grub-mkimage", "-O", "x86_64-efi", "-d", GRUB_EFI_DIR, "-p", "/boot/grub",
             "-c", cfg, "-o", out, *GRUB_MODULES])  # fmt: skip
        with open(out, "rb") as f:
            return f.read()


def efiboot_img(cmdline: str, epoch: int) -> bytes:
    """The FAT image the El Torito EFI entry points at: /EFI/BOOT/BOOTX64.EFI."""
    return fat.make_fat({"/EFI/BOOT/BOOTX64.EFI": grub_efi(cmdline)}, "EFIBOOT", epoch=epoch)
