"""Bounded resources on guest files: a file the engine parses is refused over vmtailor's
limit with one clear line, and a big file it only copies (journal backup, mode/owner
change, revert) streams — the memory of a run stays proportional to what it edits.

The real CLI runs in a child process whose peak RSS is measured (wait4); an address-space
limit keeps a regression from taking the machine's memory with it."""

from __future__ import annotations

import hashlib
import json
import os
import stat as statmod
import subprocess
import sys

import pytest

from tests.conftest import tree_digest
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.root import RootError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: guest owners")

MiB = 1 << 20
RSS_LIMIT = 200 * MiB
BIG = 300 * MiB


# A small parent that limits, starts and waits for the CLI, then says its peak RSS. The
# kernel counts the memory a child had before exec() in its ru_maxrss: forked straight
# from a pytest-xdist worker, the CLI would be charged the worker's few hundred MB.
MEASURE = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "vmtailor", *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
os.write(int(sys.argv[1]), str(usage.ru_maxrss * 1024).encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


def vmtailor_measured(*args: str) -> tuple[int, str, str, int]:
    """(exit status, stdout, stderr, peak RSS in bytes) of `vmtailor ARGS`."""
    rfd, wfd = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", MEASURE, str(wfd), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            pass_fds=(wfd,),
        )
    finally:
        os.close(wfd)
    out, err = proc.communicate()
    with os.fdopen(rfd, "rb") as f:
        rss = int(f.read() or 0)
    return proc.returncode, out, err, rss


def _config(tmp_path, data: dict) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return str(path)


def _sparse(path, size: int, pieces: dict[int, bytes], mode=0o644, uid=0, gid=0) -> None:
    with open(path, "wb") as f:
        for offset, data in pieces.items():
            f.seek(offset)
            f.write(data)
        f.truncate(size)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def _identity(path) -> tuple:
    """What a big file is, without holding it: size, mode, owner, sha256 (streamed)."""
    st = os.lstat(path)
    with open(path, "rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    return st.st_size, statmod.S_IMODE(st.st_mode), st.st_uid, st.st_gid, sha


def _allocated(path) -> int:
    return os.lstat(path).st_blocks * 512


def test_a_2gb_passwd_is_refused_in_one_line_with_memory_to_spare(make_root, tmp_path):
    top = make_root("debian-12")
    passwd = top / "etc/passwd"
    with open(passwd, "r+b") as f:
        f.truncate(2 << 30)  # the real lines, then 2 GiB of holes
    before = tree_digest(top, skip=("etc/passwd",))
    st = os.lstat(passwd)
    config = _config(tmp_path, {"hostname": "web01", "users": [{"name": "ops"}]})

    code, _out, err, rss = vmtailor_measured("apply", config, "--root", str(top))

    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "/etc/passwd" in lines[0] and "2 GiB is over" in lines[0] and "64 MiB limit" in lines[0]
    assert rss < RSS_LIMIT, f"peak RSS {rss / MiB:.0f} MiB"
    assert tree_digest(top, skip=("etc/passwd",)) == before
    after = os.lstat(passwd)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    )


def test_big_files_that_a_config_rewrites_or_chmods_stream(make_root, tmp_path):
    top = make_root("debian-12")
    (top / "srv").mkdir(exist_ok=True)
    disk, old = top / "srv/disk.img", top / "srv/old.img"
    _sparse(disk, BIG, {0: b"head", 100 * MiB: b"middle" * 1000}, 0o644, 1234, 1234)
    _sparse(old, BIG, {5 * MiB: b"data"})
    before = tree_digest(top, skip=("srv",))
    files = {p: _identity(p) for p in (disk, old)}
    config = _config(
        tmp_path,
        {
            "hostname": "web01",
            "files": [
                {"path": "/srv/disk.img", "permissions": "0600", "owner": "root:root"},
                {"path": "/srv/old.img", "content": "small now\n"},
            ],
        },
    )

    code, out, err, rss = vmtailor_measured(
        "apply", config, "--root", str(top), "--dry-run", "--diff"
    )
    assert code == 0, err
    assert "large file (300 MiB), content not shown" in out
    assert rss < RSS_LIMIT, f"dry run: peak RSS {rss / MiB:.0f} MiB"

    code, out, err, rss = vmtailor_measured("apply", config, "--root", str(top))
    assert code == 0, err
    assert rss < RSS_LIMIT, f"apply: peak RSS {rss / MiB:.0f} MiB"
    assert _identity(disk) == (*files[disk][:1], 0o600, 0, 0, files[disk][4])
    assert old.read_bytes() == b"small now\n"
    originals = top / "var/lib/vmtailor/originals"
    for name in os.listdir(originals):  # holes stayed holes in the backups
        assert _allocated(originals / name) < MiB, name

    code, out, err, rss = vmtailor_measured("revert", "--root", str(top))
    assert code == 0, err
    assert rss < RSS_LIMIT, f"revert: peak RSS {rss / MiB:.0f} MiB"
    assert tree_digest(top, skip=("srv",)) == before
    assert {p: _identity(p) for p in (disk, old)} == files
    assert _allocated(disk) < MiB and _allocated(old) < MiB


# -- the Root primitives ------------------------------------------------------------------
def test_read_bytes_checks_the_size_before_reading(tmp_path):
    _sparse(tmp_path / "big", (64 * MiB) + 1, {})
    _sparse(tmp_path / "fits", 64 * MiB, {64 * MiB - 1: b"x"})
    root = LocalRoot(str(tmp_path))
    with pytest.raises(RootError) as exc:
        root.read_bytes("/big")
    assert str(exc.value) == (
        "cannot read /big in the guest: 67108865 bytes is over vmtailor's 64 MiB limit "
        "for files it edits"
    )
    assert len(root.read_bytes("/fits")) == 64 * MiB
    assert len(root.read_bytes("/big", limit=None)) == 64 * MiB + 1
    with pytest.raises(RootError, match="over vmtailor's 1 KiB limit"):
        root.read_bytes("/fits", limit=1024)


def test_same_bytes_compares_without_reading_a_different_size(tmp_path):
    _sparse(tmp_path / "f", 3 * MiB + 5, {3 * MiB: b"tail!"})
    root = LocalRoot(str(tmp_path))
    data = bytes(3 * MiB) + b"tail!"
    assert root.same_bytes("/f", data)
    assert not root.same_bytes("/f", data[:-1] + b"?")
    assert not root.same_bytes("/f", data + b"\n")
    assert not root.same_bytes("/missing", b"")


def test_copy_file_streams_keeps_holes_and_sets_what_it_is_given(tmp_path):
    _sparse(tmp_path / "src", BIG, {7: b"x", BIG - 3: b"end"}, 0o644, 1234, 1234)
    os.setxattr(tmp_path / "src", "user.origin", b"src")
    root = LocalRoot(str(tmp_path))
    root.copy_file("/src", "/copy")
    assert _identity(tmp_path / "copy") == (BIG, 0o600, 0, 0, _identity(tmp_path / "src")[4])
    assert _allocated(tmp_path / "copy") < MiB
    assert os.listxattr(tmp_path / "copy") == []  # nothing of src comes along
    assert sorted(os.listdir(tmp_path)) == ["copy", "src"]
