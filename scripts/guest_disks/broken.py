"""(d) broken guests that must fail cleanly: `nofstab` has an OS but no /etc/fstab;
`luks` has an ext4 /boot and its root in a LUKS2 volume (fixed test passphrase)."""

from __future__ import annotations

from pathlib import Path

from .disk import attached, fixed_uuid, gpt, mounted, new_image, sh, write

PASSPHRASE = b"vmtailor-test-passphrase"
OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""


def build_nofstab(out: Path) -> None:
    new_image(str(out), 64)
    gpt(
        str(out),
        fixed_uuid("nofstab", "disk"),
        [("0", "8300", "root", fixed_uuid("nofstab", "p1"))],
    )
    with attached(str(out)) as loop:
        sh("mkfs.ext4", "-q", "-U", fixed_uuid("nofstab", "root"), loop.part(1))
        with mounted(loop.part(1)) as root:
            write(f"{root}/usr/lib/os-release", OS_RELEASE)
            write(f"{root}/etc/hostname", "vmt-nofstab\n")
            sh("ln", "-s", "../usr/lib/os-release", f"{root}/etc/os-release")


def build_luks(out: Path) -> None:
    new_image(str(out), 96)
    parts = [
        ("+32M", "8300", "boot", fixed_uuid("luks", "p1")),
        ("0", "8309", "cryptroot", fixed_uuid("luks", "p2")),
    ]
    gpt(str(out), fixed_uuid("luks", "disk"), parts)
    with attached(str(out)) as loop:
        sh("mkfs.ext4", "-q", "-U", fixed_uuid("luks", "boot"), "-L", "boot", loop.part(1))
        with mounted(loop.part(1)) as boot:
            write(f"{boot}/grub/grub.cfg", "# the root is encrypted\n")
        sh("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2",
           "--uuid", fixed_uuid("luks", "luks"), "--pbkdf", "pbkdf2",
           "--pbkdf-force-iterations", "1000", "--key-file", "-", loop.part(2),
           input=PASSPHRASE)  # fmt: skip
