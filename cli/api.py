"""The supported Python API: what the `vmtailor` command does, for a program to call.

    from vmtailor import api

    config = api.load_config("web.yaml", vars={"hostname": "web01"})
    with api.open_root("/mnt/clone") as guest:
        result = api.apply(config, guest)

Everything a caller needs is here: functions, typed results (dataclasses, each with
`to_dict()` giving what `--json` prints) and one exception hierarchy rooted at `Error`.
The packages behind it (customizer, offline, …) are internals and may change; this module
is the contract. Like all library code it never prints: warnings come back in results.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from . import configfile
from .customizer import config as configmod
from .customizer import engine
from .customizer.config import ConfigError as _ConfigError
from .customizer.config import format_path
from .customizer.detect import Guest as _Detected
from .customizer.detect import detect
from .customizer.errors import PlanError, VmtailorError
from .customizer.journal import Journal
from .customizer.lock import LockError
from .customizer.network.select import choose
from .customizer.root import Root
from .target import Target, open_guest

__all__ = [
    "ApplyResult",
    "Change",
    "Config",
    "ConfigError",
    "Error",
    "Guest",
    "GuestError",
    "ImageError",
    "Inspection",
    "LockedError",
    "OSInfo",
    "RevertResult",
    "apply",
    "inspect",
    "load_config",
    "open_disks",
    "open_root",
    "revert",
]

PathLike = str | os.PathLike[str]


# -- errors ------------------------------------------------------------------------------


class Error(Exception):
    """Every failure vmtailor reports: one line saying what and where (`str(exc)`, as the
    command line prints it), an optional hint, and nothing changed in the guest."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "message": self.message, "hint": self.hint}


class ConfigError(Error):
    """The config is wrong: `key_path` names the key (`users[1].password_hash`), `line` its
    line in `source` (the file) when known. A config is checked in full before anything is
    refused, so `errors` lists every problem found (each a ConfigError); the exception
    itself is the first of them, its message saying how many more there are."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        key_path: str | None = None,
        line: int | None = None,
        source: str | None = None,
        errors: list[ConfigError] | None = None,
    ):
        super().__init__(message, hint)
        self.key_path = key_path
        self.line = line
        self.source = source
        self.errors: list[ConfigError] = errors or [self]

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "key_path": self.key_path, "line": self.line,
                "source": self.source,
                "errors": [] if self.errors == [self] else [e.to_dict() for e in self.errors]}  # fmt: skip


class GuestError(Error):
    """The guest cannot be opened, read or changed as asked: not a guest vmtailor knows,
    a change it refuses, a journal it cannot carry out, or a read-only handle."""


class LockedError(GuestError):
    """Another vmtailor run holds the guest (the message names it)."""


class ImageError(GuestError):
    """A disk image cannot be used: missing, in use by a running VM, not writable, or the
    appliance (libguestfs) failed to open it."""


def _image_error_kinds() -> tuple[type[VmtailorError], ...]:
    # offline/ pulls in the appliance code; only a caller of open_disks needs it loaded
    from .offline.appliance import ApplianceError
    from .offline.images import ImageError as _ImageError

    return (_ImageError, ApplianceError)


def _config_error(exc: _ConfigError) -> ConfigError:
    """One config problem, its text as the command line prints it ("error at hostname:
    line 1: …") without the hint appended."""
    text = str(exc)
    if exc.hint:
        text = text.removesuffix(f" — {exc.hint}")
    return ConfigError(
        " ".join(text.split()),
        exc.hint,
        key_path=format_path(exc.path) if exc.path else None,
        line=exc.line,
        source=exc.source,
    )


def _wrap(exc: VmtailorError, default: type[Error]) -> Error:
    """An internal error as the API's own kind, with the same one-line text; `default`
    for one no more particular kind covers (what the caller was doing says what it is
    about: a config file that cannot be read is a ConfigError, a guest's a GuestError)."""
    # the message without the hint appended, on one line as the command line prints it
    message = " ".join(str(exc.args[0] if exc.args else type(exc).__name__).split())
    if isinstance(exc, _ConfigError):
        errors = [_config_error(e) for e in exc.errors]
        first = errors[0]
        if len(errors) == 1:
            return first
        return ConfigError(
            f"{first} (and {len(errors) - 1} more)",
            first.hint,
            key_path=first.key_path,
            line=first.line,
            source=first.source,
            errors=errors,
        )
    if isinstance(exc, LockError):
        return LockedError(message, exc.hint)
    if isinstance(exc, _image_error_kinds()):
        return ImageError(message, exc.hint)
    # PlanError, RootError, JournalError, DetectError, StorageError, CommandError, and
    # VmtailorError itself (a file that cannot be read, …)
    return default(message, exc.hint)


@contextlib.contextmanager
def _translated(default: type[Error] = GuestError) -> Iterator[None]:
    try:
        yield
    except VmtailorError as exc:
        raise _wrap(exc, default) from exc


# -- config ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """A validated config with every template rendered: ready to apply to one guest."""

    path: str
    digest: str  # sha256 of the canonical JSON: what a guest's journal records as applied
    _loaded: configfile.LoadedConfig = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The canonical config, as it goes on boot media (unset keys left out)."""
        data: dict[str, Any] = json.loads(configmod.canonical_json(self._loaded.config))
        return data


def load_config(
    path: PathLike,
    vars: Mapping[str, Any] | None = None,  # named as the CLI's --var, though a builtin
    *,
    sources: PathLike | None = None,
) -> Config:
    """Read, render and validate a config file.

    `vars` are the clone's template variables (`{{ hostname }}`); a template that uses a
    variable not among them is refused — ConfigError naming the key path, line and
    variable — never left in place for apply to write. `sources`: the folder `source:`
    files are read from (default: the config's own folder).

    Raises ConfigError for a config that is wrong or cannot be read (`source`: the file)."""
    try:
        with _translated(ConfigError):
            loaded = configfile.load_config(
                os.fspath(path),
                dict(vars or {}),  # {}, not None: None would leave templates unrendered
                os.fspath(sources) if sources is not None else None,
            )
    except ConfigError as exc:
        for each in {id(e): e for e in [exc, *exc.errors]}.values():
            each.source = each.source or os.fspath(path)
        raise
    return Config(loaded.path, configmod.digest(loaded.config), loaded)


# -- guests ------------------------------------------------------------------------------


class Guest:
    """An open guest: a root directory or disk images, locked against other vmtailor
    runs until its `with` block ends. Get one from open_root() or open_disks()."""

    def __init__(self, target: Target):
        self._target: Target | None = target
        self.where = target.where  # how the command line names it: --root DIR, --disk …
        self.readonly = target.readonly
        self.warnings: list[str] = list(target.warnings)  # e.g. an fstab line not mounted
        self.storage: dict[str, Any] | None = (
            target.guest.plan_dict() if target.guest is not None else None
        )  # with disk images: where the root is and how its fstab was mounted

    def __repr__(self) -> str:
        state = "closed" if self._target is None else "read-only" if self.readonly else "open"
        return f"<vmtailor.api.Guest {self.where} ({state})>"

    def _open(self, *, writing: bool) -> Target:
        if self._target is None:
            raise GuestError(f"guest {self.where} is closed: use it inside its `with` block")
        if writing and self.readonly:
            raise GuestError(
                f"guest {self.where} was opened read-only",
                hint="open it with readonly=False to change it",
            )
        return self._target


@contextlib.contextmanager
def _opened(*, root: str | None = None, disks: list[str] | None = None,
            readonly: bool) -> Iterator[Guest]:  # fmt: skip
    try:
        with open_guest(root=root, disks=disks, readonly=readonly) as target:
            guest = Guest(target)
            try:
                yield guest
            finally:
                guest._target = None  # the lock and the appliance are gone with the block
    except VmtailorError as exc:
        raise _wrap(exc, GuestError) from exc


def open_root(
    path: PathLike, *, readonly: bool = False
) -> contextlib.AbstractContextManager[Guest]:
    """A guest whose root filesystem is mounted at `path` (with its /boot, /var … beneath
    it), like `--root DIR`. `readonly`: only inspect and dry runs, and other readers are
    let in meanwhile. Raises GuestError (LockedError when another run holds it)."""
    return _opened(root=os.fspath(path), readonly=readonly)


def open_disks(
    paths: Sequence[PathLike], *, readonly: bool = False
) -> contextlib.AbstractContextManager[Guest]:
    """A guest's disk images (qcow2, raw, vmdk, …) in its disk order, opened in one
    libguestfs appliance and mounted as its own fstab says, like `--disk IMG…`. Images a
    running VM holds are refused; without `readonly` they must be writable. Raises
    ImageError, GuestError (LockedError when another run holds them)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]  # one image given bare, not a string to take letter by letter
    disks = [os.fspath(p) for p in paths]
    if not disks:
        raise ImageError("open_disks: no disk images given")
    return _opened(disks=disks, readonly=readonly)


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OSInfo:
    """What the guest is, from its own files (never the host's)."""

    family: str  # debian, rhel, suse, arch, alpine, …
    id: str  # os-release ID
    version: str
    pretty_name: str
    init: str  # systemd, sysvinit, upstart, openrc or unknown
    selinux: str | None  # enforcing, permissive, disabled; None when not installed
    network: list[dict[str, Any]]  # installed stacks: [{stack, enabled, evidence}]
    ssh_regenerates_host_keys: bool
    evidence: dict[str, str]  # why each of the above was concluded

    @classmethod
    def _of(cls, guest: _Detected) -> OSInfo:
        return cls(
            guest.family.name, guest.os_id, guest.version, guest.pretty_name, guest.init,
            guest.selinux, list(guest.network), guest.ssh_regenerates_host_keys,
            dict(guest.evidence),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Inspection:
    """`vmtailor inspect`: the guest, the network stack vmtailor would write for, and
    whether vmtailor has customized it."""

    os: OSInfo
    network_renderer: str | None  # None: no stack vmtailor can write for (see why)
    network_renderer_why: str
    vmtailor: dict[str, Any] | None  # {state, config_digest, paths}; None: never applied
    storage: dict[str, Any] | None  # disk images only: root, mounts, skipped, warnings

    def to_dict(self) -> dict[str, Any]:
        data = {
            **self.os.to_dict(),
            "network_renderer": {"name": self.network_renderer, "why": self.network_renderer_why},
            "vmtailor": self.vmtailor,
        }
        if self.storage is not None:
            data["storage"] = self.storage
        return data


@dataclass(frozen=True)
class Change:
    action: str  # create, modify, delete, mkdir, symlink, chmod
    path: str  # in the guest
    operation: str = ""  # the config key whose operation made it: hostname, users, files …


@dataclass(frozen=True)
class ApplyResult:
    """What apply changed (with dry_run, would change) in the guest."""

    os: OSInfo
    changes: list[Change]
    dry_run: bool
    already_applied: bool  # nothing to change: this very config is applied already
    warnings: list[str]
    diff: str | None  # a unified diff of every change when asked; secrets left out

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = engine.result_dict(
            self.os.to_dict(), self.changes, self.dry_run, self.already_applied, self.warnings
        )
        if self.diff is not None:
            data["diff"] = self.diff
        return data


@dataclass(frozen=True)
class RevertResult:
    """What revert put back (original bytes, mode, owner, label), removed, and had to keep
    (folders vmtailor made that now hold files it did not make)."""

    restored: list[str]
    removed: list[str]
    kept: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- operations --------------------------------------------------------------------------


def inspect(guest: Guest) -> Inspection:
    """Detect the guest from its own files; changes nothing. Raises GuestError."""
    target = guest._open(writing=False)
    with _translated():
        return inspection_of(target.root, guest.storage)


def inspection_of(root: Root, storage: dict[str, Any] | None = None) -> Inspection:
    """inspect() on a Root, raising vmtailor's internal errors: what `vmtailor inspect`
    calls (its error handling knows those). Not for programs: use inspect()."""
    detected = detect(root)
    journal = Journal(root).data
    try:
        renderer, why = choose(detected, None)
    except PlanError as exc:
        renderer, why = None, str(exc)
    state = None
    if journal:
        state = {
            "state": journal["state"],
            "config_digest": journal.get("config_digest"),
            "paths": len(journal["entries"]),
        }
    return Inspection(OSInfo._of(detected), renderer, why, state, storage)


def apply(config: Config, guest: Guest, dry_run: bool = False, diff: bool = False) -> ApplyResult:
    """Customize the guest with `config`: every change is planned first, so a problem
    with the config or the guest changes nothing; then each is journaled in the guest
    with its original, so re-applying is harmless and revert() undoes it. `dry_run` plans
    only (a read-only guest will do); `diff` adds a unified diff of the changes.
    Raises GuestError (ConfigError for a config problem only the guest reveals)."""
    target = guest._open(writing=not dry_run)
    with _translated():
        done = engine.apply(
            config._loaded.config, target.root, dry_run=dry_run, diff=diff,
            sources=config._loaded.sources,
        )  # fmt: skip
    return ApplyResult(
        OSInfo._of(done.guest),
        [Change(c.action, c.path, c.operation) for c in done.changes],
        done.dry_run,
        done.already_applied,
        list(done.warnings),
        done.diff if diff else None,
    )


def revert(guest: Guest) -> RevertResult:
    """Undo vmtailor's changes to the guest byte for byte, from its journal (also after
    an apply that was cut off), and remove the journal. Raises GuestError."""
    target = guest._open(writing=True)
    with _translated():
        done = engine.revert(target.root)
    return RevertResult(list(done.restored), list(done.removed), list(done.kept))
