"""Printing results: text for people, one JSON document with --json for machines."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def error_text(exc: BaseException) -> str:
    """An error as the one line it promises to be: a message that cannot be formatted or
    holds a line break (from a library's exception text) must not turn into a traceback
    or a second line a script would misread."""
    try:
        text = str(exc)
    except Exception:
        text = f"{type(exc).__name__} (its message could not be shown)"
    return " ".join(text.split()) or type(exc).__name__


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def add_json_flag(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows as aligned columns, the first row the heading; the last column is free text
    (a reason, a detail) and is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )
