"""`vmtailor` command line: a thin layer over the packages, one module per command."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .commands import COMMANDS
from .customizer.config import ConfigError
from .customizer.errors import VmtailorError
from .output import error_text

EPILOG = """\
Exit status is 0 on success; otherwise non-zero with a one-line reason on stderr.
Run `vmtailor COMMAND --help` for a command's options and examples."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmtailor",
        description="Customize cloned Linux virtual machines (hostname, network, users, "
        "files, first-boot scripts) without an agent in the guest.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vmtailor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
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
        p.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    try:
        return args.run(args)
    except ConfigError as exc:
        prefix = f"{exc.source}: " if exc.source and not getattr(args, "json", False) else ""
        print(f"{prefix}{error_text(exc)}", file=sys.stderr)
        return 2
    except VmtailorError as exc:
        print(f"error: {error_text(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"error: internal error: {type(exc).__name__}: {error_text(exc)} "
              "(run with --debug for a traceback)", file=sys.stderr)  # fmt: skip
        return 3
