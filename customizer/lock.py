"""One writer per guest: an exclusive lock held for the whole of an apply or a revert.

Two runs on one guest would interleave their journal writes (the last writer's entries
win) and a revert would then leave paths changed. The lock is an flock(2) on a file on
the *host*, named after the guest's identity:

- --root DIR: the (st_dev, st_ino) of DIR. Nothing is written in the guest (a lock file
  there would itself need journaling and would have to be opened through a tree the
  guest controls), and every path to one directory — symlinks, bind mounts — finds the
  same lock.
- --disk IMG…: the (st_dev, st_ino) of each image file (st_rdev for a block device).
  QEMU's own image locks already keep two appliances off one image, but they are taken
  only at launch and fail with a qemu message; this lock says which vmtailor run holds it.

The lock files live in /run/vmtailor/locks (root), else in the user's runtime folder;
they are left in place (removing a lock file another run is about to open would let two
runs hold "the" lock). flock goes with the open file: a killed run's lock is gone with it.
The holder writes its pid in the file so that the run it turns away can name it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat as statmod
from collections.abc import Iterable, Iterator

from .errors import VmtailorError

RUN_DIR = "/run/vmtailor/locks"


class LockError(VmtailorError):
    pass


def lock_dir() -> str:
    if os.geteuid() == 0:
        return RUN_DIR
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "vmtailor", "locks")
    return f"/tmp/vmtailor-{os.geteuid()}/locks"


def _private_dir(path: str) -> None:
    """Create `path` (0700) and check it is ours alone: no one else may plant a lock file."""
    try:
        os.makedirs(path, 0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError as exc:
        raise LockError(
            f"cannot create the lock folder {path}: {os.strerror(exc.errno or 0)}"
        ) from None
    if not statmod.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise LockError(f"{path} is not a private folder of this user; vmtailor won't lock there")


def key_of(path: str) -> str:
    """The lock name of a guest root directory or disk image."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise LockError(f"cannot lock {path}: {os.strerror(exc.errno or 0)}") from None
    if statmod.S_ISBLK(st.st_mode):
        return f"blk-{st.st_rdev:x}"
    return f"{st.st_dev:x}-{st.st_ino:x}"


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "pid unknown"


def _open(path: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise LockError(
            f"cannot open the lock file {path}: {os.strerror(exc.errno or 0)}"
        ) from None
    if not statmod.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LockError(f"the lock file {path} is not a regular file")
    return fd


@contextlib.contextmanager
def hold(paths: Iterable[str], name: str, *, shared: bool = False) -> Iterator[None]:
    """Lock the guest made of `paths` (its root directory, or its images) for the block.

    `shared` (a dry run) only keeps a writer out meanwhile; it never blocks another
    reader. Never waits: a guest another run holds is refused at once, nothing changed."""
    directory = lock_dir()
    _private_dir(directory)
    fds: list[int] = []
    try:
        for key in sorted({key_of(p) for p in paths}):
            fd = _open(os.path.join(directory, key + ".lock"))
            fds.append(fd)
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockError(
                    f"guest {name} is being customized by another vmtailor run "
                    f"({_holder(fd)}); nothing was changed",
                    hint="wait for it to finish, then run this again",
                ) from None
            if not shared:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        for fd in fds:
            os.close(fd)
