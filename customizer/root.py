"""The guest tree every operation reads and writes through.

A Root resolves every guest path as if the guest's / were the real one: absolute and
relative symlinks, in any component, are followed *inside* the root and can never reach
the host. Writes replace files atomically (temp file, fsync, rename) and keep the owner,
mode and SELinux label of the file they replace.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as statmod
from abc import ABC, abstractmethod
from dataclasses import dataclass

from .errors import VmtailorError

MAX_SYMLINKS = 40
SELINUX_XATTR = "security.selinux"


class RootError(VmtailorError):
    """A guest path could not be read or written; the message names the guest path."""


@dataclass(frozen=True)
class Stat:
    """What the engine needs to know of a guest path's inode."""

    kind: str  # "file", "dir", "symlink" or "other"
    mode: int  # permission bits only (0o7777)
    uid: int
    gid: int
    size: int


def _kind(st_mode: int) -> str:
    if statmod.S_ISREG(st_mode):
        return "file"
    if statmod.S_ISDIR(st_mode):
        return "dir"
    if statmod.S_ISLNK(st_mode):
        return "symlink"
    return "other"


def split_guest_path(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def check_guest_path(path: str) -> None:
    """Refuse what no file name can hold: os calls would raise ValueError, not OSError."""
    if "\0" in path:
        raise RootError(f"{path!r}: a guest path cannot contain a NUL byte")
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise RootError(f"{path!r}: not a file name (cannot be encoded)") from None


class Root(ABC):
    """A guest filesystem tree. Paths are guest paths: absolute, '/' is the guest's root."""

    name: str = "guest"

    # -- primitives each implementation provides ------------------------------------
    @abstractmethod
    def _lstat_resolved(self, path: str) -> Stat | None: ...

    @abstractmethod
    def _readlink_resolved(self, path: str) -> str: ...

    @abstractmethod
    def read_bytes(self, path: str) -> bytes: ...

    @abstractmethod
    def listdir(self, path: str) -> list[str]: ...

    @abstractmethod
    def write_bytes(
        self,
        path: str,
        data: bytes,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
        label: str | None = None,
    ) -> None:
        """Atomically create or replace a regular file. None keeps what the replaced file
        had (or 0644 root:root for a new file)."""

    @abstractmethod
    def mkdir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None: ...

    @abstractmethod
    def symlink(self, target: str, path: str) -> None: ...

    @abstractmethod
    def remove(self, path: str) -> None:
        """Remove a file or symlink (never following it) or an empty directory."""

    @abstractmethod
    def chmod(self, path: str, mode: int) -> None: ...

    @abstractmethod
    def chown(self, path: str, uid: int, gid: int) -> None: ...

    @abstractmethod
    def get_label(self, path: str) -> str | None:
        """The SELinux label of a path, or None when it has none."""

    @abstractmethod
    def set_label(self, path: str, label: str) -> None: ...

    # -- resolution, shared by all implementations ----------------------------------
    def resolve(self, path: str, follow_last: bool = True) -> str:
        """The canonical guest path with every symlink resolved inside the root."""
        if not path.startswith("/"):
            raise RootError(f"{path}: guest paths must be absolute")
        check_guest_path(path)
        pending = split_guest_path(path)
        pending.reverse()
        done: list[str] = []
        hops = 0
        while pending:
            name = pending.pop()
            if name == "..":
                if done:
                    done.pop()
                continue
            candidate = "/" + "/".join([*done, name])
            st = self._lstat_resolved(candidate)
            if st is not None and st.kind == "symlink" and (pending or follow_last):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise RootError(f"{path}: too many levels of symbolic links in the guest")
                target = self._readlink_resolved(candidate)
                if target.startswith("/"):
                    done = []
                parts = split_guest_path(target)
                parts.reverse()
                pending.extend(parts)
                continue
            if st is not None and st.kind != "dir" and pending:
                raise RootError(f"{path}: {candidate} is not a directory in the guest")
            done.append(name)
        return "/" + "/".join(done)

    def resolve_parent(self, path: str) -> str:
        """Resolve every component but the last (which may be a symlink itself)."""
        # Not normpath + resolve(parent): `..` must go up from where a symlink *leads*, as
        # in resolve(), or lstat/remove and stat/write would act on different files.
        return self.resolve(path, follow_last=False)

    # -- conveniences ---------------------------------------------------------------
    def lstat(self, path: str) -> Stat | None:
        return self._lstat_resolved(self.resolve_parent(path))

    def stat(self, path: str) -> Stat | None:
        return self._lstat_resolved(self.resolve(path))

    def exists(self, path: str) -> bool:
        try:
            return self.stat(path) is not None
        except RootError:
            return False

    def lexists(self, path: str) -> bool:
        try:
            return self.lstat(path) is not None
        except RootError:
            return False

    def is_dir(self, path: str) -> bool:
        try:
            st = self.stat(path)
        except RootError:
            return False
        return st is not None and st.kind == "dir"

    def is_file(self, path: str) -> bool:
        try:
            st = self.stat(path)
        except RootError:
            return False
        return st is not None and st.kind == "file"

    def is_symlink(self, path: str) -> bool:
        try:
            st = self.lstat(path)
        except RootError:
            return False
        return st is not None and st.kind == "symlink"

    def readlink(self, path: str) -> str:
        real = self.resolve_parent(path)
        st = self._lstat_resolved(real)
        if st is None or st.kind != "symlink":
            # The primitive's error would name `real`, not the path the caller asked for.
            raise RootError(f"cannot read link {path} in the guest: not a symbolic link")
        return self._readlink_resolved(real)

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8", errors="surrogateescape")

    def is_mount_point(self, path: str) -> bool:
        """Is the path (its last component not followed) where another volume is mounted?
        A Root that cannot tell says no; revert never removes a directory that holds
        anything, so at worst it changes a mount point's mode and owner."""
        return False

    def read_text_or(self, path: str, default: str | None = None) -> str | None:
        """The file's text, or `default` when it is missing or not a regular file."""
        if not self.is_file(path):
            return default
        return self.read_text(path)


class LocalRoot(Root):
    """A guest tree in a local directory: the initrd's /sysroot or a mounted volume."""

    def __init__(self, top: str, *, allow_host_root: bool = False):
        top = os.path.realpath(top)
        if top == "/" and not allow_host_root:
            raise RootError("refusing to use the running system's / as a guest root")
        if not os.path.isdir(top):
            raise RootError(f"{top}: not a directory")
        self.top = top
        self.name = top

    def host_path(self, resolved: str) -> str:
        """Host path of an already-resolved guest path."""
        return self.top + resolved if resolved != "/" else self.top

    def _fail(self, action: str, path: str, exc: OSError) -> RootError:
        return RootError(f"cannot {action} {path} in the guest: {os.strerror(exc.errno or 0)}")

    def _lstat_resolved(self, path: str) -> Stat | None:
        try:
            st = os.lstat(self.host_path(path))
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as exc:
            raise self._fail("stat", path, exc) from None
        return Stat(
            _kind(st.st_mode), statmod.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size
        )

    def _readlink_resolved(self, path: str) -> str:
        try:
            return os.readlink(self.host_path(path))
        except OSError as exc:
            raise self._fail("read link", path, exc) from None

    def read_bytes(self, path: str) -> bytes:
        real = self.resolve(path)
        # Look before opening: opening a FIFO blocks until a writer comes, and opening a
        # device node the guest planted opens the *host's* device (a watchdog arms on
        # open). O_NONBLOCK and O_NOCTTY, and the fstat below, are for what changes meanwhile.
        st = self._lstat_resolved(real)
        if st is not None and st.kind != "file":
            raise RootError(f"cannot read {path} in the guest: not a regular file")
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        try:
            fd = os.open(self.host_path(real), flags)
        except OSError as exc:
            raise self._fail("open", path, exc) from None
        try:
            if not statmod.S_ISREG(os.fstat(fd).st_mode):
                raise RootError(f"cannot read {path} in the guest: not a regular file")
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def is_mount_point(self, path: str) -> bool:
        real = self.resolve_parent(path)
        if real == "/":
            return True
        try:
            st = os.lstat(self.host_path(real))
            up = os.lstat(self.host_path(posixpath.dirname(real)))
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise self._fail("stat", path, exc) from None
        # as os.path.ismount: another device, or (a bind mount of a folder onto itself) the
        # parent's own inode
        return st.st_dev != up.st_dev or st.st_ino == up.st_ino

    def listdir(self, path: str) -> list[str]:
        real = self.resolve(path)
        try:
            return sorted(os.listdir(self.host_path(real)))
        except OSError as exc:
            raise self._fail("list", path, exc) from None

    def write_bytes(self, path, data, mode=None, uid=None, gid=None, label=None) -> None:
        real = self.resolve(path)
        parent, name = posixpath.split(real)
        if not name:
            raise RootError(f"cannot write {path} in the guest: it is the root directory")
        pst = self._lstat_resolved(parent)
        if pst is None or pst.kind != "dir":
            raise RootError(f"cannot write {path} in the guest: {parent} is not a directory")
        old = self._lstat_resolved(real)
        if old is not None and old.kind not in ("file",):
            raise RootError(f"cannot write {path} in the guest: {real} is a {old.kind}")
        if old is not None:
            mode = old.mode if mode is None else mode
            uid = old.uid if uid is None else uid
            gid = old.gid if gid is None else gid
            label = self.get_label(real) if label is None else label
        mode = 0o644 if mode is None else mode
        uid = 0 if uid is None else uid
        gid = 0 if gid is None else gid
        host_dir = self.host_path(parent)
        tmp_name = f".{name}.vmtailor-{os.getpid()}.tmp"
        try:
            dfd = os.open(host_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise self._fail("write", path, exc) from None
        created = False
        try:
            fd = os.open(
                tmp_name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=dfd,
            )
            created = True
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
                if label:
                    try:
                        os.setxattr(fd, SELINUX_XATTR, label.encode() + b"\0")
                    except OSError as exc:
                        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                            raise
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp_name, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            created = False  # the name is now the file itself
            os.fsync(dfd)
        except OSError as exc:
            # Only our own temp file: the guest may have put something at that name.
            if created:
                try:
                    os.unlink(tmp_name, dir_fd=dfd)
                except OSError:
                    pass
            raise self._fail("write", path, exc) from None
        finally:
            os.close(dfd)

    def _at_parent(self, path: str):
        """(dir fd of the resolved parent, last name) for operations on the link itself."""
        real = self.resolve_parent(path)
        parent, name = posixpath.split(real)
        if not name:
            raise RootError(f"{path}: cannot operate on the guest's root directory")
        try:
            dfd = os.open(
                self.host_path(parent), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            )
        except OSError as exc:
            raise self._fail("open directory of", path, exc) from None
        return dfd, name

    def mkdir(self, path, mode=0o755, uid=0, gid=0) -> None:
        dfd, name = self._at_parent(path)
        try:
            os.mkdir(name, 0o700, dir_fd=dfd)
            os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
            os.chmod(name, mode, dir_fd=dfd, follow_symlinks=True)
        except OSError as exc:
            raise self._fail("create directory", path, exc) from None
        finally:
            os.close(dfd)

    def symlink(self, target, path) -> None:
        dfd, name = self._at_parent(path)
        try:
            os.symlink(target, name, dir_fd=dfd)
        except OSError as exc:
            raise self._fail("create symlink", path, exc) from None
        except ValueError:  # a NUL byte or a lone surrogate in the target: no OSError
            raise RootError(f"cannot create symlink {path}: bad target {target!r}") from None
        finally:
            os.close(dfd)

    def remove(self, path) -> None:
        dfd, name = self._at_parent(path)
        try:
            st = os.lstat(name, dir_fd=dfd)
            if statmod.S_ISDIR(st.st_mode):
                os.rmdir(name, dir_fd=dfd)
            else:
                os.unlink(name, dir_fd=dfd)
        except OSError as exc:
            raise self._fail("remove", path, exc) from None
        finally:
            os.close(dfd)

    def chmod(self, path, mode) -> None:
        real = self.resolve(path)
        try:
            # `real` has no symlink in it: resolve() followed them all inside the root.
            os.chmod(self.host_path(real), mode)
        except OSError as exc:
            raise self._fail("chmod", path, exc) from None

    def chown(self, path, uid, gid) -> None:
        real = self.resolve(path)
        try:
            os.chown(self.host_path(real), uid, gid, follow_symlinks=False)
        except OSError as exc:
            raise self._fail("chown", path, exc) from None

    def get_label(self, path) -> str | None:
        real = self.resolve(path)
        try:
            raw = os.getxattr(self.host_path(real), SELINUX_XATTR, follow_symlinks=False)
        except OSError:
            return None
        return raw.rstrip(b"\0").decode() or None

    def set_label(self, path, label) -> None:
        real = self.resolve(path)
        try:
            os.setxattr(
                self.host_path(real), SELINUX_XATTR, label.encode() + b"\0", follow_symlinks=False
            )
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                return
            raise self._fail("label", path, exc) from None
