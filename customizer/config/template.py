"""Per-clone values: config strings may be jinja2 templates over the clone's `vars`,
rendered in a sandbox with limits (sandbox.py) so that a hostile config fails fast."""

from __future__ import annotations

import re
from typing import Any

from .errors import Collector, ConfigError, Path


class Deferred(str):
    """A template string left unrendered because its vars are not known yet (`validate`
    without vars); format checks wait until it is rendered."""


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def render(
    data: Any, variables: dict[str, Any] | None, path: Path = (), found: Collector | None = None
) -> Any:
    """Render every template string in `data`. With `variables` None, templates are only
    syntax-checked and come back as Deferred; otherwise every variable must be defined.
    Every template of `data` shares one budget of steps, time and size (sandbox.py).

    With `found`, a template that fails is recorded there and comes back as Deferred (so
    the rest of the config is still checked); without, the first failure is raised."""
    if not _has_template(data):
        return data
    # jinja2 is imported here so that plain (template-free) configs never need it.
    from .sandbox import BoundedEnvironment

    return _render(BoundedEnvironment(), data, variables, path, found or _Raise())


class _Raise(Collector):
    def add(self, error: ConfigError) -> None:
        raise error


def _has_template(data: Any) -> bool:
    if isinstance(data, dict):
        return any(_has_template(v) for v in data.values())
    if isinstance(data, list):
        return any(_has_template(v) for v in data)
    return isinstance(data, str) and is_template(data)


def _render(
    env: Any, data: Any, variables: dict[str, Any] | None, path: Path, found: Collector
) -> Any:
    if isinstance(data, dict):
        return {k: _render(env, v, variables, (*path, k), found) for k, v in data.items()}
    if isinstance(data, list):
        return [_render(env, v, variables, (*path, i), found) for i, v in enumerate(data)]
    if not isinstance(data, str) or not is_template(data):
        return data
    if env.budget.left < 0 or env.budget.expired():
        return Deferred(data)  # the shared budget is spent: said once, not per template
    try:
        return _render_one(env, data, variables, path)
    except ConfigError as exc:
        found.add(exc)
        return Deferred(data)


def _render_one(env: Any, data: str, variables: dict[str, Any] | None, path: Path) -> str:
    from jinja2 import TemplateSyntaxError, UndefinedError

    from .sandbox import MAX_SIZE, TemplateLimit

    try:
        template = env.from_string(data)
    except TemplateSyntaxError as exc:
        raise ConfigError(path, f"template syntax error: {exc.message}") from None
    except RecursionError:
        raise ConfigError(path, "template syntax error: nested too deeply") from None
    if variables is None:
        return Deferred(data)
    try:
        out, size = [], 0
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > MAX_SIZE:
                raise TemplateLimit(f"output longer than {MAX_SIZE} characters")
            env.budget.charge()  # the clock, between chunks too
            out.append(chunk)
        return "".join(out)
    except UndefinedError as exc:
        # jinja2 says "'h' is undefined" (or "'dict object' has no attribute 'x'")
        name = re.fullmatch(r"'(\w+)' is undefined", exc.message or "")
        raise ConfigError(
            path,
            f"uses undefined variable {name[1]!r}" if name else f"template: {exc.message}",
            hint="pass it with --var NAME=VALUE or in the clone's vars",
        ) from None
    except TemplateLimit as exc:
        raise ConfigError(path, f"template stopped: {exc}") from None
    except MemoryError:
        raise ConfigError(path, "template failed: out of memory") from None
    except RecursionError:
        raise ConfigError(path, "template failed: calls nested too deeply") from None
    except Exception as exc:  # a template's own runtime error, e.g. a bad filter argument
        raise ConfigError(path, f"template failed: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    try:
        text = str(exc)
    except Exception:  # e.g. a message holding a number too long to print
        text = type(exc).__name__
    return text.splitlines()[0][:200] if text else type(exc).__name__
