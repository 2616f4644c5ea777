#!/usr/bin/env python3
"""Fixture guest roots: small, realistic guest filesystem trees built from YAML.

Unit tests run vmtailor against these trees instead of real disk images. Each tree is
declared in ``scripts/fixture_roots/<name>.yaml`` and built on demand, so no binary tree
is committed and every byte a test sees is reviewable text.

Usage::

    python scripts/fixture_roots.py --list
    python scripts/fixture_roots.py debian-12 /tmp/guest      # build into an empty dir

    sys.path.insert(0, "<repo>/scripts"); import fixture_roots
    fixture_roots.build("rocky-9", tmp_path)
    fixture_roots.describe("rocky-9")["expect"]["family"]      # -> "rhel"

YAML format
-----------
A root is a YAML file whose name does not start with ``_``; files starting with ``_``
are bases that roots (and other bases) inherit from. Top-level keys::

    description: one line saying what the tree stands for
    inherit: [_usrmerge, _systemd]      # bases, merged in order, then this file on top
    expect:                             # what vmtailor should detect in the tree
      id: debian                        # merged key by key over the bases' expect
    remove: [/etc/foo]                  # drop inherited entries (and all below them)
    dirs:
      /etc/ssh:                         # null: 0755 root:root
      /tmp: {mode: "1777"}
    files:
      /etc/hostname: "template\\n"        # a string is the content, 0644 root:root
      /etc/shadow: {content: "...", mode: "0640", gid: 42}
      /usr/sbin/sshd: {mode: "0755"}    # content defaults to "": a presence marker
      /home/u/.bashrc: {content_from: /etc/skel/.bashrc, uid: 1000, gid: 1000}
    symlinks:
      /etc/os-release: ../usr/lib/os-release   # target kept verbatim; may dangle

Rules: paths are absolute and normalised; a path has exactly one entry, and a later layer
(a later base, then the root itself) replaces an earlier entry of any kind, after that
layer's ``remove`` is applied. Parent directories are created implicitly as 0755 root:root.
No entry may sit below a file or a symlink: declare the real path (on merged-/usr roots,
``/usr/sbin/ifup``, not ``/sbin/ifup``). Modes are quoted octal strings ("0640"), because
YAML 1.1 reads an unquoted 0640 as the integer 416. Contents are written as UTF-8.

``expect`` keys (documented here so tests and roots agree):
    family          the vmtailor family registry name: debian | ubuntu | rhel | fedora |
                    suse | arch | alpine; null for an unsupported or absent OS
    id              os-release ID, or the ID the legacy release file implies; null if none
    version         VERSION_ID as a string, or for a guest with only a legacy release file
                    what its VERSION_ID would say (Debian: the major, "7"; CentOS 6 and
                    SLES 11: "6.10", "11.2"); null when there is none (Arch)
    supported       whether vmtailor should accept the guest
    init            systemd | sysvinit | upstart | openrc | null
    network         the network stacks installed and enabled, the one to configure first
                    among: ifupdown, netplan, networkmanager, networkd, network-scripts, wicked,
                    alpine (ifupdown-ng); wicked also stands for SLES 11's sysconfig ifup,
                    which reads the same ifcfg files
    selinux         false, or the SELINUX= mode in /etc/selinux/config
    ssh_regenerates_host_keys   whether the guest recreates missing host keys at boot
    hostname        the template's (short) host name
    admin_group     sudo | wheel (the group exists; the template user may not be in it)
    user            the existing template user: {name, uid, gid, home}
    nic             the template NIC: {name, mac}; mac is null when no config pins one
    rc_local        path of the rc.local-style script, or null
    cloud_init      whether cloud-init is installed (it may rewrite network and hostname)

Building: ``build`` refuses a non-empty destination; it writes every entry, then sets
modes, owners (only when run as root: elsewhere owners are left as the caller) and a
fixed mtime, so two builds give byte-, mode- and owner-identical trees.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import os
import posixpath
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

FIXTURE_DIR = Path(__file__).resolve().parent / "fixture_roots"
# Fixed mtime (2024-01-01T00:00:00Z) for every built entry: trees are reproducible.
MTIME = 1704067200
DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755

_TOP_KEYS = {"description", "inherit", "expect", "remove", "dirs", "files", "symlinks"}
_FILE_KEYS = {"content", "content_from", "mode", "uid", "gid"}
_DIR_KEYS = {"mode", "uid", "gid"}

try:  # the C loader parses the whole set several times faster
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class FixtureError(ValueError):
    """A fixture YAML file is invalid or a root cannot be built; names file and key."""


def _root_names() -> list[str]:
    return sorted(p.stem for p in FIXTURE_DIR.glob("*.yaml") if not p.name.startswith("_"))


ROOTS: list[str] = _root_names()


# -- loading and validation -----------------------------------------------------------


def _where(source: str, section: str, path: object = None, key: str | None = None) -> str:
    """Where in which file, e.g. `fixture_roots/rocky-9.yaml: files[/etc/shadow].mode`."""
    where = f"fixture_roots/{source}.yaml: {section}"
    if path is not None:
        where += f"[{path}]"
    return where + (f".{key}" if key else "")


def _check_path(source: str, section: str, path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise FixtureError(f"{_where(source, section, path)}: path must be absolute, not '/'")
    if posixpath.normpath(path) != path or path.startswith("//"):
        raise FixtureError(f"{_where(source, section, path)}: path is not normalised")
    return path


def _mode(source: str, section: str, path: str, value: object, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, str) or not value.isdigit() or len(value) not in (3, 4):
        raise FixtureError(
            f"{_where(source, section, path, 'mode')}: expected a quoted octal string "
            f'like "0644", got {value!r}'
        )
    try:
        return int(value, 8)
    except ValueError:
        raise FixtureError(
            f"{_where(source, section, path, 'mode')}: {value!r} is not octal"
        ) from None


def _owner(source: str, section: str, path: str, spec: dict, key: str) -> int:
    value = spec.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FixtureError(f"{_where(source, section, path, key)}: expected an id >= 0")
    return value


def _spec_dict(source: str, section: str, path: str, spec: object, allowed: set[str]) -> dict:
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise FixtureError(f"{_where(source, section, path)}: expected a mapping")
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise FixtureError(
            f"{_where(source, section, path)}: unknown key {unknown[0]!r} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    return spec


def _mapping(source: str, data: dict, key: str) -> dict:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise FixtureError(f"{_where(source, key)}: expected a mapping")
    return value


@functools.cache
def _load_layer(source: str) -> dict[str, Any]:
    """Parse and normalise one YAML file (a root or a base), without its bases."""
    path = FIXTURE_DIR / f"{source}.yaml"
    if not path.is_file():
        raise FixtureError(f"fixture_roots/{source}.yaml: no such fixture")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    except yaml.YAMLError as exc:
        raise FixtureError(f"fixture_roots/{source}.yaml: {exc}") from None
    if not isinstance(data, dict):
        raise FixtureError(f"fixture_roots/{source}.yaml: top level must be a mapping")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise FixtureError(f"{_where(source, unknown[0])}: unknown top-level key")

    inherit = data.get("inherit") or []
    if not isinstance(inherit, list) or not all(isinstance(i, str) for i in inherit):
        raise FixtureError(f"{_where(source, 'inherit')}: expected a list of base names")
    remove = data.get("remove") or []
    if not isinstance(remove, list):
        raise FixtureError(f"{_where(source, 'remove')}: expected a list of paths")
    expect = _mapping(source, data, "expect")
    version = expect.get("version")
    if version is not None and not isinstance(version, str):
        raise FixtureError(f"{_where(source, 'expect.version')}: quote it: a string")

    entries: dict[str, dict[str, Any]] = {}
    for path_, spec in _mapping(source, data, "dirs").items():
        p = _check_path(source, "dirs", path_)
        spec = _spec_dict(source, "dirs", p, spec, _DIR_KEYS)
        entries[p] = {
            "kind": "dir",
            "mode": _mode(source, "dirs", p, spec.get("mode"), DEFAULT_DIR_MODE),
            "uid": _owner(source, "dirs", p, spec, "uid"),
            "gid": _owner(source, "dirs", p, spec, "gid"),
        }
    for path_, spec in _mapping(source, data, "files").items():
        p = _check_path(source, "files", path_)
        if p in entries:
            raise FixtureError(f"{_where(source, 'files', p)}: also declared under dirs")
        if isinstance(spec, str):
            spec = {"content": spec}
        spec = _spec_dict(source, "files", p, spec, _FILE_KEYS)
        content = spec.get("content", "")
        if not isinstance(content, str):
            raise FixtureError(f"{_where(source, 'files', p, 'content')}: expected a string")
        content_from = spec.get("content_from")
        if content_from is not None:
            if "content" in spec:
                raise FixtureError(f"{_where(source, 'files', p)}: content and content_from")
            content_from = _check_path(source, "files", content_from)
        entries[p] = {
            "kind": "file",
            "content": content,
            "content_from": content_from,
            "mode": _mode(source, "files", p, spec.get("mode"), DEFAULT_FILE_MODE),
            "uid": _owner(source, "files", p, spec, "uid"),
            "gid": _owner(source, "files", p, spec, "gid"),
        }
    for path_, target in _mapping(source, data, "symlinks").items():
        p = _check_path(source, "symlinks", path_)
        if p in entries:
            raise FixtureError(f"{_where(source, 'symlinks', p)}: declared twice")
        if not isinstance(target, str) or not target:
            raise FixtureError(f"{_where(source, 'symlinks', p)}: expected a target string")
        entries[p] = {"kind": "symlink", "target": target}

    return {
        "description": data.get("description"),
        "inherit": list(inherit),
        "expect": expect,
        "remove": [_check_path(source, "remove", r) for r in remove],
        "entries": entries,
    }


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def _merge(source: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    if source in chain:
        raise FixtureError(f"fixture_roots/{source}.yaml: inherit cycle via {' -> '.join(chain)}")
    layer = _load_layer(source)
    expect: dict[str, Any] = {}
    entries: dict[str, dict[str, Any]] = {}
    for base in layer["inherit"]:
        if not base.startswith("_"):
            raise FixtureError(f"{_where(source, 'inherit')}: {base!r} is not a base (_name)")
        merged = _merge(base, chain + (source,))
        expect.update(merged["expect"])
        entries.update(merged["entries"])
    for top in layer["remove"]:
        entries = {p: e for p, e in entries.items() if not _under(p, top)}
    entries.update(layer["entries"])
    expect.update(layer["expect"])
    return {"expect": expect, "entries": entries, "description": layer["description"]}


@functools.cache
def _resolve(name: str) -> dict[str, Any]:
    if name.startswith("_") or name not in ROOTS:
        known = ", ".join(ROOTS)
        raise FixtureError(f"unknown fixture root {name!r} (known: {known})")
    merged = _merge(name)
    entries = merged["entries"]
    copies = {p: e["content_from"] for p, e in entries.items() if e.get("content_from")}
    for path, origin in copies.items():
        other = entries.get(origin)
        if other is None or other["kind"] != "file" or origin in copies:
            raise FixtureError(
                f"fixture root {name}: {path}: content_from {origin} is not a file "
                "with its own content"
            )
        entries[path] = {**entries[path], "content": other["content"], "content_from": None}
    # Nothing may hang below a file or a symlink: the builder would write through it.
    for path in entries:
        parent = posixpath.dirname(path)
        while parent != "/":
            above = entries.get(parent)
            if above is not None and above["kind"] != "dir":
                raise FixtureError(
                    f"fixture root {name}: {path} lies below {above['kind']} {parent}; "
                    "declare the path the symlink points to instead"
                )
            parent = posixpath.dirname(parent)
    return {
        "name": name,
        "description": merged["description"],
        "inherit": list(_load_layer(name)["inherit"]),
        "expect": merged["expect"],
        "entries": dict(sorted(entries.items())),
    }


# -- public interface -------------------------------------------------------------------


def describe(name: str) -> dict[str, Any]:
    """The merged declaration of root `name`: expect, and files/dirs/symlinks by path.

    files: {path: {content, mode, uid, gid}}, dirs: {path: {mode, uid, gid}} (declared
    dirs only), symlinks: {path: target}; modes are ints. The result is a fresh copy.
    """
    spec = _resolve(name)
    files, dirs, symlinks = {}, {}, {}
    for path, entry in spec["entries"].items():
        if entry["kind"] == "file":
            files[path] = {k: entry[k] for k in ("content", "mode", "uid", "gid")}
        elif entry["kind"] == "dir":
            dirs[path] = {k: entry[k] for k in ("mode", "uid", "gid")}
        else:
            symlinks[path] = entry["target"]
    return copy.deepcopy(
        {
            "name": spec["name"],
            "description": spec["description"],
            "inherit": spec["inherit"],
            "expect": spec["expect"],
            "files": files,
            "dirs": dirs,
            "symlinks": symlinks,
        }
    )


def build(name: str, dest: Path) -> Path:
    """Create root `name` under `dest` (absent or an empty directory) and return dest."""
    spec = _resolve(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise FixtureError(f"{dest}: destination is not empty")
    entries = spec["entries"]
    set_owner = os.geteuid() == 0

    dirs: dict[str, dict[str, Any]] = {}
    for path, entry in entries.items():
        parent = posixpath.dirname(path)
        while parent != "/" and parent not in dirs:
            dirs[parent] = entries.get(parent) or {"kind": "dir", "mode": DEFAULT_DIR_MODE}
            parent = posixpath.dirname(parent)
        if entry["kind"] == "dir":
            dirs[path] = entry

    def host(path: str) -> str:
        return os.path.join(dest, path.lstrip("/"))

    # Directories stay writable (0700 for us) until every child exists.
    for path in sorted(dirs):
        os.mkdir(host(path), 0o700)
    for path, entry in entries.items():
        if entry["kind"] == "file":
            fd = os.open(host(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, entry["content"].encode("utf-8"))
                if set_owner:  # chown first: it clears set-id bits that chmod then sets
                    os.fchown(fd, entry["uid"], entry["gid"])
                os.fchmod(fd, entry["mode"])
            finally:
                os.close(fd)
            os.utime(host(path), (MTIME, MTIME), follow_symlinks=False)
        elif entry["kind"] == "symlink":
            os.symlink(entry["target"], host(path))
            if set_owner:
                os.lchown(host(path), 0, 0)
            os.utime(host(path), (MTIME, MTIME), follow_symlinks=False)
    # Deepest first, so a parent's mtime is set after its children stop changing it.
    for path in sorted(dirs, key=lambda p: (-p.count("/"), p)):
        entry = dirs[path]
        if set_owner:
            os.chown(host(path), entry.get("uid", 0), entry.get("gid", 0))
        os.chmod(host(path), entry["mode"])
        os.utime(host(path), (MTIME, MTIME))
    return dest


def manifest(tree: Path) -> list[str]:
    """One line per entry under `tree`: path, kind, mode, uid:gid, sha256 or link target.

    Handy for comparing trees (two builds, or a tree before and after an operation).
    """
    tree = Path(tree)
    lines = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = "/" + os.path.relpath(full, tree)
            perms = f"{stat.S_IMODE(st.st_mode):04o} {st.st_uid}:{st.st_gid}"
            if stat.S_ISLNK(st.st_mode):
                lines.append(f"{rel} symlink {perms} -> {os.readlink(full)}")
            elif stat.S_ISDIR(st.st_mode):
                lines.append(f"{rel} dir {perms}")
            else:
                digest = hashlib.sha256(Path(full).read_bytes()).hexdigest()
                lines.append(f"{rel} file {perms} {digest}")
    return sorted(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build a fixture guest root from scripts/fixture_roots/NAME.yaml."
    )
    parser.add_argument("--list", action="store_true", help="list the root names and exit")
    parser.add_argument("--describe", action="store_true", help="print NAME's expect as JSON")
    parser.add_argument("name", nargs="?", help="root name (see --list)")
    parser.add_argument("dest", nargs="?", type=Path, help="empty or absent directory")
    args = parser.parse_args(argv)
    try:
        if args.list:
            print("\n".join(ROOTS))
            return 0
        if args.describe and args.name:
            print(json.dumps(describe(args.name)["expect"], indent=2, sort_keys=True))
            return 0
        if not args.name or not args.dest:
            parser.error("NAME and DEST are required (or --list)")
        build(args.name, args.dest)
    except (FixtureError, OSError) as exc:
        print(f"fixture_roots: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
