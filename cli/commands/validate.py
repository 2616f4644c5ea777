"""vmtailor validate CONFIG"""

from ..configfile import load_config, parse_vars
from ..customizer.config import canonical_json
from ..output import add_json_flag, emit_json
from .vars import add_vars_arguments

NAME = "validate"
HELP = "check a config file without touching any guest"
DESCRIPTION = """\
Check a config in full: unknown keys, types, formats, plain-text passwords. Errors name
the key path and line, e.g.

  error at users[1].password: line 14: plain-text passwords are not accepted — use
  password_hash (see `vmtailor hash-password`)

Templates ({{ var }}) are syntax-checked; give --var/--vars to check the rendered result
too (what `apply` will use).

examples:
  vmtailor validate web.yaml
  vmtailor validate web.yaml --var hostname=web01 --var ip=192.0.2.10/24"""


def add_arguments(p) -> None:
    p.add_argument("config", metavar="CONFIG", help="the YAML config file")
    add_vars_arguments(p)
    p.add_argument(
        "--canonical", action="store_true", help="print the canonical JSON that goes on media"
    )
    add_json_flag(p)


def run(args) -> int:
    loaded = load_config(args.config, parse_vars(args.var, args.vars), args.sources)
    if args.canonical:
        print(canonical_json(loaded.config))
    elif args.json:
        emit_json({"valid": True, "config": args.config})
    else:
        print(f"{args.config}: valid")
    return 0
