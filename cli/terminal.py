"""The one way cli/ writes styled text: a rich Console that colours only a terminal.

Colour is for people at a terminal: a pipe, a file or a CI log gets plain text, and so does
a terminal when NO_COLOR is set (no-color.org: set and not empty). FORCE_COLOR colours a
pipe, as rich reads it. Text is never wrapped or re-interpreted (no markup, no emoji
codes, no highlighting): paths and diff lines come out byte for byte.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console


def colour_wanted() -> bool:
    return not os.environ.get("NO_COLOR")


def console(stream: TextIO | None = None) -> Console:
    return Console(
        file=stream or sys.stdout,
        color_system="auto" if colour_wanted() else None,
        # with NO_COLOR, no styles at all: bold and dim are escape codes too
        no_color=not colour_wanted(),
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
    )


def styled(con: Console) -> bool:
    """Whether `con` writes escape codes at all."""
    return con.is_terminal and con.color_system is not None
