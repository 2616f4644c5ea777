"""vmtailor batch INVENTORY"""

from __future__ import annotations

import sys

from .. import output
from ..output import add_json_flag, emit_json
from ..progress import BatchProgress
from .apply import add_diff_arguments
from .vars import add_sources_argument

NAME = "batch"
HELP = "customize many clone images offline, many per libguestfs appliance"
DESCRIPTION = """\
Customize every clone of an inventory on this machine, without booting them: the clones'
disk images are opened with libguestfs, many per appliance, and each clone gets its own
rendered config. The inventory is validated in full first (every clone's config rendered
with its vars); then each image is checked — a missing, unreadable, read-only, damaged or
in-use image (a running VM holds its lock) is reported and never touched. One clone's
failure never stops the others; the exit status is 1 when any clone failed.

The inventory (paths relative to it):

  config: web.yaml
  master: golden.qcow2        # optional: missing clone images become its qcow2 overlays
  vars: {domain: example.com} # optional: every clone's vars start from these
  clones:
    - {name: web01, image: web01.qcow2, vars: {hostname: web01, ip: 192.0.2.10/24}}
    - {name: db01, images: [db01-root.qcow2, db01-var.qcow2], format: qcow2}

A clone whose journal says this very config is applied already is skipped (--force
applies it again, which also puts back what was changed since).

examples:
  vmtailor batch site.yaml --dry-run
  vmtailor batch site.yaml --jobs 2
  vmtailor batch site.yaml --json > result.json"""


def add_arguments(p) -> None:
    p.add_argument("inventory", metavar="INVENTORY", help="the YAML inventory")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="appliances running at once, one process each (1)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="customize clones already done, again")
    p.add_argument("--dry-run", action="store_true",
                   help="plan every clone, write nothing (images are opened read-only)")  # fmt: skip
    add_diff_arguments(p)
    add_sources_argument(p)
    add_json_flag(p)


def table(outcomes) -> str:
    rows = [("CLONE", "STATUS", "CHANGES", "TIME", "REASON")]
    for o in outcomes:
        reason = o.reason or ("; ".join(o.warnings) if o.warnings else "")
        changes = str(o.changes) if o.status == "ok" else "-"
        rows.append((o.clone, o.status, changes, f"{o.seconds:.1f}s", reason))
    return output.table(rows)


def run(args) -> int:
    from ..customizer.errors import UsageError
    from ..offline.batch import Options, run_batch
    from ..offline.inventory import load_inventory

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    inventory = load_inventory(args.inventory, args.sources)
    progress = BatchProgress(len(inventory.clones))
    opts = Options(force=args.force, dry_run=args.dry_run, diff=bool(args.diff),
                   fold_diff=args.diff == "folded")  # fmt: skip
    try:
        result = run_batch(inventory, opts, jobs=args.jobs, progress=progress)
    finally:
        progress.finish()
    if args.json:
        emit_json({"inventory": inventory.path, "dry_run": args.dry_run, **result.to_dict()})
    else:
        for o in result.outcomes:
            if o.diff:
                sys.stdout.write(f"--- {o.clone}\n{o.diff}")
        print(table(result.outcomes))
        counts = {s: sum(o.status == s for o in result.outcomes) for s in ("ok", "skipped")}
        print(f"{counts['ok']} ok, {counts['skipped']} skipped, {result.failed} failed "
              f"in {result.seconds:.0f}s ({len(result.launches)} appliance launch(es))")  # fmt: skip
    return 1 if result.failed else 0
