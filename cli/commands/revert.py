"""vmtailor revert (--root DIR | --disk IMG…)"""

from ..customizer import engine
from ..output import add_json_flag, emit_json, warn
from ..target import add_target_arguments, open_target

NAME = "revert"
HELP = "undo vmtailor's changes to a guest, byte for byte"
DESCRIPTION = """\
Restore every file vmtailor changed to its original bytes, mode, owner and SELinux label,
remove what it created, and remove its journal. Works on a guest whose apply was cut off.

examples:
  vmtailor revert --root /mnt/clone
  vmtailor revert --disk web01.qcow2 web01-var.qcow2"""


def add_arguments(p) -> None:
    add_target_arguments(p)
    add_json_flag(p)


def run(args) -> int:
    with open_target(args) as target:
        result = engine.revert(target.root)
    if args.json:
        emit_json({"restored": result.restored, "removed": result.removed, "kept": result.kept})
        return 0
    for path in result.kept:
        warn(f"kept {path}: vmtailor created it but it now holds other files")
    print(f"reverted: {len(result.restored)} restored, {len(result.removed)} removed")
    return 0
