"""Config errors that name the key path (and, from YAML, the line) they are about."""

from __future__ import annotations

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
