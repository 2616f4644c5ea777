"""Mount points vmtailor makes (a btrfs /home subvolume with no /home in the root
subvolume) go through the journal: made and named before the journal opens, taken over by
it, removed by revert — or, still mounted during the revert, after the unmount — and the
guest is as it was, times included. A filesystem mounted on a LocalRoot is played by
is_mount_point: the logic is what is tested here, real mounts in
tests/integration/test_mount_points.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import small_guest, tree_digest
from tests.unit.test_journal import Cut, _cut_at
from tests.unit.test_journal_times import _aged, _paths, _times
from vmtailor.customizer import config, engine, mountpoints
from vmtailor.customizer.journal import JOURNAL_FILE, JournalError
from vmtailor.customizer.localroot import LocalRoot

CONFIG = {"hostname": "web01", "files": [{"path": "/etc/motd", "content": "hi\n"}]}


class Mounted(LocalRoot):
    """A LocalRoot on which the folders in `mounted` have a filesystem mounted on them."""

    def __init__(self, top, mounted=()):
        super().__init__(str(top))
        self.mounted = set(mounted)

    def is_mount_point(self, path: str) -> bool:
        return self.resolve_parent(path) in self.mounted or super().is_mount_point(path)


def _guest(top: Path) -> Path:
    small_guest(top)
    (top / "var/lib").mkdir(parents=True)
    return top


def _pristine(tmp_path: Path, name: str = "g"):
    top = _guest(tmp_path / name)
    digest = tree_digest(top)
    paths = _paths(_aged(top))
    return top, digest, paths, _times(paths)


def _unmount(top: Path, targets=("/", "/home")) -> None:
    """What the appliance or the initrd does once /home is unmounted (step 4)."""
    mountpoints.remove_unmounted(Mounted(top), list(targets))
    mountpoints.finish(Mounted(top))


def _marker(top: Path) -> Path:
    return top / mountpoints.MARKER.lstrip("/")


def _journal(top: Path) -> dict:
    return json.loads((top / JOURNAL_FILE.lstrip("/")).read_text())


def test_made_mount_point_is_journaled_and_reverted_after_unmount(tmp_path):
    top, digest, paths, times = _pristine(tmp_path)
    mountpoints.make(Mounted(top), "/home")
    assert (top / "home").is_dir() and _marker(top).exists()
    engine.apply(config.parse(CONFIG), Mounted(top, {"/home"}))
    assert _journal(top)["mount_points"] == ["/home"]
    assert not _marker(top).exists()  # the journal has it now
    _unmount(top)  # after an apply: the journal keeps it
    assert (top / "home").is_dir()

    result = engine.revert(Mounted(top, {"/home"}))  # revert runs with /home mounted
    assert (top / "home").is_dir() and "/home" not in result.removed
    assert json.loads(_marker(top).read_text())["made"] == ["/home"]
    _unmount(top)
    assert not (top / "home").exists()
    assert _times(paths) == times  # / (the guest's root folder) included
    assert tree_digest(top) == digest


def test_revert_removes_an_unmounted_mount_point_itself(tmp_path):
    top, digest, paths, times = _pristine(tmp_path)
    mountpoints.make(Mounted(top), "/home")
    engine.apply(config.parse(CONFIG), Mounted(top, {"/home"}))
    result = engine.revert(Mounted(top))  # --root on a tree whose /home is not mounted
    assert "/home" in result.removed
    assert not _marker(top).exists()
    assert _times(paths) == times and tree_digest(top) == digest


def test_nested_chain_is_removed_deepest_first(tmp_path):
    top, digest, paths, times = _pristine(tmp_path)
    mountpoints.make(Mounted(top), "/srv/data/x")
    assert json.loads(_marker(top).read_text())["made"] == ["/srv", "/srv/data", "/srv/data/x"]
    engine.apply(config.parse(CONFIG), Mounted(top, {"/srv/data/x"}))
    result = engine.revert(Mounted(top, {"/srv/data/x"}))
    assert result.kept == []  # /srv holds /srv/data: pending, not "kept"
    assert (top / "srv/data/x").is_dir()
    _unmount(top, ("/", "/srv/data/x"))
    assert _times(paths) == times and tree_digest(top) == digest


def test_apply_with_nothing_to_change_leaves_nothing_after_unmount(tmp_path):
    top, digest, paths, times = _pristine(tmp_path)
    engine.apply(config.parse(CONFIG), Mounted(top))
    # made again for a run with nothing to change: no journal takes it
    mountpoints.make(Mounted(top), "/home")
    result = engine.apply(config.parse(CONFIG), Mounted(top, {"/home"}))
    assert result.changes == [] and _marker(top).exists()
    _unmount(top)
    assert not (top / "home").exists() and not _marker(top).exists()
    engine.revert(Mounted(top))
    assert _times(paths) == times and tree_digest(top) == digest


def test_a_killed_run_leaves_nothing_after_revert_and_unmount(tmp_path):
    template, digest, paths, _unused = _pristine(tmp_path, "template")
    steps: list[str] = []
    probe = tmp_path / "probe"
    shutil.copytree(template, probe, symlinks=True)
    mountpoints.make(Mounted(probe), "/home")
    engine.apply(config.parse(CONFIG), Mounted(probe, {"/home"}), fault=steps.append)
    assert "remove mount points marker" in steps
    for k, step in enumerate(steps):
        top = tmp_path / f"cut{k}"
        shutil.copytree(template, top, symlinks=True)
        moved = [top / p.relative_to(template) for p in paths]
        for src, dst in zip(paths, moved, strict=True):
            st = src.lstat()
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        want = _times(moved)
        mountpoints.make(Mounted(top), "/home")
        with pytest.raises(Cut):
            engine.apply(config.parse(CONFIG), Mounted(top, {"/home"}), fault=_cut_at(k))
        try:
            engine.revert(Mounted(top, {"/home"}))
        except JournalError as exc:
            assert "nothing to revert" in str(exc), step
        _unmount(top)
        assert _times(moved) == want, f"cut at {step}"
        assert tree_digest(top) == digest, f"cut at {step}"


@pytest.mark.parametrize(
    "forged",
    [
        b"[]",
        b'{"made": ["/etc/../x"], "times": {}}',
        b'{"made": ["/var/lib/vmtailor"], "times": {}}',
        b'{"made": ["/home"], "times": {"/": [1.5, 0]}}',
        b'{"made": ["/home"], "times": {}, "run": "rm -rf /"}',
        b"{" * 100_000,
    ],
)
def test_a_forged_marker_is_refused_in_one_line(tmp_path, forged):
    top = _guest(tmp_path / "g")
    _marker(top).write_bytes(forged)
    before = tree_digest(top)
    for act in (
        lambda: mountpoints.make(Mounted(top), "/home"),
        lambda: engine.apply(config.parse(CONFIG), Mounted(top)),
        lambda: _unmount(top),
    ):
        with pytest.raises(JournalError) as info:
            act()
        assert "\n" not in str(info.value) and len(str(info.value)) < 400
        assert mountpoints.MARKER in str(info.value)
        assert tree_digest(top) == before


def test_a_forged_marker_removes_only_empty_folders_on_the_way_to_mount_points(tmp_path):
    top = _guest(tmp_path / "g")
    (top / "srv").mkdir()
    (top / "home").mkdir()
    (top / "home/alice").mkdir()
    _marker(top).write_text(json.dumps({"made": ["/srv", "/home", "/etc"], "times": {}}))
    _unmount(top, ("/", "/home"))
    # /srv: empty but no mount point; /home: holds alice; /etc: not empty
    assert (top / "srv").is_dir() and (top / "home/alice").is_dir() and (top / "etc").is_dir()
