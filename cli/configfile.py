"""A config file on the host: YAML with per-clone vars, validated in full, with errors that
name the key path and line; `source:` files resolved beside it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .customizer import config as configmod
from .customizer.config import Config, ConfigError
from .customizer.errors import PlanError, VmtailorError
from .yamlload import load_yaml


@dataclass
class LoadedConfig:
    path: str
    config: Config
    sources: Callable[[str], bytes]


def read_yaml_file(path: str, what: str = "config") -> tuple[Any, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise VmtailorError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise VmtailorError(f"cannot read {what} {path}: not UTF-8 text") from None
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
            raise VmtailorError(f"{path}: a vars file must be a mapping of NAME: VALUE")
        out.update(data)
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise VmtailorError(f"--var {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


def source_reader(base: str) -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        path = os.path.join(base, name)
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise PlanError(f"cannot read source file {path}: {exc.strerror}") from None

    return read


def load_config(path: str, variables: dict[str, Any] | None) -> LoadedConfig:
    """Parse and validate a config file; raises ConfigError with the line filled in."""
    data, lines = read_yaml_file(path)
    try:
        config = configmod.parse(data, variables)
        base = os.path.dirname(os.path.abspath(path))
        for i, item in enumerate(config.files):
            if item.source is not None and not os.path.isfile(os.path.join(base, item.source)):
                raise ConfigError(
                    ("files", i, "source"),
                    f"source file {item.source!r} not found next to {os.path.basename(path)}",
                )
    except ConfigError as exc:
        exc.source = path
        if exc.line is None:
            exc.line = lines.line_of(exc.path)
        raise
    return LoadedConfig(path, config, source_reader(base))
