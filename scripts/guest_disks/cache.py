"""Built fixtures live outside the repo, in /var/cache/vmtailor/guests/, named by the
sha256 of what built them, so an edited script rebuilds and an unchanged one never does.
Builds take a file lock: two pytest-xdist workers asking at once build once."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

CACHE = Path(os.environ.get("VMTAILOR_GUEST_CACHE", "/var/cache/vmtailor/guests"))
HERE = Path(__file__).resolve().parent


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def source_digest(*modules: str) -> str:
    """sha256 over the named modules of this package (the code that builds a thing)."""
    return digest(*[(HERE / f"{m}.py").read_bytes() for m in modules])


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def cached(name: str, key: str, suffix: str, build: Callable[[Path], None]) -> Path:
    """The cached file for (name, key), building it with build(tmp_path) first if needed.
    Older builds of the same name are removed once the new one is in place."""
    final = CACHE / f"{name}-{key[:16]}{suffix}"
    if final.exists():
        return final
    with locked(name):
        if final.exists():  # another worker built it while we waited
            return final
        tmp = CACHE / f".{name}-{key[:16]}.{os.getpid()}.tmp"
        started = time.monotonic()
        try:
            build(tmp)
            os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        took = time.monotonic() - started
        (CACHE / f"{name}-{key[:16]}.buildtime").write_text(f"{took:.1f}\n")
        for old in glob.glob(str(CACHE / f"{name}-*{suffix}")):
            if old != str(final) and not os.path.basename(old).startswith("."):
                with contextlib.suppress(OSError):
                    os.unlink(old)
                    os.unlink(old.removesuffix(suffix) + ".buildtime")
    return final
