"""run(): the one subprocess wrapper."""

from __future__ import annotations

import pytest

from vmtailor.customizer.errors import VmtailorError
from vmtailor.customizer.run import CommandError, run


def test_output_and_c_locale():
    proc = run(["sh", "-c", 'echo "$LC_ALL"; read x || echo eof'])
    assert proc.stdout == b"C\neof\n"  # stdin is closed


def test_failure_is_typed_with_last_stderr_line():
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", "echo noise >&2; echo 'the reason' >&2; exit 3"])
    assert info.value.returncode == 3
    assert (
        str(info.value) == "sh -c 'echo noise >&2; echo '\"'\"'the reason'\"'\"' >&2; "
        "exit 3' failed (exit 3): the reason"
    )


def test_missing_program_and_timeout():
    with pytest.raises(VmtailorError, match="no-such-program: command not found"):
        run(["no-such-program"])
    with pytest.raises(VmtailorError, match="timed out after 0.2 s"):
        run(["sleep", "5"], timeout=0.2)
    assert run(["false"], check=False).returncode == 1
