"""The result record on a serial console, read on the host: tests and `vmtailor deploy`
use parse_result() on the console log of a customization boot.

The initrd prints the record as one JSON line between fixed markers; kernel messages can
land between the markers too (the console is shared), so only the line that parses as a
JSON object counts. The last record in the log wins: a VM may have been customized more
than once."""

from __future__ import annotations

import json

BEGIN = "-----BEGIN VMTAILOR RESULT-----"
END = "-----END VMTAILOR RESULT-----"


class NoResult(ValueError):
    """The log holds no (complete) result record: the boot never got that far."""


def format_result(record: dict) -> str:
    return f"{BEGIN}\n{json.dumps(record, sort_keys=True, separators=(',', ':'))}\n{END}\n"


def parse_result(log_text: str) -> dict:
    """The last result record in a console log, as a dict (status ok|error, reason, …)."""
    text = log_text.replace("\r", "")
    end = text.rfind(END)
    begin = text.rfind(BEGIN, 0, end if end >= 0 else None)
    if begin < 0 or end < 0:
        raise NoResult("no vmtailor result record in the console log")
    block = text[begin + len(BEGIN) : end]
    for line in block.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "status" in record:
            return record
    raise NoResult("the vmtailor result record in the console log is not readable JSON")
