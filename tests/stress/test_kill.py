"""SIGKILL the real `vmtailor apply` / `vmtailor revert` at random moments (see
killharness.py). `make test` runs VMTAILOR_KILLS=100 kills, `make stress` 1000; one
trial alone: VMTAILOR_KILL_SEED=<seed> (the seed a failure names)."""

from __future__ import annotations

import os
import shutil

import pytest

from .conftest import log_outcome
from .killharness import CHUNK, Trial, run_trial, trial_seeds

KILLS = int(os.environ.get("VMTAILOR_KILLS", "100"))
ONE = os.environ.get("VMTAILOR_KILL_SEED", "")
CHUNKS = [[int(ONE)]] if ONE else trial_seeds(KILLS)
# at least this share of a chunk's kills must land after the journal was begun, or the
# harness would mostly be testing Python's start-up
AFTER_JOURNAL = 0.6


@pytest.mark.parametrize("seeds", CHUNKS, ids=lambda s: f"seeds{s[0]}-{s[-1]}")
def test_killed_runs_converge_and_revert(seeds, references, tmp_path):
    outcomes = []
    for seed in seeds:
        trial = Trial.from_seed(seed)
        work = tmp_path / f"seed-{seed}"
        outcome = run_trial(trial, references(trial.guest), work)
        log_outcome(outcome.to_json())
        outcomes.append((trial, outcome))
        if not outcome.problems:
            shutil.rmtree(work)  # failing trees stay for a look
    failures = [
        f"{trial.describe(o.delay, o.mark)}, landed {o.landed}:\n    " + "\n    ".join(o.problems)
        for trial, o in outcomes
        if o.problems
    ]
    assert not failures, f"{len(failures)} of {len(seeds)} trials failed:\n" + "\n".join(failures)
    if len(seeds) == CHUNK:
        after = sum(o.killed and o.landed != "before-journal" for _, o in outcomes)
        assert after >= AFTER_JOURNAL * CHUNK, (
            f"only {after} of {CHUNK} kills landed after the journal was begun: "
            + ", ".join(f"{o.seed}:{o.landed}:{o.delay * 1000:.0f}ms" for _, o in outcomes)
        )
