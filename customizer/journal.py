"""The journal inside the guest: what vmtailor changed, with a copy of every original.

Layout, under /var/lib/vmtailor/ in the guest:
    journal.json        state, config digest, and one entry per path ever touched
    originals/NNNN      the bytes of a file as it was before vmtailor first changed it

Every step is atomic and the original of a path is saved *before* the path is changed,
so a run cut off anywhere can be re-run to completion (operations are "ensure" style and
plan against what is there) or reverted (every touched path has its entry first).
"""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import VmtailorError
from .plan import Change
from .root import Root, RootError

JOURNAL_DIR = "/var/lib/vmtailor"
JOURNAL_FILE = f"{JOURNAL_DIR}/journal.json"
ORIGINALS = f"{JOURNAL_DIR}/originals"
FORMAT = 1

# Called with a step name after each step is on disk; tests raise from it to cut a run.
FaultHook = Callable[[str], None]


class JournalError(VmtailorError):
    pass


def _no_fault(step: str) -> None:
    pass


@dataclass
class RevertResult:
    """What a revert put back, removed and had to keep."""

    restored: list[str]
    removed: list[str]
    kept: list[str]  # directories vmtailor made that now hold files it did not make


class Journal:
    def __init__(self, root: Root, fault: FaultHook | None = None):
        self.root = root
        self.fault = fault or _no_fault
        self.data = self.load()

    # -- reading --------------------------------------------------------------------
    def load(self) -> dict | None:
        try:
            if not self.root.is_file(JOURNAL_FILE):
                return None
            data = json.loads(self.root.read_text(JOURNAL_FILE))
        except (RootError, ValueError) as exc:
            raise JournalError(f"cannot read the guest's {JOURNAL_FILE}: {exc}") from None
        if data.get("format") != FORMAT:
            raise JournalError(f"{JOURNAL_FILE} has unknown format {data.get('format')!r}")
        return data

    @property
    def state(self) -> str | None:
        return self.data["state"] if self.data else None

    def unfinished_creations(self) -> frozenset[str]:
        """Paths a cut-off run created (empty unless the last run did not finish)."""
        if not self.data or self.data["state"] != "applying":
            return frozenset()
        return frozenset(e["path"] for e in self.data["entries"] if e["kind"] == "absent")

    def applied_digest(self) -> str | None:
        if self.data and self.data["state"] == "applied":
            return self.data["config_digest"]
        return None

    # -- writing --------------------------------------------------------------------
    def _save(self) -> None:
        text = json.dumps(self.data, indent=1, sort_keys=True) + "\n"
        self.root.write_bytes(JOURNAL_FILE, text.encode(), mode=0o600, uid=0, gid=0)

    def _ensure_dir(self, path: str) -> list[str]:
        made = []
        missing = []
        cur = path
        while not self.root.lexists(cur):
            missing.append(cur)
            cur = posixpath.dirname(cur)
        for d in reversed(missing):
            self.root.mkdir(d, 0o700 if d.startswith(JOURNAL_DIR) else 0o755)
            made.append(d)
        return made

    def begin(self, config_digest: str) -> None:
        made = self._ensure_dir(ORIGINALS)
        if self.data is None:
            self.data = {
                "format": FORMAT,
                "entries": [],
                # directories made for the journal itself, removed again by revert
                "journal_dirs": [d for d in made if not d.startswith(JOURNAL_DIR)],
            }
        self.data.update(
            state="applying",
            config_digest=config_digest,
            started=int(time.time()),
            last_changes=[],
        )
        self._save()
        self.fault("begin")

    def _entry(self, path: str) -> dict | None:
        for entry in self.data["entries"]:
            if entry["path"] == path:
                return entry
        return None

    def record(self, path: str) -> None:
        """Save what `path` is now, unless an earlier run already saved its original."""
        if self._entry(path) is not None:
            return
        st = self.root.lstat(path)
        entry: dict = {"path": path, "kind": st.kind if st else "absent"}
        if st is not None:
            entry.update(mode=st.mode, uid=st.uid, gid=st.gid)
        if st is not None and st.kind == "file":
            index = len(self.data["entries"])
            backup = f"{ORIGINALS}/{index:05d}"
            self.root.copy_file(path, backup, mode=0o600, uid=0, gid=0)  # streamed
            entry["backup"] = backup
            entry["label"] = self.root.get_label(path)
            self.fault(f"backup {path}")
        elif st is not None and st.kind == "symlink":
            entry["target"] = self.root.readlink(path)
        elif st is not None and st.kind == "dir":
            entry["label"] = self.root.get_label(path)
        elif st is not None:
            raise JournalError(f"{path} in the guest is a special file; vmtailor won't replace it")
        self.data["entries"].append(entry)
        self._save()
        self.fault(f"record {path}")

    def apply(self, change: Change) -> None:
        self.record(change.path)
        _apply_change(self.root, change)
        self.data["last_changes"].append([change.action, change.path])
        self.fault(f"apply {change.path}")

    def finish(self) -> None:
        self.data["state"] = "applied"
        self.data["finished"] = int(time.time())
        self._save()
        self.fault("finish")

    # -- undoing --------------------------------------------------------------------
    def revert(self) -> RevertResult:
        if self.data is None:
            raise JournalError(
                f"nothing to revert: the guest has no {JOURNAL_FILE}",
                hint="vmtailor has not changed this guest (or it was reverted already)",
            )
        result = RevertResult([], [], [])
        for entry in reversed(self.data["entries"]):
            _restore(self.root, entry, result)
        journal_dirs = self.data.get("journal_dirs", [])
        _remove_tree(self.root, JOURNAL_DIR)
        for d in reversed(journal_dirs):
            if self.root.is_dir(d) and not self.root.listdir(d):
                self.root.remove(d)
        self.data = None
        return result


def _apply_change(root: Root, change: Change) -> None:
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


def _restore(root: Root, entry: dict, result: RevertResult) -> None:
    path, kind = entry["path"], entry["kind"]
    current = root.lstat(path)
    if kind == "absent":
        if current is None:
            return
        if current.kind == "dir" and root.listdir(path):
            result.kept.append(path)
            return
        root.remove(path)
        result.removed.append(path)
        return
    if current is not None and current.kind != kind:
        if current.kind == "dir":
            _remove_tree(root, path)
        else:
            root.remove(path)
        current = None
    if kind == "file":
        root.copy_file(
            entry["backup"], path, entry["mode"], entry["uid"], entry["gid"], entry.get("label")
        )
        # copy_file keeps an existing file's label when given None: restore exactly
        if entry.get("label"):
            root.set_label(path, entry["label"])
    elif kind == "symlink":
        if current is not None:
            root.remove(path)
        root.symlink(entry["target"], path)
    elif kind == "dir":
        if current is None:
            root.mkdir(path, entry["mode"], entry["uid"], entry["gid"])
        else:
            root.chown(path, entry["uid"], entry["gid"])
            root.chmod(path, entry["mode"])
    result.restored.append(path)


def _remove_tree(root: Root, path: str) -> None:
    st = root.lstat(path)
    if st is None:
        return
    if st.kind == "dir":
        for name in root.listdir(path):
            _remove_tree(root, f"{path}/{name}")
    root.remove(path)
