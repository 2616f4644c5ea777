"""vmtailor ops"""

from ..customizer.ops import ordered
from ..output import add_json_flag, emit_json

NAME = "ops"
HELP = "list the operations a config can ask for"
DESCRIPTION = "List the operations in the order `apply` runs them, with their config keys."


def add_arguments(p) -> None:
    add_json_flag(p)


def run(args) -> int:
    ops = ordered()
    if args.json:
        emit_json([{"name": o.name, "keys": list(o.keys), "summary": o.summary} for o in ops])
        return 0
    for op in ops:
        print(f"{op.name:10} {', '.join(op.keys):18} {op.summary}")
    return 0
