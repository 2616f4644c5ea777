"""A config file on the host: YAML with per-clone vars, validated in full, with errors that
name the key path and line; `source:` files confined to the folder beside it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .customizer import config as configmod
from .customizer.config import Config, ConfigError, Deferred
from .customizer.config.errors import Collector
from .customizer.config.template import is_template
from .customizer.errors import PlanError, UsageError, VmtailorError
from .yamlload import load_yaml

MAX_YAML_BYTES = 4 << 20  # a config, vars file or inventory; real ones are a few KB
MAX_SOURCE_BYTES = 64 << 20  # one `source:` file: it travels on config media


@dataclass
class LoadedConfig:
    path: str
    config: Config
    sources: Callable[[str], bytes]
    # each variable the config's templates use -> the key paths using it
    variables: dict[str, list[configmod.errors.Path]] = field(default_factory=dict)


def read_yaml_file(path: str, what: str = "config") -> tuple[Any, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_YAML_BYTES + 1)
        if len(text) > MAX_YAML_BYTES:
            raise UsageError(f"{what} {path} is larger than {MAX_YAML_BYTES >> 20} MiB")
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {what} {path}: not UTF-8 text") from None
    try:
        return load_yaml(text)
    except ConfigError as exc:
        exc.source = path
        raise


def parse_vars(pairs: list[str] | None, files: list[str] | None) -> dict[str, Any] | None:
    """--vars FILE (YAML mapping) then --var NAME=VALUE; None when neither was given."""
    if not pairs and not files:
        return None
    out: dict[str, Any] = {}
    for path in files or []:
        data, _ = read_yaml_file(path, "vars file")
        if not isinstance(data, dict):
            raise UsageError(f"{path}: a vars file must be a mapping of NAME: VALUE")
        out.update(data)
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


class SourceDir:
    """The one folder `files[].source` names are read from: the config's own folder, or
    the folder given with --sources. A config may come from someone else, so a name may
    not reach out of it — not by an absolute path, not by .., not by a symlink (links are
    followed, and must land inside) — and must be a regular file: never a FIFO, a device
    or a folder, and nothing of /proc."""

    def __init__(self, base: str):
        self.base = os.path.realpath(base)
        if not os.path.isdir(self.base):
            raise UsageError(f"sources folder {base}: not a folder")

    def resolve(self, name: str) -> tuple[str, os.stat_result]:
        """The real path of `name` and its stat; VmtailorError saying why not."""
        if not name or os.path.isabs(name):
            raise VmtailorError(f"source {name!r} must be a path relative to {self.base}")
        real = os.path.realpath(os.path.join(self.base, name))
        if os.path.commonpath([real, self.base]) != self.base:
            raise VmtailorError(
                f"source {name!r} leads out of {self.base}",
                hint="source files are read from the config's folder, or from --sources DIR",
            )
        try:
            st = os.stat(real)  # of the resolved path: no link is left to follow
        except OSError as exc:
            raise VmtailorError(f"source {name!r}: {exc.strerror} in {self.base}") from None
        if stat.S_ISDIR(st.st_mode):
            raise VmtailorError(f"source {name!r} is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise VmtailorError(f"source {name!r} is not a regular file (a device, FIFO or socket)")
        if st.st_size > MAX_SOURCE_BYTES:
            raise VmtailorError(f"source {name!r} is larger than {MAX_SOURCE_BYTES >> 20} MiB")
        return real, st

    def read(self, name: str) -> bytes:
        try:
            real, st = self.resolve(name)
            # O_NOFOLLOW and the inode check: what was checked is what is read, even if
            # the folder changes in between; O_NONBLOCK: a FIFO put there cannot hang us
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                now = os.fstat(f.fileno())
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(
                    now.st_mode
                ):
                    raise VmtailorError(f"source {name!r} changed while being read")
                data = f.read(MAX_SOURCE_BYTES + 1)
        except OSError as exc:
            raise PlanError(f"cannot read source {name!r} in {self.base}: {exc.strerror}") from None
        except VmtailorError as exc:
            raise PlanError(str(exc)) from None
        if len(data) > MAX_SOURCE_BYTES:
            raise PlanError(f"source {name!r} is larger than {MAX_SOURCE_BYTES >> 20} MiB")
        return data


def source_reader(base: str) -> Callable[[str], bytes]:
    return SourceDir(base).read


def check_sources(config: object, sources: SourceDir) -> None:
    """Every `source:` of the config resolves to a readable regular file inside the
    sources folder — checked with the rest of the config, before any guest is touched.
    `config` may be the plain data of a config that failed validation: its sources are
    checked too, so that every problem is reported in one run."""
    found = Collector()
    for i, source in _sources(config):
        if isinstance(source, Deferred) or is_template(source):
            continue  # a template: checked once rendered with the clone's vars
        try:
            sources.resolve(source)
        except VmtailorError as exc:
            found.add(ConfigError(("files", i, "source"), str(exc)))
    found.raise_any()


def _sources(config: object) -> list[tuple[int, str]]:
    if isinstance(config, Config):
        items = [(i, item.source) for i, item in enumerate(config.files)]
    else:
        files = config.get("files") if isinstance(config, dict) else None
        items = [(i, f.get("source")) for i, f in enumerate(files if isinstance(files, list)
                                                              else []) if isinstance(f, dict)]  # fmt: skip
    return [(i, source) for i, source in items if isinstance(source, str)]


def load_config(
    path: str, variables: dict[str, Any] | None, sources: str | None = None
) -> LoadedConfig:
    """Parse and validate a config file; raises ConfigError with the line filled in.
    `sources`: the folder `source:` files are read from (default: the config's own)."""
    data, lines = read_yaml_file(path)
    folder = SourceDir(sources or os.path.dirname(os.path.abspath(path)))
    found = Collector()
    config = None
    with found.check():
        config = configmod.parse(data, variables)
    with found.check():
        check_sources(data if config is None else config, folder)
    try:
        found.raise_any()
    except ConfigError as exc:
        exc.locate(path, lines.line_of)
        raise
    assert config is not None
    return LoadedConfig(path, config, folder.read, configmod.used(data))
