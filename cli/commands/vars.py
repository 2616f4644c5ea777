"""--var / --vars, shared by the commands that read a config."""


def add_vars_arguments(parser) -> None:
    parser.add_argument(
        "--var",
        metavar="NAME=VALUE",
        action="append",
        help="a value for {{ NAME }} in the config (repeatable)",
    )
    parser.add_argument(
        "--vars",
        metavar="FILE",
        action="append",
        help="a YAML mapping of NAME: VALUE for the config's templates (repeatable)",
    )
