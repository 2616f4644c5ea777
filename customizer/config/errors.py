"""Config errors that name the key path (and, from YAML, the line) they are about."""

from __future__ import annotations

from ..errors import VmtailorError

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


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
