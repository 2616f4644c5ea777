"""Config: plain data (from YAML on the host, JSON on the media) to a validated model."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .errors import Collector, ConfigError, ConfigErrors, format_path
from .model import Config
from .schema import dump, json_schema, load
from .template import Deferred, render
from .variables import require_rendered, used

__all__ = [
    "Config",
    "ConfigError",
    "ConfigErrors",
    "Deferred",
    "canonical_json",
    "digest",
    "format_path",
    "parse",
    "parse_rendered",
    "require_rendered",
    "schema",
    "used",
]


def parse(data: Any, variables: dict[str, Any] | None = None) -> Config:
    """Render templates with `variables` (None: leave them for later) and validate it all.

    Raises ConfigError — a ConfigErrors listing every problem when there are several
    (templates, keys, types, formats, cross-checks); the caller has touched nothing yet."""
    if data is None:
        data = {}
    found = Collector()
    rendered = render(data, variables, found=found)
    with found.check():
        config = load(Config, rendered)
    found.raise_any()
    return config


def parse_rendered(data: Any) -> Config:
    """Validate a config already rendered for one clone — the canonical JSON on its media —
    taking every string as it is: a "{{" there is text the clone gets (a template's
    `{% raw %}` output, a script's own syntax), not a template to render again.

    Raises ConfigError (ConfigErrors when there are several problems)."""
    return load(Config, {} if data is None else data)


def canonical_json(config: Config) -> str:
    """The config as it travels on media: sorted keys, no unset fields, one line."""
    return json.dumps(dump(config), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(config: Config) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def schema() -> dict[str, Any]:
    out = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://vmtailor.dev/schema/config.json",
        "title": "vmtailor config",
    }
    out.update(json_schema(Config))
    return out
