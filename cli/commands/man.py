"""vmtailor man"""

from ..manpage import page

NAME = "man"
HELP = "print the man page, vmtailor(1), in roff"
DESCRIPTION = """\
Print vmtailor's man page (roff), generated from the same option definitions as --help.

examples:
  vmtailor man > /usr/local/share/man/man1/vmtailor.1
  vmtailor man | man -l -"""


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    print(page(), end="")
    return 0
