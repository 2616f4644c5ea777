"""Dataclass methods compiled when the initrd is built, not at every boot.

dataclasses writes the source of each class's __init__, __repr__, __eq__ (and a frozen
one's __setattr__, __delattr__, __hash__) and compiles it with exec() as the class is
created: 171 compiles for the 42 dataclasses the initrd's stages import, 16 % of the
instructions Python spends importing them — and in the guest, under emulation, imports
are most of Python's start-up. The builder imports the shipped modules once with
record(), which keeps {source: code object}; install() hands that table to dataclasses'
exec(), so the same source gets the same code without being compiled again. Source not
in the table (a class the build did not see) is compiled as dataclasses would; no table,
nothing changes.

The table is marshal data, which only the interpreter that wrote it reads: the image
ships the builder's own interpreter, and the builder writes the table with it."""

from __future__ import annotations

import builtins
import dataclasses
import marshal

# Where the image keeps the table (the builder's python feature writes it).
TABLE = "/usr/lib/vmtailor/dataclasses.marshal"


def _compile(source):
    # As dataclasses' own exec() of a string compiles it: dataclasses.py has no
    # __future__ imports, and this module's (annotations) must not leak into the code.
    if isinstance(source, str):
        return compile(source, "<string>", "exec", dont_inherit=True)
    return source


def install(path: str = TABLE) -> int:
    """Let dataclasses take its generated methods from the table at `path`; returns how
    many it holds (0: no table, nothing changed)."""
    try:
        with open(path, "rb") as f:
            table = marshal.load(f)
    except (OSError, EOFError, ValueError, TypeError):
        return 0
    if not isinstance(table, dict):
        return 0

    def exec_(source, globals=None, locals=None, /):
        code = table.get(source) if isinstance(source, str) else None
        return builtins.exec(code or _compile(source), globals, locals)

    dataclasses.exec = exec_  # dataclasses calls exec() by its global name
    return len(table)


def record(path: str, modules: list[str]) -> int:
    """Import `modules` and write to `path` the code of every method dataclasses
    generated meanwhile; returns how many."""
    import importlib

    table: dict[str, object] = {}

    def exec_(source, globals=None, locals=None, /):
        if isinstance(source, str) and source not in table:
            table[source] = _compile(source)
        return builtins.exec(table.get(source) or _compile(source), globals, locals)

    dataclasses.exec = exec_
    for name in modules:
        importlib.import_module(name)
    with open(path, "wb") as f:
        marshal.dump(table, f)
    return len(table)
