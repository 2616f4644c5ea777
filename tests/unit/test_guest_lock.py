"""One writer per guest: a vmtailor run (a real second process) on a guest another run
holds is refused at once with one line naming the holder, and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import tree_digest, vmtailor
from tests.unit.test_journal import _guest
from vmtailor.customizer import lock

CONFIG = "hostname: web01\nfiles:\n  - {path: /etc/motd, content: hi}\n"


def _config(tmp_path) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    return str(path)


def test_apply_while_another_run_holds_the_guest_is_refused(tmp_path):
    guest = _guest(tmp_path / "g")
    before = tree_digest(guest)
    with lock.hold([str(guest)], str(guest)):
        result = vmtailor("apply", _config(tmp_path), "--root", str(guest))
        dry = vmtailor("apply", _config(tmp_path), "--root", str(guest), "--dry-run")
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert f"is being customized by another vmtailor run (pid {os.getpid()})" in line
    assert dry.returncode == 1 and "another vmtailor run" in dry.stderr  # no half-read plan
    assert tree_digest(guest) == before
    # the lock goes with its holder: the same command now works
    assert vmtailor("apply", _config(tmp_path), "--root", str(guest)).returncode == 0


def test_revert_while_another_run_holds_the_guest_is_refused(tmp_path):
    guest = _guest(tmp_path / "g")
    assert vmtailor("apply", _config(tmp_path), "--root", str(guest)).returncode == 0
    applied = tree_digest(guest)
    # another name for the same directory finds the same lock
    os.symlink(guest, tmp_path / "alias")
    with lock.hold([str(tmp_path / "alias")], "alias"):
        result = vmtailor("revert", "--root", str(guest))
    assert result.returncode == 1 and "another vmtailor run" in result.stderr
    assert tree_digest(guest) == applied
    assert vmtailor("revert", "--root", str(guest)).returncode == 0


def test_dry_runs_share_the_guest_but_keep_a_writer_out(tmp_path):
    guest = _guest(tmp_path / "g")
    before = tree_digest(guest)
    with lock.hold([str(guest)], str(guest), shared=True):
        dry = vmtailor("apply", _config(tmp_path), "--root", str(guest), "--dry-run")
        real = vmtailor("apply", _config(tmp_path), "--root", str(guest))
    assert dry.returncode == 0, dry.stderr
    assert real.returncode == 1 and "(pid unknown)" in real.stderr
    assert tree_digest(guest) == before


def test_a_killed_holder_leaves_no_lock(tmp_path):
    guest = _guest(tmp_path / "g")
    code = (
        "import sys, time\n"
        "from vmtailor.customizer import lock\n"
        "with lock.hold([sys.argv[1]], 'g'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(guest)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        busy = vmtailor("apply", _config(tmp_path), "--root", str(guest))
        assert busy.returncode == 1 and f"(pid {holder.pid})" in busy.stderr
    finally:
        holder.kill()
        holder.wait()
    assert vmtailor("apply", _config(tmp_path), "--root", str(guest)).returncode == 0


def test_a_lock_file_that_is_not_a_file_is_refused_not_opened(tmp_path):
    guest = _guest(tmp_path / "g")
    directory = lock.lock_dir()
    os.makedirs(directory, 0o700, exist_ok=True)
    planted = os.path.join(directory, lock.key_of(str(guest)) + ".lock")
    os.mkfifo(planted)
    try:
        with pytest.raises(lock.LockError, match="not a regular file"):
            with lock.hold([str(guest)], "g"):
                pass
    finally:
        os.unlink(planted)
