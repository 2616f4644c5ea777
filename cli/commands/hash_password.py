"""vmtailor hash-password"""

import getpass
import sys

from ..customizer.errors import UsageError
from ..passwords import DEFAULT_METHOD, METHODS, hash_password

NAME = "hash-password"
HELP = "make a crypt(3) hash (yescrypt or SHA-512) for password_hash"
DESCRIPTION = """\
Ask for a password (twice, without echo) and print its crypt(3) hash for a config's
users[].password_hash, made by this host's libcrypt: yescrypt ($y$…, what current
distributions use) unless --method sha512 ($6$…, for guests whose libcrypt predates
yescrypt: RHEL/CentOS 7, Debian ≤ 10, Ubuntu ≤ 20.04). The password itself never goes in a
config.

When stdin is not a terminal (a pipe, a file) — or with --stdin — one line is read from it,
without prompts.

examples:
  vmtailor hash-password
  vmtailor hash-password --method sha512
  printf '%s\\n' "$PW" | vmtailor hash-password --stdin"""


def add_arguments(p) -> None:
    p.add_argument("--stdin", action="store_true",
                   help="read the password from stdin (one line), without prompts")  # fmt: skip
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help=f"hash method ({DEFAULT_METHOD})")  # fmt: skip
    p.add_argument("--rounds", type=int, default=None, metavar="N",
                   help="SHA-512 rounds, 1000..999999999 (libcrypt's default 5000)")  # fmt: skip


def _read_password(from_stdin: bool) -> str:
    # getpass on a pipe warns and then raises EOFError at the end of input: a script piping
    # the password in gets one plain read instead
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise UsageError("no password on stdin (expected one line)")
        return line.removesuffix("\n").removesuffix("\r")
    try:
        password = getpass.getpass("Password: ")
        again = getpass.getpass("Again: ")
    except EOFError:
        raise UsageError("no password given (end of input)") from None
    if again != password:
        raise UsageError("the passwords differ")
    return password


def run(args) -> int:
    password = _read_password(args.stdin)
    if not password:
        raise UsageError("empty password")
    print(hash_password(password, args.method, args.rounds))
    return 0
