"""Config errors that name the key path (and, from YAML, the line) they are about."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from ..errors import VmtailorError

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            # anything but a string here is a bug upstream; still print, never raise
            out += ("." if out else "") + (part if isinstance(part, str) else repr(part))
    return out or "(top level)"


def number(value: int) -> str:
    """An integer for a message: str() itself raises past 4300 digits (and a number that
    long is no use to a reader anyway)."""
    if abs(value) < 10**30:
        return str(value)
    return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"


def describe_key(key: object) -> str:
    """A YAML mapping key that is not text, for an error message."""
    if key is None:
        return "null"
    if isinstance(key, bool):
        return str(key).lower()
    if isinstance(key, int):
        text = number(key)
        return text if text.startswith("a ") else f"the number {text}"
    if isinstance(key, float):
        return f"the number {key}"
    return f"a {type(key).__name__}"


class ConfigError(VmtailorError):
    """`error at users[1].password: line 14: …` — line is filled in by whoever parsed the
    text (the YAML loader knows where each key came from)."""

    def __init__(self, path: Path, message: str, hint: str | None = None):
        super().__init__(message, hint)
        self.path = tuple(path)
        self.message = message
        self.line: int | None = None
        self.source: str | None = None

    def __str__(self) -> str:
        where = f"error at {format_path(self.path)}: " if self.path else "error: "
        if self.line is not None:
            where += f"line {self.line}: "
        text = where + self.message
        return f"{text} — {self.hint}" if self.hint else text

    @property
    def errors(self) -> list[ConfigError]:
        """Each problem found, in config order: this one alone, or a ConfigErrors' list."""
        return [self]

    def locate(self, source: str | None, line_of: Callable[[Path], int | None]) -> None:
        """Name the file, and the line each error's key path is on (where not known)."""
        for error in self.errors:
            error.source = source
            if error.line is None:
                error.line = line_of(error.path)


class ConfigErrors(ConfigError):
    """Every problem of a config at once, so that a file with three mistakes takes one
    run to fix, not three. Its path, message and line are its first error's, for code
    that expects one; `errors` has them all, and str() all of them on one line."""

    def __init__(self, errors: list[ConfigError]):
        flat = [e for error in errors for e in error.errors]
        super().__init__(flat[0].path, flat[0].message, flat[0].hint)
        self._errors = flat  # after: the base class's None line and source are not theirs

    @property
    def errors(self) -> list[ConfigError]:
        return self._errors

    @property  # type: ignore[override]
    def source(self) -> str | None:
        return self._errors[0].source if hasattr(self, "_errors") else None

    @source.setter
    def source(self, value: str | None) -> None:
        for error in getattr(self, "_errors", []):
            error.source = value

    @property  # type: ignore[override]
    def line(self) -> int | None:
        return self._errors[0].line if hasattr(self, "_errors") else None

    @line.setter
    def line(self, value: int | None) -> None:
        if hasattr(self, "_errors"):
            self._errors[0].line = value

    def __str__(self) -> str:
        # still one line wherever a message must be (a result record, a batch reason);
        # the CLI prints `errors` one per line
        return "; ".join(str(e) for e in self._errors)


class Collector:
    """Gathers ConfigErrors from several independent checks: `with c.check(): …` records
    an error and carries on; `c.raise_any()` raises them all (one as itself)."""

    def __init__(self) -> None:
        self.found: list[ConfigError] = []

    @contextlib.contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except ConfigError as exc:
            self.found.append(exc)

    def add(self, error: ConfigError) -> None:
        self.found.append(error)

    def raise_any(self) -> None:
        if len(self.found) == 1:
            raise self.found[0]
        if self.found:
            raise ConfigErrors(self.found)
