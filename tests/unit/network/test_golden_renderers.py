"""Every registered renderer x every case, against golden files.

tests/golden/network/<renderer>/<case>/<guest path> holds each rendered file (and MODES,
one "mode path" line per file). Regenerate with VMTAILOR_UPDATE_GOLDEN=1 and read the
diff. Meaning (not just bytes) is checked by each renderer's own parse-back tests."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import REPO
from tests.unit.network.cases import CASES, state
from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts

GOLDEN = REPO / "tests/golden/network"
UPDATE = os.environ.get("VMTAILOR_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_golden(renderer, case):
    files = RENDERERS[renderer].render(state(case), GuestFacts())
    assert files, "a renderer must write something for every case"
    where = GOLDEN / renderer / case
    modes = "".join(f"{f.mode:04o} {p}\n" for p, f in sorted(files.items()))
    if UPDATE:
        shutil.rmtree(where, ignore_errors=True)
        for path, f in files.items():
            dest = where / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(f.content)
        (where / "MODES").write_text(modes)
    assert modes == (where / "MODES").read_text()
    for path, f in files.items():
        assert f.content == (where / path.lstrip("/")).read_text(), path


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_render_is_pure_and_deterministic(renderer):
    for case in CASES:
        a = RENDERERS[renderer].render(state(case), GuestFacts())
        b = RENDERERS[renderer].render(state(case), GuestFacts())
        assert a == b
        assert all(p.startswith("/etc/") for p in a), "renderers write only under /etc"
