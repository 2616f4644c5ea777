"""Which Debian package each host file came from, for the initrd manifest."""

from __future__ import annotations

import os

from ..customizer.run import run

# usrmerge: dpkg may know a file under /lib while it lives in /usr/lib, or the reverse
_MERGED = ("/bin/", "/sbin/", "/lib/", "/lib64/")


def _aliases(path: str) -> list[str]:
    out = [path]
    for top in _MERGED:
        if path.startswith("/usr" + top):
            out.append(path[len("/usr") :])
        elif path.startswith(top):
            out.append("/usr" + path)
    return out


def owners(paths: list[str]) -> dict[str, str]:
    """{path: package} for every path some installed package owns (one dpkg call). Paths
    no package owns (the venv, vmtailor itself, generated files) are left out."""
    wanted: dict[str, str] = {}
    for path in paths:
        for candidate in (*_aliases(path), *_aliases(os.path.realpath(path))):
            wanted.setdefault(candidate, path)
    if not wanted:
        return {}
    proc = run(["dpkg-query", "-S", *sorted(wanted)], check=False)
    found: dict[str, str] = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        packages, sep, owned = line.partition(": ")
        if not sep or line.startswith("diversion by"):
            continue
        original = wanted.get(owned.strip())
        if original is not None:
            found.setdefault(original, packages.strip())
    return found


def versions(packages: list[str]) -> dict[str, str]:
    """{package: version} of the installed ones (for build cache keys)."""
    if not packages:
        return {}
    fmt = "${binary:Package} ${Version} ${db:Status-Abbrev}\n"
    proc = run(["dpkg-query", "-W", "-f", fmt, *packages], check=False)
    out = {}
    for line in proc.stdout.decode().splitlines():
        words = line.split()
        if len(words) >= 3 and words[2].startswith("ii"):
            out[words[0].split(":")[0]] = words[1]
    return out
