"""The build cache: artifacts keyed by a hash of everything that goes into them, so an
unchanged rebuild is a copy. Keys are cheap to compute (well under a second): file
contents where they are small or decisive, a stat listing for the modules tree, dpkg's
status for every package version at once."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator

DEFAULT_DIR = "/var/cache/vmtailor/build"
KEEP = 4  # newest entries of each kind kept; older ones are pruned
DPKG_STATUS = "/var/lib/dpkg/status"


def cache_dir(path: str | None = None) -> str:
    return path or os.environ.get("VMTAILOR_CACHE_DIR") or DEFAULT_DIR


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(top: str, contents: bool = False, suffixes: tuple[str, ...] = ()) -> str:
    """Digest of a tree: names with sizes and mtimes, or with contents (for small trees
    such as vmtailor's own source). `suffixes` limits which files count."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if suffixes and not name.endswith(suffixes):
                continue
            path = os.path.join(dirpath, name)
            h.update(os.path.relpath(path, top).encode() + b"\0")
            if contents:
                h.update(file_digest(path).encode())
            else:
                st = os.stat(path)
                h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def packages_digest() -> str:
    """Every installed package's version, at once (a library upgrade changes the image)."""
    return file_digest(DPKG_STATUS) if os.path.exists(DPKG_STATUS) else "no-dpkg"


def key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


@contextlib.contextmanager
def locked(root: str, name: str) -> Iterator[None]:
    """One builder per entry at a time (parallel test workers, two CLI runs): the second
    waits, then finds the entry built."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, f".{name}.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prune(root: str, prefix: str, keep: int = KEEP) -> None:
    entries = [e for e in os.scandir(root) if e.name.startswith(prefix)]
    entries.sort(key=lambda e: e.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        if old.is_dir():
            shutil.rmtree(old.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(old.path)
