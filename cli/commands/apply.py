"""vmtailor apply CONFIG (--root DIR | --disk IMG…)"""

import sys

from ..configfile import load_config, parse_vars
from ..customizer import engine
from ..customizer.ops import ordered
from ..output import add_json_flag, emit_json, warn
from ..target import add_target_arguments, open_target
from .vars import add_vars_arguments

NAME = "apply"
HELP = "customize a guest with a config"


def _description() -> str:
    ops = "\n".join(f"  {op.name:10} {op.summary}" for op in ordered())
    return f"""\
Customize one guest. The config is validated in full and every change is planned before
anything is written; a problem with the config or the guest changes nothing. Changes are
journaled inside the guest (/var/lib/vmtailor) with the originals, so that re-running is
harmless, an interrupted run can be re-run or reverted, and `vmtailor revert` undoes it.

operations, in the order they apply:
{ops}

With --disk the guest's images are opened with libguestfs (read-only for --dry-run),
its filesystems mounted as its own fstab says; an image a running VM holds is refused.

examples:
  vmtailor apply web.yaml --root /mnt/clone --dry-run --diff
  vmtailor apply web.yaml --root /mnt/clone --var hostname=web01
  vmtailor apply web.yaml --disk web01.qcow2 web01-var.qcow2 --var hostname=web01"""


DESCRIPTION = _description()


def add_arguments(p) -> None:
    p.add_argument("config", metavar="CONFIG", help="the YAML config file")
    add_target_arguments(p)
    add_vars_arguments(p)
    p.add_argument("--dry-run", action="store_true", help="plan only; touch nothing")
    p.add_argument("--diff", action="store_true", help="show a unified diff of each change")
    add_json_flag(p)


def run(args) -> int:
    loaded = load_config(args.config, parse_vars(args.var, args.vars) or {}, args.sources)
    with open_target(args, readonly=args.dry_run) as target:
        result = engine.apply(
            loaded.config, target.root, dry_run=args.dry_run, diff=args.diff,
            sources=loaded.sources,
        )  # fmt: skip
    if args.json:
        data = result.to_dict()
        if args.diff:
            data["diff"] = result.diff
        emit_json(data)
        return 0
    for message in result.warnings:
        warn(message)
    print(f"guest: {result.guest.pretty_name} ({result.guest.family.name}, {result.guest.init})")
    if args.diff and result.diff:
        sys.stdout.write(result.diff)
    for change in result.changes:
        print(("would " if args.dry_run else "") + change.describe())
    n = len(result.changes)
    if not n:
        print(
            "nothing to change"
            + (" (this config is already applied)" if result.already_applied else "")
        )
    elif args.dry_run:
        print(f"{n} change(s) planned; nothing written (--dry-run)")
    else:
        print(f"{n} change(s) applied; `vmtailor revert {target.where}` undoes them")
    return 0
