"""Progress of `batch` and `deploy` on stderr, as it happens.

On a terminal: a bar (batch) and styled lines, through rich. Anywhere else — a CI log, a
file, a pipe — one plain line per event, flushed at once, so a log shows how far a long
run got instead of nothing until the end. Both are thread-safe: deploy reports from one
thread per VM.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from .terminal import console, styled

STATUS_STYLE = {"ok": "green", "skipped": "dim", "failed": "bold red", "restored": "green"}


class _Lines:
    """Timestamped lines on `stream`, styled only where escape codes are wanted."""

    def __init__(self, stream: TextIO | None = None):
        self.con = console(stream or sys.stderr)
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def line(self, text: str, style: str = "") -> None:
        stamp = f"[{time.monotonic() - self.started:6.1f}s] "
        with self.lock:
            if styled(self.con):
                self.con.print(Text(stamp, style="dim") + Text(text, style=style))
            else:
                self.con.file.write(stamp + text + "\n")
                self.con.file.flush()


class BatchProgress(_Lines):
    """Called with offline/batch.py's events: ("launch", clones, seconds), ("done", Outcome)."""

    def __init__(self, total: int, stream: TextIO | None = None):
        super().__init__(stream)
        self.total, self.done = total, 0
        self.bar: Progress | None = None
        if styled(self.con):
            self.bar = Progress(TextColumn("clones"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=self.con, transient=True)  # fmt: skip
            self.task = self.bar.add_task("clones", total=total)
            self.bar.start()

    def __call__(self, event: tuple) -> None:
        if event[0] == "launch":
            self.line(f"appliance up for {event[1]} clone(s) in {event[2]:.0f}s", "dim")
            return
        self.done += 1
        o = event[1]
        text = f"{self.done}/{self.total} {o.clone}: {o.status}"
        if o.changes:
            text += f" ({o.changes} changes)"
        if o.reason:
            text += f": {o.reason}"
        self.line(text, STATUS_STYLE.get(o.status, ""))
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class DeployProgress(_Lines):
    """flow.Progress: called with (vm, what is happening now)."""

    def __call__(self, vm: str, what: str) -> None:
        self.line(f"{vm}: {what}")
