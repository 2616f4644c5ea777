"""An apply cut off after any change it made, then re-run, leaves the guest exactly as one
uninterrupted apply does — for every operation at once, on fixture guests of each init
system. This is what an operation must get right when it plans from something the same
apply deletes or rewrites (ssh host keys, the old host name): the intent has to survive
in what the re-run still sees. (tests/stress kills the real process at random moments;
this cuts in-process after each change, every one, without timing.)"""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from tests.conftest import REPO, tree_digest
from vmtailor.customizer import config, engine
from vmtailor.customizer.localroot import LocalRoot

from .killharness import copy_tree

sys.path.insert(0, str(REPO / "scripts"))
import fixture_roots
import yaml

CONFIG = config.parse(yaml.safe_load((REPO / "tests/stress/config.yaml").read_text()))
JOURNAL = ("var/lib/vmtailor",)
# make test: the guests where a cut once broke the re-run (ssh host keys on Debian, the
# relabel marker on SELinux, netplan found from its own config), ~20 s of CPU each;
# make stress (VMTAILOR_KILLS >= 1000): every fixture guest
CUT_GUESTS = ["debian-12", "rocky-9", "ubuntu-22.04"]
if int(os.environ.get("VMTAILOR_KILLS", "100")) >= 1000:
    CUT_GUESTS += ["centos-6", "alpine-3.20", "debian-7", "opensuse-leap-15.5", "arch",
                   "fedora-40", "centos-7", "sles-11"]  # fmt: skip


class Cut(Exception):
    pass


def _cut_after(n: int):
    """A fault hook that stops the run after its n-th change is on disk."""
    seen = {"changes": 0}

    def fault(step: str) -> None:
        if step.startswith("apply "):
            seen["changes"] += 1
            if seen["changes"] == n:
                raise Cut(step)

    return fault


@pytest.mark.parametrize("guest", CUT_GUESTS)
def test_cut_after_each_change_then_rerun_is_one_apply(guest, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    # planning is under test here, not durability: ~80 cuts x ~80 writes of fsync would
    # take minutes on a busy disk
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    pristine = fixture_roots.build(guest, tmp_path / "pristine")
    done = tmp_path / "done"
    copy_tree(pristine, done)
    changes = engine.apply(CONFIG, LocalRoot(str(done))).changes
    want = tree_digest(done, skip=JOURNAL)
    wrong = []
    for n in range(1, len(changes)):
        cut = tmp_path / f"cut{n}"
        copy_tree(pristine, cut)
        with pytest.raises(Cut) as step:
            engine.apply(CONFIG, LocalRoot(str(cut)), fault=_cut_after(n))
        engine.apply(CONFIG, LocalRoot(str(cut)))
        got = tree_digest(cut, skip=JOURNAL)
        if got != want:
            paths = sorted(p for p in set(want) | set(got) if want.get(p) != got.get(p))
            wrong.append(f"cut after {step.value}: {', '.join(paths[:5])}")
        shutil.rmtree(cut)
    assert not wrong, "\n".join(wrong)
