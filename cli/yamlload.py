"""YAML in, plain data out — remembering the line each key came from, so that config
errors can say `line 14`. Host-side only (the initrd reads canonical JSON)."""

from __future__ import annotations

from typing import Any

import yaml

from .customizer.config.errors import ConfigError, Path


class LineMap(dict):
    """Key path -> 1-based line number."""

    def line_of(self, path: Path) -> int | None:
        path = tuple(path)
        while True:
            if path in self:
                return self[path]
            if not path:
                return None
            path = path[:-1]


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path, lines: LineMap) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool | float) and key is not None:
                raise ConfigError(path, "mapping keys must be plain scalars")
            if key in out:
                err = ConfigError((*path, key), f"key '{key}' appears twice")
                err.line = key_node.start_mark.line + 1
                raise err
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


class YamlError(ConfigError):
    pass


def load_yaml(text: str) -> tuple[Any, LineMap]:
    lines = LineMap()
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        return _build(loader, node, (), lines), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        err = YamlError((), f"not valid YAML: {exc.problem or exc.context}")
        err.line = mark.line + 1 if mark else None
        raise err from None
    except yaml.YAMLError as exc:
        raise YamlError((), f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
