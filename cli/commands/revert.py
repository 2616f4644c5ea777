"""vmtailor revert --root DIR"""

from ..customizer import engine
from ..output import add_json_flag, emit_json, warn
from ..target import add_target_arguments, open_root

NAME = "revert"
HELP = "undo vmtailor's changes to a guest, byte for byte"
DESCRIPTION = """\
Restore every file vmtailor changed to its original bytes, mode, owner and SELinux label,
remove what it created, and remove its journal. Works on a guest whose apply was cut off.

example:
  vmtailor revert --root /mnt/clone"""


def add_arguments(p) -> None:
    add_target_arguments(p)
    add_json_flag(p)


def run(args) -> int:
    result = engine.revert(open_root(args))
    if args.json:
        emit_json({"restored": result.restored, "removed": result.removed, "kept": result.kept})
        return 0
    for path in result.kept:
        warn(f"kept {path}: vmtailor created it but it now holds other files")
    print(f"reverted: {len(result.restored)} restored, {len(result.removed)} removed")
    return 0
