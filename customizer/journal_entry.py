"""What one journal entry does to the guest tree: a change applied after its entry is
saved, and on revert the entry checked against the tree and put back.

Every function here takes an entry journal_schema has already checked; the checks here are
the ones that need the tree (symlinks on the way, backups and their sha256, what a
directory holds), made before a revert's first change and again as it goes.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass

from .journal_schema import JOURNAL_FILE, MAX_ENTRIES, JournalError
from .plan import Change
from .root import Root

# The temp file Root.write_bytes writes and renames over its target (".NAME.vmtailor-PID.tmp"
# in the target's directory): a run killed between the two leaves it behind.
TEMP_NAME = re.compile(r"\A\..+\.vmtailor-[0-9]+\.tmp\Z", re.S)


@dataclass
class RevertResult:
    """What a revert put back, removed and had to keep."""

    restored: list[str]
    removed: list[str]
    kept: list[str]  # directories vmtailor made that now hold files it did not make


def refuse_entry(path: str, why: str) -> JournalError:
    return JournalError(
        f"journal entry {path!r}: {why}; nothing was changed",
        hint=f"the guest's {JOURNAL_FILE} or what it names was changed outside vmtailor",
    )


def plain_dir(root: Root, path: str) -> bool:
    st = root.lstat(path)
    return st is not None and st.kind == "dir"


def is_temp(root: Root, path: str) -> bool:
    """A killed write's temp file, or a killed mkdir's folder (empty: nothing is put in one
    before it has its name)."""
    if not TEMP_NAME.match(posixpath.basename(path)):
        return False
    st = root.lstat(path)
    if st is not None and st.kind == "dir":
        return not root.listdir(path)
    return st is not None and st.kind == "file"


def file_digest(root: Root, path: str) -> tuple[str, int]:
    """sha256 and size of a guest file, read a chunk at a time (backups have no size limit)."""
    h, size = hashlib.sha256(), 0
    for chunk in root.read_chunks(path):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def check_backup(root: Root, entry: dict) -> None:
    """Refuse a file entry unless its own backup is there, checked against its sha256."""
    path, backup = entry["path"], entry["backup"]
    if root.resolve_parent(backup) != backup:
        raise refuse_entry(path, f"its backup {backup} is reached through a symbolic link")
    st = root.lstat(backup)
    if st is None or st.kind != "file":
        raise refuse_entry(path, f"its backup {backup} is missing or not a regular file")
    if st.size != entry["size"]:
        raise refuse_entry(path, f"its backup {backup} does not have its recorded size")
    if file_digest(root, backup) != (entry["sha256"], entry["size"]):
        raise refuse_entry(path, f"its backup {backup} does not match its recorded sha256")


def only_created_below(root: Root, top: str, created: frozenset[str]) -> None:
    """Refuse to replace a directory unless vmtailor created everything in it (each of
    which its own entry removes first) — never a recursive removal of the guest's files."""
    pending, seen = [top], 0
    while pending:
        d = pending.pop()
        for name in root.listdir(d):
            path = f"{d}/{name}"
            seen += 1
            if seen > MAX_ENTRIES:
                raise refuse_entry(top, "it is a directory holding too many files")
            if path in created:
                st = root.lstat(path)
                if st is not None and st.kind == "dir":
                    pending.append(path)
            elif not is_temp(root, path):
                raise refuse_entry(top, f"it is a directory holding {path}, not made by vmtailor")


def remove_if_empty(root: Root, path: str, result: RevertResult, report: bool = True) -> None:
    st = root.lstat(path)
    if st is None or st.kind != "dir":
        return
    if root.listdir(path):
        result.kept.append(path)
        return
    root.remove(path)
    if report:
        result.removed.append(path)


def apply_change(root: Root, change: Change) -> None:
    new, path = change.new, change.path
    old = root.lstat(path)
    if new.kind == "absent":
        if old is not None:
            root.remove(path)
        return
    if new.kind == "symlink":
        if old is not None:
            root.remove(path)
        root.symlink(new.target, path)
        return
    if old is not None and old.kind != new.kind:
        root.remove(path)
        old = None
    if new.kind == "dir":
        if old is None:
            root.mkdir(path, _or(new.mode, 0o755), _or(new.uid, 0), _or(new.gid, 0))
        else:
            _set_meta(root, path, old, new.mode, new.uid, new.gid)
        return
    if new.data is not None:
        root.write_bytes(path, new.data, new.mode, new.uid, new.gid)
    elif old is not None:
        _set_meta(root, path, old, new.mode, new.uid, new.gid)


def _or(value, default):
    return default if value is None else value


def _set_meta(root: Root, path: str, old, mode, uid, gid) -> None:
    owner_changes = (uid is not None and uid != old.uid) or (gid is not None and gid != old.gid)
    if owner_changes:
        # chown clears setuid/setgid bits, so the mode is given with it
        root.set_meta(path, _or(mode, old.mode), _or(uid, old.uid), _or(gid, old.gid))
    elif mode is not None and mode != old.mode:
        root.set_meta(path, mode)


def restore(root: Root, entry: dict, result: RevertResult) -> None:
    """Put one entry back. Idempotent: what is restored already is restored again, the same."""
    path, kind = entry["path"], entry["kind"]
    current = root.lstat(path)
    if kind == "absent":
        if current is None:
            return
        if current.kind == "dir":
            remove_if_empty(root, path, result)
            return
        root.remove(path)
        result.removed.append(path)
        return
    if current is not None and current.kind != kind:
        if current.kind == "dir" and root.listdir(path):
            # verify() saw only what vmtailor created below; anything else stays
            raise JournalError(f"cannot restore {path}: a directory holding other files is there")
        root.remove(path)
        current = None
    if kind == "file":
        check_backup(root, entry)
        root.copy_file(
            entry["backup"], path, entry["mode"], entry["uid"], entry["gid"], entry["label"]
        )
        # copy_file keeps an existing file's label when given None: restore exactly
        if entry["label"]:
            root.set_label(path, entry["label"])
    elif kind == "symlink":
        if current is None or root.readlink(path) != entry["target"]:
            if current is not None:
                root.remove(path)
            root.symlink(entry["target"], path)
    elif kind == "dir":
        if current is None:
            root.mkdir(path, entry["mode"], entry["uid"], entry["gid"])
        else:
            root.chown(path, entry["uid"], entry["gid"])
            root.chmod(path, entry["mode"])
    if "mtime_ns" in entry:  # format 2 journals have no times
        root.set_times(path, entry["atime_ns"], entry["mtime_ns"])
    result.restored.append(path)
