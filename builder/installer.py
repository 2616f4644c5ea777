"""The one installer every initrd feature goes through: files, executables with their
libraries, kernel modules with their dependencies, symlinks — each installed once into a
staging tree, each remembered with the host file it came from for the manifest."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass

from ..customizer.errors import VmtailorError
from . import elf
from .kmod import ModuleIndex

log = logging.getLogger("vmtailor.builder")

# Executables are looked up here, in this order, when a feature names them without a path.
SEARCH_PATH = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
# The image is usr-merged: these top-level names are links into /usr.
MERGED = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}


def image_path(host_path: str) -> str:
    """Where a host file goes in the (usr-merged) image."""
    parts = host_path.lstrip("/").split("/", 1)
    if parts[0] in MERGED:
        return "/" + MERGED[parts[0]] + ("/" + parts[1] if len(parts) > 1 else "")
    return host_path


@dataclass(frozen=True)
class Installed:
    path: str  # absolute, in the image
    origin: str  # the host file it was copied from, or "" when vmtailor made it


class Installer:
    def __init__(self, staging: str, modules: ModuleIndex | None = None):
        self.staging = staging
        self.modules = modules
        self.kernel_modules: list[str] = []
        self._done: dict[str, Installed] = {}
        self._binaries: set[str] = set()
        os.makedirs(staging, exist_ok=True)
        for name, target in MERGED.items():
            os.makedirs(os.path.join(staging, target), exist_ok=True)
            self.symlink("/" + name, target)

    # -- primitives -------------------------------------------------------------------
    def _dest(self, path: str) -> str:
        return os.path.join(self.staging, path.lstrip("/"))

    def has(self, path: str) -> bool:
        return path in self._done

    def manifest(self) -> list[Installed]:
        return sorted(self._done.values(), key=lambda i: i.path)

    def directory(self, path: str, mode: int = 0o755) -> None:
        if path in self._done:
            return
        os.makedirs(self._dest(path), exist_ok=True)
        os.chmod(self._dest(path), mode)
        self._done[path] = Installed(path, "")

    def _parent(self, path: str) -> None:
        os.makedirs(os.path.dirname(self._dest(path)), exist_ok=True)

    def file(self, src: str, dest: str | None = None, mode: int | None = None) -> str:
        """Copy host file `src` (links followed) to `dest` (default: the same path)."""
        dest = image_path(dest or src)
        if dest in self._done:
            return dest
        self._parent(dest)
        shutil.copyfile(src, self._dest(dest))
        os.chmod(self._dest(dest), mode if mode is not None else os.stat(src).st_mode & 0o7777)
        self._done[dest] = Installed(dest, src)
        return dest

    def data(self, dest: str, content: bytes, mode: int = 0o644, origin: str = "") -> str:
        """Write generated content (or a vmtailor data file, named by `origin`)."""
        if dest in self._done:
            return dest
        self._parent(dest)
        with open(self._dest(dest), "wb") as f:
            f.write(content)
        os.chmod(self._dest(dest), mode)
        self._done[dest] = Installed(dest, origin)
        return dest

    def symlink(self, dest: str, target: str) -> None:
        """A link at `dest` unless something is there already: the first installer wins, so
        a real tool (util-linux blkid) keeps its place over a busybox applet link."""
        if dest in self._done or os.path.lexists(self._dest(dest)):
            return
        self._parent(dest)
        os.symlink(target, self._dest(dest))
        self._done[dest] = Installed(dest, "")

    # -- resolved installs ------------------------------------------------------------
    def binary(self, name: str) -> str:
        """Install an executable (by name on SEARCH_PATH, or absolute) and every library it
        loads; returns its path in the image."""
        src = name if name.startswith("/") else _which(name)
        real = os.path.realpath(src)
        dest = image_path(real)
        if real in self._binaries:
            return dest
        self._binaries.add(real)
        self.file(real, dest)
        for lib in elf.libraries(real):
            self.library(lib)
        return dest

    def library(self, path: str) -> None:
        # kept under the name the loader asked for (the soname), with the real file's bytes
        self.file(os.path.realpath(path), image_path(path))

    def kmods(self, names: list[str]) -> None:
        """Kernel modules with their dependencies and softdeps."""
        if self.modules is None:
            raise VmtailorError("no kernel modules directory to take modules from")
        for mod in self.modules.install_order(names):
            if mod in self.kernel_modules:
                continue
            self.kernel_modules.append(mod)
            self.file(self.modules.path(mod), self.module_dest(self.modules.paths[mod]))

    def module_dest(self, rel: str) -> str:
        return f"/usr/lib/modules/{os.path.basename(self.modules.moddir)}/{rel}"


def _which(name: str) -> str:
    for folder in SEARCH_PATH:
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise VmtailorError(
        f"{name}: not installed on the build host",
        hint="`make setup` installs the Debian packages the initrd needs",
    )
