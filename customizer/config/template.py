"""Per-clone values: config strings may be jinja2 templates over the clone's `vars`."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError, Path


class Deferred(str):
    """A template string left unrendered because its vars are not known yet (`validate`
    without vars); format checks wait until it is rendered."""


def _environment():
    # jinja2 is imported here so that plain (template-free) configs never need it.
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
    )


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def render(data: Any, variables: dict[str, Any] | None, path: Path = ()) -> Any:
    """Render every template string in `data`. With `variables` None, templates are only
    syntax-checked and come back as Deferred; otherwise every variable must be defined."""
    if isinstance(data, dict):
        return {k: render(v, variables, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [render(v, variables, (*path, i)) for i, v in enumerate(data)]
    if not isinstance(data, str) or not is_template(data):
        return data
    from jinja2 import TemplateSyntaxError, UndefinedError

    env = _environment()
    try:
        template = env.from_string(data)
    except TemplateSyntaxError as exc:
        raise ConfigError(path, f"template syntax error: {exc.message}") from None
    if variables is None:
        return Deferred(data)
    try:
        return template.render(**variables)
    except UndefinedError as exc:
        raise ConfigError(
            path,
            f"template uses an undefined variable: {exc.message}",
            hint="pass it with --var NAME=VALUE or in the clone's vars",
        ) from None
    except Exception as exc:  # a template's own runtime error, e.g. a bad filter argument
        raise ConfigError(path, f"template failed: {exc}") from None
