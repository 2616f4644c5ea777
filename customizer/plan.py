"""Staged edits over a Root: operations render into a Plan, and nothing touches the guest
until the whole plan is known (and, unless --dry-run, committed through the journal).

Reads through the plan see what earlier operations staged, so `files` can edit a file that
`users` has just created, and an item that would change nothing is no change at all.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, replace

from .errors import PlanError
from .root import Root, RootError, Stat


@dataclass(frozen=True)
class State:
    """What a guest path should be: a file (data None keeps the content), a directory, a
    symlink, or absent."""

    kind: str  # "file", "dir", "symlink", "absent"
    data: bytes | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    target: str | None = None
    secret: bool = False


@dataclass(frozen=True)
class Change:
    """One planned change to one guest path."""

    path: str  # resolved guest path
    action: str  # "create", "modify", "delete", "mkdir", "symlink", "chmod"
    old: Stat | None
    new: State
    secret: bool = False
    operation: str = ""  # the operation that first staged the path
    # what a reader may take in as one line: "skel" (copied from /etc/skel into a new
    # home), "helper" (vmtailor's own first-boot runner and boot hook), "" (anything else)
    group: str = ""

    def describe(self) -> str:
        return f"{self.action:7} {self.path}"


class Plan:
    def __init__(self, root: Root, unfinished: frozenset[str] = frozenset()):
        self.root = root
        self._staged: dict[str, State] = {}  # insertion order = order of first touch
        # paths an earlier, cut-off run created: an operation that fills what it creates
        # (a home from skel) finishes filling them instead of taking them as the guest's
        self.unfinished = unfinished
        # who staged each path first, for grouped output: (operation, group)
        self.operation = ""  # set by the engine while each operation plans
        self._group = ""
        self._origin: dict[str, tuple[str, str]] = {}

    @contextlib.contextmanager
    def group(self, name: str) -> Iterator[None]:
        """Tag what is staged inside as one group (see Change.group)."""
        outer, self._group = self._group, name
        try:
            yield
        finally:
            self._group = outer

    def _put(self, real: str, state: State) -> None:
        self._origin.setdefault(real, (self.operation, self._group))
        self._staged[real] = state

    # -- reading through the plan ---------------------------------------------------
    def resolve(self, path: str) -> str:
        try:
            return self.root.resolve(path)
        except RootError as exc:
            raise PlanError(str(exc)) from None

    def _resolve_link(self, path: str) -> str:
        try:
            return self.root.resolve_parent(path)
        except RootError as exc:
            raise PlanError(str(exc)) from None

    def staged(self, path: str) -> State | None:
        return self._staged.get(path)

    def stat(self, path: str) -> Stat | None:
        """Stat of the path after the staged edits (symlinks followed inside the root)."""
        real = self.resolve(path)
        st = self._staged.get(real)
        if st is not None and st.kind == "absent":
            return None
        if st is not None and st.kind == "symlink":
            return Stat("symlink", 0o777, 0, 0, len(st.target or ""))
        try:
            current = self.root.stat(real)
        except RootError as exc:
            raise PlanError(str(exc)) from None
        if st is None:
            return current
        if current is not None and current.kind != st.kind:
            current = None
        size = len(st.data) if st.data is not None else (current.size if current else 0)
        base = current or Stat(st.kind, 0, 0, 0, 0)
        return Stat(
            st.kind,
            st.mode if st.mode is not None else base.mode,
            st.uid if st.uid is not None else base.uid,
            st.gid if st.gid is not None else base.gid,
            size,
        )

    def exists(self, path: str) -> bool:
        try:
            return self.stat(path) is not None
        except PlanError:
            return False

    def is_dir(self, path: str) -> bool:
        try:
            st = self.stat(path)
        except PlanError:
            return False
        return st is not None and st.kind == "dir"

    def is_file(self, path: str) -> bool:
        try:
            st = self.stat(path)
        except PlanError:
            return False
        return st is not None and st.kind == "file"

    def read_bytes(self, path: str) -> bytes | None:
        """The file's content after staged edits, or None when it is not a regular file."""
        real = self.resolve(path)
        st = self._staged.get(real)
        if st is not None and st.kind == "file" and st.data is not None:
            return st.data
        if st is not None and st.kind != "file":
            return None
        if not self.root.is_file(real):
            return None
        try:
            return self.root.read_bytes(real)
        except RootError as exc:
            raise PlanError(str(exc)) from None

    def read_text(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8", errors="surrogateescape")

    def listdir(self, path: str) -> list[str]:
        real = self.resolve(path)
        names: set[str] = set()
        if self.root.is_dir(real):
            names.update(self.root.listdir(real))
        prefix = real.rstrip("/") + "/"
        for staged, st in self._staged.items():
            if staged.startswith(prefix) and "/" not in staged[len(prefix) :]:
                if st.kind == "absent":
                    names.discard(staged[len(prefix) :])
                else:
                    names.add(staged[len(prefix) :])
        return sorted(names)

    # -- staging edits --------------------------------------------------------------
    def _stage(self, real: str, state: State) -> None:
        prior = self._staged.get(real)
        if prior is not None and state.kind == prior.kind == "file" and state.data is None:
            # a chmod after a write keeps the written content
            state = replace(state, data=prior.data, secret=prior.secret or state.secret)
        self._put(real, state)

    def _require_parent_dir(self, path: str, real: str) -> None:
        parent = posixpath.dirname(real)
        if not self.is_dir(parent):
            what = "does not exist" if not self.exists(parent) else "is not a directory"
            raise PlanError(f"cannot write {path}: its directory {parent} {what} in the guest")

    def write(
        self,
        path: str,
        data: bytes | str,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
        secret: bool = False,
    ) -> None:
        """Create or replace a regular file (following symlinks inside the guest)."""
        if isinstance(data, str):
            data = data.encode("utf-8", errors="surrogateescape")
        real = self.resolve(path)
        self._require_parent_dir(path, real)
        st = self.stat(real)
        if st is not None and st.kind != "file":
            raise PlanError(f"cannot write {path}: {real} is a {st.kind} in the guest")
        self._stage(real, State("file", data, mode, uid, gid, secret=secret))

    def set_meta(
        self, path: str, mode: int | None = None, uid: int | None = None, gid: int | None = None
    ) -> None:
        real = self.resolve(path)
        st = self.stat(real)
        if st is None:
            raise PlanError(f"cannot change mode/owner of {path}: it does not exist in the guest")
        if st.kind not in ("file", "dir"):
            raise PlanError(f"cannot change mode/owner of {path}: it is a {st.kind}")
        prior = self._staged.get(real)
        if prior is not None and prior.kind == st.kind:
            self._put(real, replace(
                prior,
                mode=prior.mode if mode is None else mode,
                uid=prior.uid if uid is None else uid,
                gid=prior.gid if gid is None else gid,
            ))  # fmt: skip
        else:
            self._stage(real, State(st.kind, None, mode, uid, gid))

    def mkdir(
        self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0, parents: bool = True
    ) -> None:
        """Ensure a directory exists; an existing one keeps its mode and owner."""
        real = self.resolve(path)
        missing: list[str] = []
        cur = real
        while cur != "/" and not self.exists(cur):
            missing.append(cur)
            cur = posixpath.dirname(cur)
        st = self.stat(cur)
        if st is None or st.kind != "dir":
            raise PlanError(f"cannot create {path}: {cur} is not a directory in the guest")
        if len(missing) > 1 and not parents:
            raise PlanError(f"cannot create {path}: {posixpath.dirname(real)} does not exist")
        for i, d in enumerate(reversed(missing)):
            last = i == len(missing) - 1
            self._put(d, State(
                "dir", None, mode if last else 0o755, uid if last else 0, gid if last else 0
            ))  # fmt: skip

    def symlink(self, path: str, target: str) -> None:
        real = self._resolve_link(path)
        self._require_parent_dir(path, real)
        st = self._lstat(real)
        if st is not None and st.kind == "dir":
            raise PlanError(f"cannot make {path} a symlink: it is a directory in the guest")
        self._put(real, State("symlink", target=target))

    def delete(self, path: str) -> None:
        real = self._resolve_link(path)
        st = self._lstat(real)
        if st is None:
            return
        if st.kind == "dir" and self.listdir(real):
            raise PlanError(
                f"cannot delete {path}: it is a non-empty directory "
                "(vmtailor deletes files, links and empty directories)"
            )
        self._put(real, State("absent"))

    def _lstat(self, real: str) -> Stat | None:
        st = self._staged.get(real)
        if st is None:
            return self.root.lstat(real)
        if st.kind == "absent":
            return None
        if st.kind == "symlink":
            return Stat("symlink", 0o777, 0, 0, 0)
        return self.stat(real)

    # -- the result -----------------------------------------------------------------
    def changes(self) -> list[Change]:
        """Staged edits that differ from the guest, in the order they were first made."""
        out = []
        for path, new in self._staged.items():
            old = self.root.lstat(path)
            action = _action(self.root, path, old, new)
            if action is not None:
                operation, group = self._origin.get(path, ("", ""))
                out.append(Change(path, action, old, new, new.secret, operation, group))
        return out


def _action(root: Root, path: str, old: Stat | None, new: State) -> str | None:
    if new.kind == "absent":
        return None if old is None else "delete"
    if new.kind == "symlink":
        if old is not None and old.kind == "symlink" and root.readlink(path) == new.target:
            return None
        return "symlink"
    if new.kind == "dir":
        if old is None or old.kind != "dir":
            return "mkdir"
        return None if _same_meta(old, new) else "chmod"
    if old is None or old.kind != "file":
        return "create"
    if new.data is not None and not root.same_bytes(path, new.data):
        return "modify"
    return None if _same_meta(old, new) else "chmod"


def _same_meta(old: Stat, new: State) -> bool:
    return (
        (new.mode is None or new.mode == old.mode)
        and (new.uid is None or new.uid == old.uid)
        and (new.gid is None or new.gid == old.gid)
    )
