"""apply / revert: the one engine behind every path (mounted root, offline image, initrd).

Stages: detect the guest → plan every operation (nothing written yet) → commit the plan
through the journal. A config or guest problem surfaces while planning, so the guest is
untouched when anything is wrong.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from . import config as configmod
from .config import Config
from .context import Context, no_sources
from .detect import Guest, detect
from .diff import render_diff
from .journal import FaultHook, Journal, RevertResult
from .ops import ordered
from .plan import Change, Plan
from .root import Root

log = logging.getLogger("vmtailor")


@dataclass
class ApplyResult:
    """What one apply did (or, dry run, would do) to one guest."""

    guest: Guest
    changes: list[Change]
    dry_run: bool
    already_applied: bool = False
    warnings: list[str] = field(default_factory=list)
    diff: str = ""

    def to_dict(self) -> dict:
        return result_dict(self.guest.to_dict(), self.changes, self.dry_run,
                           self.already_applied, self.warnings)  # fmt: skip


def result_dict(guest: dict, changes, dry_run: bool, already: bool, warnings: list[str]) -> dict:
    """An apply's result as `apply --json`, the initrd's result record and vmtailor.api
    give it; `changes`: anything with action, path and operation."""
    return {
        "guest": guest,
        "changed": bool(changes),
        "dry_run": dry_run,
        "already_applied": already,
        "changes": [{"action": c.action, "path": c.path} for c in changes],
        # changes per operation (each change's own entry stays as the result record has it)
        "operations": dict(Counter(c.operation for c in changes)),
        "warnings": warnings,
    }


def plan(
    config: Config,
    root: Root,
    sources: Callable[[str], bytes] = no_sources,
    guest: Guest | None = None,
    unfinished: frozenset[str] = frozenset(),
) -> tuple[Context, list[Change]]:
    """Render every operation into a plan over `root` and return what would change."""
    guest = guest or detect(root)
    ctx = Context(config=config, guest=guest, plan=Plan(root, unfinished), sources=sources)
    for op in ordered():
        if not op.wanted(ctx):
            continue
        log.info("[started]  %s", op.name)
        ctx.plan.operation = op.name
        try:
            op.plan(ctx)
        except Exception:
            log.info("[failed]   %s", op.name)
            raise
        log.info("[finished] %s", op.name)
    changes = ctx.plan.changes()
    created = any(c.action in ("create", "mkdir", "symlink") for c in changes)
    # a cut-off run's creations count too: its re-run creates nothing new, and the
    # relabel marker, planned last, is what the cut may have kept from the disk
    created = created or any(root.lexists(path) for path in unfinished)
    if guest.selinux_active() and created:
        # New files have no label we can know offline: relabel at next boot.
        ctx.plan.operation = "selinux"
        ctx.plan.write("/.autorelabel", b"")
        ctx.warnings.append("SELinux guest: new files get labelled at next boot (/.autorelabel)")
        changes = ctx.plan.changes()
    return ctx, changes


def apply(
    config: Config,
    root: Root,
    *,
    dry_run: bool = False,
    diff: bool = False,
    fold_diff: bool = False,
    sources: Callable[[str], bytes] = no_sources,
    fault: FaultHook | None = None,
) -> ApplyResult:
    """`fold_diff`: in the diff, skel copies and the first-boot machinery are one line each
    (diff.render_diff's fold)."""
    configmod.require_rendered(config)  # a "{{ h }}" left in place must not be written
    journal = Journal(root, fault)
    if not dry_run:
        # the guest's journal must be one a revert can carry out before more is added to
        # it; then the temp files a killed run left are removed (never seen by the plan)
        journal.check_appliable()
        journal.sweep()
    ctx, changes = plan(config, root, sources, unfinished=journal.unfinished_creations())
    journal.check_changes(changes)
    result = ApplyResult(ctx.guest, changes, dry_run, warnings=list(ctx.warnings))
    digest = configmod.digest(config)
    if not changes and journal.applied_digest() == digest:
        result.already_applied = True
    if diff:
        # a path an earlier config wrote as secret stays secret when this one changes it
        result.diff = render_diff(root, changes, journal.secret_paths(), fold=fold_diff)
    if dry_run:
        return result
    if not changes:
        if journal.state == "applying":
            # cut off after its last change but before it could say so: finish it now
            journal.data["config_digest"] = digest
            journal.finish()
        return result
    journal.begin(digest)
    for change in changes:
        log.debug("%s", change.describe())
        journal.apply(change)
    journal.finish()
    return result


def revert(root: Root, fault: FaultHook | None = None) -> RevertResult:
    return Journal(root, fault).revert()
