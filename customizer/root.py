"""The guest tree every operation reads and writes through.

A Root resolves every guest path as if the guest's / were the real one: absolute and
relative symlinks, in any component, are followed *inside* the root and can never reach
the host. Writes replace files atomically (temp file, fsync, rename) and keep the owner,
mode and SELinux label of the file they replace.

Writes replace, never modify in place: content, mode and owner changes of a regular file go
to a new inode renamed over the old one, so another name for that inode (a hard link from
outside the guest) never changes. Reads are bounded: the engine parses what it reads, and a
guest's 2 GB /etc/passwd must fail with a clear error, not take the host's memory.
"""

from __future__ import annotations

import os
import posixpath
import stat as statmod
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

from .errors import VmtailorError

MAX_SYMLINKS = 40
SELINUX_XATTR = "security.selinux"
CAPABILITY_XATTR = "security.capability"
# The largest guest file the engine reads whole (passwd, fstab, network configs, …). The
# biggest real ones are a few MB; copies (journal backups, mode/owner changes) stream.
READ_LIMIT = 64 << 20
CHUNK = 1 << 20


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


@dataclass(frozen=True)
class CopyOf:
    """New content taken from a regular file in the guest, streamed, never whole in memory."""

    real: str  # resolved guest path
    path: str  # as the caller named it, for messages


@dataclass(frozen=True)
class Xattrs:
    """The extended attributes a replacement gets: every one the replaced file had but
    `drop` (with `keep`), then `label` as its SELinux label when given."""

    keep: bool = False
    drop: tuple[str, ...] = ()
    label: str | None = None


def temp_name(name: str) -> str:
    """The name a replacement is built under, next to `name`; leftovers match this."""
    return f".{name}.vmtailor-{os.getpid()}.tmp"


def size_text(size: int) -> str:
    """2 GiB, 1.5 MiB — or the bytes when rounding would hide that it is over a round size."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            whole, rest = divmod(size, 1 << shift)
            if rest == 0:
                return f"{whole} {unit}"
            text = f"{size / (1 << shift):.1f}"
            return f"{size} bytes" if float(text) == whole else f"{text} {unit}"
    return f"{size} bytes"


def check_size(path: str, size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise RootError(
            f"cannot read {path} in the guest: {size_text(size)} is over vmtailor's "
            f"{size_text(limit)} limit for files it edits"
        )


def killed_by_chown(mode: int) -> int:
    """The mode bits chown(2) clears on a regular file, for root too (Linux >= 2.2.13):
    setuid always, setgid when group-executable (else it is a locking mark)."""
    return statmod.S_ISUID | (statmod.S_ISGID if mode & statmod.S_IXGRP else 0)


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
    def read_chunks(self, path: str, limit: int | None = None) -> Iterator[bytes]:
        """A regular file's bytes, at most CHUNK at a time; a RootError before the first
        chunk when it is over `limit` bytes, and as soon as it grows over it."""

    @abstractmethod
    def listdir(self, path: str) -> list[str]: ...

    @abstractmethod
    def _replace(
        self,
        real: str,
        path: str,
        action: str,
        content: bytes | CopyOf,
        mode: int,
        uid: int,
        gid: int,
        xattrs: Xattrs,
    ) -> None:
        """Put a new inode at the resolved `real` (a regular file or nothing, in a
        directory): a temp file (temp_name) gets the content, then owner, xattrs and mode
        — chown would clear what comes before it, chmod adjusts a copied ACL as an
        in-place chmod does — and is renamed over `real`."""

    @abstractmethod
    def _set_meta_in_place(
        self, real: str, path: str, mode: int | None, uid: int | None, gid: int | None
    ) -> None:
        """chown, then chmod, of a resolved path that is not a regular file."""

    @abstractmethod
    def mkdir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None: ...

    @abstractmethod
    def symlink(self, target: str, path: str) -> None: ...

    @abstractmethod
    def remove(self, path: str) -> None:
        """Remove a file or symlink (never following it) or an empty directory."""

    @abstractmethod
    def get_label(self, path: str) -> str | None:
        """The SELinux label of a path, or None when it has none."""

    @abstractmethod
    def set_label(self, path: str, label: str) -> None: ...

    @abstractmethod
    def _times_resolved(self, real: str) -> tuple[int, int] | None: ...

    @abstractmethod
    def _set_times_resolved(self, real: str, path: str, atime_ns: int, mtime_ns: int) -> None: ...

    # -- reads and writes, shared by all implementations ----------------------------
    def read_bytes(self, path: str, limit: int | None = READ_LIMIT) -> bytes:
        """A regular file's bytes; over `limit` bytes (None: no limit) is a RootError."""
        with closing(self.read_chunks(path, limit)) as chunks:
            return b"".join(chunks)

    def same_bytes(self, path: str, data: bytes) -> bool:
        """Whether `path` is a regular file holding exactly `data`, compared a chunk at a
        time: a big file that a `files` item rewrites is never read whole."""
        st = self.stat(path)
        if st is None or st.kind != "file" or st.size != len(data):
            return False
        view, offset = memoryview(data), 0
        with closing(self.read_chunks(path)) as chunks:
            for chunk in chunks:
                end = offset + len(chunk)
                if end > len(data) or view[offset:end] != chunk:
                    return False
                offset = end
        return offset == len(data)

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
        had (or 0644 root:root, unlabelled, for a new file). Like a write in place, the new
        inode keeps the replaced file's extended attributes (label, ACL, user.*) but file
        capabilities, which the kernel drops on every write; a given label wins."""
        real = self.resolve(path)
        self._replace(real, path, "write", data, *self._new_meta(real, path, mode, uid, gid, label))

    def copy_file(
        self,
        src: str,
        dst: str,
        mode: int = 0o600,
        uid: int = 0,
        gid: int = 0,
        label: str | None = None,
    ) -> None:
        """write_bytes(dst, <the bytes of src>, …) without holding them: streamed, holes
        kept. No attribute of src comes along."""
        real_src = self.resolve(src)
        real = self.resolve(dst)
        meta = self._new_meta(real, dst, mode, uid, gid, label)
        self._replace(real, dst, "write", CopyOf(real_src, src), *meta)

    def set_meta(
        self, path: str, mode: int | None = None, uid: int | None = None, gid: int | None = None
    ) -> None:
        """Give what `path` resolves to this mode and/or owner, as chown then chmod would.

        A regular file is replaced, not changed: a copy with every extended attribute
        (label, ACL, user.*) gets the new mode and owner and is renamed over it, so
        another name of the old inode — a hard link from outside the guest — keeps what
        it had. As chown(2) would, a new owner clears setuid/setgid (unless a mode is
        given) and file capabilities. Anything else is changed in place: directories
        cannot be hard-linked."""
        real = self.resolve(path)
        st = self._lstat_resolved(real)
        if st is None:
            raise RootError(f"cannot change mode/owner of {path} in the guest: it does not exist")
        if st.kind != "file":
            self._set_meta_in_place(real, path, mode, uid, gid)
            return
        xattrs = Xattrs(keep=True)
        if uid is not None or gid is not None:
            xattrs = Xattrs(keep=True, drop=(CAPABILITY_XATTR,))
            if mode is None:
                mode = st.mode & ~killed_by_chown(st.mode)
        mode = st.mode if mode is None else mode
        uid = st.uid if uid is None else uid
        gid = st.gid if gid is None else gid
        self._replace(
            real, path, "change mode/owner of", CopyOf(real, path), mode, uid, gid, xattrs
        )

    def chmod(self, path: str, mode: int) -> None:
        self.set_meta(path, mode=mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        self.set_meta(path, uid=uid, gid=gid)

    def _new_meta(
        self, real: str, path: str, mode: int | None, uid: int | None, gid: int | None,
        label: str | None,
    ) -> tuple[int, int, int, Xattrs]:  # fmt: skip
        """Mode, owner and xattrs for a file written at resolved `real`: what is given,
        else what the file it replaces had, else 0644 root:root, unlabelled."""
        parent, name = posixpath.split(real)
        if not name:
            raise RootError(f"cannot write {path} in the guest: it is the root directory")
        pst = self._lstat_resolved(parent)
        if pst is None or pst.kind != "dir":
            raise RootError(f"cannot write {path} in the guest: {parent} is not a directory")
        old = self._lstat_resolved(real)
        if old is not None and old.kind != "file":
            raise RootError(f"cannot write {path} in the guest: {real} is a {old.kind}")
        if old is not None:
            mode = old.mode if mode is None else mode
            uid = old.uid if uid is None else uid
            gid = old.gid if gid is None else gid
        return (
            0o644 if mode is None else mode,
            0 if uid is None else uid,
            0 if gid is None else gid,
            Xattrs(keep=True, drop=(CAPABILITY_XATTR,), label=label or None),
        )

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

    def times(self, path: str) -> tuple[int, int] | None:
        """(atime, mtime) in nanoseconds of the path itself (a last symlink not followed),
        or None when it does not exist."""
        return self._times_resolved(self.resolve_parent(path))

    def set_times(self, path: str, atime_ns: int, mtime_ns: int) -> None:
        """Give the path itself (a last symlink not followed; "/" included) these times:
        revert puts back what a backup tool or virt-diff compares, besides the bytes."""
        self._set_times_resolved(self.resolve_parent(path), path, atime_ns, mtime_ns)

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
