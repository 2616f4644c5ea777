"""Hostile guest trees: LocalRoot must never read or write outside its root.

Every hostile operation runs in a *guard*, a child process (one per module) walled off
from the host, so that a regression cannot damage the machine running the tests (we run
as root):

* a private mount namespace (nothing propagates back to the host);
* the arena, a tmpfs holding the sentinel tree and the guests, bind-mounted onto itself so
  that it stays writable;
* /etc and /run covered by tmpfs *decoys* holding fake shadow, passwd, hostname and an
  empty /run/systemd/resolve: an escape aimed at the host's files lands in a decoy, and
  the guard reports any change to it;
* the rest of / remounted read-only, so that any other escape fails instead of writing.

A hang (CHILD_TIMEOUT) or a touched decoy ends the guard; the next test gets a fresh one.

The tests check, around every operation: the sentinel tree the guest sits in (content,
modes, owners, xattrs, link targets of files named like etc/shadow, etc/passwd, ...), the
real host /etc/shadow, /etc/passwd and /etc/hostname (hashed, never written), the decoys,
and that the guest changed exactly where the resolved guest path says it should — or that
a RootError naming the path was raised and nothing changed.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import pickle
import posixpath
import select
import shutil
import signal
import stat as statmod
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.root import MAX_SYMLINKS, SELINUX_XATTR, RootError, Stat

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: chown, mknod and a private mount namespace"
)

LOOP = "too many levels of symbolic links"
NOTDIR = "not a directory"
CHILD_TIMEOUT = 5.0  # seconds; an operation that takes longer is reported as a hang

DATA = b"written by vmtailor\n"
NEW_MODE = 0o604  # no file of any tree below has this mode
NEW_UID, NEW_GID = 4242, 4343
LABEL = "system_u:object_r:vmtailor_test_t:s0"
DIR_MODE, DIR_UID, DIR_GID = 0o750, 7, 8
LINK_TARGET = "/etc/shadow"
DEFAULT = "<default>"


# -- snapshots of trees ----------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    kind: str
    mode: int
    uid: int
    gid: int
    size: int  # 0 for directories: their size changes with their entries
    data: bytes | str | int | None  # file content, link target, device number
    xattrs: tuple[tuple[str, bytes], ...]

    def as_stat(self) -> Stat:
        return Stat(self.kind, self.mode, self.uid, self.gid, self.size)


def _kind(mode: int) -> str:
    if statmod.S_ISREG(mode):
        return "file"
    if statmod.S_ISDIR(mode):
        return "dir"
    if statmod.S_ISLNK(mode):
        return "symlink"
    return "other"


def entry_of(host: str) -> Entry:
    st = os.lstat(host)
    kind = _kind(st.st_mode)
    data: bytes | str | int | None = None
    if kind == "file":
        with open(host, "rb") as f:
            data = f.read()
    elif kind == "symlink":
        data = os.readlink(host)
    elif kind == "other":
        data = st.st_rdev
    xattrs = tuple(
        sorted(
            (name, os.getxattr(host, name, follow_symlinks=False))
            for name in os.listxattr(host, follow_symlinks=False)
        )
    )
    size = 0 if kind == "dir" else st.st_size
    return Entry(kind, statmod.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size, data, xattrs)


def snapshot(top: str, skip: Callable[[str], bool] = lambda key: False) -> dict[str, Entry]:
    """Every entry under `top` (but those skip() names), keyed by its path relative to
    `top` written as '/...'."""
    out: dict[str, Entry] = {}

    def walk(host: str, key: str) -> None:
        entry = out[key] = entry_of(host)
        if entry.kind != "dir":
            return
        for name in os.listdir(host):
            child = posixpath.join(key, name)
            if not skip(child):
                walk(os.path.join(host, name), child)

    walk(top, "/")
    return out


def changed(before: dict[str, Entry], after: dict[str, Entry]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


# -- the guard: a child process walled off from the host -------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
CLONE_NEWNS = 0x20000
MNT_DETACH = 2
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18

DECOY_FILES = {
    "/etc/shadow": b"decoy host /etc/shadow\n",
    "/etc/passwd": b"decoy host /etc/passwd\n",
    "/etc/hostname": b"decoy host /etc/hostname\n",
}
DECOY_DIRS = ("/etc/ssh", "/run/systemd/resolve")


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _enc(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data=None) -> None:
    ret = _libc.mount(_enc(source), _enc(target), _enc(fstype), flags, _enc(data))
    _check(ret, f"mount {target}")


def _enter_guard(arena: str) -> dict[str, dict[str, Entry]]:
    """In the child: build the walls; returns the decoys' pristine snapshots."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # first, or mounts would reach the host
    _mount(arena, arena, None, MS_BIND)  # a mount of its own: stays writable below
    for top in ("/etc", "/run"):
        _mount("vmtailor-decoy", top, "tmpfs", 0)
    for d in DECOY_DIRS:
        os.makedirs(d)
    for path, content in DECOY_FILES.items():
        with open(path, "wb") as f:
            f.write(content)
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    return {top: snapshot(top) for top in ("/etc", "/run")}


@dataclass
class Outcome:
    kind: str  # "ok" or "RootError"
    value: object


def _call(fn: Callable[[], object]) -> tuple[str, object]:
    try:
        return ("ok", fn())
    except RootError as exc:
        return ("RootError", str(exc))
    except Exception as exc:
        return ("crash", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")


def _send(fd: int, obj: object) -> None:
    data = pickle.dumps(obj)
    view = memoryview(len(data).to_bytes(8, "big") + data)
    while view:
        view = view[os.write(fd, view) :]


def _recv(fd: int, deadline: float | None = None) -> object:
    """One message; None at end of file or when the deadline passes."""

    def exactly(n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    return None
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    head = exactly(8)
    body = None if head is None else exactly(int.from_bytes(head, "big"))
    return None if body is None else pickle.loads(body)


class Guard:
    """A child process walled off from the host that runs module-level functions on
    request (one fork per module, not per operation: this keeps the suite fast). A hang or
    a touched decoy ends it; the next request gets a fresh one."""

    def __init__(self, arena: str):
        self.arena = arena
        self.pid: int | None = None

    def _start(self) -> None:
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                os.close(req_w)
                os.close(resp_r)
                self._serve(req_r, resp_w)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(resp_w)
        self.pid, self.req, self.resp = pid, req_w, resp_r
        answer = _recv(resp_r, time.monotonic() + CHILD_TIMEOUT)
        if answer != "ready":
            self.stop()
            pytest.fail(f"could not wall the host off, nothing was run: {answer}")

    def _serve(self, req: int, resp: int) -> None:
        try:
            pristine = _enter_guard(self.arena)
        except BaseException as exc:
            _send(resp, f"{type(exc).__name__}: {exc}")
            return
        _send(resp, "ready")
        while (msg := _recv(req)) is not None:
            fn, args = msg
            result = _call(lambda: fn(*args))  # noqa: B023 (called at once)
            touched = {
                top + p for top, snap in pristine.items() for p in changed(snap, snapshot(top))
            }
            _send(resp, (result, sorted(touched)))
            if touched:
                return

    def stop(self) -> None:
        if self.pid is not None:
            os.close(self.req)
            os.close(self.resp)
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None

    def run(self, fn: Callable[..., object], *args: object) -> Outcome:
        """fn(*args) behind the walls; fails the test on a hang, a crash or a touched decoy."""
        if self.pid is None:
            self._start()
        _send(self.req, (fn, args))
        answer = _recv(self.resp, time.monotonic() + CHILD_TIMEOUT)
        if answer is None:
            self.stop()
            pytest.fail(f"no answer within {CHILD_TIMEOUT}s: the operation hangs")
        (kind, value), touched = answer
        if touched:
            self.stop()
            pytest.fail(f"the operation reached the host's files (decoys changed: {touched})")
        if kind == "crash":
            pytest.fail(f"raised something other than RootError:\n{value}")
        return Outcome(kind, value)


# -- the real host files: hashed around every test, never written ----------------------
HOST_WATCH = (
    "/etc/shadow",
    "/etc/passwd",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/run/systemd/resolve/stub-resolv.conf",
    "/hostname",
    "/shadow",
    "/new-file",
)


def host_state(path: str):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if statmod.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            digest: str = hashlib.sha256(f.read()).hexdigest()
    elif statmod.S_ISLNK(st.st_mode):
        digest = os.readlink(path)
    else:
        digest = ""
    fields = (st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns)
    return (*fields, st.st_ctime_ns, digest)


@pytest.fixture(autouse=True)
def host_untouched():
    before = {p: host_state(p) for p in HOST_WATCH}
    yield
    after = {p: host_state(p) for p in HOST_WATCH}
    assert after == before, "a host file changed"


# -- the arena: a sentinel tree with the guest root inside it --------------------------
class Tree:
    """Builds a tree under `top` with plain os calls, refusing to go through a symlink
    (the test itself must never write outside its directory)."""

    def __init__(self, top: str):
        self.top = top

    def _host(self, path: str) -> str:
        host = self.top
        for name in path.strip("/").split("/")[:-1]:
            host = os.path.join(host, name)
            if os.path.islink(host):
                raise AssertionError(f"test bug: building {path} goes through a symlink")
            if not os.path.isdir(host):
                os.mkdir(host, 0o755)
        host = os.path.join(host, path.strip("/").split("/")[-1])
        if os.path.islink(host) or (os.path.lexists(host) and not os.path.isdir(host)):
            os.unlink(host)  # links, files and nodes may be replaced by a later call
        return host

    def dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        host = self._host(path)
        if not os.path.isdir(host):
            os.mkdir(host)
        os.chown(host, uid, gid)
        os.chmod(host, mode)

    def file(self, path, data=b"", mode=0o644, uid=0, gid=0, label=None) -> None:
        host = self._host(path)
        with open(host, "wb") as f:
            f.write(data)
        os.chown(host, uid, gid)
        os.chmod(host, mode)
        if label:
            os.setxattr(host, SELINUX_XATTR, label.encode() + b"\0")

    def link(self, path: str, target: str) -> None:
        os.symlink(target, self._host(path))

    def fifo(self, path: str) -> None:
        os.mkfifo(self._host(path), 0o644)

    def chardev(self, path: str, major: int, minor: int) -> None:
        os.mknod(self._host(path), 0o644 | statmod.S_IFCHR, os.makedev(major, minor))


def _is_guest(key: str) -> bool:
    return posixpath.dirname(key) == "/box" and posixpath.basename(key).isdigit()


class Sentinel:
    """The tree the guests live in (as box/<n>): files named like the host's, at the
    places a naive `open(top + path)` would reach with one or two `..` too many. Shared by
    a module's tests, snapshotted once; rebuilt after a test that changed it."""

    def __init__(self, arena_fs: str):
        self.arena_fs = arena_fs
        self.build()

    def build(self) -> None:
        self.top = os.path.join(self.arena_fs, f"sentinel{next(_numbers)}")
        os.mkdir(self.top, 0o700)
        s = Tree(self.top)
        for at in ("", "/box"):
            s.file(
                f"{at}/etc/shadow",
                f"sentinel {at}/etc/shadow\n".encode(),
                0o640,
                label="system_u:object_r:sentinel_t:s0",
            )
            s.file(f"{at}/etc/passwd", f"sentinel {at}/etc/passwd\n".encode())
            s.file(f"{at}/etc/hostname", f"sentinel {at}/etc/hostname\n".encode())
            s.file(f"{at}/etc/ssh/sshd_config", b"sentinel sshd_config\n", 0o600)
            s.dir(f"{at}/run/systemd/resolve")  # empty: a naive write there would succeed
            s.file(f"{at}/secret", b"sentinel secret\n", 0o600, 1000, 1000)
        s.link("/link-abs", "/etc/shadow")
        s.link("/link-rel", "etc/passwd")
        self.pristine = self.snapshot()

    def snapshot(self) -> dict[str, Entry]:
        return snapshot(self.top, skip=_is_guest)


_numbers = itertools.count()


@dataclass
class Arena:
    top: str  # the sentinel tree's top
    guest: str  # the guest root, top/box/<n>
    tree: Tree  # builds the guest
    guard: Guard
    sentinel: Sentinel

    def root(self) -> LocalRoot:
        return LocalRoot(self.guest)

    def run(self, fn: Callable[..., object], *args: object) -> Outcome:
        """fn(guest, *args) behind the guard's walls; fn must be module-level."""
        return self.guard.run(fn, self.guest, *args)

    def assert_sentinel_untouched(self) -> None:
        now = self.sentinel.snapshot()
        if now != self.sentinel.pristine:
            touched = changed(self.sentinel.pristine, now)
            self.sentinel.build()  # a fresh one for the next tests
            raise AssertionError(f"the tree around the guest changed: {sorted(touched)}")


@pytest.fixture(scope="session")
def arena_fs(tmp_path_factory):
    """A tmpfs for all arenas: real xattrs, owners and device nodes, and fast (this
    machine's ext4 takes milliseconds per rmdir, which pytest's cleanup pays thousands of
    times)."""
    where = str(tmp_path_factory.mktemp("hostile"))
    _mount("vmtailor-test-arena", where, "tmpfs", 0, "size=64m,mode=0700")
    yield where
    _libc.umount2(os.fsencode(where), MNT_DETACH)


@pytest.fixture(scope="module")
def guard(arena_fs):
    g = Guard(arena_fs)
    yield g
    g.stop()


@pytest.fixture(scope="module")
def sentinel(arena_fs) -> Sentinel:
    return Sentinel(arena_fs)


@pytest.fixture
def arena(sentinel, guard):
    guest = os.path.join(sentinel.top, "box", str(next(_numbers)))
    os.mkdir(guest)
    # With a dozen `..`, a naive implementation reaches the host's / (the decoys, behind
    # the guard's walls).
    assert guest.count("/") + 1 < 12
    yield Arena(sentinel.top, guest, Tree(guest), guard, sentinel)
    shutil.rmtree(guest)  # or every sentinel snapshot lists all the guests so far


# -- the cases: a hostile guest, a guest path and where it must resolve ----------------
@dataclass(frozen=True)
class Err:
    msg: str = ""  # expected in the RootError's message, besides the guest path


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Tree], None]
    path: str
    full: str | Err  # expected resolve(path)
    parent: str | Err  # expected resolve_parent(path): everything but the last name


def base(g: Tree) -> None:
    g.dir("/etc")
    g.file("/etc/hostname", b"guest /etc/hostname\n")
    g.file("/etc/shadow", b"guest /etc/shadow\n", 0o640, 0, 42, "system_u:object_r:shadow_t:s0")
    g.file("/etc/passwd", b"guest /etc/passwd\n")


def etc_is(target: str) -> Callable[[Tree], None]:
    def build(g: Tree) -> None:
        g.file("/hostname", b"guest /hostname\n")
        g.file("/shadow", b"guest /shadow\n", 0o640)
        g.dir("/usr")
        g.link("/etc", target)

    return build


def with_links(*links: tuple[str, str], dirs=(), no_base=False) -> Callable[[Tree], None]:
    def build(g: Tree) -> None:
        if not no_base:
            base(g)
        for d in dirs:
            g.dir(d)
        for path, target in links:
            g.link(path, target)

    return build


def chain(n: int, last: str) -> Callable[[Tree], None]:
    """/c/0 -> /c/1 -> 2 -> /c/3 -> ... -> /c/<n-1> -> last: n links, alternately
    absolute and relative."""

    def build(g: Tree) -> None:
        base(g)
        g.dir("/c")
        for i in range(n - 1):
            g.link(f"/c/{i}", f"/c/{i + 1}" if i % 2 == 0 else str(i + 1))
        g.link(f"/c/{n - 1}", last)

    return build


def build_then(*steps: Callable[[Tree], None]) -> Callable[[Tree], None]:
    def build(g: Tree) -> None:
        for step in steps:
            step(g)

    return build


UP12 = "../" * 12
RESOLV = "/run/systemd/resolve/stub-resolv.conf"
UNDECODABLE = os.fsdecode(b"\xff\xfe")

CASES = [
    # /etc is a symlink to the guest's / ...
    Case("etc-abs-root.hostname", etc_is("/"), "/etc/hostname", "/hostname", "/hostname"),
    Case("etc-abs-root.etc-shadow", etc_is("/"), "/etc/etc/shadow", "/shadow", "/shadow"),
    Case("etc-abs-root.itself", etc_is("/"), "/etc", "/", "/etc"),
    Case("etc-abs-root.new", etc_is("/"), "/etc/new-file", "/new-file", "/new-file"),
    # ... and to ../../../../.. (relative), which cannot climb above the guest's /.
    Case(
        "etc-rel-root.hostname", etc_is("../../../../.."), "/etc/hostname", "/hostname", "/hostname"
    ),
    Case("etc-rel-root.itself", etc_is("../../../../.."), "/etc", "/", "/etc"),
    Case("etc-rel12-root.shadow", etc_is(UP12), "/etc/etc/shadow", "/shadow", "/shadow"),
    Case("etc-rel12-root.new", etc_is(UP12), "/etc/new-file", "/new-file", "/new-file"),
    # /etc/hostname -> /etc/shadow, an absolute link meant to hit the host's shadow.
    Case(
        "hostname-abs-shadow",
        with_links(("/etc/hostname", "/etc/shadow")),
        "/etc/hostname",
        "/etc/shadow",
        "/etc/hostname",
    ),
    Case(
        "hostname-abs-shadow.guest-has-none",
        build_then(
            base,
            lambda g: os.unlink(g.top + "/etc/shadow"),
            with_links(("/etc/hostname", "/etc/shadow"), no_base=True),
        ),
        "/etc/hostname",
        "/etc/shadow",
        "/etc/hostname",
    ),
    Case(
        "hostname-proc-self-root",
        with_links(("/etc/hostname", "/proc/self/root/etc/shadow")),
        "/etc/hostname",
        "/proc/self/root/etc/shadow",
        "/etc/hostname",
    ),
    # Relative links that climb: into the guest's /etc, the box, the test dir, the host.
    *[
        Case(
            f"motd-up{k}-passwd",
            with_links(("/etc/motd", "../" * k + "etc/passwd")),
            "/etc/motd",
            "/etc/passwd",
            "/etc/motd",
        )
        for k in (2, 3, 6, 12)
    ],
    Case(
        "dir-link-climbs",
        with_links(("/usr/share/doc", UP12), dirs=["/usr/share"]),
        "/usr/share/doc/etc/shadow",
        "/etc/shadow",
        "/etc/shadow",
    ),
    # Deep chains of links: MAX_SYMLINKS hops resolve, one more is a loop.
    Case("chain-max", chain(MAX_SYMLINKS, "/etc/hostname"), "/c/0", "/etc/hostname", "/c/0"),
    Case("chain-max-plus-1", chain(MAX_SYMLINKS + 1, "/etc/hostname"), "/c/0", Err(LOOP), "/c/0"),
    Case("chain-escapes", chain(10, UP12 + "etc/shadow"), "/c/0", "/etc/shadow", "/c/0"),
    Case(
        "chain-through-dirs",
        build_then(
            base,
            with_links(("/x", "/p/q"), ("/p/q/y", "../../r"), no_base=True, dirs=["/p/q", "/r"]),
            lambda g: g.file("/r/z", b"guest /r/z\n"),
        ),
        "/x/y/z",
        "/r/z",
        "/r/z",
    ),
    Case(
        "dir-loop-3",
        with_links(("/etc/loop", ".")),
        "/etc" + "/loop" * 3 + "/hostname",
        "/etc/hostname",
        "/etc/hostname",
    ),
    Case(
        "dir-loop-41",
        with_links(("/etc/loop", ".")),
        "/etc" + "/loop" * (MAX_SYMLINKS + 1) + "/hostname",
        Err(LOOP),
        Err(LOOP),
    ),
    # Loops: an error, never a hang.
    Case("loop-a-b", with_links(("/a", "/b"), ("/b", "/a")), "/a", Err(LOOP), "/a"),
    Case(
        "loop-a-b.below",
        with_links(("/a", "/b"), ("/b", "/a")),
        "/a/etc/shadow",
        Err(LOOP),
        Err(LOOP),
    ),
    Case("loop-self-rel", with_links(("/etc/self", "self")), "/etc/self", Err(LOOP), "/etc/self"),
    Case(
        "loop-self-abs", with_links(("/etc/self", "/etc/self")), "/etc/self/x", Err(LOOP), Err(LOOP)
    ),
    Case("loop-rel-dotdot", with_links(("/etc/x", "../etc/x")), "/etc/x", Err(LOOP), "/etc/x"),
    Case("loop-growing", with_links(("/d", "/d/d/d")), "/d", Err(LOOP), "/d"),
    # A regular file (or worse) where a directory is expected.
    Case(
        "ssh-is-a-file",
        build_then(base, lambda g: g.file("/etc/ssh", b"not a dir\n")),
        "/etc/ssh/sshd_config",
        Err(NOTDIR),
        Err(NOTDIR),
    ),
    Case(
        "ssh-links-to-a-file",
        with_links(("/etc/ssh", "/etc/hostname")),
        "/etc/ssh/sshd_config",
        Err(NOTDIR),
        Err(NOTDIR),
    ),
    Case(
        "ssh-is-a-fifo",
        build_then(base, lambda g: g.fifo("/etc/ssh")),
        "/etc/ssh/sshd_config",
        Err(NOTDIR),
        Err(NOTDIR),
    ),
    Case(
        "dotdot-after-a-file", build_then(base), "/etc/hostname/../shadow", Err(NOTDIR), Err(NOTDIR)
    ),
    # A dangling link into a directory the guest does not have.
    Case(
        "resolv-dangling-abs",
        with_links(("/etc/resolv.conf", RESOLV)),
        "/etc/resolv.conf",
        RESOLV,
        "/etc/resolv.conf",
    ),
    Case(
        "resolv-dangling-rel",
        with_links(("/etc/resolv.conf", ".." + RESOLV)),
        "/etc/resolv.conf",
        RESOLV,
        "/etc/resolv.conf",
    ),
    Case(
        "resolv-dangling-rel2",
        with_links(("/etc/resolv.conf", "../.." + RESOLV)),
        "/etc/resolv.conf",
        RESOLV,
        "/etc/resolv.conf",
    ),
    Case(
        "resolv-guest-has-run",
        with_links(("/etc/resolv.conf", RESOLV), dirs=["/run/systemd/resolve"]),
        "/etc/resolv.conf",
        RESOLV,
        "/etc/resolv.conf",
    ),
    # `..` in the requested path itself.
    Case("dotdot-above-root", base, "/../../etc/hostname", "/etc/hostname", "/etc/hostname"),
    Case("dotdot-many", base, "/etc/../../../../../../etc/shadow", "/etc/shadow", "/etc/shadow"),
    Case("dotdot-only", base, "/../../../..", "/", "/"),
    Case("dotdot-new", base, "/..//./etc/./../etc/new-file", "/etc/new-file", "/etc/new-file"),
    Case(
        "dotdot-after-dir-link",
        build_then(
            base,
            lambda g: g.file("/x", b"guest /x\n"),
            lambda g: g.file("/usr/lib/x", b"guest /usr/lib/x\n"),
            with_links(("/usr/lib/etc", "/etc"), ("/etc2", "/usr/lib/etc"), no_base=True),
        ),
        "/etc2/../x",
        "/x",
        "/x",
    ),
    Case(
        "dotdot-after-dir-link.deeper",
        build_then(
            base,
            lambda g: g.file("/x", b"guest /x\n"),
            lambda g: g.file("/usr/lib/x", b"guest /usr/lib/x\n"),
            with_links(("/etc2", "/usr/lib/etc"), dirs=["/usr/lib/etc"], no_base=True),
        ),
        "/etc2/../x",
        "/usr/lib/x",
        "/usr/lib/x",
    ),
    # Names with newlines, unicode, bytes that are not UTF-8.
    Case(
        "name-newline",
        with_links(("/etc/host\nname", "../../etc/hostname")),
        "/etc/host\nname",
        "/etc/hostname",
        "/etc/host\nname",
    ),
    Case("name-newline.new", base, "/etc/new\nfile", "/etc/new\nfile", "/etc/new\nfile"),
    Case(
        "name-unicode",
        with_links(("/etc/ünïcødé ☃", "/etc/shadow")),
        "/etc/ünïcødé ☃",
        "/etc/shadow",
        "/etc/ünïcødé ☃",
    ),
    Case(
        "name-undecodable",
        build_then(base, lambda g: g.file("/etc/" + UNDECODABLE, b"guest \xff\xfe\n")),
        "/etc/" + UNDECODABLE,
        "/etc/" + UNDECODABLE,
        "/etc/" + UNDECODABLE,
    ),
    # Files that are not regular: never opened for reading.
    Case(
        "hostname-is-a-fifo",
        build_then(base, lambda g: g.fifo("/etc/hostname")),
        "/etc/hostname",
        "/etc/hostname",
        "/etc/hostname",
    ),
    Case(
        "hostname-is-a-device",
        build_then(base, lambda g: g.chardev("/etc/hostname", 1, 3)),
        "/etc/hostname",
        "/etc/hostname",
        "/etc/hostname",
    ),
]


# -- the operations and what each must do, given the expected resolution --------------
def _under(before: dict[str, Entry], path: str) -> list[str]:
    return sorted(
        posixpath.basename(k) for k in before if k != "/" and posixpath.dirname(k) == path
    )


def _can_create(before: dict[str, Entry], path: str) -> bool:
    parent = before.get(posixpath.dirname(path))
    return path != "/" and path not in before and parent is not None and parent.kind == "dir"


def _label(entry: Entry | None) -> str | None:
    raw = dict(entry.xattrs).get(SELINUX_XATTR) if entry else None
    return raw.rstrip(b"\0").decode() if raw else None


def expect_reads(case: Case, before: dict[str, Entry]) -> dict[str, tuple[str, object]]:
    """What each read-only call must return: ("ok", value) or ("RootError", substring)."""
    full, parent = case.full, case.parent
    err = ("RootError", "")
    out: dict[str, tuple[str, object]] = {}
    if isinstance(full, Err):
        for name in ("read_bytes", "read_text", "listdir", "stat", "get_label"):
            out[name] = ("RootError", full.msg)
        out |= {"read_text_or": ("ok", DEFAULT), "exists": ("ok", False)}
        out |= {"is_file": ("ok", False), "is_dir": ("ok", False)}
    else:
        e = before.get(full)
        content = e.data if e and e.kind == "file" else None
        out["read_bytes"] = ("ok", content) if content is not None else err
        out["read_text"] = (
            ("ok", content.decode(errors="surrogateescape")) if content is not None else err
        )
        out["read_text_or"] = ("ok", out["read_text"][1] if content is not None else DEFAULT)
        out["listdir"] = ("ok", _under(before, full)) if e and e.kind == "dir" else err
        out["stat"] = ("ok", e.as_stat() if e else None)
        out["exists"] = ("ok", e is not None)
        out["is_file"] = ("ok", bool(e and e.kind == "file"))
        out["is_dir"] = ("ok", bool(e and e.kind == "dir"))
        out["get_label"] = ("ok", _label(e))
    if isinstance(parent, Err):
        out |= {"lstat": ("RootError", parent.msg), "readlink": ("RootError", parent.msg)}
        out["is_symlink"] = ("ok", False)
    else:
        e = before.get(parent)
        out["lstat"] = ("ok", e.as_stat() if e else None)
        out["readlink"] = ("ok", e.data) if e and e.kind == "symlink" else err
        out["is_symlink"] = ("ok", bool(e and e.kind == "symlink"))
    return out


def read_all(guest: str, path: str) -> dict[str, tuple[str, object]]:
    root = LocalRoot(guest)
    calls: dict[str, Callable[[], object]] = {
        "read_bytes": lambda: root.read_bytes(path),
        "read_text": lambda: root.read_text(path),
        "read_text_or": lambda: root.read_text_or(path, DEFAULT),
        "listdir": lambda: root.listdir(path),
        "stat": lambda: root.stat(path),
        "lstat": lambda: root.lstat(path),
        "exists": lambda: root.exists(path),
        "is_file": lambda: root.is_file(path),
        "is_dir": lambda: root.is_dir(path),
        "is_symlink": lambda: root.is_symlink(path),
        "get_label": lambda: root.get_label(path),
        "readlink": lambda: root.readlink(path),
    }
    return {name: _call(fn) for name, fn in calls.items()}


def _mutate_full(before, full, apply):
    """chmod/chown/set_label: change what the full path resolves to, if it exists."""
    if isinstance(full, Err) or full not in before:
        return None
    return {full: apply(before[full])}


def expect_write(before, full, parent):
    if isinstance(full, Err):
        return None
    old = before.get(full)
    if old is None and not _can_create(before, full):
        return None
    if old is not None and (old.kind != "file" or full == "/"):
        return None
    if old is None:
        return {full: Entry("file", 0o644, 0, 0, len(DATA), DATA, ())}
    label = tuple((k, v) for k, v in old.xattrs if k == SELINUX_XATTR)
    return {full: Entry("file", old.mode, old.uid, old.gid, len(DATA), DATA, label)}


def expect_mkdir(before, full, parent):
    if isinstance(parent, Err) or not _can_create(before, parent):
        return None
    return {parent: Entry("dir", DIR_MODE, DIR_UID, DIR_GID, 0, None, ())}


def expect_symlink(before, full, parent):
    if isinstance(parent, Err) or not _can_create(before, parent):
        return None
    return {parent: Entry("symlink", 0o777, 0, 0, len(LINK_TARGET), LINK_TARGET, ())}


def expect_remove(before, full, parent):
    if isinstance(parent, Err) or parent == "/" or parent not in before:
        return None
    if before[parent].kind == "dir" and _under(before, parent):
        return None
    return {parent: None}


def _with(entry: Entry, **kw) -> Entry:
    return Entry(**{**entry.__dict__, **kw})


def _labelled(e: Entry) -> Entry:
    xattrs = dict(e.xattrs) | {SELINUX_XATTR: LABEL.encode() + b"\0"}
    return _with(e, xattrs=tuple(sorted(xattrs.items())))


@dataclass(frozen=True)
class Op:
    run: Callable[[LocalRoot, str], object]
    # {guest path: entry after, None = removed} when it must succeed; None: a RootError
    expect: Callable[[dict[str, Entry], str | Err, str | Err], dict[str, Entry | None] | None]
    uses: str  # "full" (follows the last link) or "parent" (acts on the last name itself)


OPS: dict[str, Op] = {
    "write_bytes": Op(lambda r, p: r.write_bytes(p, DATA), expect_write, "full"),
    "mkdir": Op(lambda r, p: r.mkdir(p, DIR_MODE, DIR_UID, DIR_GID), expect_mkdir, "parent"),
    "symlink": Op(lambda r, p: r.symlink(LINK_TARGET, p), expect_symlink, "parent"),
    "remove": Op(lambda r, p: r.remove(p), expect_remove, "parent"),
    "chmod": Op(
        lambda r, p: r.chmod(p, NEW_MODE),
        lambda b, f, _: _mutate_full(b, f, lambda e: _with(e, mode=NEW_MODE)),
        "full",
    ),
    "chown": Op(
        lambda r, p: r.chown(p, NEW_UID, NEW_GID),
        lambda b, f, _: _mutate_full(b, f, lambda e: _with(e, uid=NEW_UID, gid=NEW_GID)),
        "full",
    ),
    "set_label": Op(
        lambda r, p: r.set_label(p, LABEL), lambda b, f, _: _mutate_full(b, f, _labelled), "full"
    ),
}


def _assert_error(kind: str, value: object, case: Case, expected_msg: str, what: str) -> None:
    assert kind == "RootError", f"{what}: expected a RootError, got {kind} {value!r}"
    assert case.path in str(value), f"{what}: the message does not name the guest path"
    assert expected_msg.lower() in str(value).lower(), f"{what}: {value!r} lacks {expected_msg!r}"


def _comparable(value: object) -> object:
    """A directory's size depends on its entries' history: not part of what we check."""
    if isinstance(value, Stat) and value.kind == "dir":
        return Stat("dir", value.mode, value.uid, value.gid, 0)
    return value


def run_op(guest: str, op: str, path: str) -> object:
    return OPS[op].run(LocalRoot(guest), path)


@pytest.mark.parametrize("op", [*OPS, "reads"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile(arena: Arena, case: Case, op: str):
    case.build(arena.tree)
    before = snapshot(arena.guest)

    if op == "reads":
        outcome = arena.run(read_all, case.path)
        arena.assert_sentinel_untouched()
        for name, (exp_kind, exp_value) in expect_reads(case, before).items():
            kind, value = outcome.value[name]
            if kind == "crash":
                pytest.fail(f"{name}: raised something other than RootError:\n{value}")
            if exp_kind == "RootError":
                _assert_error(kind, value, case, str(exp_value), name)
            else:
                assert (kind, _comparable(value)) == ("ok", exp_value), name
    else:
        spec = OPS[op]
        expected = spec.expect(before, case.full, case.parent)
        outcome = arena.run(run_op, op, case.path)
        arena.assert_sentinel_untouched()
        after = snapshot(arena.guest)
        if expected is None:
            resolution = case.full if spec.uses == "full" else case.parent
            msg = resolution.msg if isinstance(resolution, Err) else ""
            _assert_error(outcome.kind, outcome.value, case, msg, op)
            assert changed(before, after) == set(), "a failed operation changed the guest"
        else:
            assert outcome.kind == "ok", outcome.value
            # Exactly what the resolved guest path names changed, nothing else.
            assert changed(before, after) == set(expected)
            assert {p: after.get(p) for p in expected} == expected


# -- hostile cases that need more than one path ---------------------------------------
def test_write_does_not_write_through_a_hardlink(arena: Arena):
    """A guest file that is a hard link of a file outside: the write replaces the guest's
    name (new inode) and leaves the other name's content alone."""
    base(arena.tree)
    os.unlink(arena.guest + "/etc/hostname")
    os.link(arena.top + "/etc/hostname", arena.guest + "/etc/hostname")
    outcome = arena.run(run_op, "write_bytes", "/etc/hostname")
    arena.assert_sentinel_untouched()
    assert outcome.kind == "ok"
    with open(arena.guest + "/etc/hostname", "rb") as f:
        assert f.read() == DATA


def plant_and_write(guest: str) -> tuple[str, str | None, str]:
    """Plant a symlink where write_bytes puts its temp file (its name has our pid), write."""
    root = LocalRoot(guest)
    planted = f"/etc/.hostname.vmtailor-{os.getpid()}.tmp"
    root.symlink(UP12 + "etc/hostname", planted)
    try:
        root.write_bytes("/etc/hostname", DATA)
    except RootError as exc:
        return ("RootError", str(exc), planted)
    return ("ok", None, planted)


def test_planted_temp_name_is_neither_followed_nor_removed(arena: Arena):
    """The guest plants a symlink at the name write_bytes uses for its temporary file."""
    base(arena.tree)
    kind, msg, planted = arena.run(plant_and_write).value
    arena.assert_sentinel_untouched()
    assert os.path.islink(arena.guest + planted), "a guest file we did not create was removed"
    with open(arena.guest + "/etc/hostname", "rb") as f:
        content = f.read()
    if kind == "RootError":
        assert "/etc/hostname" in msg
        assert content == b"guest /etc/hostname\n"
    else:
        assert content == DATA


# inotify: proves that read_bytes does not even *open* a device node the guest planted
# (opening some devices acts on the host: a watchdog arms, a tape rewinds).
IN_OPEN = 0x20


def test_read_never_opens_a_device_node(arena: Arena):
    base(arena.tree)
    arena.tree.chardev("/etc/hostname", 1, 3)  # the null device: harmless if opened
    arena.tree.link("/etc/motd", UP12 + "etc/hostname")  # and through a link
    ifd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    _check(0 if ifd >= 0 else -1, "inotify_init1")
    try:
        wd = _libc.inotify_add_watch(ifd, os.fsencode(arena.guest + "/etc/hostname"), IN_OPEN)
        _check(0 if wd >= 0 else -1, "inotify_add_watch")
        root = arena.root()
        for path in ("/etc/hostname", "/etc/motd"):
            with pytest.raises(RootError, match="not a regular file"):
                root.read_bytes(path)
            assert root.read_text_or(path, DEFAULT) == DEFAULT
        with pytest.raises(BlockingIOError):
            os.read(ifd, 4096)  # no event: never opened
    finally:
        os.close(ifd)


# -- paths that cannot name a guest file -----------------------------------------------
PATH_CALLS: dict[str, Callable[[LocalRoot, str], object]] = {
    "read_bytes": lambda r, p: r.read_bytes(p),
    "read_text": lambda r, p: r.read_text(p),
    "write_bytes": lambda r, p: r.write_bytes(p, DATA),
    "mkdir": lambda r, p: r.mkdir(p),
    "symlink": lambda r, p: r.symlink("target", p),
    "remove": lambda r, p: r.remove(p),
    "chmod": lambda r, p: r.chmod(p, 0o644),
    "chown": lambda r, p: r.chown(p, 0, 0),
    "set_label": lambda r, p: r.set_label(p, LABEL),
    "get_label": lambda r, p: r.get_label(p),
    "listdir": lambda r, p: r.listdir(p),
    "stat": lambda r, p: r.stat(p),
    "lstat": lambda r, p: r.lstat(p),
    "readlink": lambda r, p: r.readlink(p),
    "resolve": lambda r, p: r.resolve(p),
    "resolve_parent": lambda r, p: r.resolve_parent(p),
}


def call_all(guest: str, path: str) -> dict[str, tuple[str, object]]:
    root = LocalRoot(guest)
    return {name: _call(lambda fn=fn: fn(root, path)) for name, fn in PATH_CALLS.items()}


@pytest.mark.parametrize(
    "path",
    ["/etc/host\0name", "/etc\0/x", "/etc/\ud800", "etc/hostname", "", "../etc/shadow"],
    ids=["nul-last", "nul-middle", "lone-surrogate", "relative", "empty", "relative-dotdot"],
)
def test_unusable_path_is_a_root_error(arena: Arena, path: str):
    base(arena.tree)
    before = snapshot(arena.guest)
    outcome = arena.run(call_all, path)
    for name, (kind, value) in outcome.value.items():
        assert kind == "RootError", f"{name}: {kind} {value}"
    arena.assert_sentinel_untouched()
    assert snapshot(arena.guest) == before


def test_symlink_target_with_nul_is_a_root_error(arena: Arena):
    base(arena.tree)
    with pytest.raises(RootError, match="/etc/x"):
        arena.root().symlink("/etc/sha\0dow", "/etc/x")
    assert not os.path.lexists(arena.guest + "/etc/x")


# -- what may be a root ----------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: "/", id="slash"),
        pytest.param(lambda t: t + "/../" * 12, id="dotdot-to-slash"),
        pytest.param(
            lambda t: (os.symlink("/", t + "/to-slash"), t + "/to-slash")[1], id="link-to-slash"
        ),
        pytest.param(
            lambda t: (os.symlink(t + "/" + "../" * 12, t + "/up"), t + "/up")[1],
            id="rel-link-to-slash",
        ),
    ],
)
def test_refuses_the_host_root(tmp_path, make):
    with pytest.raises(RootError, match="running system's /"):
        LocalRoot(make(str(tmp_path)))


def test_host_root_only_when_asked():
    assert LocalRoot("/", allow_host_root=True).top == "/"  # constructed only, never used


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: (open(t + "/f", "w").close(), t + "/f")[1], id="file"),
        pytest.param(lambda t: t + "/missing", id="missing"),
        pytest.param(lambda t: (os.mkfifo(t + "/p"), t + "/p")[1], id="fifo"),
        pytest.param(
            lambda t: (os.symlink("/etc/passwd", t + "/l"), t + "/l")[1], id="link-to-host-file"
        ),
        pytest.param(lambda t: (os.symlink("loop", t + "/loop"), t + "/loop")[1], id="loop"),
    ],
)
def test_refuses_a_non_directory(tmp_path, make):
    with pytest.raises(RootError, match="not a directory"):
        LocalRoot(make(str(tmp_path)))
