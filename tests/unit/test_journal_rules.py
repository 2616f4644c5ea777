"""What the journal remembers beyond one run: a file once written as secret stays secret in
every later diff; a mount point is never journaled nor reverted; old journals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import tree_digest
from tests.unit.test_journal import _guest
from vmtailor.customizer import config, engine
from vmtailor.customizer.journal import JOURNAL_FILE, JournalError
from vmtailor.customizer.journal_schema import digest
from vmtailor.customizer.localroot import LocalRoot

SECRET = "password=hunter2\n"


def _file(content: str, **extra) -> dict:
    return {"files": [{"path": "/etc/app.conf", "content": content, **extra}]}


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_later_config_does_not_show_what_an_earlier_one_wrote_as_secret(tmp_path, dry_run):
    top = _guest(tmp_path / "g")
    engine.apply(config.parse(_file(SECRET, secret=True)), LocalRoot(str(top)))
    later = engine.apply(
        config.parse(_file("password=other\n")), LocalRoot(str(top)), dry_run=dry_run, diff=True
    )
    assert "hunter2" not in later.diff
    assert "--- a/etc/app.conf" in later.diff and "content not shown (secret)" in later.diff


def test_a_path_becomes_secret_when_a_later_run_writes_it_as_secret(tmp_path):
    top = _guest(tmp_path / "g")
    engine.apply(config.parse(_file("plain\n")), LocalRoot(str(top)))
    engine.apply(config.parse(_file(SECRET, secret=True)), LocalRoot(str(top)))
    later = engine.apply(config.parse(_file("other\n")), LocalRoot(str(top)), diff=True)
    assert "hunter2" not in later.diff and "content not shown (secret)" in later.diff
    entries = json.loads((top / JOURNAL_FILE.lstrip("/")).read_text())["entries"]
    assert [e.get("secret") for e in entries if e["path"] == "/etc/app.conf"] == [True]


def test_a_format_1_journal_is_refused_with_a_hint(tmp_path):
    top = _guest(tmp_path / "g")
    engine.apply(config.parse(_file("x\n")), LocalRoot(str(top)))
    path = top / JOURNAL_FILE.lstrip("/")
    data = json.loads(path.read_text())
    data["format"] = 1
    data["digest"] = digest(data)
    path.write_text(json.dumps(data))
    before = tree_digest(top)
    with pytest.raises(JournalError, match="older vmtailor .format 1"):
        engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def _in_private_mount_namespace(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec", script],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )


def test_revert_never_touches_a_mount_point_nor_what_is_mounted_there(tmp_path):
    """A forged entry naming a mount point (as a file to restore there) is refused; the
    old revert emptied the mounted filesystem recursively before failing."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is missing: `make setup` installs it")
    top = _guest(tmp_path / "g")
    engine.apply(config.parse({"hostname": "web01"}), LocalRoot(str(top)))
    (top / "mnt").mkdir()
    journal = top / JOURNAL_FILE.lstrip("/")
    data = json.loads(journal.read_text())
    backup = next(e for e in data["entries"] if e["kind"] == "file")
    data["entries"].append({**backup, "path": "/mnt", "backup": backup["backup"][:-5] + "99999"})
    shutil.copy(top / backup["backup"].lstrip("/"), top / data["entries"][-1]["backup"].lstrip("/"))
    data["digest"] = digest(data)
    journal.write_text(json.dumps(data))
    before = tree_digest(top)
    script = f"""
mount -t tmpfs vmtailor-test {top}/mnt
echo precious > {top}/mnt/data
{sys.executable} -m vmtailor revert --root {top} && exit 9 || true
test "$(cat {top}/mnt/data)" = precious
{sys.executable} -m vmtailor apply {tmp_path}/c.yaml --root {top} && exit 8 || true
test "$(cat {top}/mnt/data)" = precious
"""
    (tmp_path / "c.yaml").write_text("hostname: web02\n")
    result = _in_private_mount_namespace(script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "another filesystem is mounted there" in result.stderr
    assert tree_digest(top) == before


def test_apply_refuses_to_change_a_mount_point(tmp_path):
    top = _guest(tmp_path / "g")
    (top / "srv").mkdir()
    (tmp_path / "c.yaml").write_text('files:\n  - {path: /srv, permissions: "0700"}\n')
    script = f"""
mount -t tmpfs vmtailor-test {top}/srv
{sys.executable} -m vmtailor apply {tmp_path}/c.yaml --root {top} && exit 9 || true
stat -c %a {top}/srv
"""
    before = tree_digest(top)
    result = _in_private_mount_namespace(script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "another filesystem is mounted there" in result.stderr
    assert result.stdout.split()[-1] != "700"
    assert tree_digest(top) == before
