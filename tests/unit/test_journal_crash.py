"""apply and revert killed for real (SIGKILL, in a forked child) before each of their
filesystem calls: a re-run finishes the job and leaves no temp file behind, and a killed
revert is always re-runnable to the pristine guest."""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import pytest

from tests.conftest import tree_digest
from tests.unit.test_journal import CONFIG, _guest
from vmtailor.customizer import config, engine, journal
from vmtailor.customizer.localroot import LocalRoot

# every call that changes the tree; the child dies just before the n-th one
CALLS = ("rename", "replace", "unlink", "rmdir", "mkdir", "symlink")


def _in_child(top: Path, what: str, kill_at: int | None, count_file: Path | None = None) -> None:
    """Run apply or revert on `top` in a forked child that SIGKILLs itself just before its
    `kill_at`-th tree-changing call (never when None; the count goes to `count_file`)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            seen = [0]
            for name in CALLS:
                real = getattr(os, name)

                def call(*args, _real=real, **kwargs):
                    if seen[0] == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    seen[0] += 1
                    return _real(*args, **kwargs)

                setattr(os, name, call)
            if what == "apply":
                engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
            else:
                engine.revert(LocalRoot(str(top)))
            if count_file:
                count_file.write_text(str(seen[0]))
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if kill_at is None:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    else:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def _count(tmp_path: Path, what: str) -> int:
    top = _guest(tmp_path / f"count-{what}")
    if what == "revert":
        engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    out = tmp_path / f"count-{what}.txt"
    _in_child(top, what, None, out)
    return int(out.read_text())


def _temp_files(top: Path) -> list[str]:
    """Temp files a killed write left, and the folders a killed mkdir left."""
    return [
        str(Path(d, f).relative_to(top))
        for d, dirs, files in os.walk(top)
        for f in [*files, *dirs]
        if journal.TEMP_NAME.match(f)
    ]


def test_write_leftovers_have_the_name_the_sweep_looks_for(tmp_path):
    """Root.write_bytes' temp name and journal.TEMP_NAME agree: kill a real write."""
    top = _guest(tmp_path / "g")
    # the first rename of an apply is journal.json's temp file going into place
    _in_child(top, "apply", _first_rename(tmp_path))
    left = _temp_files(top)
    assert left and all(re.search(r"\.vmtailor-[0-9]+\.tmp$", p) for p in left), left


def _first_rename(tmp_path: Path) -> int:
    """Index of the first rename in an apply, among the calls the child counts."""
    top = _guest(tmp_path / "probe")
    order: list[str] = []
    pid = os.fork()
    if pid == 0:
        log = tmp_path / "order.txt"
        for name in CALLS:
            real = getattr(os, name)

            def call(*args, _real=real, _name=name, **kwargs):
                with open(log, "a") as f:
                    f.write(_name + "\n")
                return _real(*args, **kwargs)

            setattr(os, name, call)
        engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
        os._exit(0)
    os.waitpid(pid, 0)
    order = (tmp_path / "order.txt").read_text().split()
    return order.index(next(n for n in order if n in ("rename", "replace")))


def test_apply_killed_anywhere_rerun_or_revert_leave_no_trace(tmp_path):
    n = _count(tmp_path, "apply")
    assert n > 20
    done = _guest(tmp_path / "done")
    engine.apply(config.parse(CONFIG), LocalRoot(str(done)))
    want_done = tree_digest(done, skip=("var",))
    pristine = tree_digest(_guest(tmp_path / "pristine"))
    leftovers = 0
    for k in range(n):
        cut = _guest(tmp_path / f"cut{k}")
        _in_child(cut, "apply", k)
        leftovers += bool(_temp_files(cut))
        other = tmp_path / f"cut{k}-revert"
        shutil.copytree(cut, other, symlinks=True)

        engine.apply(config.parse(CONFIG), LocalRoot(str(cut)))
        assert tree_digest(cut, skip=("var",)) == want_done, f"re-run after kill {k}"
        assert _temp_files(cut) == [], f"re-run after kill {k} left temp files"

        try:
            engine.revert(LocalRoot(str(other)))
        except journal.JournalError as exc:
            # killed before the journal existed: nothing was changed but vmtailor's folder
            assert "nothing to revert" in str(exc), (k, exc)
            assert tree_digest(other, skip=("var",)) == pristine, k
            continue
        assert tree_digest(other) == pristine, f"revert after kill {k}"
        shutil.rmtree(cut)
        shutil.rmtree(other)
    assert leftovers > 5  # the kills did leave temp files for the re-runs to clear


def test_revert_killed_anywhere_is_rerun_to_the_pristine_guest(tmp_path):
    n = _count(tmp_path, "revert")
    assert n > 10
    pristine = tree_digest(_guest(tmp_path / "pristine"))
    for k in range(n):
        top = _guest(tmp_path / f"r{k}")
        engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
        _in_child(top, "revert", k)
        engine.revert(LocalRoot(str(top)))
        assert tree_digest(top) == pristine, f"revert killed at call {k}, then run again"
        shutil.rmtree(top)


class Cut(Exception):
    pass


def test_apply_refuses_a_guest_whose_revert_was_cut_off(tmp_path):
    top = _guest(tmp_path / "g")
    engine.apply(config.parse(CONFIG), LocalRoot(str(top)))

    def fault(step: str) -> None:
        if step.startswith("restore "):
            raise Cut(step)

    with pytest.raises(Cut):
        engine.revert(LocalRoot(str(top)), fault=fault)
    before = tree_digest(top)
    with pytest.raises(journal.JournalError, match="revert .* was cut off"):
        engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    assert tree_digest(top) == before
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == tree_digest(_guest(tmp_path / "pristine"))


def test_a_guests_own_empty_var_lib_survives_a_first_run_killed_anywhere(tmp_path):
    """An empty /var/lib is the guest's, not evidence of vmtailor: a first apply killed
    while making its journal folder, then reverted, leaves /var/lib where it was."""

    def guest(top: Path) -> Path:
        _guest(top)
        (top / "var/lib").mkdir(parents=True)
        return top

    pristine = tree_digest(guest(tmp_path / "pristine"))
    assert "var/lib" in pristine
    for k in range(12):  # the journal's folder, journal.json and the first changes
        top = guest(tmp_path / f"k{k}")
        _in_child(top, "apply", k)
        try:
            engine.revert(LocalRoot(str(top)))
        except journal.JournalError as exc:
            assert "nothing to revert" in str(exc), (k, exc)
        assert tree_digest(top) == pristine, f"revert after kill {k}"
        shutil.rmtree(top)
