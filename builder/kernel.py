"""Which kernel goes on the ISO, and where its modules are."""

from __future__ import annotations

import glob
import os
import re

from ..customizer.errors import VmtailorError

_DEFAULT_GLOB = "/boot/vmlinuz-*-amd64"  # Debian's linux-image-amd64


def version_of(path: str) -> str:
    """The release a bzImage reports (`uname -r`), read from its setup header: the
    kernel_version field (offset 0x20E) points at a NUL-terminated string (+0x200)."""
    try:
        with open(path, "rb") as f:
            head = f.read(0x10000)
    except OSError as exc:
        raise VmtailorError(f"cannot read kernel {path}: {exc.strerror}") from None
    if head[0x202:0x206] != b"HdrS":
        raise VmtailorError(f"{path} is not a Linux kernel image (bzImage)")
    pointer = int.from_bytes(head[0x20E:0x210], "little") + 0x200
    text = head[pointer : head.index(b"\0", pointer)].decode("ascii", "replace")
    return text.split()[0]


def _natural(text: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def find(kernel: str | None = None, modules: str | None = None) -> tuple[str, str]:
    """(kernel image, modules directory): the given ones, or the newest Debian kernel
    installed with its modules."""
    if kernel is None:
        candidates = sorted(glob.glob(_DEFAULT_GLOB), key=_natural, reverse=True)
        usable = [k for k in candidates if os.path.isdir(f"/lib/modules/{version_of(k)}")]
        if not usable:
            raise VmtailorError(
                "no Debian kernel with modules found (/boot/vmlinuz-*-amd64)",
                hint="apt-get install linux-image-amd64, or give --kernel",
            )
        kernel = usable[0]
    if modules is None:
        modules = f"/lib/modules/{version_of(kernel)}"
    if not os.path.isfile(os.path.join(modules, "modules.dep")):
        raise VmtailorError(
            f"no modules for kernel {kernel} in {modules}", hint="run depmod, or check --kernel"
        )
    return kernel, modules
