"""vmtailor completion bash|zsh"""

from ..completion import SHELLS, script

NAME = "completion"
HELP = "print a shell completion script (bash or zsh)"
DESCRIPTION = """\
Print a completion script for the shell, generated from vmtailor's own option
definitions: commands, options, and option values (choices, else file names).

examples:
  vmtailor completion bash > /etc/bash_completion.d/vmtailor
  vmtailor completion zsh > ~/.zfunc/_vmtailor   # a folder in $fpath"""


def add_arguments(p) -> None:
    p.add_argument("shell", choices=SHELLS, help="the shell the script is for")


def run(args) -> int:
    print(script(args.shell), end="")
    return 0
