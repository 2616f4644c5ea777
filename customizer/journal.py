"""The journal inside the guest: what vmtailor changed, with a copy of every original.

Layout, under /var/lib/vmtailor/ in the guest:
    journal.json        state, config digest, and one entry per path ever touched
    originals/NNNNN     the bytes of a file as it was before vmtailor first changed it

Every step is atomic and the original of a path is saved *before* the path is changed,
so a run cut off anywhere can be re-run to completion (operations are "ensure" style and
plan against what is there) or reverted (every touched path has its entry first).

The journal is read back from the guest, so it is untrusted input: journal_schema checks
every field, and before its first change a revert checks every entry against the tree
(no symlink on the way, no mount point, backups that match their sha256, no directory
removed that holds anything vmtailor did not create). One entry that fails: a one-line
JournalError naming it, and nothing changed.

A revert marks the journal "reverting", restores every entry (each restore is idempotent,
so a revert cut off anywhere is simply run again), marks it "reverted", removes the
originals and removes journal.json last: until then a second revert finds what it needs.

Times: backup tools and virt-diff compare mtimes, so a revert puts back the atime and mtime
of every path it restores (recorded with its entry) and of every folder whose content
vmtailor changed (dir_times: recorded before the first change in it, so restored after the
last). The folders above the journal's own (/, /var, /var/lib) change when the journal
itself is made and removed: their times travel in DIRS_MARKER, written before the first
and removed before the last of those changes. What no record can cover is the one syscall
between removing DIRS_MARKER and putting back the times of /, where the marker was.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Callable, Iterable

from . import mountpoints
from .journal_entry import (
    TEMP_NAME,
    RevertResult,
    apply_change,
    check_backup,
    file_digest,
    is_temp,
    only_created_below,
    plain_dir,
    refuse_entry,
    remove_if_empty,
    restore,
)
from .journal_schema import (
    BACKUP_NAME,
    FORMAT,
    JOURNAL_DIR,
    JOURNAL_FILE,
    JOURNAL_PARENTS,
    MAX_ENTRIES,
    MAX_JOURNAL_BYTES,
    MAX_TIME,
    MIN_TIME,
    ORIGINALS,
    JournalError,
    check_path,
    digest,
    is_bookkeeping,
    parse,
)
from .plan import Change
from .root import Root, RootError

__all__ = [
    "FORMAT", "JOURNAL_DIR", "JOURNAL_FILE", "ORIGINALS", "TEMP_NAME", "Journal", "JournalError",
    "RevertResult",
]  # fmt: skip

# Called with a step name after each step is on disk; tests raise from it to cut a run.
FaultHook = Callable[[str], None]

# {"dirs": [...], "times": {folder: [atime_ns, mtime_ns]}}: the folders vmtailor makes for
# its journal (/var, /var/lib in a guest that had none) and the times of those above it that
# the journal's making and removal change. Written by a first apply before it makes any of
# them, folded into journal.json; written again by a revert before it removes
# journal.json, and removed after them. (An older vmtailor wrote only the list of folders.)
DIRS_MARKER = "/.vmtailor-revert-dirs.json"
MAX_MARKER = 4096
# The folders whose times the journal's own folder changes, deepest last.
TAIL_DIRS = ("/", *JOURNAL_PARENTS)


def _no_fault(step: str) -> None:
    pass


class Journal:
    def __init__(self, root: Root, fault: FaultHook | None = None):
        self.root = root
        self.fault = fault or _no_fault
        self.data = self.load()
        self._index = {e["path"]: e for e in self.data["entries"]} if self.data else {}

    # -- reading --------------------------------------------------------------------
    def load(self) -> dict | None:
        try:
            real = self.root.resolve_parent(JOURNAL_FILE)
            if real != JOURNAL_FILE:
                # Not vmtailor's journal wherever it leads; begin() refuses to write there.
                return None
            st = self.root.lstat(JOURNAL_FILE)
            if st is None:
                return None
            if st.kind != "file":
                raise JournalError(f"{JOURNAL_FILE} in the guest is a {st.kind}, not a file")
            if st.size > MAX_JOURNAL_BYTES:
                raise JournalError(f"{JOURNAL_FILE} in the guest is too large ({st.size} bytes)")
            raw = self.root.read_bytes(JOURNAL_FILE)
        except RootError as exc:
            raise JournalError(f"cannot read the guest's {JOURNAL_FILE}: {exc}") from None
        data = parse(raw)
        if data["digest"] != digest(data):
            raise JournalError(
                f"{JOURNAL_FILE} was modified outside vmtailor (its digest does not match)",
                hint="restore it from a backup of the guest, or remove /var/lib/vmtailor "
                "by hand to forget what vmtailor changed",
            )
        return data

    @property
    def state(self) -> str | None:
        return self.data["state"] if self.data else None

    def unfinished_creations(self) -> frozenset[str]:
        """Paths a cut-off run created (empty unless the last run did not finish)."""
        if not self.data or self.data["state"] != "applying":
            return frozenset()
        return frozenset(e["path"] for e in self.data["entries"] if e["kind"] == "absent")

    def secret_paths(self) -> frozenset[str]:
        """Paths an earlier run wrote as secret: their content is never shown in a diff."""
        if not self.data:
            return frozenset()
        return frozenset(e["path"] for e in self.data["entries"] if e.get("secret"))

    def applied_digest(self) -> str | None:
        if self.data and self.data["state"] == "applied":
            return self.data["config_digest"]
        return None

    # -- checks before anything is written -------------------------------------------
    def check_appliable(self) -> None:
        """Before an apply writes: the journal must be one a revert could carry out."""
        if self.state in ("reverting", "reverted"):
            raise JournalError(
                "a revert of this guest was cut off before it finished",
                hint="run `vmtailor revert` again to finish it, then apply",
            )
        self.verify()

    def check_changes(self, changes: Iterable[Change]) -> None:
        """Refuse, before the first write, a change a revert would have to refuse."""
        for change in changes:
            path = change.path
            try:
                check_path(path)
            except JournalError:
                raise JournalError(f"vmtailor won't journal {path!r}: not a path below /") from None
            why = None
            if is_bookkeeping(path):
                why = f"it is vmtailor's own folder {JOURNAL_DIR}"
            elif JOURNAL_DIR.startswith(path + "/") and change.new.kind != "dir":
                why = f"it holds vmtailor's journal ({JOURNAL_DIR})"
            elif self._mount_point(path):
                why = "another filesystem is mounted there"
            if why:
                raise JournalError(f"cannot {change.action} {path} in the guest: {why}")

    def _mount_point(self, path: str) -> bool:
        try:
            return self.root.is_mount_point(path)
        except RootError as exc:
            raise JournalError(str(exc)) from None

    def verify(self) -> None:
        """Every entry's preconditions, checked against the tree before the first change."""
        if not self.data or self.data["state"] == "reverted":
            return
        created = frozenset(e["path"] for e in self.data["entries"] if e["kind"] == "absent")
        for entry in self.data["entries"]:
            try:
                self._verify_entry(entry, created)
            except RootError as exc:
                raise refuse_entry(entry["path"], str(exc)) from None

    def _verify_entry(self, entry: dict, created: frozenset[str]) -> None:
        root, path, kind = self.root, entry["path"], entry["kind"]
        if root.resolve_parent(path) != path:
            raise refuse_entry(path, "it is reached through a symbolic link in the guest")
        if root.is_mount_point(path):
            raise refuse_entry(path, "another filesystem is mounted there")
        current = root.lstat(path)
        if current is not None and current.kind == "other":
            raise refuse_entry(path, "it is a special file (device, FIFO or socket) now")
        if kind == "file":
            check_backup(root, entry)
        if current is not None and current.kind == "dir" and kind in ("file", "symlink"):
            only_created_below(root, path, created)

    # -- leftovers of a killed run ----------------------------------------------------
    def touched_dirs(self) -> set[str]:
        # "/": DIRS_MARKER's temp file; the journal's parents: a killed mkdir of its chain
        dirs = {"/", *JOURNAL_PARENTS, JOURNAL_DIR, ORIGINALS}
        if self.data:
            dirs.update(posixpath.dirname(e["path"]) for e in self.data["entries"])
        return dirs

    def sweep(self) -> list[str]:
        """Remove the temp files a killed write left in a directory the journal touches."""
        removed = []
        for d in sorted(self.touched_dirs()):
            try:
                if self.root.resolve(d) != d or not self.root.is_dir(d):
                    continue
                for name in self.root.listdir(d):
                    path = f"{d.rstrip('/')}/{name}"
                    if is_temp(self.root, path):
                        self.root.remove(path)
                        removed.append(path)
            except RootError as exc:
                raise JournalError(f"cannot clean up after an interrupted run: {exc}") from None
        return removed

    # -- writing --------------------------------------------------------------------
    def _save(self) -> None:
        self.data["digest"] = digest(self.data)
        text = json.dumps(self.data, indent=1, sort_keys=True) + "\n"
        self.root.write_bytes(JOURNAL_FILE, text.encode(), mode=0o600, uid=0, gid=0)

    def _check_own_folder(self) -> None:
        for path in (JOURNAL_FILE, ORIGINALS):
            if self.root.resolve_parent(path) != path:
                raise JournalError(
                    f"{path} is reached through a symbolic link in the guest; "
                    "vmtailor won't keep its journal there",
                    hint=f"make {JOURNAL_DIR} a plain directory in the guest",
                )
        for path in (*JOURNAL_PARENTS, JOURNAL_DIR, ORIGINALS):
            st = self.root.lstat(path)
            if st is not None and st.kind != "dir":
                raise JournalError(f"{path} in the guest is a {st.kind}, not a directory")

    def _ensure_dir(self, path: str) -> list[str]:
        self._check_own_folder()
        missing = []
        cur = path
        while self.root.lstat(cur) is None:
            missing.append(cur)
            cur = posixpath.dirname(cur)
        for d in reversed(missing):
            self.root.mkdir(d, 0o700 if d.startswith(JOURNAL_DIR) else 0o755)
        return list(reversed(missing))

    def _half_made_folder(self) -> list[str] | None:
        """[JOURNAL_DIR] when a first run killed before it could save journal.json left
        its folder — nothing in it but an empty originals/ and temp files — or None. The
        parents such a run made are named in DIRS_MARKER, written before it made them:
        an empty /var/lib is no evidence that vmtailor made it."""
        root = self.root
        if root.resolve_parent(JOURNAL_FILE) != JOURNAL_FILE or not plain_dir(root, JOURNAL_DIR):
            return None
        for name in root.listdir(JOURNAL_DIR):
            path = f"{JOURNAL_DIR}/{name}"
            if path == ORIGINALS and plain_dir(root, path):
                if all(is_temp(root, f"{path}/{n}") for n in root.listdir(path)):
                    continue
            if not is_temp(root, path):
                return None
        return [JOURNAL_DIR]

    def begin(self, config_digest: str) -> None:
        root = self.root
        try:
            # looked for before _ensure_dir makes a fresh (empty) folder
            self._check_own_folder()  # before the marker: nothing written for a refusal
            left = self._half_made_folder() if self.data is None else None
            listed, times = _read_marker(root) or ([], {})
            points = mountpoints.read(root)
            if self.data is None:
                # a mount point made for this run changed / before this: its times first
                for d, pair in (points.times if points else {}).items():
                    if d in TAIL_DIRS:
                        times.setdefault(d, pair)
                # the intent first: a run killed between these mkdirs and journal.json
                # leaves folders that only this marker says are vmtailor's, and the times
                # of those above them, which only it has from before
                missing = [d for d in JOURNAL_PARENTS if root.lstat(d) is None]
                listed = [d for d in JOURNAL_PARENTS if d in {*missing, *listed}]
                for d in TAIL_DIRS:
                    if d not in times and d not in listed and plain_dir(root, d):
                        times[d] = list(root.times(d))
                _write_marker(root, listed, times)
                self.fault("write marker")
            made = self._ensure_dir(ORIGINALS)
        except RootError as exc:
            raise JournalError(f"cannot create the journal: {exc}") from None
        if self.data is None:
            ours = {*made, *(left or ()), *listed}
            self.data = {
                "format": FORMAT,
                "entries": [],
                # directories made for the journal itself, removed again by revert
                "journal_dirs": [d for d in JOURNAL_PARENTS if d in ours],
                "dir_times": times,
            }
        # a format-2 journal continued here gets format 3's times from now on
        self.data["format"] = FORMAT
        self.data.setdefault("dir_times", {})
        if points is not None:
            # the mount points made for this run are the journal's from now on
            ours = self.data.setdefault("mount_points", [])
            ours += [p for p in points.paths if p not in ours]
            for folder, pair in points.times.items():
                self.data["dir_times"].setdefault(folder, pair)
        self.data.update(
            state="applying",
            config_digest=config_digest,
            started=int(time.time()),
            last_changes=[],
        )
        self._save()
        self.fault("begin")
        if points is not None:
            root.remove(mountpoints.MARKER)
            self.fault("remove mount points marker")
        if root.lexists(DIRS_MARKER):
            # journal.json holds the folders now (an applying run never has a revert's)
            root.remove(DIRS_MARKER)
            self.fault("remove marker")

    def record(self, path: str, secret: bool = False) -> None:
        """Save what `path` is now, unless an earlier run already saved its original."""
        entry = self._index.get(path)
        if entry is not None:
            if secret and not entry.get("secret"):
                entry["secret"] = True
                self._save()
            return
        if len(self.data["entries"]) >= MAX_ENTRIES:
            raise JournalError(f"cannot journal {path}: the journal is full")
        st = self.root.lstat(path)
        entry = {"path": path, "kind": st.kind if st else "absent"}
        if secret:
            entry["secret"] = True
        self._note_folder(posixpath.dirname(path))
        if st is not None:
            entry.update(mode=st.mode, uid=st.uid, gid=st.gid)
            # before the backup reads it (a read may move the atime)
            times = self.root.times(path)
            if times is not None:
                entry["atime_ns"], entry["mtime_ns"] = times
        if st is not None and st.kind == "file":
            backup = f"{ORIGINALS}/{len(self.data['entries']):05d}"
            old = self.root.lstat(backup)
            if old is not None and old.kind != "file":
                raise JournalError(f"{backup} in the guest is a {old.kind}, not a backup")
            # streamed, never held: a journaled file may be far larger than memory
            self.root.copy_file(path, backup, mode=0o600, uid=0, gid=0)
            sha256, size = file_digest(self.root, backup)
            entry.update(backup=backup, sha256=sha256, size=size)
            entry["label"] = self.root.get_label(path)
            self.fault(f"backup {path}")
        elif st is not None and st.kind == "symlink":
            entry["target"] = self.root.readlink(path)
        elif st is not None and st.kind == "dir":
            entry["label"] = self.root.get_label(path)
        elif st is not None:
            raise JournalError(f"{path} in the guest is a special file; vmtailor won't replace it")
        self.data["entries"].append(entry)
        self._index[path] = entry
        self._save()
        self.fault(f"record {path}")

    def _note_folder(self, folder: str) -> None:
        """The times of a folder whose content is about to change, unless they are
        recorded already or vmtailor made it (revert removes it). Saved with the entry
        whose change comes next."""
        times = self.data["dir_times"]
        made = self._index.get(folder)
        if folder in times or (made is not None and made["kind"] == "absent"):
            return
        if plain_dir(self.root, folder):
            times[folder] = list(self.root.times(folder))

    def apply(self, change: Change) -> None:
        self.record(change.path, change.secret)
        apply_change(self.root, change)
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
            return self._finish_cut_cleanup()
        result = RevertResult([], [], [])
        if self.data["state"] != "reverted":
            self.verify()  # every entry, before the first change
            self.sweep()
            self.data["state"] = "reverting"
            self._save()
            self.fault("reverting")
            for entry in reversed(self.data["entries"]):
                try:
                    restore(self.root, entry, result)
                except RootError as exc:
                    raise JournalError(
                        f"cannot restore {entry['path']}: {exc}",
                        hint="fix that path in the guest, then run revert again",
                    ) from None
                self.fault(f"restore {entry['path']}")
            self._unmake_mount_points(result)
            self._restore_dir_times()
            self.data["state"] = "reverted"
            self._save()
            self.fault("reverted")
        else:
            self.sweep()  # may remove a temp file from a folder: its times again
            self._unmake_mount_points(result)
            self._restore_dir_times()
        self._remove_own_folder(result)
        self.data = None
        return result

    def _unmake_mount_points(self, result: RevertResult) -> None:
        """Remove the mount points the journal made, deepest first, those a filesystem is
        still mounted on excepted: they go back into mountpoints.MARKER, for whoever
        mounted it to remove after unmounting (see customizer/mountpoints.py). Before
        journal.json goes, so a revert killed meanwhile does this again."""
        root, pending = self.root, []
        try:
            for path in reversed(self.data.get("mount_points", [])):
                if root.resolve_parent(path) != path or not plain_dir(root, path):
                    continue  # gone already, or not the folder vmtailor made
                if root.is_mount_point(path) or any(p.startswith(path + "/") for p in pending):
                    pending.insert(0, path)
                    continue
                remove_if_empty(root, path, result)
            if pending:
                made = mountpoints.read(root) or mountpoints.Made()
                made.paths += [p for p in pending if p not in made.paths]
                times = self.data.get("dir_times", {})
                for p in [*pending, "/"]:
                    folder = posixpath.dirname(p) if p != "/" else p
                    if folder in times:
                        made.times.setdefault(folder, times[folder])
                mountpoints.write(root, made)
                self.fault("write mount points marker")
        except RootError as exc:
            raise JournalError(f"cannot remove the mount points vmtailor made: {exc}") from None

    def _restore_dir_times(self) -> None:
        """The times of every folder whose content vmtailor changed, after the last
        change in it (restores included). A folder that is gone, or is reached through a
        symlink now, is left alone: times are worth no refusal."""
        for folder, (atime, mtime) in self.data.get("dir_times", {}).items():
            try:
                if self.root.resolve_parent(folder) == folder and plain_dir(self.root, folder):
                    self.root.set_times(folder, atime, mtime)
            except RootError as exc:
                raise JournalError(
                    f"cannot restore the times of {folder}: {exc}",
                    hint="fix that path in the guest, then run revert again",
                ) from None

    def _remove_own_folder(self, result: RevertResult) -> None:
        root = self.root
        if root.is_dir(ORIGINALS):
            for name in root.listdir(ORIGINALS):
                path = f"{ORIGINALS}/{name}"
                st = root.lstat(path)
                if BACKUP_NAME.match(name) and st is not None and st.kind == "file":
                    root.remove(path)
                    self.fault(f"remove {path}")
            remove_if_empty(root, ORIGINALS, result, report=False)
        made = self.data["journal_dirs"]
        times = {
            d: t
            for d, t in self.data.get("dir_times", {}).items()
            if d in TAIL_DIRS and d not in made
        }
        if made or times:
            # the folders made for the journal, and the times of those above it, outlive
            # journal.json: say which they are
            _write_marker(root, made, times)
            self.fault("write marker")
        # journal.json goes last: a revert killed before this line is simply run again
        root.remove(JOURNAL_FILE)
        self.fault("remove journal")
        remove_if_empty(root, JOURNAL_DIR, result, report=False)
        _finish_marker(root, made, times, result, self.fault)

    def _finish_cut_cleanup(self) -> RevertResult:
        """No journal.json: nothing to revert, unless a run was killed before its first
        journal.json was saved or a revert after it removed journal.json: the folders it
        made hold nothing else then, and are removed."""
        root = self.root
        try:
            # a first run killed while making the journal's folder leaves only a temp one
            swept = self.sweep()
            chain = self._half_made_folder() or []
            listed = _read_marker(root)
            if not chain and listed is None and swept:
                return RevertResult([], swept, [])
            if chain or listed is not None:
                if root.lexists(ORIGINALS):
                    root.remove(ORIGINALS)
                for d in chain:
                    root.remove(d)
                result = RevertResult([], chain, [])
                if listed is not None:
                    _finish_marker(root, *listed, result, _no_fault)
                return result
        except RootError as exc:
            raise JournalError(f"cannot remove vmtailor's empty folder: {exc}") from None
        raise JournalError(
            f"nothing to revert: the guest has no {JOURNAL_FILE}",
            hint="vmtailor has not changed this guest (or it was reverted already)",
        )


def _write_marker(root: Root, dirs: list[str], times: dict) -> None:
    text = json.dumps({"dirs": dirs, "times": times}, sort_keys=True)
    root.write_bytes(DIRS_MARKER, text.encode(), 0o600, 0, 0)


def _finish_marker(root: Root, made: list[str], times: dict, result, fault: FaultHook) -> None:
    """After journal.json: remove the folders made for the journal, the marker, and put
    back the times of the folders above (/ last: removing the marker changed it)."""
    for d in reversed(made):
        remove_if_empty(root, d, result, report=False)
        fault(f"remove {d}")
    for d in sorted(times, key=lambda d: -len(d)):
        if d != "/" and root.resolve_parent(d) == d and plain_dir(root, d):
            root.set_times(d, *times[d])
    if root.lexists(DIRS_MARKER):
        root.remove(DIRS_MARKER)
    if "/" in times:
        root.set_times("/", *times["/"])


def _read_marker(root: Root) -> tuple[list[str], dict] | None:
    """What DIRS_MARKER says: (folders vmtailor made for its journal, the times of the
    folders above it), or None when there is none. Untrusted like the journal."""
    st = root.lstat(DIRS_MARKER)
    if st is None:
        return None
    try:
        if st.kind != "file" or st.size > MAX_MARKER:
            raise ValueError("not a small file")
        listed = json.loads(root.read_bytes(DIRS_MARKER))
        times: dict = {}
        if isinstance(listed, dict) and set(listed) == {"dirs", "times"}:
            listed, times = listed["dirs"], listed["times"]
            if not isinstance(times, dict) or not set(times) <= set(TAIL_DIRS):
                raise ValueError("times of a folder that is not above the journal")
            for pair in times.values():
                ok = isinstance(pair, list) and len(pair) == 2
                if not ok or not all(type(t) is int and MIN_TIME <= t <= MAX_TIME for t in pair):
                    raise ValueError("times that are not [atime_ns, mtime_ns]")
        if not isinstance(listed, list) or not set(listed) <= set(JOURNAL_PARENTS):
            raise ValueError("not a list of vmtailor's folders")
    except (ValueError, RecursionError, TypeError) as exc:
        raise JournalError(f"{DIRS_MARKER} in the guest is not vmtailor's: {exc}") from None
    return [d for d in JOURNAL_PARENTS if d in listed], times
