"""A reproducible cpio "newc" archive of a staged tree: the format the kernel unpacks an
initramfs from.

Hand-written on purpose (libarchive-c was the alternative): newc is a 110-byte ASCII header,
the name and the data, each padded to 4 bytes — some 40 lines. Writing it ourselves lets us
fix every field that would otherwise leak the build host into the image (inode numbers,
device numbers, owners, mtimes, entry order) without a C library, and keeps the builder on
the stdlib. Compression is a separate step (builder.initrd.compress)."""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, mode: int, nlink: int, mtime: int, size: int, name: bytes) -> bytes:
    fields = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, 0, 0, len(name) + 1, 0)
    return MAGIC + b"".join(b"%08X" % f for f in fields)


def entries(top: str) -> list[str]:
    """Every path under `top`, relative, sorted bytewise (so parents before children)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        found += [name if rel == "." else f"{rel}/{name}" for name in dirnames + filenames]
    return sorted(found, key=str.encode)


def write(top: str, out: BinaryIO, mtime: int) -> None:
    """Archive the tree at `top` (owned by root, every mtime `mtime`, inodes numbered in
    order); symlinks are stored as links, hard links as separate files."""
    for ino, rel in enumerate(entries(top), start=1):
        path = os.path.join(top, rel)
        st = os.lstat(path)
        mode = stat.S_IFMT(st.st_mode) | stat.S_IMODE(st.st_mode)
        name = rel.encode() + b"\0"
        if stat.S_ISLNK(st.st_mode):
            data = os.readlink(path).encode()
        elif stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                data = f.read()
        elif stat.S_ISDIR(st.st_mode):
            data = b""
        else:
            raise ValueError(f"{path}: only files, directories and symlinks go in an initrd")
        nlink = 2 if stat.S_ISDIR(st.st_mode) else 1
        out.write(_header(ino, mode, nlink, mtime, len(data), name[:-1]))
        out.write(name + _pad(110 + len(name)))
        out.write(data + _pad(len(data)))
    name = TRAILER.encode() + b"\0"
    out.write(_header(0, 0, 1, 0, 0, name[:-1]) + name + _pad(110 + len(name)))
