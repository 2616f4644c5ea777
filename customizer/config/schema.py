"""Typed config models: one declaration gives validation, located errors and a JSON schema.

Models are dataclasses whose fields are declared with `spec()`. `load(Model, data)` turns
plain YAML/JSON data into model instances, rejecting unknown keys and wrong types with a
ConfigError that carries the key path; `json_schema(Model)` publishes the same rules.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from .errors import Collector, ConfigError, Path, number
from .template import Deferred

_MISSING = dataclasses.MISSING


def spec(
    doc: str,
    *,
    default: Any = _MISSING,
    factory: Callable[[], Any] | None = None,
    key: str | None = None,
    pattern: str | None = None,
    check: Callable[[Any], str | None] | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    choices: Callable[[], list[str]] | None = None,
    type_hint: str | None = None,
    example: Any = None,
    secret: bool = False,
) -> Any:
    """Declare a config field. `check(value)` returns an error message or None.

    `secret`: the value is never put in an error message (a password hash, or a private
    key pasted where a public one belongs): errors say what is wrong, not what was given."""
    meta = {
        "secret": secret,
        "doc": doc,
        "key": key,
        "pattern": pattern,
        "check": check,
        "minimum": minimum,
        "maximum": maximum,
        "choices": choices,
        "type_hint": type_hint,
        "example": example,
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def config_key(field: dataclasses.Field) -> str:
    return field.metadata.get("key") or field.name


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in get_args(tp) if a is not type(None)]
        return " or ".join(names)
    return str(tp)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int):
        text = number(value)
        return text if text.startswith("a ") else f"the number {text}"
    return repr(value)


def _kind(value: Any) -> str:
    """What a value is, without showing it (for secret fields)."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return _describe(value)


def load(tp: Any, value: Any, path: Path = ()) -> Any:
    """Validate `value` against type `tp` and build the typed model."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _load_model(tp, value, path)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return load(arg, value, path)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(path, f"expected {_type_name(tp)}, got {_describe(value)}")
    if origin is Literal:
        if not any(value == a and type(value) is type(a) for a in get_args(tp)):
            raise ConfigError(path, f"expected {_type_name(tp)}, got {_describe(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {_describe(value)}")
        (item,) = get_args(tp)
        found, items = Collector(), []
        for i, v in enumerate(value):
            with found.check():
                items.append(load(item, v, (*path, i)))
        found.raise_any()
        return items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a mapping, got {_describe(value)}")
        _, item = get_args(tp)
        found, out = Collector(), {}
        for k, v in value.items():
            if not isinstance(k, str):
                found.add(ConfigError(path, f"keys must be strings, got {_describe(k)}"))
                continue
            with found.check():
                out[k] = load(item, v, (*path, k))
        found.raise_any()
        return out
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {_describe(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported model type {tp!r}")


def _suggest(key: str, known: list[str]) -> str:
    # the closest match; on a tie the one declared first (dhcp -> dhcp4, not dhcp6)
    scored = [(difflib.SequenceMatcher(None, key, k).ratio(), -i, k) for i, k in enumerate(known)]
    best = max(scored, default=(0.0, 0, ""))
    return f" (did you mean '{best[2]}'?)" if best[0] >= 0.6 else ""


def _load_model(cls: Any, value: Any, path: Path) -> Any:
    # a model that accepts an older format converts it first (network v1 -> v2)
    convert = getattr(cls, "__convert__", None)
    if convert is not None and (model := convert(value, path)) is not None:
        return model
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a mapping, got {_describe(value)}")
    fields = {config_key(f): f for f in dataclasses.fields(cls)}
    rejected: dict[str, str] = getattr(cls, "__rejected_keys__", {})
    # every problem of every key is collected; the model is built only from a clean set
    found = Collector()
    for key in value:
        if key in rejected:
            found.add(ConfigError((*path, key), rejected[key]))
        elif key not in fields:
            where = ".".join(str(p) for p in path) or "the top level"
            found.add(ConfigError(
                (*path, key),
                f"unknown key '{key}' in {where}{_suggest(str(key), list(fields))}",
            ))  # fmt: skip
    hints = _hints(cls)
    kwargs = {}
    for key, field in fields.items():
        if key not in value:
            if field.default is _MISSING and field.default_factory is _MISSING:
                found.add(ConfigError(path, f"missing required key '{key}'"))
            continue
        with found.check():
            kwargs[field.name] = _load_field(field, hints[field.name], value[key], (*path, key))
    found.raise_any()
    model = cls(**kwargs)
    validate = getattr(model, "validate", None)
    if validate is not None:
        validate(path)
    return model


def _load_field(field: dataclasses.Field, tp: Any, value: Any, fpath: Path) -> Any:
    try:
        loaded = load(tp, value, fpath)
    except ConfigError as exc:
        if field.metadata.get("secret"):
            raise ConfigError(exc.path, f"expected {_type_name(tp)}, got "
                              f"{_kind(value)} (value not shown)") from None  # fmt: skip
        if field.metadata.get("type_hint") and exc.path == fpath and not exc.hint:
            exc.hint = field.metadata["type_hint"]
        raise
    _check_field(field, loaded, fpath)
    return loaded


def _check_field(field: dataclasses.Field, value: Any, path: Path) -> None:
    if value is None:
        return
    meta = field.metadata
    # a list's items, a mapping's values (per-member bridge options), or the value itself
    if isinstance(value, list):
        items = [((*path, i), item) for i, item in enumerate(value)]
    elif isinstance(value, dict):
        items = [((*path, k), item) for k, item in value.items()]
    else:
        items = [(path, value)]
    for ipath, item in items:
        if isinstance(item, Deferred):
            continue  # an unrendered template: checked once its vars are known
        # check first: it can say more than "does not match" (and, on a secret field,
        # say it without the value)
        if meta.get("check"):
            message = meta["check"](item)
            if message:
                raise ConfigError(ipath, message)
        if meta.get("pattern") and isinstance(item, str):
            if not re.fullmatch(meta["pattern"], item):
                if meta.get("secret"):
                    raise ConfigError(ipath, f"not valid here ({meta['doc']}; value not shown)")
                raise ConfigError(ipath, f"{item!r} is not valid here ({meta['doc']})")
        if meta.get("minimum") is not None and isinstance(item, int) and item < meta["minimum"]:
            raise ConfigError(ipath, f"{number(item)} is below the minimum {meta['minimum']}")
        if meta.get("maximum") is not None and isinstance(item, int) and item > meta["maximum"]:
            raise ConfigError(ipath, f"{number(item)} is above the maximum {meta['maximum']}")
        if meta.get("choices") and item not in meta["choices"]():
            known = meta["choices"]()
            raise ConfigError(
                ipath,
                f"unknown value {item!r}{_suggest(str(item), known)}; known: {', '.join(known)}",
            )


# -- JSON schema --------------------------------------------------------------------


def json_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of a model type."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        props: dict[str, Any] = {}
        required = []
        for field in dataclasses.fields(tp):
            key = config_key(field)
            prop = json_schema(hints[field.name])
            prop["description"] = field.metadata.get("doc", "")
            if field.metadata.get("pattern"):
                _add_pattern(prop, field.metadata["pattern"])
            if field.metadata.get("choices"):
                target = prop["items"] if prop.get("type") == "array" else prop
                target["enum"] = list(field.metadata["choices"]())
            if field.metadata.get("minimum") is not None:
                prop["minimum"] = field.metadata["minimum"]
            if field.metadata.get("maximum") is not None:
                prop["maximum"] = field.metadata["maximum"]
            if field.default is _MISSING and field.default_factory is _MISSING:
                required.append(key)
            elif field.default is not _MISSING and field.default is not None:
                prop["default"] = field.default
            props[key] = prop
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }
        if tp.__doc__:
            schema["description"] = " ".join(tp.__doc__.split())
        if required:
            schema["required"] = required
        return schema
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        subs = [json_schema(a) for a in args]
        if type(None) in get_args(tp):
            subs.append({"type": "null"})
        return subs[0] if len(subs) == 1 else {"anyOf": subs}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin is list:
        return {"type": "array", "items": json_schema(get_args(tp)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": json_schema(get_args(tp)[1])}
    if tp is Any:
        return {}
    return {str: {"type": "string"}, int: {"type": "integer"}, bool: {"type": "boolean"}}[tp]


def _add_pattern(prop: dict[str, Any], pattern: str) -> None:
    # Templates ("{{ var }}") are valid anywhere a string is, so the published pattern
    # admits them too.
    anchored = f"^(?:{pattern})$|\\{{\\{{"
    if prop.get("type") == "string":
        prop["pattern"] = anchored
    elif prop.get("type") == "array" and prop["items"].get("type") == "string":
        prop["items"]["pattern"] = anchored


# -- canonical form -----------------------------------------------------------------


def dump(model: Any) -> Any:
    """Plain data of a model, with config keys, leaving out fields at their defaults."""
    if dataclasses.is_dataclass(model):
        out = {}
        for field in dataclasses.fields(model):
            value = getattr(model, field.name)
            # an empty list is a default only where the default is empty (link-local: []
            # means none, where leaving it out means the stack's default)
            empty = (value == [] or value == {}) and field.default is dataclasses.MISSING
            if value is None or empty or value == field.default:
                continue
            out[config_key(field)] = dump(value)
        return out
    if isinstance(model, list):
        return [dump(v) for v in model]
    if isinstance(model, dict):
        return {k: dump(v) for k, v in model.items()}
    if isinstance(model, str):
        return str(model)
    return model
