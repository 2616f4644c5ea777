"""vmtailor validate CONFIG"""

from ..configfile import load_config, parse_vars
from ..customizer.config import canonical_json, format_path
from ..output import add_json_flag, emit_json
from .vars import add_vars_arguments

NAME = "validate"
HELP = "check a config file without touching any guest"
DESCRIPTION = """\
Check a config in full: unknown keys, types, formats, plain-text passwords. Errors name
the key path and line, e.g.

  error at users[1].password: line 14: plain-text passwords are not accepted — use
  password_hash (see `vmtailor hash-password`)

Templates ({{ var }}) are syntax-checked, and the variables they use are listed with
the keys that use them; give --var/--vars to check the rendered result too (what `apply`
will use): a variable they do not define is an error naming its key.

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
    given = parse_vars(args.var, args.vars)
    loaded = load_config(args.config, given, args.sources)
    if args.canonical:
        print(canonical_json(loaded.config))
    elif args.json:
        variables = {k: [format_path(p) for p in v] for k, v in loaded.variables.items()}
        emit_json({"valid": True, "config": args.config, "variables": variables,
                   "rendered": given is not None or not variables})  # fmt: skip
    else:
        print(_summary(args.config, loaded.variables, given is not None))
    return 0


def _summary(path: str, variables: dict, rendered: bool) -> str:
    if not variables:
        return f"{path}: valid"
    rows = [(name, ", ".join(format_path(p) for p in paths)) for name, paths in variables.items()]
    width = max(len(name) for name, _ in rows)
    listing = "\n".join(f"  {name:{width}}  {where}" for name, where in rows)
    if rendered:
        return f"{path}: valid, rendered with these variables:\n{listing}"
    return (f"{path}: valid as far as it can be without its variables; it needs:\n{listing}\n"
            "give them with --var NAME=VALUE or --vars FILE to check the rendered config")  # fmt: skip
