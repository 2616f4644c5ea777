"""The command line's argparse definitions as plain records, for what is generated from
them (shell completion, the man page): one walk over the live parser, so that neither can
list an option the parser does not have, nor miss one it has.

argparse has no public API to list its actions; its private names (`_actions`,
`_SubParsersAction`, …) have been stable since Python 3.2 and are read here only."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

# What a value completes as, by the metavar the parser gives it (the CLI's convention:
# FILE, DIR, IMG … name paths; NAME=VALUE, N, S … are typed by hand)
PATH_METAVARS = {"FILE": "file", "CONFIG": "file", "INVENTORY": "file", "IMG": "file",
                 "ISO": "file", "PATH": "file", "DIR": "dir"}  # fmt: skip


def value_kind(metavar: str | None, choices: tuple[str, ...]) -> str:
    """ "choices", "file", "dir", or "text" (nothing to offer)."""
    if choices:
        return "choices"
    return PATH_METAVARS.get(metavar or "", "text")


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]  # ("-v", "--verbose")
    help: str
    metavar: str | None  # None: a flag that takes no value
    choices: tuple[str, ...] = ()
    repeatable: bool = False  # action="append"
    optional_value: bool = False  # nargs="?": `--diff` or `--diff=full`

    @property
    def takes_value(self) -> bool:
        return self.metavar is not None

    @property
    def kind(self) -> str:
        return value_kind(self.metavar, self.choices)


@dataclass(frozen=True)
class Positional:
    metavar: str
    help: str
    many: bool = False  # nargs + or *
    choices: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return value_kind(self.metavar, self.choices)


@dataclass
class Command:
    name: str  # "" for the top level
    help: str
    description: str
    usage: str  # argparse's own usage line, without "usage: "
    options: list[Option] = field(default_factory=list)
    positionals: list[Positional] = field(default_factory=list)
    epilog: str = ""


def _option(action: argparse.Action) -> Option:
    takes = action.nargs != 0
    metavar = None
    if takes:
        metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    choices = tuple(str(c) for c in action.choices) if action.choices else ()
    return Option(
        tuple(action.option_strings),
        _help(action),
        metavar,
        choices,
        isinstance(action, argparse._AppendAction),
        action.nargs == "?",
    )


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%(" in text:  # argparse's own interpolation: %(default)s, %(prog)s
        text = text % {**vars(action), "prog": "vmtailor"}
    return " ".join(text.split())


def _command(name: str, parser: argparse.ArgumentParser, help: str) -> Command:
    usage = " ".join(parser.format_usage().removeprefix("usage: ").split())
    out = Command(name, help, parser.description or "", usage, epilog=parser.epilog or "")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        if action.option_strings:
            out.options.append(_option(action))
        else:
            metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
            choices = tuple(str(c) for c in action.choices) if action.choices else ()
            many = action.nargs in ("+", "*")
            out.positionals.append(Positional(metavar, _help(action), many, choices))
    return out


def walk(parser: argparse.ArgumentParser) -> tuple[Command, list[Command]]:
    """(the top level, then each command in `vmtailor --help` order)."""
    top = _command("", parser, parser.description or "")
    commands = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                commands.append(_command(name, sub, helps.get(name, "")))
    return top, commands


def live() -> tuple[Command, list[Command]]:
    from .main import build_parser  # here: main imports the commands that import this

    return walk(build_parser())
