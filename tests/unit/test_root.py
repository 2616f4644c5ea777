"""LocalRoot's ordinary behaviour, on real filesystems (we run as root: owners and
SELinux labels are set for real). Hostile trees are in test_root_hostile.py."""

from __future__ import annotations

import itertools
import os
import stat as statmod
import subprocess

import pytest

from vmtailor.customizer.errors import VmtailorError
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.root import SELINUX_XATTR, RootError, Stat

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chown, labels, mount")

LABEL = "system_u:object_r:etc_t:s0"
SHADOW_LABEL = "system_u:object_r:shadow_t:s0"


# -- filesystems that store security.selinux -------------------------------------------
def _stores_labels(directory: str) -> bool:
    probe = os.path.join(directory, ".label-probe")
    with open(probe, "wb"):
        pass
    try:
        os.setxattr(probe, SELINUX_XATTR, LABEL.encode() + b"\0")
        return os.getxattr(probe, SELINUX_XATTR) == LABEL.encode() + b"\0"
    except OSError:
        return False
    finally:
        os.unlink(probe)


def _labelled_fs(factory, name: str, mount_tmpfs: bool):
    """A directory that keeps labels: `name` itself (on tmpfs if asked) when its filesystem
    does, else a loop-mounted ext4 made for this session. VMTAILOR_TEST_LOOP_EXT4=1 forces
    the ext4 image, to exercise that path."""
    where = str(factory.mktemp(name))
    mounts = []
    if mount_tmpfs:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", name, where], check=True
        )
        mounts.append(where)
    if os.environ.get("VMTAILOR_TEST_LOOP_EXT4") == "1" or not _stores_labels(where):
        image = os.path.join(str(factory.mktemp(name + "-img")), "ext4.img")
        with open(image, "wb") as f:
            f.truncate(32 << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True, capture_output=True)
        where = os.path.join(where, "ext4")
        os.mkdir(where)
        subprocess.run(["mount", "-o", "loop", image, where], check=True)
        mounts.append(where)
        assert _stores_labels(where), "even a fresh ext4 does not keep security.selinux"
    return where, mounts


@pytest.fixture(scope="session")
def fast_fs(tmp_path_factory):
    """tmpfs: this machine's ext4 takes milliseconds per rmdir, paid by pytest's cleanup."""
    where, mounts = _labelled_fs(tmp_path_factory, "root-tmpfs", mount_tmpfs=True)
    yield where
    for m in reversed(mounts):
        subprocess.run(["umount", "-l", m], check=True)


@pytest.fixture(scope="session")
def disk_fs(tmp_path_factory):
    """The filesystem pytest's tmp_path is on (ext4 here)."""
    where, mounts = _labelled_fs(tmp_path_factory, "root-disk", mount_tmpfs=False)
    yield where
    for m in reversed(mounts):
        subprocess.run(["umount", "-l", m], check=True)


_numbers = itertools.count()


def _fresh(fs: str) -> str:
    top = os.path.join(fs, f"guest{next(_numbers)}")
    os.mkdir(top)
    return top


@pytest.fixture
def top(fast_fs) -> str:
    return _fresh(fast_fs)


@pytest.fixture
def root(top) -> LocalRoot:
    return LocalRoot(top)


def make(top: str, path: str, data: bytes = b"", mode=0o644, uid=0, gid=0, label=None) -> str:
    host = top + path
    os.makedirs(os.path.dirname(host), exist_ok=True)
    with open(host, "wb") as f:
        f.write(data)
    os.chown(host, uid, gid)
    os.chmod(host, mode)
    if label:
        os.setxattr(host, SELINUX_XATTR, label.encode() + b"\0")
    return host


def label_of(host: str) -> str | None:
    try:
        return os.getxattr(host, SELINUX_XATTR, follow_symlinks=False).rstrip(b"\0").decode()
    except OSError:
        return None


def meta(host: str) -> tuple[int, int, int, str | None]:
    st = os.lstat(host)
    return statmod.S_IMODE(st.st_mode), st.st_uid, st.st_gid, label_of(host)


def read(host: str) -> bytes:
    with open(host, "rb") as f:
        return f.read()


# -- write_bytes -----------------------------------------------------------------------
def test_write_new_file_is_0644_root_root_unlabelled(root, top):
    os.mkdir(top + "/etc")
    old_umask = os.umask(0o077)  # the mode must not depend on ours
    try:
        root.write_bytes("/etc/hostname", b"web1\n")
    finally:
        os.umask(old_umask)
    assert read(top + "/etc/hostname") == b"web1\n"
    assert meta(top + "/etc/hostname") == (0o644, 0, 0, None)
    assert os.listdir(top + "/etc") == ["hostname"], "a temp file was left behind"


def test_write_new_file_with_given_metadata(root, top):
    os.mkdir(top + "/etc")
    root.write_bytes("/etc/shadow", b"root:*:1::::::\n", 0o640, 0, 42, SHADOW_LABEL)
    assert meta(top + "/etc/shadow") == (0o640, 0, 42, SHADOW_LABEL)


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o640, 0o2750, 0o4755, 0o1777])
@pytest.mark.parametrize("fs", ["fast_fs", "disk_fs"])
def test_atomic_replace_keeps_mode_owner_and_label(request, fs, mode):
    top = _fresh(request.getfixturevalue(fs))
    host = make(top, "/etc/shadow", b"old\n", mode, 1234, 5678, SHADOW_LABEL)
    other_name = top + "/shadow.hardlink"
    os.link(host, other_name)
    old_inode = os.lstat(host).st_ino
    with open(host, "rb") as reader:  # a reader of the old file keeps seeing it whole
        LocalRoot(top).write_bytes("/etc/shadow", b"new contents\n")
        assert reader.read() == b"old\n"
    assert read(host) == b"new contents\n"
    assert meta(host) == (mode, 1234, 5678, SHADOW_LABEL)
    assert os.lstat(host).st_ino != old_inode, "not replaced by rename"
    assert read(other_name) == b"old\n"  # the old inode was not written to
    assert sorted(os.listdir(top + "/etc")) == ["shadow"]


def test_replace_with_given_metadata_overrides(root, top):
    host = make(top, "/etc/motd", b"old\n", 0o600, 1234, 5678, SHADOW_LABEL)
    root.write_bytes("/etc/motd", b"new\n", mode=0o644, uid=0, gid=0, label=LABEL)
    assert meta(host) == (0o644, 0, 0, LABEL)


def test_replace_overrides_only_what_is_given(root, top):
    host = make(top, "/etc/motd", b"old\n", 0o600, 1234, 5678, SHADOW_LABEL)
    root.write_bytes("/etc/motd", b"new\n", mode=0o640)
    assert meta(host) == (0o640, 1234, 5678, SHADOW_LABEL)


def test_write_through_a_symlink_replaces_its_target(root, top):
    make(top, "/run/systemd/resolve/stub-resolv.conf", b"old\n", 0o644, 0, 0, LABEL)
    os.symlink("../run/systemd/resolve/stub-resolv.conf", top + "/etc-resolv.conf")
    root.write_bytes("/etc-resolv.conf", b"nameserver 10.0.0.1\n")
    assert os.readlink(top + "/etc-resolv.conf") == "../run/systemd/resolve/stub-resolv.conf"
    assert read(top + "/run/systemd/resolve/stub-resolv.conf") == b"nameserver 10.0.0.1\n"
    assert meta(top + "/run/systemd/resolve/stub-resolv.conf") == (0o644, 0, 0, LABEL)


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, (1 << 20) + 1, 3 << 20])
def test_write_then_read_any_size(root, size):
    data = os.urandom(size)
    root.write_bytes("/blob", data)
    assert root.read_bytes("/blob") == data


@pytest.mark.parametrize(
    "path, setup, message",
    [
        ("/missing/file", None, "/missing is not a directory"),
        ("/etc", "dir", "/etc is a dir"),
        ("/", None, "root directory"),
        ("/etc/x", "file", "/etc/x"),
    ],
)
def test_write_errors_name_the_path_and_leave_nothing(root, top, path, setup, message):
    if setup == "dir":
        os.mkdir(top + "/etc")
    elif setup == "file":
        make(top, "/etc", b"a file\n")
    before = sorted(os.listdir(top))
    with pytest.raises(RootError, match=message) as exc:
        root.write_bytes(path, b"data")
    assert path in str(exc.value)
    assert sorted(os.listdir(top)) == before


# -- reads -----------------------------------------------------------------------------
def test_read_bytes_and_text(root, top):
    make(top, "/etc/os-release", b"ID=debian\nNAME=\xc3\xa9\n")
    assert root.read_bytes("/etc/os-release") == b"ID=debian\nNAME=\xc3\xa9\n"
    assert root.read_text("/etc/os-release") == "ID=debian\nNAME=é\n"


def test_read_text_keeps_bytes_that_are_not_utf8(root, top):
    make(top, "/etc/motd", b"caf\xe9\n")
    text = root.read_text("/etc/motd")
    assert text.encode("utf-8", "surrogateescape") == b"caf\xe9\n"


@pytest.mark.parametrize("path", ["/missing", "/etc", "/etc/missing/x"])
def test_read_errors_name_the_path(root, top, path):
    os.mkdir(top + "/etc")
    with pytest.raises(RootError) as exc:
        root.read_bytes(path)
    assert path in str(exc.value)


def test_read_text_or(root, top):
    make(top, "/etc/hostname", b"web1\n")
    os.symlink("/etc/hostname", top + "/link")
    os.symlink("/nowhere", top + "/dangling")
    assert root.read_text_or("/etc/hostname") == "web1\n"
    assert root.read_text_or("/link", "x") == "web1\n"
    assert root.read_text_or("/missing") is None
    assert root.read_text_or("/missing", "default") == "default"
    assert root.read_text_or("/etc", "default") == "default"  # a directory
    assert root.read_text_or("/dangling", "default") == "default"
    assert root.read_text_or("/etc/hostname/x", "default") == "default"


def test_listdir_is_sorted_and_follows_links(root, top):
    for name in ("b", ".hidden", "a", "C"):
        make(top, f"/etc/{name}")
    os.symlink("etc", top + "/etc-link")
    assert root.listdir("/etc") == [".hidden", "C", "a", "b"]
    assert root.listdir("/etc-link") == [".hidden", "C", "a", "b"]
    assert root.listdir("/") == ["etc", "etc-link"]


@pytest.mark.parametrize("path", ["/etc/a", "/missing"])
def test_listdir_errors_name_the_path(root, top, path):
    make(top, "/etc/a")
    with pytest.raises(RootError) as exc:
        root.listdir(path)
    assert path in str(exc.value)


# -- mkdir, symlink, remove, chmod, chown, labels ---------------------------------------
def test_mkdir_defaults(root, top):
    old_umask = os.umask(0o077)
    try:
        root.mkdir("/etc")
    finally:
        os.umask(old_umask)
    assert os.path.isdir(top + "/etc")
    assert meta(top + "/etc") == (0o755, 0, 0, None)


def test_mkdir_given_mode_and_owner(root, top):
    root.mkdir("/srv", 0o2750, 1234, 5678)
    assert meta(top + "/srv") == (0o2750, 1234, 5678, None)


@pytest.mark.parametrize("path", ["/etc", "/missing/dir", "/"])
def test_mkdir_errors(root, top, path):
    os.mkdir(top + "/etc")
    with pytest.raises(RootError) as exc:
        root.mkdir(path)
    assert path in str(exc.value)
    assert sorted(os.listdir(top)) == ["etc"]


@pytest.mark.parametrize("target", ["/etc/hostname", "../etc/hostname", "nowhere", "/a b\nc"])
def test_symlink_stores_the_target_verbatim(root, top, target):
    os.mkdir(top + "/etc")
    root.symlink(target, "/etc/link")
    assert os.readlink(top + "/etc/link") == target
    assert root.readlink("/etc/link") == target
    assert root.is_symlink("/etc/link")


def test_symlink_does_not_replace(root, top):
    make(top, "/etc/hostname", b"web1\n")
    with pytest.raises(RootError, match="/etc/hostname"):
        root.symlink("/x", "/etc/hostname")
    assert read(top + "/etc/hostname") == b"web1\n"


def test_remove_file_link_and_empty_dir(root, top):
    make(top, "/etc/hostname", b"web1\n")
    os.symlink("/etc/hostname", top + "/link")
    os.mkdir(top + "/empty")
    root.remove("/link")  # the link, never what it points to
    assert not os.path.lexists(top + "/link")
    assert read(top + "/etc/hostname") == b"web1\n"
    root.remove("/etc/hostname")
    root.remove("/empty")
    assert sorted(os.listdir(top)) == ["etc"]


@pytest.mark.parametrize("path", ["/etc", "/missing", "/"])
def test_remove_errors(root, top, path):
    make(top, "/etc/hostname")
    with pytest.raises(RootError) as exc:
        root.remove(path)
    assert path in str(exc.value)
    assert os.path.exists(top + "/etc/hostname")


def test_chmod_chown_label_follow_a_link_to_its_target(root, top):
    host = make(top, "/etc/hostname", b"web1\n", 0o644)
    os.symlink("hostname", top + "/etc/link")
    link_before = os.lstat(top + "/etc/link")
    root.chmod("/etc/link", 0o600)
    root.chown("/etc/link", 1234, 5678)
    root.set_label("/etc/link", LABEL)
    assert meta(host) == (0o600, 1234, 5678, LABEL)
    link_after = os.lstat(top + "/etc/link")
    assert (link_after.st_uid, link_after.st_gid) == (link_before.st_uid, link_before.st_gid)
    assert label_of(top + "/etc/link") is None


def test_chmod_chown_directories(root, top):
    os.mkdir(top + "/etc")
    root.chmod("/etc", 0o700)
    root.chown("/etc", 1, 2)
    assert meta(top + "/etc") == (0o700, 1, 2, None)


@pytest.mark.parametrize("call", ["chmod", "chown", "set_label"])
def test_metadata_changes_on_missing_paths(root, call):
    args = {"chmod": (0o644,), "chown": (0, 0), "set_label": (LABEL,)}[call]
    with pytest.raises(RootError, match="/missing"):
        getattr(root, call)("/missing", *args)


def test_labels(root, top):
    host = make(top, "/etc/shadow", b"", label=SHADOW_LABEL)
    make(top, "/etc/plain")
    assert root.get_label("/etc/shadow") == SHADOW_LABEL
    assert root.get_label("/etc/plain") is None
    assert root.get_label("/etc/missing") is None
    root.set_label("/etc/shadow", LABEL)
    assert os.getxattr(host, SELINUX_XATTR) == LABEL.encode() + b"\0"  # NUL-terminated
    assert root.get_label("/etc/shadow") == LABEL


# -- resolution ------------------------------------------------------------------------
@pytest.fixture
def linked(root, top) -> LocalRoot:
    """/etc (dir), /usr/lib/os-release, /etc/os-release -> ../usr/lib/os-release,
    /lib -> usr/lib, /abs -> /usr/lib, /etc/alt -> /lib/real (real is a dir),
    /dangling -> /run/nothing"""
    make(top, "/usr/lib/os-release", b"ID=x\n")
    make(top, "/usr/lib/real/f")
    os.mkdir(top + "/etc")
    os.symlink("../usr/lib/os-release", top + "/etc/os-release")
    os.symlink("usr/lib", top + "/lib")
    os.symlink("/usr/lib", top + "/abs")
    os.symlink("/lib/real", top + "/etc/alt")
    os.symlink("/run/nothing", top + "/dangling")
    return root


@pytest.mark.parametrize(
    "path, resolved",
    [
        ("/", "/"),
        ("/..", "/"),
        ("/../../..", "/"),
        ("//etc///.//os-release/", "/usr/lib/os-release"),
        ("/etc/..", "/"),
        ("/etc/../..", "/"),
        ("/../etc/../../etc", "/etc"),
        ("/etc/os-release", "/usr/lib/os-release"),  # relative link
        ("/abs/os-release", "/usr/lib/os-release"),  # absolute link in the middle
        ("/lib/os-release", "/usr/lib/os-release"),
        ("/lib/..", "/usr"),  # `..` goes up from where the link leads
        ("/etc/alt/../os-release", "/usr/lib/os-release"),
        ("/etc/alt/f", "/usr/lib/real/f"),
        ("/dangling", "/run/nothing"),  # resolved as far as it goes
        ("/missing/a/../b", "/missing/b"),
        ("/etc/new-file", "/etc/new-file"),
    ],
)
def test_resolve(linked, path, resolved):
    assert linked.resolve(path) == resolved


@pytest.mark.parametrize(
    "path, resolved",
    [
        ("/", "/"),
        ("/..", "/"),
        ("/etc/os-release", "/etc/os-release"),  # the last link is not followed
        ("/lib", "/lib"),
        ("/lib/os-release", "/usr/lib/os-release"),
        ("/abs/../etc/os-release", "/usr/etc/os-release"),  # physical `..`
        ("/lib/..", "/usr"),  # a last `..` is still resolved
        ("/dangling", "/dangling"),
    ],
)
def test_resolve_parent_keeps_the_last_name(linked, path, resolved):
    assert linked.resolve_parent(path) == resolved
    assert linked.resolve(path, follow_last=False) == resolved


def test_lstat_and_stat_agree_on_dotdot_after_a_link(linked, top):
    """/lib/../x is /usr/x for every call, like the kernel: not /x."""
    make(top, "/x", b"top x\n")
    make(top, "/usr/x", b"usr x!\n")
    assert linked.stat("/lib/../x").size == 7
    assert linked.lstat("/lib/../x").size == 7
    assert linked.read_text("/lib/../x") == "usr x!\n"
    linked.remove("/lib/../x")
    assert os.path.exists(top + "/x") and not os.path.exists(top + "/usr/x")


@pytest.mark.parametrize("path", ["etc/hostname", "", "./etc", "~/etc"])
def test_relative_paths_are_refused(root, path):
    with pytest.raises(RootError, match="must be absolute"):
        root.resolve(path)


# -- stat and friends ------------------------------------------------------------------
def test_stat_family(linked, top):
    os.mkfifo(top + "/fifo", 0o600)
    os.chown(top + "/usr/lib/os-release", 1234, 5678)
    os.chmod(top + "/usr/lib/os-release", 0o640)
    file_stat = Stat("file", 0o640, 1234, 5678, 5)
    assert linked.stat("/etc/os-release") == file_stat
    assert linked.lstat("/usr/lib/os-release") == file_stat
    link = linked.lstat("/etc/os-release")
    assert (link.kind, link.size) == ("symlink", len("../usr/lib/os-release"))
    assert linked.stat("/etc").kind == "dir"
    assert linked.stat("/fifo").kind == "other"
    assert linked.stat("/missing") is None and linked.lstat("/missing") is None
    assert linked.stat("/dangling") is None
    assert linked.lstat("/dangling").kind == "symlink"

    table = {
        # path: (exists, lexists, is_file, is_dir, is_symlink)
        "/etc/os-release": (True, True, True, False, True),
        "/usr/lib/os-release": (True, True, True, False, False),
        "/lib": (True, True, False, True, True),
        "/etc": (True, True, False, True, False),
        "/dangling": (False, True, False, False, True),
        "/fifo": (True, True, False, False, False),
        "/missing": (False, False, False, False, False),
        "/etc/os-release/x": (False, False, False, False, False),
    }
    for path, expected in table.items():
        got = (
            linked.exists(path),
            linked.lexists(path),
            linked.is_file(path),
            linked.is_dir(path),
            linked.is_symlink(path),
        )
        assert got == expected, path


# -- errors and construction -----------------------------------------------------------
CALLS = {
    "read_bytes": lambda r, p: r.read_bytes(p),
    "read_text": lambda r, p: r.read_text(p),
    "write_bytes": lambda r, p: r.write_bytes(p, b"x"),
    "mkdir": lambda r, p: r.mkdir(p),
    "symlink": lambda r, p: r.symlink("/x", p),
    "remove": lambda r, p: r.remove(p),
    "chmod": lambda r, p: r.chmod(p, 0o644),
    "chown": lambda r, p: r.chown(p, 0, 0),
    "set_label": lambda r, p: r.set_label(p, LABEL),
    "listdir": lambda r, p: r.listdir(p),
    "readlink": lambda r, p: r.readlink(p),
}


@pytest.mark.parametrize("call", CALLS)
def test_errors_are_root_errors_naming_the_guest_path(root, top, call):
    make(top, "/etc/hostname")
    path = "/etc/missing-dir/file"
    with pytest.raises(RootError) as exc:
        CALLS[call](root, path)
    assert path in str(exc.value)
    assert isinstance(exc.value, VmtailorError)
    assert "\n" not in str(exc.value), "one line for the user"


def test_construction(top):
    os.symlink(top, top + "-link")
    try:
        root = LocalRoot(top + "-link/.")
        assert root.top == root.name == os.path.realpath(top)
        assert root.host_path("/") == root.top
        assert root.host_path("/etc/x") == root.top + "/etc/x"
    finally:
        os.unlink(top + "-link")
