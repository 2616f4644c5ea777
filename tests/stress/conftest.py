"""Kill-harness fixtures: one reference per guest per pytest process, and a summary of
where the kills landed across every xdist worker."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from .killharness import Reference, build_reference

LOG_VAR = "VMTAILOR_KILL_LOG"  # one JSON line per trial, shared by every worker


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        return
    path = os.environ.get(LOG_VAR)
    if not path:
        # set before xdist starts its workers, so they inherit it
        fd, path = tempfile.mkstemp(prefix="vmtailor-kills-", suffix=".jsonl")
        os.close(fd)
        os.environ[LOG_VAR] = path
        config._vmtailor_kill_log_made = True
    config._vmtailor_kill_log = path


@pytest.fixture(scope="session")
def references(tmp_path_factory):
    """references(guest) -> Reference, built (and timed) on first use in this process."""
    built: dict[str, Reference] = {}
    work = tmp_path_factory.mktemp("kill-references")

    def get(guest: str) -> Reference:
        if guest not in built:
            built[guest] = build_reference(guest, work)
        return built[guest]

    return get


def log_outcome(line: str) -> None:
    path = os.environ.get(LOG_VAR)
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def pytest_terminal_summary(terminalreporter, config):
    path = getattr(config, "_vmtailor_kill_log", None)
    if not path or not Path(path).exists():
        return
    outcomes = [json.loads(line) for line in Path(path).read_text().splitlines() if line]
    if getattr(config, "_vmtailor_kill_log_made", False):
        os.unlink(path)
    if not outcomes:
        return
    killed = [o for o in outcomes if o["killed"]]
    failed = [o for o in outcomes if o["problems"]]
    landed = Counter(o["landed"] for o in killed)
    tr = terminalreporter
    tr.section("vmtailor kill harness")
    tr.write_line(
        f"{len(outcomes)} trials, {len(killed)} killed while running "
        f"({len(outcomes) - len(killed)} had exited already), {len(failed)} failed"
    )
    for where, n in sorted(landed.items()):
        tr.write_line(f"  kills landing {where}: {n} ({100 * n / len(killed):.0f}%)")
    # a problem reads "STAGE: WHAT: detail"; its class is "STAGE: WHAT"
    seeds: dict[str, list[int]] = {}
    for o in failed:
        for cls in dict.fromkeys(": ".join(p.split(": ")[:2]) for p in o["problems"]):
            seeds.setdefault(cls, []).append(o["seed"])
    for cls, found in sorted(seeds.items(), key=lambda kv: -len(kv[1])):
        tr.write_line(f"  {cls}: {len(found)} trials (seeds {found[:10]})")
