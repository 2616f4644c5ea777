"""ISO 9660 images with pycdlib, reproducibly: Rock Ridge names and modes over mangled
ISO 9660 names, and every timestamp SOURCE_DATE_EPOCH.

pycdlib stamps volume descriptors and directory records with time.time() and the local
time zone and has no option to fix them, so for the span of a build the `time` its modules
see is swapped for one that always answers the build's epoch in UTC. A lock keeps two
threads from building at once while it is swapped."""

from __future__ import annotations

import contextlib
import io
import re
import sys
import threading
import time
from collections.abc import Iterator

import pycdlib

_MODULES = ("pycdlib.pycdlib", "pycdlib.headervd", "pycdlib.dates", "pycdlib.utils",
            "pycdlib.inplaceeditor", "pycdlib.udf")  # fmt: skip
_LOCK = threading.RLock()
_ISO_CHARS = re.compile(r"[^A-Z0-9_]")


class _FixedClock:
    def __init__(self, epoch: int):
        self._epoch = epoch

    def time(self) -> float:
        return float(self._epoch)

    def localtime(self, seconds: float | None = None) -> time.struct_time:
        return time.gmtime(self._epoch if seconds is None else seconds)

    def gmtime(self, seconds: float | None = None) -> time.struct_time:
        return time.gmtime(self._epoch if seconds is None else seconds)

    def __getattr__(self, name: str):
        return getattr(time, name)


@contextlib.contextmanager
def fixed_clock(epoch: int) -> Iterator[None]:
    with _LOCK:
        saved = {}
        for name in _MODULES:
            module = sys.modules.get(name)
            if module is not None and hasattr(module, "time"):
                saved[name] = module.time
                module.time = _FixedClock(epoch)
        try:
            yield
        finally:
            for name, original in saved.items():
                sys.modules[name].time = original


class IsoImage:
    """Files added by their Rock Ridge path ("/boot/vmlinuz"); ISO 9660 names are made up
    (8.3, upper case, unique per folder) for firmware and isolinux, which read those."""

    def __init__(self, label: str, epoch: int):
        self.epoch = epoch
        self.iso = pycdlib.PyCdlib()
        with fixed_clock(epoch):
            self.iso.new(interchange_level=1, vol_ident=label, rock_ridge="1.09")
        self._names: dict[str, str] = {"/": "/"}  # rock ridge path -> iso path
        self._used: dict[str, set[str]] = {}

    def _iso_name(self, parent_iso: str, name: str, is_dir: bool) -> str:
        used = self._used.setdefault(parent_iso, set())
        upper = name.upper()
        split = not is_dir and "." in upper.lstrip(".")
        base, ext = upper.rsplit(".", 1) if split else (upper, "")
        base, ext = _ISO_CHARS.sub("_", base)[:8] or "_", _ISO_CHARS.sub("_", ext)[:3]
        stem, n = base, 0
        while f"{stem}.{ext}" in used:
            n += 1
            stem = f"{base[: 7 - len(str(n))]}_{n}"
        used.add(f"{stem}.{ext}")
        return stem if is_dir else f"{stem}.{ext};1"

    def directory(self, path: str, mode: int = 0o755) -> str:
        if path in self._names:
            return self._names[path]
        parent, _, name = path.rstrip("/").rpartition("/")
        parent_iso = self.directory(parent or "/", mode)
        iso_path = f"{parent_iso.rstrip('/')}/{self._iso_name(parent_iso, name, True)}"
        with fixed_clock(self.epoch):
            self.iso.add_directory(iso_path, rr_name=name, file_mode=0o040000 | mode)
        self._names[path] = iso_path
        return iso_path

    def add(self, path: str, data: bytes, mode: int = 0o644, dir_mode: int = 0o755) -> str:
        parent, _, name = path.rpartition("/")
        parent_iso = self.directory(parent or "/", dir_mode)
        iso_path = f"{parent_iso.rstrip('/')}/{self._iso_name(parent_iso, name, False)}"
        with fixed_clock(self.epoch):
            self.iso.add_fp(io.BytesIO(data), len(data), iso_path, rr_name=name,
                            file_mode=0o100000 | mode)  # fmt: skip
        self._names[path] = iso_path
        return iso_path

    def iso_path(self, path: str) -> str:
        return self._names[path]

    def eltorito(self, path: str, **kwargs) -> None:
        with fixed_clock(self.epoch):
            self.iso.add_eltorito(self._names[path], **kwargs)

    def write(self, out: str) -> None:
        with fixed_clock(self.epoch):
            self.iso.write(out)
        self.iso.close()
