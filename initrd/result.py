"""The result record on a serial console, read on the host: tests and `vmtailor deploy`
use it on the console log of a customization boot.

The initrd prints the record as one JSON line between fixed marker lines, once it has
unmounted the guest and synced; kernel messages can land between the markers too (the
console is shared), so only the line that parses as a JSON object with a status counts.
The last complete record in the log wins: a VM may have been customized more than once.

The console is not the initrd's alone — firmware prints boot entry names the guest chose,
and an error message can quote a guest's file — so a record can be forged by what the
guest holds. `deploy` therefore puts a fresh token on each run's config media; the initrd
copies it into the record (RUN) and never prints it anywhere else, and only a record that
carries it may end the host's wait before the VM powers off (run_record)."""

from __future__ import annotations

import json

BEGIN = "-----BEGIN VMTAILOR RESULT-----"
END = "-----END VMTAILOR RESULT-----"
RUN = "run"  # the record's key for the run token of the config media
STATUSES = ("ok", "error")


class NoResult(ValueError):
    """The log holds no (complete) result record: the boot never got that far."""


def format_result(record: dict) -> str:
    return f"{BEGIN}\n{json.dumps(record, sort_keys=True, separators=(',', ':'))}\n{END}\n"


def _last_block(log_text: str) -> list[str] | None:
    """The lines between the last END line and the BEGIN line before it: markers count
    only as whole lines, so a marker quoted inside other text is no marker."""
    lines = [line.strip() for line in log_text.replace("\r", "").split("\n")]
    end = None
    for i in range(len(lines) - 1, -1, -1):
        if end is None and lines[i] == END:
            end = i
        elif end is not None and lines[i] == BEGIN:
            return lines[i + 1 : end]
    return None


def _record(block: list[str]) -> dict | None:
    for line in block:
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("status") in STATUSES:
            return record
    return None


def parse_result(log_text: str) -> dict:
    """The last result record in a console log, as a dict (status ok|error, reason, …)."""
    block = _last_block(log_text)
    if block is None:
        raise NoResult("no vmtailor result record in the console log")
    record = _record(block)
    if record is None:
        raise NoResult("the vmtailor result record in the console log is not readable JSON")
    return record


def run_record(log_text: str, run: str) -> dict | None:
    """The last complete record when it is this run's (carries the token `run`), else
    None: a record still being printed, a forged one, or one of an earlier run."""
    try:
        record = parse_result(log_text)
    except NoResult:
        return None
    return record if run and record.get(RUN) == run else None
