"""Unified diffs of a plan, for --dry-run --diff. Secrets never reach the output."""

from __future__ import annotations

import difflib
import posixpath
import re

from .plan import Change
from .root import Root, size_text

# Files whose second field is a password hash: diffs show the line with the hash redacted.
SHADOW_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
REDACTED = "<redacted>"
# Past this, a diff is neither readable nor cheap (difflib, and the old file read whole).
DIFF_LIMIT = 1 << 20


def redact_shadow(text: str) -> str:
    return re.sub(r"^([^:\n]*):[^:\n]*:", rf"\1:{REDACTED}:", text, flags=re.M)


def _text(data: bytes | None) -> list[str] | None:
    if data is None:
        return []
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def folded(kind: str, changes: list[Change]) -> tuple[str, str]:
    """(verb, what): one line standing for every change of a group (Change.group), all a
    reader needs to know of files copied from /etc/skel or of vmtailor's first-boot
    machinery."""
    mine = [c for c in changes if c.group == kind]
    if kind == "skel":
        return "copy", f"{len(mine)} path(s) from the skeleton into {', '.join(_homes(changes))}"
    files = [c.path for c in mine if c.action not in ("mkdir", "chmod")]
    return "install", f"the first-boot runner and boot hook ({len(mine)} paths): " + ", ".join(
        files
    )


def _homes(changes: list[Change]) -> list[str]:
    """The homes skel was copied into: each unbroken run of skel changes fills one home, and
    its shallowest paths are right inside it."""
    homes: set[str] = set()
    run: list[str] = []
    for change in [*changes, None]:
        if change is not None and change.group == "skel":
            run.append(change.path)
            continue
        if run:
            depth = min(p.count("/") for p in run)
            homes.update(posixpath.dirname(p) for p in run if p.count("/") == depth)
            run = []
    return sorted(homes)


def render_diff(
    root: Root,
    changes: list[Change],
    secret_paths: frozenset[str] = frozenset(),
    fold: bool = False,
) -> str:
    """`secret_paths`: paths whose content is secret whatever this change says (the journal
    knows which files an earlier config wrote as secret). With `fold`, each group of changes
    (Change.group) is one line where its first change would be."""
    out: list[str] = []
    shown: set[str] = set()
    for change in changes:
        if fold and change.group:
            if change.group not in shown:
                shown.add(change.group)
                verb, what = folded(change.group, changes)
                out.append(f"=== {verb} {what} (--diff=full shows them)\n")
            continue
        path, new = change.path, change.new
        header = f"--- a{path}\n+++ b{path}\n"
        if change.action == "delete":
            out.append(f"{header}deleted\n")
            continue
        if change.action == "symlink":
            out.append(f"{header}symlink -> {new.target}\n")
            continue
        if change.action in ("mkdir", "chmod"):
            mode = f" mode {new.mode:04o}" if new.mode is not None else ""
            owner = f" owner {new.uid}:{new.gid}" if new.uid is not None else ""
            out.append(f"{header}{change.action}{mode}{owner}\n")
            continue
        if change.secret or path in secret_paths:
            out.append(f"{header}content not shown (secret)\n")
            continue
        old_size = change.old.size if change.action == "modify" and change.old else 0
        if max(old_size, len(new.data or b"")) > DIFF_LIMIT:
            big = size_text(max(old_size, len(new.data or b"")))
            out.append(f"{header}large file ({big}), content not shown\n")
            continue
        old_data = root.read_bytes(path) if change.action == "modify" else None
        old, new_lines = _text(old_data), _text(new.data)
        if old is None or new_lines is None:
            out.append(f"{header}binary content differs\n")
            continue
        if path in SHADOW_FILES:
            old = redact_shadow("".join(old)).splitlines(keepends=True)
            new_lines = redact_shadow("".join(new_lines)).splitlines(keepends=True)
        before = f"a{path}" if change.action == "modify" else "/dev/null"
        body = list(difflib.unified_diff(old, new_lines, before, f"b{path}", lineterm="\n"))
        if not body:  # content equal after redaction: say so without showing it
            out.append(f"{header}changed (secret field)\n")
            continue
        out.extend(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in body
        )
    return "".join(out)
