"""What `apply` tells a person: the changes grouped per operation with counts, files
copied from /etc/skel and vmtailor's first-boot machinery one line each, and the diff,
coloured on a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from .customizer.diff import folded
from .customizer.plan import Change
from .terminal import styled

ACTION_STYLE = {"create": "green", "mkdir": "green", "symlink": "green", "modify": "yellow",
                "chmod": "yellow", "delete": "red"}  # fmt: skip


def by_operation(changes: list[Change]) -> dict[str, list[Change]]:
    """Changes per operation, in the order the operations apply."""
    groups: dict[str, list[Change]] = {}
    for change in changes:
        groups.setdefault(change.operation or "other", []).append(change)
    return groups


def print_changes(con: Console, changes: list[Change], dry_run: bool, full: bool) -> None:
    """`full`: every path, skel copies and helpers included (--diff=full)."""
    would = "would " if dry_run else ""
    for operation, items in by_operation(changes).items():
        con.print(Text(f"{operation} ({len(items)})", style="bold"))
        shown: set[str] = set()
        for change in items:
            if change.group and not full:
                if change.group not in shown:
                    shown.add(change.group)
                    verb, what = folded(change.group, changes)
                    con.print(Text(f"  {would}{verb:7} {what}", style="dim"))
                continue
            line = Text("  " + would)
            line.append(f"{change.action:7}", style=ACTION_STYLE.get(change.action, ""))
            line.append(f" {change.path}")
            con.print(line)


def _diff_style(line: str) -> str:
    if line.startswith(("--- ", "+++ ")):
        return "bold"
    if line.startswith("=== "):
        return "dim"
    if line.startswith("@@"):
        return "cyan"
    if line.startswith("+"):
        return "green"
    if line.startswith("-"):
        return "red"
    return ""


def print_diff(con: Console, diff: str) -> None:
    if not styled(con):
        # byte for byte: a diff piped to a file or to `patch` is exactly what was rendered
        con.file.write(diff)
        return
    for line in diff.splitlines():
        con.print(Text(line, style=_diff_style(line)))
