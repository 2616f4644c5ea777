"""vmtailor schema"""

from ..customizer import config
from ..output import emit_json

NAME = "schema"
HELP = "print the config's JSON schema"
DESCRIPTION = """\
Print the JSON schema of the config, generated from the same models `validate` uses.
configs/vmtailor.schema.json is this output (editors can use it for completion)."""


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    emit_json(config.schema())
    return 0
