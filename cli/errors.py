"""How a failed command ends: the exit status it promises in `--help`, one line per
problem on stderr, and with --json one error document on stdout for a program to read."""

from __future__ import annotations

import errno
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from .customizer.config import ConfigError, format_path
from .customizer.errors import PlanError, UsageError, VmtailorError
from .output import emit_json, error_text

OK, FAILED, USAGE, INTERNAL, INTERRUPTED = 0, 1, 2, 3, 130

EXIT_STATUS = """\
exit status:
  0    success
  1    the guest or the system failed or refused (a change cannot be planned on this
       guest, an image in use, a permission denied); nothing was changed
  2    bad config, vars file, inventory or command line; nothing was touched
  3    internal error: a bug in vmtailor (run with --debug for a traceback and report it)
  130  interrupted (Ctrl-C)
With --json, a failure also prints {"error": {"message", "kind", "hint", "errors"}} on
stdout; errors lists each config problem with its path and line."""


class ArgumentError(UsageError):
    """argparse's complaint about the command line, with the usage line to show."""

    def __init__(self, message: str, usage: str):
        super().__init__(message)
        self.usage = usage


@dataclass
class Failure:
    status: int
    kind: str  # config, usage, guest, system, interrupted or internal
    message: str
    hint: str | None = None
    lines: list[str] = field(default_factory=list)  # what stderr shows, one line each
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "kind": self.kind, "hint": self.hint,
                          "errors": self.errors}}  # fmt: skip


def _config_failure(exc: ConfigError, json: bool) -> Failure:
    # in file order, whichever check found them
    errors = sorted(exc.errors, key=lambda e: (e.line is None, e.line or 0))
    lines = [(f"{e.source}: " if e.source and not json else "") + error_text(e) for e in errors]
    items = [{"path": format_path(e.path), "line": e.line, "source": e.source,
              "message": e.message, "hint": e.hint} for e in errors]  # fmt: skip
    message = error_text(errors[0])
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return Failure(USAGE, "config", message, errors[0].hint, lines, items)


def _os_failure(exc: OSError) -> Failure:
    """An OSError no layer below turned into a sentence: still name the file."""
    where = " ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    text = f"{where}: {exc.strerror}" if where and exc.strerror else error_text(exc)
    denied = exc.errno in (errno.EACCES, errno.EPERM)
    hint = _denied_hint(os.strerror(exc.errno)) if denied and exc.errno is not None else None
    return Failure(FAILED, "system", text, hint)


def _denied_hint(message: str) -> str | None:
    """A permission refused to a user who is not root: say what usually helps."""
    denied = (os.strerror(errno.EACCES), os.strerror(errno.EPERM))
    if os.geteuid() != 0 and any(text in message for text in denied):
        return "run as root (sudo vmtailor …)"
    return None


def classify(exc: BaseException, *, json: bool = False) -> Failure | None:
    """The Failure an exception stands for; None for a bug (reported as internal)."""
    if isinstance(exc, ConfigError):
        return _config_failure(exc, json)
    if isinstance(exc, VmtailorError):
        kind, status = ("usage", USAGE) if isinstance(exc, UsageError) else (
            ("guest", FAILED) if isinstance(exc, PlanError) else ("system", FAILED))  # fmt: skip
        message = error_text(VmtailorError(*exc.args)) if exc.args else error_text(exc)
        return Failure(status, kind, message, exc.hint or _denied_hint(message))
    if isinstance(exc, KeyboardInterrupt):
        return Failure(INTERRUPTED, "interrupted", "interrupted")
    if isinstance(exc, EOFError):
        return Failure(USAGE, "usage", "the input ended before it was complete",
                       "give it on a terminal, or on stdin where the command offers that")  # fmt: skip
    if isinstance(exc, OSError):
        return _os_failure(exc)
    return None


def report(exc: BaseException, *, json: bool) -> int:
    """Tell the user (and, with --json, a program) why the command failed; the status."""
    if isinstance(exc, BrokenPipeError):
        # the reader of our output went away (`vmtailor schema | head`); a pipe to a
        # command we run would have been reported by customizer/run.py
        _drop_stdout()
        print("error: the output was closed before it was complete (broken pipe)",
              file=sys.stderr)  # fmt: skip
        return FAILED
    failure = classify(exc, json=json)
    if failure is None:
        failure = Failure(INTERNAL, "internal",
                          f"internal error: {type(exc).__name__}: {error_text(exc)}",
                          "run with --debug for a traceback")  # fmt: skip
    if isinstance(exc, ArgumentError):
        sys.stderr.write(exc.usage)
    if isinstance(exc, EOFError):
        sys.stderr.write("\n")  # after the prompt that was waiting for the input
    if json:
        try:
            emit_json(failure.to_dict())
            sys.stdout.flush()
        except BrokenPipeError:
            _drop_stdout()
    for line in failure.lines or [_line(failure)]:
        print(line, file=sys.stderr)
    return failure.status


def _line(failure: Failure) -> str:
    text = f"error: {failure.message}"
    if failure.hint:
        text += f" — {failure.hint}"
    return text


def _drop_stdout() -> None:
    """Point stdout at /dev/null: Python flushes it at exit, and would fail again there."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
