"""YAML in, plain data out — remembering the line each key came from, so that config
errors can say `line 14`. Host-side only (the initrd reads canonical JSON).

Configs, vars files and inventories may come from people other than whoever runs
vmtailor, so loading is bounded: nesting depth (PyYAML's composer recurses once per level
and would hit Python's recursion limit first), nodes built through aliases (a
"billion laughs" document is a few lines that expand to billions of nodes), and aliases
that contain themselves. Each limit fails fast with the line it was reached at."""

from __future__ import annotations

from typing import Any

import yaml

from .customizer.config.errors import ConfigError, Path, describe_key

MAX_DEPTH = 100  # mappings/lists inside each other; a real config needs under 10
MAX_ALIASED_NODES = 100_000  # nodes built again because an alias refers to them


class YamlError(ConfigError):
    pass


def _located(message: str, mark: Any, path: Path = (), hint: str | None = None) -> YamlError:
    err = YamlError(path, message, hint)
    err.line = mark.line + 1 if mark is not None else None
    return err


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


class _Loader(yaml.SafeLoader):
    """SafeLoader whose composer refuses to nest deeper than MAX_DEPTH: checked before
    recursing, so a 5000-deep document is a located error, not a RecursionError."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _located(f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Builder:
    """Plain data from the composed node graph. The graph is a DAG (or worse, a cycle)
    when aliases are used: a node met again is an alias expansion, and every node built
    under one counts against MAX_ALIASED_NODES."""

    def __init__(self, loader: yaml.SafeLoader, lines: LineMap):
        self.loader, self.lines = loader, lines
        self.seen: set[int] = set()
        self.open: set[int] = set()  # nodes being built: meeting one again is a cycle
        self.aliased = 0

    def build(self, node: yaml.Node, path: Path, via_alias: bool = False) -> Any:
        if id(node) in self.open:
            raise _located("an alias refers to a node that contains it", node.start_mark, path)
        if len(path) > MAX_DEPTH:
            raise _located(f"nested deeper than {MAX_DEPTH} levels", node.start_mark, path)
        via_alias = via_alias or id(node) in self.seen
        self.seen.add(id(node))
        if via_alias:
            # an error under an alias names the line where the alias is used
            self.aliased += 1
            if self.aliased > MAX_ALIASED_NODES:
                err = YamlError(path, f"aliases expand to more than {MAX_ALIASED_NODES} values")
                err.line = self.lines.line_of(path)
                raise err
        else:
            self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(item, (*path, i), via_alias) for i, item in enumerate(node.value)
                ]
            return self._mapping(node, path, via_alias)
        finally:
            self.open.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except Exception as exc:
            # PyYAML's converters let plain exceptions escape: int() refuses decimal
            # numbers over 4300 digits (CPython's guard against quadratic conversion),
            # datetime a 30th of February, `!!float` with no text an IndexError
            text = str(exc) if isinstance(exc, ValueError | OverflowError) else ""
            if "integer string conversion" in text:
                text = "a number too long to read"
            what = f"{node.tag.rsplit(':', 1)[-1]} value"
            raise _located(f"not valid YAML: {text or 'not a ' + what}", node.start_mark,
                           path) from None  # fmt: skip

    def _mapping(self, node: yaml.MappingNode, path: Path, via_alias: bool) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _located(
                    "a key must be text, not a mapping or list", key_node.start_mark, path
                )
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                # null, true/false (YAML 1.1 reads yes/no/on/off so too), numbers, NaN: a
                # path made of them could not be named in an error, nor be a config key
                raise _located(f"a key must be text, not {describe_key(key)}",
                               key_node.start_mark, path, hint='quote it to make it text, e.g. "on":')  # fmt: skip
            if key in out:
                raise _located(f"key '{key}' appears twice", key_node.start_mark, (*path, key))
            if not via_alias:
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*path, key), via_alias)
        return out


def load_yaml(text: str) -> tuple[Any, LineMap]:
    lines = LineMap()
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        return _Builder(loader, lines).build(node, ()), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _located(f"not valid YAML: {exc.problem or exc.context}", mark) from None
    except yaml.YAMLError as exc:
        raise YamlError((), f"not valid YAML: {exc}") from None
    except RecursionError:
        # the depth check comes first; this is for a stack already deep when called
        raise YamlError((), f"nested too deeply (the limit is {MAX_DEPTH} levels)") from None
    finally:
        loader.dispose()
