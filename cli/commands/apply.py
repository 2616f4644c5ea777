"""vmtailor apply CONFIG (--root DIR | --disk IMG…)"""

from ..changes import print_changes, print_diff
from ..configfile import load_config, parse_vars
from ..customizer import engine
from ..customizer.ops import ordered
from ..output import add_json_flag, emit_json, warn
from ..target import add_target_arguments, open_target
from ..terminal import console
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

Changes are listed per operation with counts; files copied from /etc/skel into new homes
and vmtailor's first-boot runner and boot hook are one line each (also in --diff), unless
--diff=full. Colour on a terminal, unless NO_COLOR is set.

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
    add_diff_arguments(p)
    add_json_flag(p)


def add_diff_arguments(p) -> None:
    # `--diff=full` is an option string of its own: a --diff taking an optional value
    # would swallow a CONFIG written after it
    p.add_argument("--diff", action="store_const", const="folded",
                   help="show a unified diff of each change (skel copies and vmtailor's "
                   "first-boot helpers one line each)")  # fmt: skip
    p.add_argument("--diff=full", dest="diff", action="store_const", const="full",
                   help="the diff of every change, skel copies and helpers included")  # fmt: skip


def run(args) -> int:
    loaded = load_config(args.config, parse_vars(args.var, args.vars) or {}, args.sources)
    with open_target(args, readonly=args.dry_run) as target:
        result = engine.apply(
            loaded.config, target.root, dry_run=args.dry_run, diff=bool(args.diff),
            fold_diff=args.diff == "folded", sources=loaded.sources,
        )  # fmt: skip
    if args.json:
        data = result.to_dict()
        if args.diff:
            data["diff"] = result.diff
        emit_json(data)
        return 0
    for message in result.warnings:
        warn(message)
    con = console()
    con.print(
        f"guest: {result.guest.pretty_name} ({result.guest.family.name}, {result.guest.init})"
    )
    if args.diff and result.diff:
        print_diff(con, result.diff)
    print_changes(con, result.changes, args.dry_run, full=args.diff == "full")
    n = len(result.changes)
    if not n:
        con.print(
            "nothing to change"
            + (" (this config is already applied)" if result.already_applied else "")
        )
    elif args.dry_run:
        con.print(f"{n} change(s) planned; nothing written (--dry-run)")
    else:
        con.print(f"{n} change(s) applied; `vmtailor revert {target.where}` undoes them")
    return 0
