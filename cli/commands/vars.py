"""--var / --vars / --sources, shared by the commands that read a config."""


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
    add_sources_argument(parser)


def add_sources_argument(parser) -> None:
    parser.add_argument(
        "--sources",
        metavar="DIR",
        help="the folder files[].source names are read from, and may not leave "
        "(default: the config's own folder)",
    )
