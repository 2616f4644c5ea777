"""A Root over a libguestfs handle: the engine customizes an offline image unchanged.

The guest's filesystems are mounted in the appliance (at "/", "/boot", …, as its fstab
says) by whoever owns the handle; every path here is a guest path. Symlinks are resolved
by Root.resolve() exactly as for a local directory. Writes go to a temp file in the same
directory and are renamed over the target inside the appliance, so they are atomic there.

`top` puts the guest's / somewhere below the appliance's: probing looks at every btrfs
subvolume of one mount that way, its absolute symlinks still resolving inside the subvolume.
"""

from __future__ import annotations

import os
import posixpath
import stat as statmod
import tempfile
from collections.abc import Iterator

from ..customizer.root import (
    SELINUX_XATTR,
    CopyOf,
    Root,
    RootError,
    Stat,
    _kind,
    check_size,
    temp_name,
)

# guestfs messages are at most 4 MB: larger files go in chunks (reads) or as uploads
WRITE_LIMIT = 1 << 20
READ_CHUNK = 1 << 20


def error_text(exc: Exception) -> str:
    text = str(exc)
    # libguestfs prefixes its messages with the call name: keep the reason only
    return text.split(": ", 1)[1] if ": " in text else text


class GuestfsRoot(Root):
    def __init__(self, g, name: str = "image", top: str = "/"):
        self.g = g
        self.name = name
        self.top = top.rstrip("/")
        # lstat/readlink results for this customization; mutations drop what they touch.
        # A resolve costs one lstat per path component, so this saves most round trips.
        self._stat_cache: dict[str, Stat | None] = {}
        self._link_cache: dict[str, str] = {}
        # every guest path changed through this Root: the owner of the handle flushes the
        # filesystems they are on (see offline.mount.needs_sync)
        self.changed: set[str] = set()

    def _forget(self, path: str) -> None:
        """Called for every path a mutation touches."""
        self.changed.add(path)
        prefix = path.rstrip("/") + "/"
        for cache in (self._stat_cache, self._link_cache):
            for key in [k for k in cache if k == path or k.startswith(prefix)]:
                del cache[key]

    def _at(self, path: str) -> str:
        """The appliance path of a resolved guest path."""
        return self.top + path if self.top else path

    def _fail(self, action: str, path: str, exc: Exception) -> RootError:
        return RootError(f"cannot {action} {path} in the guest: {error_text(exc)}")

    def _lstat_resolved(self, path: str) -> Stat | None:
        if path in self._stat_cache:
            return self._stat_cache[path]
        try:
            st = self.g.lstatns(self._at(path))
        except RuntimeError as exc:
            text = str(exc)
            if "No such file" in text or "Not a directory" in text:
                self._stat_cache[path] = None
                return None
            raise self._fail("stat", path, exc) from None
        mode = st["st_mode"]
        result = Stat(_kind(mode), statmod.S_IMODE(mode), st["st_uid"], st["st_gid"],
                      st["st_size"])  # fmt: skip
        self._stat_cache[path] = result
        return result

    def _times_resolved(self, real: str) -> tuple[int, int] | None:
        # uncached: a directory's mtime changes with what is made in it
        try:
            st = self.g.lstatns(self._at(real))
        except RuntimeError as exc:
            text = str(exc)
            if "No such file" in text or "Not a directory" in text:
                return None
            raise self._fail("stat", real, exc) from None
        return (st["st_atime_sec"] * 10**9 + st["st_atime_nsec"],
                st["st_mtime_sec"] * 10**9 + st["st_mtime_nsec"])  # fmt: skip

    def _set_times_resolved(self, real: str, path: str, atime_ns: int, mtime_ns: int) -> None:
        # utimens is utimensat(AT_SYMLINK_NOFOLLOW) in the appliance: a symlink gets the
        # times, not what it points to
        a_sec, a_nsec = divmod(atime_ns, 10**9)
        m_sec, m_nsec = divmod(mtime_ns, 10**9)
        try:
            self.g.utimens(self._at(real), a_sec, a_nsec, m_sec, m_nsec)
        except RuntimeError as exc:
            raise self._fail("set the times of", path, exc) from None
        finally:
            self.changed.add(real)

    def _readlink_resolved(self, path: str) -> str:
        if path not in self._link_cache:
            try:
                self._link_cache[path] = self.g.readlink(self._at(path))
            except RuntimeError as exc:
                raise self._fail("read link", path, exc) from None
        return self._link_cache[path]

    def _file(self, real: str, path: str) -> Stat:
        st = self._lstat_resolved(real)
        if st is None or st.kind != "file":
            raise RootError(f"cannot read {path} in the guest: not a regular file")
        return st

    def read_chunks(self, path: str, limit: int | None = None) -> Iterator[bytes]:
        real = self.resolve(path)
        st = self._file(real, path)
        check_size(path, st.size, limit)
        # pread is one message and a syscall in the appliance; read_file goes through a
        # file transfer, ~100 times slower under TCG for the small files the engine reads.
        offset = 0
        while True:
            try:
                chunk = self.g.pread(self._at(real), min(max(st.size - offset, 1), READ_CHUNK),
                                     offset)  # fmt: skip
            except RuntimeError as exc:
                raise self._fail("read", path, exc) from None
            if not chunk:
                return
            offset += len(chunk)
            check_size(path, offset, limit)  # it may have grown since the stat
            yield chunk

    def listdir(self, path: str) -> list[str]:
        real = self.resolve(path)
        try:
            return sorted(self.g.ls(self._at(real)))
        except RuntimeError as exc:
            raise self._fail("list", path, exc) from None

    def _replace(self, real, path, action, content, mode, uid, gid, xattrs) -> None:
        parent, name = posixpath.split(real)
        tmp = posixpath.join(parent, temp_name(name))
        at_tmp = self._at(tmp)
        copy = isinstance(content, CopyOf)
        size = self._file(content.real, content.path).size if copy else len(content)
        if self._lstat_resolved(tmp) is not None:
            # the guest's, not ours: g.write would follow a symlink there
            raise RootError(f"cannot {action} {path} in the guest: {tmp} is in the way")
        created = False
        try:
            # Empty and private before any byte lands: the appliance creates files 0644,
            # and a copy of /etc/shadow left by a cut-off run must not be world-readable.
            self.g.write(at_tmp, b"")
            created = True
            self.g.chmod(0o600, at_tmp)
            if copy:
                # sparse: holes stay holes; it leaves trailing zeros out, the size puts them back
                self.g.copy_file_to_file(self._at(content.real), at_tmp, sparse=True)
                self.g.truncate_size(at_tmp, size)
            else:
                self._put(at_tmp, content)
            self.g.lchown(uid, gid, at_tmp)
            if xattrs.keep and self._lstat_resolved(real) is not None:
                # in the appliance, byte for byte: lsetxattr takes no binary values
                self.g.copy_attributes(self._at(real), at_tmp, xattributes=True)
                for key in xattrs.drop:
                    self._remove_xattr(at_tmp, key)
            if xattrs.label:
                self._set_label_at(at_tmp, xattrs.label)
            self.g.chmod(mode, at_tmp)
            self.g.rename(at_tmp, self._at(real))  # rename(2); mv runs a process
        except RuntimeError as exc:
            if created:
                try:
                    self.g.rm_f(at_tmp)
                except RuntimeError:
                    pass
            raise self._fail(action, path, exc) from None
        finally:
            self._forget(tmp)
            self._forget(real)

    def _put(self, at: str, data: bytes) -> None:
        # One guestfs message carries at most a few MB; a bigger file goes as an upload.
        if len(data) <= WRITE_LIMIT:
            self.g.write(at, data)
            return
        with tempfile.NamedTemporaryFile(prefix="vmtailor-upload-") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            self.g.upload(f.name, at)

    def _link_path(self, path: str) -> str:
        real = self.resolve_parent(path)
        if real == "/":
            raise RootError(f"{path}: cannot operate on the guest's root directory")
        return real

    def mkdir(self, path, mode=0o755, uid=0, gid=0) -> None:
        real = self._link_path(path)
        try:
            self.g.mkdir_mode(self._at(real), 0o700)
            self.g.lchown(uid, gid, self._at(real))
            self.g.chmod(mode, self._at(real))
        except RuntimeError as exc:
            raise self._fail("create directory", path, exc) from None
        finally:
            self._forget(real)

    def symlink(self, target, path) -> None:
        real = self._link_path(path)
        try:
            self.g.ln_s(target, self._at(real))
        except RuntimeError as exc:
            raise self._fail("create symlink", path, exc) from None
        finally:
            self._forget(real)

    def remove(self, path) -> None:
        real = self._link_path(path)
        st = self._lstat_resolved(real)
        try:
            if st is not None and st.kind == "dir":
                self.g.rmdir(self._at(real))
            else:
                self.g.rm(self._at(real))
        except RuntimeError as exc:
            raise self._fail("remove", path, exc) from None
        finally:
            self._forget(real)

    def _set_meta_in_place(self, real, path, mode, uid, gid) -> None:
        try:
            if uid is not None or gid is not None:
                self.g.lchown(
                    -1 if uid is None else uid, -1 if gid is None else gid, self._at(real)
                )
            if mode is not None:
                self.g.chmod(mode, self._at(real))
        except RuntimeError as exc:
            raise self._fail("change mode/owner of", path, exc) from None
        finally:
            self._forget(real)

    def is_mount_point(self, path: str) -> bool:
        # The appliance mounted the guest's filesystems itself: its table is the truth, and
        # a forged journal naming /boot must not get it emptied or replaced.
        real = self.resolve_parent(path)
        if real == "/":
            return True
        try:
            mounted = set(self.g.mountpoints().values())
        except RuntimeError as exc:
            raise self._fail("list the mount points for", path, exc) from None
        return self._at(real) in mounted

    def get_label(self, path) -> str | None:
        real = self.resolve(path)
        try:
            raw = self.g.lgetxattr(self._at(real), SELINUX_XATTR)
        except RuntimeError:
            return None
        return raw.rstrip(b"\0").decode() or None

    def set_label(self, path, label) -> None:
        real = self.resolve(path)
        self.changed.add(real)
        try:
            self._set_label_at(self._at(real), label)
        except RuntimeError as exc:
            raise self._fail("label", path, exc) from None

    def _remove_xattr(self, at: str, key: str) -> None:
        try:
            self.g.lremovexattr(key, at)
        except RuntimeError as exc:
            if "No data available" not in str(exc):  # ENODATA: it had none
                raise

    def _set_label_at(self, at: str, label: str) -> None:
        # The binding takes a str and refuses a NUL in it: the label goes without the
        # NUL a local write adds; the kernel and get_label take either.
        if "\0" in label:  # from the guest's journal, say; no label holds one
            raise RuntimeError(f"lsetxattr: bad SELinux label {label!r}")
        try:
            self.g.lsetxattr(SELINUX_XATTR, label, len(label.encode()), at)
        except RuntimeError as exc:
            if "Operation not supported" not in str(exc):
                raise
