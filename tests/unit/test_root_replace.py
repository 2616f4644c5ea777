"""Mode and owner changes replace a regular file, never modify it: another name of the old
inode — a hard link from outside the guest — keeps its mode, owner and bytes. The new
inode gets what an in-place change would have left: every extended attribute (label,
ACL, user.*), minus what the kernel clears (file capabilities on a write or chown,
setuid/setgid on chown)."""

from __future__ import annotations

import hashlib
import os
import stat as statmod
import struct

import pytest

from tests.conftest import tree_digest
from vmtailor.customizer import config, engine
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.root import SELINUX_XATTR, RootError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chown, security.*")

LABEL = b"system_u:object_r:bin_t:s0\0"
CAP_NET_RAW = b"\x01\x00\x00\x02" + struct.pack("<I", 1 << 13) + bytes(12)  # cap_net_raw+ep
# user::rw- user:1234:r-- group::r-- mask::r-- other::r--
ACL = struct.pack("<I", 2) + b"".join(
    struct.pack("<HHI", tag, perm, ident)
    for tag, perm, ident in [
        (1, 6, 0xFFFFFFFF),
        (2, 4, 1234),
        (4, 4, 0xFFFFFFFF),
        (0x10, 4, 0xFFFFFFFF),
        (0x20, 4, 0xFFFFFFFF),
    ]
)
XATTRS = {
    "user.origin": b"template",
    SELINUX_XATTR: LABEL,
    "security.capability": CAP_NET_RAW,
    "system.posix_acl_access": ACL,
}


def _file(host: str, mode: int, uid: int, gid: int, data: bytes = b"#!/bin/sh\necho\n") -> None:
    with open(host, "wb") as f:
        f.write(data)
    os.chown(host, uid, gid)
    for key, value in XATTRS.items():
        os.setxattr(host, key, value)
    os.chmod(host, mode)  # last: setting the ACL sets group bits of the mode


def _state(host: str) -> tuple:
    st = os.lstat(host)
    xattrs = {k: os.getxattr(host, k, follow_symlinks=False) for k in os.listxattr(host)}
    with open(host, "rb") as f:
        data = f.read()
    return statmod.S_IMODE(st.st_mode), st.st_uid, st.st_gid, xattrs, data


def _write_in_place(host: str) -> None:
    with open(host, "r+b") as f:
        f.truncate()
        f.write(NEW)


NEW = b"new content\n"
# (Root call, the same change made in place by the kernel) on a file with XATTRS
CHANGES = {
    "write": (lambda r, p: r.write_bytes(p, NEW), _write_in_place),
    "chmod-0600": (lambda r, p: r.chmod(p, 0o600), lambda h: os.chmod(h, 0o600)),
    "chmod-setuid": (lambda r, p: r.chmod(p, 0o4755), lambda h: os.chmod(h, 0o4755)),
    "chown": (lambda r, p: r.chown(p, 1234, 5678), lambda h: os.chown(h, 1234, 5678)),
    "chown-same-owner": (lambda r, p: r.chown(p, 0, 0), lambda h: os.chown(h, 0, 0)),
    "owner-then-mode": (
        lambda r, p: r.set_meta(p, 0o4750, 1234, 5678),
        lambda h: (os.chown(h, 1234, 5678), os.chmod(h, 0o4750)),
    ),
    "mode-only": (lambda r, p: r.set_meta(p, 0o700), lambda h: os.chmod(h, 0o700)),
}
MODES = [0o755, 0o4755, 0o2755, 0o2745, 0o6711]


@pytest.mark.parametrize("mode", MODES, ids=[f"{m:04o}" for m in MODES])
@pytest.mark.parametrize("change", CHANGES)
def test_change_replaces_the_file_as_the_kernel_would_change_it(tmp_path, change, mode):
    """The outside name keeps everything; the guest's name ends as an in-place change
    (done on a twin file by the kernel itself) would have left it."""
    root_call, in_place = CHANGES[change]
    top = tmp_path / "guest"
    (top / "usr/bin").mkdir(parents=True)
    outside = str(tmp_path / "outside")
    _file(outside, mode, 0, 0)
    os.link(outside, top / "usr/bin/ping")
    twin = str(tmp_path / "twin")
    _file(twin, mode, 0, 0)
    before = _state(outside)

    root_call(LocalRoot(str(top)), "/usr/bin/ping")

    assert _state(outside) == before, "the other name of the inode changed"
    in_place(twin)
    assert _state(str(top / "usr/bin/ping")) == _state(twin)
    assert os.stat(outside).st_nlink == 1
    assert os.listdir(top / "usr/bin") == ["ping"], "a temp file was left behind"


def test_a_symlink_leads_to_the_file_that_is_replaced(tmp_path):
    top = tmp_path / "guest"
    (top / "etc").mkdir(parents=True)
    outside = str(tmp_path / "outside")
    _file(outside, 0o644, 0, 0)
    os.link(outside, top / "etc/real")
    os.symlink("real", top / "etc/link")
    LocalRoot(str(top)).chmod("/etc/link", 0o600)
    assert os.readlink(top / "etc/link") == "real"
    assert statmod.S_IMODE(os.stat(top / "etc/real").st_mode) == 0o600
    assert statmod.S_IMODE(os.stat(outside).st_mode) == 0o644


def test_directories_change_in_place(tmp_path):
    top = tmp_path / "guest"
    (top / "srv").mkdir(parents=True)
    inode = os.stat(top / "srv").st_ino
    LocalRoot(str(top)).set_meta("/srv", 0o2750, 1234, 5678)
    st = os.stat(top / "srv")
    assert (st.st_ino, statmod.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (
        inode,
        0o2750,
        1234,
        5678,
    )


def test_missing_path_is_a_root_error(tmp_path):
    with pytest.raises(RootError, match="cannot change mode/owner of /etc/nothing"):
        LocalRoot(str(tmp_path)).set_meta("/etc/nothing", 0o600)


def test_a_fifo_is_never_opened(tmp_path):
    """Copying reads the file: a FIFO the guest put there would block the read forever."""
    top = tmp_path / "guest"
    (top / "etc").mkdir(parents=True)
    _file(str(top / "etc/real"), 0o644, 0, 0)
    os.mkfifo(top / "etc/fifo")
    root = LocalRoot(str(top))
    root.chmod("/etc/fifo", 0o600)  # in place: not a regular file
    assert statmod.S_IMODE(os.lstat(top / "etc/fifo").st_mode) == 0o600
    with pytest.raises(RootError, match="/etc/fifo"):
        root.copy_file("/etc/fifo", "/etc/real")
    assert _state(str(top / "etc/real"))[4] == b"#!/bin/sh\necho\n"


def _sha(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def test_apply_and_revert_leave_a_hard_link_from_outside_alone(make_root, tmp_path):
    """The issue's case: /etc/secret.conf in the guest is a hard link of a file outside
    the root; a permissions/owner-only files item used to chmod/chown the shared inode."""
    top = make_root("debian-12")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not the guest's\n")
    os.chown(outside, 1234, 1234)
    os.chmod(outside, 0o644)
    os.setxattr(outside, "user.origin", b"host")
    os.link(outside, top / "etc/secret.conf")
    pristine = tree_digest(top)
    want = _state(str(outside))

    cfg = config.parse(
        {"files": [{"path": "/etc/secret.conf", "permissions": "0600", "owner": "root:root"}]}
    )
    result = engine.apply(cfg, LocalRoot(str(top)))
    assert [(c.action, c.path) for c in result.changes] == [("chmod", "/etc/secret.conf")]
    assert _state(str(outside)) == want
    mode, uid, gid, xattrs, data = _state(str(top / "etc/secret.conf"))
    assert (mode, uid, gid, data) == (0o600, 0, 0, b"not the guest's\n")
    assert xattrs == {"user.origin": b"host"}

    assert engine.apply(cfg, LocalRoot(str(top))).changes == []
    engine.revert(LocalRoot(str(top)))
    assert _state(str(outside)) == want
    assert tree_digest(top) == pristine
    assert _state(str(top / "etc/secret.conf"))[3] == {"user.origin": b"host"}
    assert _sha(top / "etc/secret.conf") == _sha(outside)
