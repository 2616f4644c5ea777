"""A guest tree in a local directory: the initrd's /sysroot, or a volume already mounted
on a utility server. Every call works from directory fds of paths Root.resolve() has
resolved inside the guest, never following a link the guest could swap in meanwhile."""

from __future__ import annotations

import errno
import os
import posixpath
import stat as statmod
from collections.abc import Iterator

from .root import (
    CHUNK,
    SELINUX_XATTR,
    CopyOf,
    Root,
    RootError,
    Stat,
    Xattrs,
    _kind,
    check_size,
    temp_name,
)


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

    def _times_resolved(self, real: str) -> tuple[int, int] | None:
        try:
            st = os.lstat(self.host_path(real))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._fail("stat", real, exc) from None
        return st.st_atime_ns, st.st_mtime_ns

    def _set_times_resolved(self, real: str, path: str, atime_ns: int, mtime_ns: int) -> None:
        # `real` has no symlink before its last component (resolve_parent): only the last
        # one must not be followed
        try:
            os.utime(self.host_path(real), ns=(atime_ns, mtime_ns), follow_symlinks=False)
        except (OSError, OverflowError) as exc:
            why = os.strerror(exc.errno or 0) if isinstance(exc, OSError) else "out of range"
            raise RootError(f"cannot set the times of {path} in the guest: {why}") from None

    def _readlink_resolved(self, path: str) -> str:
        try:
            return os.readlink(self.host_path(path))
        except OSError as exc:
            raise self._fail("read link", path, exc) from None

    def _open_file(self, real: str, path: str) -> int:
        """A read-only fd of the regular file at resolved `real`."""
        # Look before opening: opening a FIFO blocks until a writer comes, and opening a
        # device node the guest planted opens the *host's* device (a watchdog arms on
        # open). O_NONBLOCK and O_NOCTTY, and the fstat below, are for what changes meanwhile.
        st = self._lstat_resolved(real)
        if st is not None and st.kind != "file":
            raise RootError(f"cannot read {path} in the guest: not a regular file")
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        try:
            fd = _open_noatime(self.host_path(real), flags)
        except OSError as exc:
            raise self._fail("open", path, exc) from None
        try:
            if not statmod.S_ISREG(os.fstat(fd).st_mode):
                raise RootError(f"cannot read {path} in the guest: not a regular file")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def read_chunks(self, path: str, limit: int | None = None) -> Iterator[bytes]:
        fd = self._open_file(self.resolve(path), path)
        try:
            check_size(path, os.fstat(fd).st_size, limit)
            total = 0
            while chunk := os.read(fd, CHUNK):
                total += len(chunk)
                check_size(path, total, limit)  # it may have grown since the fstat
                yield chunk
        except OSError as exc:
            raise self._fail("read", path, exc) from None
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
            fd = _open_noatime(self.host_path(real), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                return sorted(os.listdir(fd))
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._fail("list", path, exc) from None

    def _replace(self, real, path, action, content, mode, uid, gid, xattrs) -> None:
        parent, name = posixpath.split(real)
        src = self._open_file(content.real, content.path) if isinstance(content, CopyOf) else None
        tmp_name = temp_name(name)
        try:
            dfd = os.open(
                self.host_path(parent), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            )
        except OSError as exc:
            if src is not None:
                os.close(src)
            raise self._fail(action, path, exc) from None
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
                if src is None:
                    view = memoryview(content)
                    while view:
                        view = view[os.write(fd, view) :]
                else:
                    copy_fd(src, fd)
                os.fchown(fd, uid, gid)
                for key, value in self._xattrs_for(real, xattrs).items():
                    try:
                        os.setxattr(fd, key, value)
                    except OSError as exc:
                        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                            raise
                os.fchmod(fd, mode)
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
            raise self._fail(action, path, exc) from None
        finally:
            os.close(dfd)
            if src is not None:
                os.close(src)

    def _xattrs_for(self, real: str, spec: Xattrs) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        if spec.keep:
            host = self.host_path(real)
            try:
                for key in os.listxattr(host, follow_symlinks=False):
                    out[key] = os.getxattr(host, key, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOENT):
                    raise
            for key in spec.drop:
                out.pop(key, None)
        if spec.label:
            out[SELINUX_XATTR] = spec.label.encode() + b"\0"
        return out

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
        # Made under the temp name, given its owner and mode, then renamed: a kill between
        # mkdir and chmod must not leave a root-owned 0700 folder that a re-run takes as
        # finished. An empty leftover under the temp name is swept like a temp file.
        dfd, name = self._at_parent(path)
        tmp = temp_name(name)
        made = False
        try:
            if _lexists_at(dfd, name):  # rename() would replace an empty directory there
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))
            os.mkdir(tmp, 0o700, dir_fd=dfd)
            made = True
            os.chown(tmp, uid, gid, dir_fd=dfd, follow_symlinks=False)
            os.chmod(tmp, mode, dir_fd=dfd, follow_symlinks=True)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            made = False
        except OSError as exc:
            if made:
                try:
                    os.rmdir(tmp, dir_fd=dfd)
                except OSError:
                    pass
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

    def _set_meta_in_place(self, real, path, mode, uid, gid) -> None:
        host = self.host_path(real)
        try:
            if uid is not None or gid is not None:
                os.chown(host, _or(uid, -1), _or(gid, -1), follow_symlinks=False)
            if mode is not None:
                # `real` has no symlink in it: resolve() followed them all inside the root.
                os.chmod(host, mode)
        except OSError as exc:
            raise self._fail("change mode/owner of", path, exc) from None

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


def _open_noatime(host: str, flags: int) -> int:
    """O_NOATIME: reading the guest (planning, listing, backups) leaves its access times
    as they were, so the atime a journal records and a revert restores is the guest's own.
    Only the file's owner or root may ask for it: others read without it."""
    try:
        return os.open(host, flags | os.O_NOATIME | os.O_CLOEXEC)
    except PermissionError:
        return os.open(host, flags | os.O_CLOEXEC)


def _lexists_at(dfd: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=dfd)
    except FileNotFoundError:
        return False
    return True


def copy_fd(src: int, dst: int) -> None:
    """Copy a regular file's data extents from fd to fd, holes left as holes, CHUNK at a
    time: a 2 GB sparse file costs neither memory nor 2 GB of writes."""
    size = os.fstat(src).st_size
    offset = 0
    while offset < size:
        try:
            start = os.lseek(src, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: only a hole is left
                raise
            break
        end = os.lseek(src, start, os.SEEK_HOLE)
        os.lseek(src, start, os.SEEK_SET)
        os.lseek(dst, start, os.SEEK_SET)
        while start < end:
            chunk = os.read(src, min(CHUNK, end - start))
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(dst, view) :]
            start += len(chunk)
        offset = end
    os.ftruncate(dst, size)


def _or(value, default):
    return default if value is None else value
