"""revert puts back the atime and mtime of every path it restores, of every folder whose
content vmtailor changed and of the folders above its journal: backup tools and virt-diff
compare them. Checked to the nanosecond on local trees, for a whole apply and for applies
cut off at each journal step; format 2 journals (no times) still revert."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import tree_digest
from tests.unit.test_journal import CONFIG, Cut, _cut_at, _guest, _steps
from vmtailor.customizer import config, engine
from vmtailor.customizer.journal import JOURNAL_FILE
from vmtailor.customizer.journal_schema import digest
from vmtailor.customizer.localroot import LocalRoot

# Odd nanoseconds, atime != mtime, both long ago: relatime would move an atime this old
# on any read, so these fail unless vmtailor reads without touching them (O_NOATIME)
# and puts back what it recorded. Symlinks' atimes are recent and after their mtime:
# readlink(2) has no O_NOATIME, and relatime leaves such an atime alone.
OLD_A, OLD_M = 1_000_000_123_456_789, 990_000_000_987_654_321


def _paths(top: Path) -> list[Path]:
    out = [top]
    for dirpath, dirnames, filenames in os.walk(top):
        out += [Path(dirpath, n) for n in sorted([*dirnames, *filenames])]
    return out


def _aged(top: Path) -> Path:
    """Give every path of the tree its own old times (deepest first: a child's times never
    change its folder's)."""
    for i, path in enumerate(reversed(_paths(top))):
        if path.is_symlink():
            now = path.lstat().st_atime_ns
            os.utime(path, ns=(now - 3600 * 10**9 + i, OLD_M + i), follow_symlinks=False)
        else:
            os.utime(path, ns=(OLD_A + 7 * i, OLD_M + 11 * i), follow_symlinks=False)
    return top


def _times(paths: list[Path]) -> dict[str, tuple[int, int] | None]:
    """Times by lstat alone: listing a folder or reading a file here would move them."""
    out = {}
    for path in paths:
        try:
            st = path.lstat()
        except FileNotFoundError:
            out[str(path)] = None
            continue
        out[str(path)] = (st.st_atime_ns, st.st_mtime_ns)
    return out


def _plain_guest(top: Path) -> Path:
    _guest(top)
    (top / "etc/ssh/moduli").write_text("x\n")
    (top / "etc/alias").symlink_to("hostname")
    (top / "var/lib").mkdir(parents=True)  # the journal's folder goes in a folder that was
    return top


def _aged_guest(top: Path) -> tuple[Path, list[Path]]:
    return _aged(_plain_guest(top)), _paths(top)


def _diff(want: dict, got: dict) -> list[str]:
    return [f"{p}: {want[p]} -> {got.get(p)}" for p in want if got.get(p) != want[p]]


def test_revert_restores_every_time_to_the_nanosecond(tmp_path):
    top = _plain_guest(tmp_path / "g")
    digest_before = tree_digest(top)  # it reads every file: before the times are set
    paths = _paths(_aged(top))
    before = _times(paths)
    engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    changed = _diff(before, _times(paths))
    # the apply did change times: files rewritten, folders written in, /var/lib
    assert f"{top}/etc/hostname" in " ".join(changed)
    assert any(c.startswith(f"{top}/etc:") for c in changed)
    assert any(c.startswith(f"{top}/var/lib:") for c in changed)
    engine.revert(LocalRoot(str(top)))
    assert _diff(before, _times(paths)) == []
    assert tree_digest(top) == digest_before


def test_times_restored_in_a_guest_without_var(tmp_path):
    """The journal makes /var and /var/lib: / changes, and its times come back."""
    top = _aged(_guest(tmp_path / "g"))
    paths = _paths(top)
    before = _times(paths)
    engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    assert _times([top]) != {str(top): before[str(top)]}
    engine.revert(LocalRoot(str(top)))
    assert not (top / "var").exists()
    assert _diff(before, _times(paths)) == []


def test_a_second_apply_keeps_the_first_times(tmp_path):
    top, paths = _aged_guest(tmp_path / "g")
    before = _times(paths)
    engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    engine.apply(config.parse({**CONFIG, "hostname": "web02"}), LocalRoot(str(top)))
    engine.revert(LocalRoot(str(top)))
    assert _diff(before, _times(paths)) == []


def test_cut_anywhere_then_revert_restores_times(tmp_path):
    steps = _steps(tmp_path)
    template, paths = _aged_guest(tmp_path / "template")
    for k, step in enumerate(steps):
        cut = tmp_path / f"cut{k}"
        shutil.copytree(template, cut, symlinks=True)
        moved = [cut / p.relative_to(template) for p in paths]
        for src, dst in zip(paths, moved, strict=True):  # copytree keeps mtimes, not atimes
            st = src.lstat()
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        before = _times(moved)
        with pytest.raises(Cut):
            engine.apply(config.parse(CONFIG), LocalRoot(str(cut)), fault=_cut_at(k))
        engine.revert(LocalRoot(str(cut)))
        assert _diff(before, _times(moved)) == [], f"revert after cut at {step}"


def test_revert_cut_anywhere_then_again_restores_times(tmp_path):
    top, paths = _aged_guest(tmp_path / "g")
    before = _times(paths)
    engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    seen: list[str] = []
    probe = tmp_path / "probe"
    shutil.copytree(top, probe, symlinks=True)
    engine.revert(LocalRoot(str(probe)), fault=seen.append)
    assert "remove journal" in seen
    for k, step in enumerate(seen):
        cut = tmp_path / f"cut{k}"
        shutil.copytree(top, cut, symlinks=True)
        moved = [cut / p.relative_to(top) for p in paths]
        with pytest.raises(Cut):
            engine.revert(LocalRoot(str(cut)), fault=_cut_at(k))
        try:
            engine.revert(LocalRoot(str(cut)))
        except Exception as exc:  # nothing left to revert is right when all was done
            assert "nothing to revert" in str(exc), step
        got = {str(p).replace(str(cut), str(top), 1): t for p, t in _times(moved).items()}
        # copytree gave the copies their own atimes: compare the mtimes everywhere
        assert {p: t and t[1] for p, t in got.items()} == {
            p: t and t[1] for p, t in before.items()
        }, f"revert cut at {step}, then again"


def _as_format_2(top: Path) -> None:
    path = top / JOURNAL_FILE.lstrip("/")
    data = json.loads(path.read_text())
    assert data["format"] == 3
    data["format"] = 2
    data.pop("dir_times")
    for entry in data["entries"]:
        entry.pop("atime_ns", None)
        entry.pop("mtime_ns", None)
    data["digest"] = digest(data)
    path.write_text(json.dumps(data))


def test_a_format_2_journal_still_reverts(tmp_path):
    top, _ = _aged_guest(tmp_path / "g")
    pristine = tree_digest(top)
    engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    _as_format_2(top)
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == pristine


def test_a_format_2_journal_continued_becomes_format_3(tmp_path):
    top, paths = _aged_guest(tmp_path / "g")
    pristine = tree_digest(top)
    engine.apply(config.parse({"hostname": "web01"}), LocalRoot(str(top)))
    _as_format_2(top)
    engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    data = json.loads((top / JOURNAL_FILE.lstrip("/")).read_text())
    assert data["format"] == 3
    sshd = next(e for e in data["entries"] if e["path"] == "/etc/ssh/sshd_config")
    assert sshd["mtime_ns"] == OLD_M + 11 * [*reversed(paths)].index(top / "etc/ssh/sshd_config")
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == pristine
