"""Apply cut off after every journal step: re-running completes it, reverting restores the
original byte for byte. The fault is injected at each step (no sleeps, no races)."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import tree_digest
from vmtailor.customizer import config, engine
from vmtailor.customizer.journal import JOURNAL_FILE, JournalError
from vmtailor.customizer.localroot import LocalRoot

CONFIG = {
    "hostname": "web01",
    "domain": "example.com",
    "files": [
        {"path": "/etc/motd", "content": "hello\n", "permissions": "0640"},
        {
            "path": "/etc/ssh/sshd_config",
            "replace": {"pattern": "^#?PermitRootLogin .*", "with": "PermitRootLogin no"},
        },
        {"path": "/etc/old.conf", "delete": True},
        {"path": "/srv/www/html", "mkdir": True},
        {"path": "/etc/link", "symlink": "/etc/motd"},
        {"path": "/etc/secret.conf", "permissions": "0600", "owner": "1000:1000"},
    ],
}


def _guest(top):
    (top / "etc/ssh").mkdir(parents=True)
    (top / "sbin").mkdir()
    (top / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (top / "etc/hostname").write_text("template\n")
    (top / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\ttemplate\n")
    (top / "etc/ssh/sshd_config").write_text("Port 22\n#PermitRootLogin yes\n")
    (top / "etc/old.conf").write_text("old\n")
    (top / "etc/secret.conf").write_text("s3cret\n")
    (top / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (top / "etc/group").write_text("root:x:0:\n")
    return top


class Cut(Exception):
    pass


def _steps(tmp_path) -> list[str]:
    seen: list[str] = []
    top = _guest(tmp_path / "count")
    engine.apply(config.parse(CONFIG), LocalRoot(str(top)), fault=seen.append)
    return seen


def _cut_at(step: int):
    calls = {"n": 0}

    def fault(name: str) -> None:
        if calls["n"] == step:
            raise Cut(name)
        calls["n"] += 1

    return fault


def test_every_step_is_journaled(tmp_path):
    steps = _steps(tmp_path)
    # this guest has no /var: the marker naming the folders vmtailor makes comes first
    assert steps[:3] == ["write marker", "begin", "remove marker"], steps[:3]
    assert steps[-1] == "finish"
    # an original is saved before each changed path is touched
    for i, step in enumerate(steps):
        if step.startswith("apply "):
            path = step.removeprefix("apply ")
            assert f"record {path}" in steps[:i]


def test_cut_anywhere_then_rerun_or_revert(tmp_path):
    steps = _steps(tmp_path)
    done = _guest(tmp_path / "done")
    engine.apply(config.parse(CONFIG), LocalRoot(str(done)))
    want_done = tree_digest(done, skip=("var",))
    pristine = tree_digest(_guest(tmp_path / "pristine"))
    assert len(steps) > 15
    for k, step in enumerate(steps):
        cut = _guest(tmp_path / f"cut{k}")
        with pytest.raises(Cut):
            engine.apply(config.parse(CONFIG), LocalRoot(str(cut)), fault=_cut_at(k))
        other = tmp_path / f"cut{k}-revert"
        shutil.copytree(cut, other, symlinks=True)

        result = engine.apply(config.parse(CONFIG), LocalRoot(str(cut)))
        assert tree_digest(cut, skip=("var",)) == want_done, f"re-run after cut at {step}"
        again = engine.apply(config.parse(CONFIG), LocalRoot(str(cut)))
        assert again.changes == [] and again.already_applied, step
        assert result.guest.family.name == "debian"

        engine.revert(LocalRoot(str(other)))
        assert tree_digest(other) == pristine, f"revert after cut at {step}"


def test_revert_restores_modes_owners_and_removes_created(tmp_path):
    top = _guest(tmp_path / "g")
    before = tree_digest(top)
    engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    assert (top / "etc/secret.conf").stat().st_uid == 1000
    assert (top / JOURNAL_FILE.lstrip("/")).stat().st_mode & 0o777 == 0o600
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_second_apply_with_other_config_keeps_first_originals(tmp_path):
    top = _guest(tmp_path / "g")
    before = tree_digest(top)
    engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    engine.apply(config.parse({"hostname": "web02"}), LocalRoot(str(top)))
    assert (top / "etc/hostname").read_text() == "web02\n"
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_revert_without_journal_is_a_clear_error(tmp_path):
    top = _guest(tmp_path / "g")
    with pytest.raises(JournalError, match="nothing to revert"):
        engine.revert(LocalRoot(str(top)))


def test_dry_run_touches_nothing(tmp_path):
    top = _guest(tmp_path / "g")
    before = tree_digest(top)
    result = engine.apply(config.parse(CONFIG), LocalRoot(str(top)), dry_run=True, diff=True)
    assert tree_digest(top) == before
    assert {c.path for c in result.changes} >= {"/etc/hostname", "/etc/motd", "/srv/www/html"}
    assert "+PermitRootLogin no" in result.diff
    assert "-template" in result.diff
