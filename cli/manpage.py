"""The man page, vmtailor(1), generated from the live parser (argspec.py): the same
descriptions, usage lines and option help as `--help`. `vmtailor man`, `make man`."""

from __future__ import annotations

from . import __version__
from .argspec import Command, Option, live


def _roff(text: str) -> str:
    """Text for a roff line: backslashes and hyphens escaped, characters past ASCII as
    roff's own escapes (troff reads bytes, not UTF-8), and a line that would start with a
    control character (. or ') kept as text."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in text)
    return "\\&" + text if text[:1] in (".", "'") else text


def _paragraphs(text: str) -> list[str]:
    """A RawDescription text as roff: prose as filled paragraphs, indented lines (examples,
    tables, a quoted message) kept line for line."""
    out: list[str] = []
    for block in text.strip("\n").split("\n\n"):
        out.append(".PP")
        verbatim = False
        for line in block.split("\n"):
            indented = line.startswith(" ")
            if indented != verbatim:
                out += [".RS 2", ".nf"] if indented else [".fi", ".RE"]
                verbatim = indented
            out.append(_roff(line.removeprefix("  ") if indented else line))
        if verbatim:
            out += [".fi", ".RE"]
    return out


def _option(o: Option) -> list[str]:
    flags = ", ".join(f"\\fB{_roff(f)}\\fR" for f in o.flags)
    if o.takes_value:
        value = "|".join(o.choices) if o.choices else (o.metavar or "")
        joiner = "[=" if o.optional_value else " "
        flags += f"{joiner}\\fI{_roff(value)}\\fR" + ("]" if o.optional_value else "")
    return [".TP", flags, _roff(o.help or "")]


def _command(c: Command) -> list[str]:
    out = [f'.SS "{_roff(c.usage)}"', _roff(c.help) + "."]
    out += _paragraphs(c.description)
    for p in c.positionals:
        out += [".TP", f"\\fI{_roff(p.metavar)}\\fR", _roff(p.help)]
    for o in c.options:
        out += _option(o)
    return out


def page() -> str:
    top, commands = live()
    lines = [
        f'.TH VMTAILOR 1 "" "vmtailor {__version__}" "User Commands"',
        ".SH NAME",
        "vmtailor \\- " + _roff(top.description.rstrip(".")),
        ".SH SYNOPSIS",
        "\\fBvmtailor\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]",
        ".SH DESCRIPTION",
        *_paragraphs(top.description),
        ".SH OPTIONS",
    ]
    for o in top.options:
        lines += _option(o)
    lines.append(".SH COMMANDS")
    for c in commands:
        lines += _command(c)
    if top.epilog:
        lines += [".SH EXIT STATUS", *_paragraphs(top.epilog)]
    lines += [".SH SEE ALSO", "The README: https://vmtailor.dev and `vmtailor COMMAND \\-\\-help`."]
    return "\n".join(lines) + "\n"
