"""vmtailor hash-password"""

import getpass
import sys

from ..customizer.errors import VmtailorError

NAME = "hash-password"
HELP = "make a SHA-512 crypt hash for password_hash"
DESCRIPTION = """\
Ask for a password (twice, without echo) and print its SHA-512 crypt hash ($6$…) for a
config's users[].password_hash. The password itself never goes in a config.

examples:
  vmtailor hash-password
  printf '%s\\n' "$PW" | vmtailor hash-password --stdin"""


def add_arguments(p) -> None:
    p.add_argument("--stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--rounds", type=int, default=None, help="SHA-512 rounds (default 5000)")


def run(args) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise VmtailorError("the passwords differ")
    if not password:
        raise VmtailorError("empty password")
    from ..customizer.crypt import sha512_crypt

    print(sha512_crypt(password, rounds=args.rounds))
    return 0
