"""Clone images on the utility server: what format they are, whether they may be written
(not read-only, not held by a running VM, not damaged), and creating missing clones as
qcow2 overlays of a master. Every check only reads; a refused image is never touched."""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass

from ..customizer.errors import VmtailorError
from ..customizer.run import CommandError, run

FORMATS = ("qcow2", "raw", "vmdk", "vhdx", "vpc", "vdi", "qed")
# formats `qemu-img check` can verify (raw has no metadata to check)
CHECKABLE = ("qcow2", "qed", "vdi", "vhdx")


class ImageError(VmtailorError):
    """This image can't be customized; the message says why. Nothing was touched."""


@dataclass(frozen=True)
class Image:
    path: str
    format: str
    virtual_size: int
    backing: str | None


def _qemu_error(exc: CommandError) -> str:
    text = exc.stderr.strip().splitlines()
    return text[-1].removeprefix("qemu-img: ") if text else str(exc)


def info(path: str, fmt: str | None = None) -> Image:
    """qemu-img's view of an image, read with -U so that a held lock is not an error here.
    `fmt` pins the format; without it qemu-img probes the data."""
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such image")
    if not os.path.isfile(path) and not stat.S_ISBLK(os.stat(path).st_mode):
        raise ImageError(f"{path}: not a regular file or block device")
    argv = ["qemu-img", "info", "-U", "--output=json"]
    if fmt:
        argv += ["-f", fmt]
    try:
        proc = run([*argv, path], timeout=60)
    except CommandError as exc:
        raise ImageError(f"{path}: not a disk image qemu can open ({_qemu_error(exc)})") from None
    data = json.loads(proc.stdout)
    found = data.get("format", "")
    if found not in FORMATS:
        raise ImageError(f"{path}: unsupported image format {found!r}")
    return Image(path, found, int(data.get("virtual-size", 0)), data.get("backing-filename"))


def _read_only_reason(path: str) -> str | None:
    """Why the image must not be written. Root may write a 0444 file, but a master or
    clone marked so was marked on purpose; the open() finds read-only filesystems and
    immutable files (it writes nothing)."""
    st = os.stat(path)
    if stat.S_ISREG(st.st_mode) and not st.st_mode & 0o222:
        return "read-only (no write permission)"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return f"read-only ({os.strerror(exc.errno)})"
        return f"cannot be opened for writing ({os.strerror(exc.errno or 0)})"
    os.close(fd)
    return None


def check_not_in_use(image: Image) -> None:
    """Refuse an image a running VM holds: QEMU keeps a write lock on its disks, and
    qemu-img without -U then cannot get its shared one. Reading it would see a
    filesystem changing underneath; writing it would corrupt it."""
    try:
        run(["qemu-img", "info", "-f", image.format, "--output=json", image.path], timeout=60)
    except CommandError as exc:
        if "lock" in exc.stderr:
            raise ImageError(
                f"{image.path}: in use (a running VM holds its lock)",
                hint="shut the VM down first; vmtailor never opens a live disk",
            ) from None
        raise ImageError(f"{image.path}: {_qemu_error(exc)}") from None


def check_writable(image: Image) -> None:
    """Refuse images we must not write: read-only ones, and images in use."""
    why = _read_only_reason(image.path)
    if why:
        raise ImageError(f"{image.path}: {why}")
    check_not_in_use(image)


def check_consistent(image: Image) -> None:
    """Refuse an image whose metadata is damaged: writing to it could lose more.
    Leaked clusters (exit 3) are harmless and left alone."""
    if image.format not in CHECKABLE:
        return
    proc = run(["qemu-img", "check", "-U", "-q", "-f", image.format, image.path],
               check=False, timeout=600)  # fmt: skip
    if proc.returncode in (0, 3):
        return
    detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    reason = detail[-1].removeprefix("qemu-img: ") if detail else f"exit {proc.returncode}"
    raise ImageError(f"{image.path}: damaged image, qemu-img check failed ({reason})")


def create_overlay(master: Image, path: str) -> Image:
    """A qcow2 clone of `master` that shares its blocks (qemu-img create -b); the
    backing path is stored relative, so master and clones can move together."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ImageError(f"{path}: directory {directory} does not exist")
    backing = os.path.relpath(os.path.abspath(master.path), directory)
    try:
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", master.format,
             path], timeout=60)  # fmt: skip
    except CommandError as exc:
        raise ImageError(f"{path}: cannot create it from the master ({_qemu_error(exc)})") from None
    return info(path, "qcow2")
