"""The one way vmtailor runs an external command: C locale, stdin closed, the command
logged at debug level, and a typed error carrying command, exit status and stderr.
Nothing else in vmtailor imports subprocess."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence

from .errors import VmtailorError

log = logging.getLogger("vmtailor.run")


class CommandError(VmtailorError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no error output"
        super().__init__(f"{shlex.join(self.argv)} failed (exit {returncode}): {last}")


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    capture: bool = True,
) -> subprocess.CompletedProcess:
    """Run `argv` (never through a shell) and return the completed process with bytes
    stdout/stderr. Raises CommandError on a non-zero exit when `check`, and VmtailorError
    when the program is missing or times out."""
    argv = [os.fspath(a) for a in argv]
    full_env = {**os.environ, "LC_ALL": "C", "LANG": "C", **(env or {})}
    log.debug("run: %s", shlex.join(argv))
    try:
        proc = subprocess.run(
            argv,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise VmtailorError(f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise VmtailorError(f"{shlex.join(argv)} timed out after {timeout:g} s") from None
    if check and proc.returncode != 0:
        stderr = (proc.stderr or b"").decode("utf-8", errors="replace")
        raise CommandError(argv, proc.returncode, stderr)
    return proc
