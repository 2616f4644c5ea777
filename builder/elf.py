"""Shared libraries an executable needs, as ldd (the dynamic loader itself) resolves them."""

from __future__ import annotations

import re

from ..customizer.errors import VmtailorError
from ..customizer.run import run

# "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
_LINE = re.compile(r"^\s*(?:(\S+)\s+=>\s+)?(\S+)\s+\(0x[0-9a-f]+\)\s*$")


def libraries(path: str) -> list[str]:
    """Absolute paths of every library `path` loads (transitively, as ldd reports), the
    loader included; [] for a static executable."""
    proc = run(["ldd", path], check=False)
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        if "not a dynamic executable" in out + proc.stderr.decode("utf-8", "replace"):
            return []
        raise VmtailorError(f"ldd {path} failed: {proc.stderr.decode().strip()}")
    libs = []
    for line in out.splitlines():
        if "not found" in line:
            raise VmtailorError(f"{path}: library missing on the build host: {line.strip()}")
        m = _LINE.match(line)
        if m and m.group(2).startswith("/"):
            libs.append(m.group(2))
    return libs
