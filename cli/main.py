"""`vmtailor` command line: a thin layer over the packages, one module per command."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from . import __version__
from .commands import COMMANDS
from .customizer.errors import VmtailorError
from .errors import EXIT_STATUS, ArgumentError, report

EPILOG = f"""\
Run `vmtailor COMMAND --help` for a command's options and examples. -v, --debug and
--json may come before or after the command.

{EXIT_STATUS}"""


class Parser(argparse.ArgumentParser):
    """argparse, except that a bad command line is reported like every other error:
    exit status 2, and with --json an error document (see cli/errors.py)."""

    def error(self, message: str):  # type: ignore[override]
        raise ArgumentError(f"{self.prog}: {message}", self.format_usage())


def _global_options(p: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after its name. After it, their
    defaults are SUPPRESS so that the command's parser never resets what was given
    before it (`vmtailor --json validate x`)."""
    default: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("-v", "--verbose", action="store_true", help="log each stage", **default)
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs",
                   **default)  # fmt: skip
    own = p._option_string_actions.get("--json")  # the command's own --json (output.py)
    if own is not None:
        own.default = default.get("default", False)
    else:
        p.add_argument("--json", action="store_true", help="print one JSON document "
                       "(errors too)", **default)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="vmtailor",
        description="Customize cloned Linux virtual machines (hostname, network, users, "
        "files, first-boot scripts) without an agent in the guest.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vmtailor {__version__}")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        p = sub.add_parser(
            command.NAME,
            help=command.HELP,
            description=command.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(p)
        _global_options(p, top=False)
        p.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except ArgumentError as exc:
        return report(exc, json="--json" in argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    try:
        return args.run(args)
    except (Exception, KeyboardInterrupt) as exc:
        if args.debug and not isinstance(exc, VmtailorError | KeyboardInterrupt):
            raise  # not one of our sentences: the traceback is what --debug is for
        return report(exc, json=args.json)
