"""Which variables a config's templates use, and where a parsed config still holds a
template: `validate` tells an admin what a config needs before any clone's vars exist,
and a config whose templates were never rendered must not reach a guest (the literal
`{{ h }}` would be written as the host name)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import Collector, ConfigError, Path
from .schema import config_key
from .template import Deferred, is_template


def used(data: Any, path: Path = ()) -> dict[str, list[Path]]:
    """Each variable the templates of `data` (plain config data) read, with the key paths
    of the values that read it, in config order. A template that does not parse is left
    out: rendering reports it."""
    found: dict[str, list[Path]] = {}
    for where, text in _templates(data, path):
        for name in sorted(_names(text)):
            found.setdefault(name, []).append(where)
    return found


def _templates(data: Any, path: Path) -> list[tuple[Path, str]]:
    if isinstance(data, dict):
        return [t for k, v in data.items() for t in _templates(v, (*path, k))]
    if isinstance(data, list):
        return [t for i, v in enumerate(data) for t in _templates(v, (*path, i))]
    return [(path, data)] if isinstance(data, str) and is_template(data) else []


def _names(text: str) -> set[str]:
    from jinja2 import TemplateSyntaxError, meta

    from .sandbox import BoundedEnvironment

    try:
        return set(meta.find_undeclared_variables(BoundedEnvironment().parse(text)))
    except (TemplateSyntaxError, RecursionError):
        return set()


def require_rendered(model: Any) -> None:
    """Raise ConfigError for every value of a parsed config that is still a template —
    parsed without its variables; nothing may be changed with it."""
    found = Collector()
    for where, text in _deferred(model, ()):
        names = ", ".join(sorted(_names(text))) or "its variables"
        found.add(ConfigError(where, f"template not rendered: it needs {names}",
                              hint="give the variables (--var/--vars, or the clone's vars)"))  # fmt: skip
    found.raise_any()


def _deferred(value: Any, path: Path) -> list[tuple[Path, str]]:
    if isinstance(value, Deferred):
        return [(path, str(value))]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [d for f in dataclasses.fields(value)
                for d in _deferred(getattr(value, f.name), (*path, config_key(f)))]  # fmt: skip
    if isinstance(value, list):
        return [d for i, v in enumerate(value) for d in _deferred(v, (*path, i))]
    if isinstance(value, dict):
        return [d for k, v in value.items() for d in _deferred(v, (*path, k))]
    return []
