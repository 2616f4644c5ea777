"""The customization config: what an admin writes, as typed models.

Key names follow cloud-init where it has one. The JSON schema in configs/ is generated
from these classes (`vmtailor schema`), and a test keeps the two in step.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any, Literal

from .errors import Collector, ConfigError, Path
from .network import Network
from .schema import spec
from .template import Deferred

HOSTNAME_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DNS_NAME = rf"{HOSTNAME_LABEL}(\.{HOSTNAME_LABEL})*"
USER_NAME = r"[a-z_][a-z0-9_.-]{0,30}\$?"
# crypt(3) hashes: $id$[rounds=N$]salt$hash (md5, sha256, sha512, yescrypt, bcrypt), or a
# lock marker ("!", "*", "!!") when the account has no password. The schema's pattern is
# the loose form; _crypt_hash checks each method's exact shape (CRYPT_SHAPES).
PASSWORD_HASH = r"\$(1|5|6|y|gy|2[aby]|7)\$[^\s:]+|!|!!|\*"
_B64 = "[./0-9A-Za-z]"
# What libxcrypt (every current distribution's libcrypt) accepts, per method: a hash of
# another shape makes the guest's login fail for that user, silently, at the next login.
CRYPT_SHAPES = {
    "1": ("MD5", rf"\$1\${_B64}{{0,8}}\${_B64}{{22}}"),
    "5": ("SHA-256", rf"\$5\$(rounds=[0-9]{{1,9}}\$)?{_B64}{{0,16}}\${_B64}{{43}}"),
    "6": ("SHA-512", rf"\$6\$(rounds=[0-9]{{1,9}}\$)?{_B64}{{0,16}}\${_B64}{{86}}"),
    "y": ("yescrypt", rf"\$y\${_B64}{{3,}}\${_B64}{{1,86}}\${_B64}{{43}}"),
    "gy": ("gost-yescrypt", rf"\$gy\${_B64}{{3,}}\${_B64}{{1,86}}\${_B64}{{43}}"),
    "7": ("scrypt", rf"\$7\${_B64}{{11,}}\${_B64}{{43}}"),
    "2b": ("bcrypt", rf"\$2[aby]\$[0-3][0-9]\${_B64}{{53}}"),
}
SSH_KEY = r"((sk-)?(ssh|ecdsa)-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( .*)?"
# uid_t/gid_t are 32 bits and (uid_t)-1 means "no change" to chown(2)
MAX_ID = 2**32 - 2
PLAIN_PASSWORD = (
    "plain-text passwords are not accepted — use password_hash (see `vmtailor hash-password`)"
)


def _absolute(value: str) -> str | None:
    if not value.startswith("/"):
        return f"{value!r} must be an absolute path in the guest"
    if posixpath.normpath(value) in ("/", "//"):
        return "the guest's / itself cannot be the target"
    return None


def _crypt_hash(value: str) -> str | None:
    # the value is a secret (or, typed here by mistake, a plain password): never shown
    if not re.fullmatch(PASSWORD_HASH, value):
        return "not a crypt(3) hash (expected $id$salt$hash, or ! to lock; value not shown)"
    if value.startswith("$"):
        ident = value.split("$")[1]
        name, shape = CRYPT_SHAPES["2b" if ident.startswith("2") else ident]
        if not re.fullmatch(shape, value):
            return (
                f"not a well-formed {name} crypt(3) hash (${ident}$…: wrong salt, cost or "
                "hash length; value not shown) — make one with `vmtailor hash-password`"
            )
    return None


def _public_key(value: str) -> str | None:
    # a private key pasted here must not end up in an error message or a log
    if "PRIVATE KEY" in value:
        return "this is a private key (value not shown): give the public key, from the .pub file"
    if not re.fullmatch(SSH_KEY, value):
        return "not an ssh public key (expected TYPE BASE64 [COMMENT]; value not shown)"
    return None


def _owner(value: str) -> str | None:
    for part in value.split(":"):
        # str.isdigit() is true for "²" too, and int() then fails in the guest's lookup
        if part.isdigit() and not (part.isascii() and len(part) <= 10 and int(part) <= MAX_ID):
            return f"numeric ids are ASCII digits 0 to {MAX_ID}"
    return None


def _single_line(value: str) -> str | None:
    # a line with a line break in it is never found again as one line of the file:
    # every run would append it once more
    # (\n, \r, and the other boundaries str.splitlines knows: \v, \f, \x85, \u2028, …)
    if value.splitlines() not in ([value], []):
        return "one line only: no line breaks (use content or replace for more)"
    return None


def _octal_mode(value: str) -> str | None:
    if not re.fullmatch(r"0?[0-7]{3,4}", value):
        return f'{value!r} is not an octal mode such as "0644"'
    return None


def _reset_items() -> list[str]:
    from ..ops.reset import RESET_ITEMS

    return sorted(RESET_ITEMS)


@dataclass
class User:
    """A user account to create or update."""

    __rejected_keys__ = {  # noqa: RUF012 — read by the loader, never changed; not a field
        "password": PLAIN_PASSWORD,
        "plain_text_passwd": PLAIN_PASSWORD,
        "passwd": "use password_hash (vmtailor's name for cloud-init's passwd)",
        "hashed_passwd": "use password_hash (vmtailor's name for cloud-init's hashed_passwd)",
    }

    name: str = spec("login name", pattern=USER_NAME, example="ops")
    gecos: str | None = spec("full name / comment field", default=None)
    uid: int | None = spec(
        "numeric user id (default: next free)", default=None, minimum=0, maximum=MAX_ID
    )
    primary_group: str | None = spec(
        "primary group (default: a group named after the user)", default=None, pattern=USER_NAME
    )
    groups: list[str] = spec(
        "supplementary groups, created when missing", factory=list, pattern=USER_NAME
    )
    shell: str | None = spec("login shell", default=None, check=_absolute)
    homedir: str | None = spec("home directory (default /home/NAME)", default=None, check=_absolute)
    system: bool = spec("a system account: uid below UID_MIN, no home directory", default=False)
    password_hash: str | None = spec(
        "crypt(3) password hash, e.g. from `vmtailor hash-password`; never a plain password",
        default=None,
        pattern=PASSWORD_HASH,
        check=_crypt_hash,
        secret=True,
    )
    lock_passwd: bool | None = spec(
        "lock password login (default: locked for a new user without password_hash)",
        default=None,
    )
    ssh_authorized_keys: list[str] = spec(
        "public keys for ~/.ssh/authorized_keys",
        factory=list,
        pattern=SSH_KEY,
        check=_public_key,
        secret=True,
    )
    sudo: str | list[str] | None = spec(
        'sudoers rules for this user, e.g. "ALL=(ALL) NOPASSWD:ALL"', default=None
    )

    def validate(self, path: Path) -> None:
        if self.password_hash and self.lock_passwd:
            raise ConfigError(path, "password_hash and lock_passwd: true contradict each other")


@dataclass
class Replace:
    """Replace every match of a regular expression (Python syntax, multiline)."""

    pattern: str = spec("regular expression; ^ and $ match at each line")
    with_: str = spec("replacement; \\1 refers to a group", key="with")
    count: int = spec(
        "replace at most this many matches (0: all)", default=0, minimum=0, maximum=2**31 - 1
    )

    def validate(self, path: Path) -> None:
        if isinstance(self.pattern, Deferred):
            return
        try:
            re.compile(self.pattern, re.MULTILINE)
        except re.error as exc:
            raise ConfigError((*path, "pattern"), f"bad regular expression: {exc}") from None


FILE_ACTIONS = ("content", "source", "replace", "append_line", "delete", "mkdir", "symlink")


@dataclass
class FileItem:
    """One file operation. Exactly one action key (content, source, replace, append_line,
    delete, mkdir, symlink); with none, permissions/owner change an existing path."""

    path: str = spec("absolute path in the guest", check=_absolute, example="/etc/motd")
    content: str | None = spec("write this content (creates or replaces)", default=None)
    encoding: Literal["text", "b64", "base64"] = spec("encoding of content", default="text")
    source: str | None = spec(
        "write the content of this regular file, inside the config's folder (or --sources "
        "DIR); carried on the media",
        default=None,
    )
    replace: Replace | None = spec("edit by regular expression", default=None)
    append_line: str | None = spec(
        "append this line unless the file has it", default=None, check=_single_line
    )
    delete: bool = spec("delete the file, link or empty directory", default=False)
    mkdir: bool = spec("create the directory (and missing parents)", default=False)
    symlink: str | None = spec("make path a symlink to this target", default=None)
    permissions: str | None = spec(
        'octal mode as a quoted string, e.g. "0644"',
        default=None,
        check=_octal_mode,
        type_hint='quote it: "0644" (unquoted, YAML reads 0644 as the number 420)',
    )
    owner: str | None = spec(
        '"user:group", "user" or numeric ids',
        default=None,
        pattern=r"[^:\s]+(:[^:\s]+)?",
        check=_owner,
    )
    secret: bool = spec(
        "never show this file's content in diffs or logs; a new file is created 0600 "
        "unless permissions say otherwise",
        default=False,
    )

    def action(self) -> str | None:
        for name in FILE_ACTIONS:
            value = getattr(self, name)
            if value not in (None, False):
                return name
        return None

    def validate(self, path: Path) -> None:
        chosen = [n for n in FILE_ACTIONS if getattr(self, n) not in (None, False)]
        if len(chosen) > 1:
            raise ConfigError(path, f"choose one action per item, not {' and '.join(chosen)}")
        if not chosen and self.permissions is None and self.owner is None:
            raise ConfigError(
                path,
                "nothing to do: give one of " + ", ".join(FILE_ACTIONS) + ", or permissions/owner",
            )
        if chosen and chosen[0] in ("delete", "symlink") and (self.permissions or self.owner):
            raise ConfigError(path, f"permissions/owner make no sense with {chosen[0]}")
        if self.encoding != "text" and self.content is None:
            raise ConfigError((*path, "encoding"), "encoding applies to content only")


@dataclass
class FirstbootScript:
    """A script the guest runs once, as root, on its next boot."""

    name: str = spec("unique name", pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
    script: str = spec("shell script (run by /bin/sh unless it starts with #!)")
    priority: int = spec("lower runs first", default=50, minimum=0, maximum=99)


@dataclass
class Config:
    """A vmtailor customization: what to change in a cloned guest."""

    hostname: str | None = spec(
        "host name; a dotted name also sets the domain", default=None, pattern=DNS_NAME
    )
    domain: str | None = spec(
        "DNS domain, making hostname.domain the FQDN", default=None, pattern=DNS_NAME
    )
    network: Network | None = spec("network configuration (netplan v2 format)", default=None)
    users: list[User] = spec("user accounts to create or update", factory=list)
    files: list[FileItem] = spec("file operations, applied in order", factory=list)
    firstboot: list[FirstbootScript] = spec("scripts to run once at next boot", factory=list)
    reset: list[str] = spec(
        "identity to reset, like virt-sysprep", factory=list, choices=_reset_items
    )

    def validate(self, path: Path) -> None:
        found = Collector()
        if (
            self.domain
            and self.hostname
            and "." in self.hostname
            and not isinstance(self.hostname, Deferred)
        ):
            found.add(ConfigError(
                (*path, "hostname"),
                f"{self.hostname!r} is already fully qualified and domain is set too",
                hint="give a short hostname with domain, or a dotted hostname alone",
            ))  # fmt: skip
        _unique(self.users, "name", (*path, "users"), found)
        _unique(self.firstboot, "name", (*path, "firstboot"), found)
        if len(set(self.reset)) != len(self.reset):
            found.add(ConfigError((*path, "reset"), "an item is listed twice"))
        found.raise_any()


def _unique(items: list[Any], attr: str, path: Path, found: Collector) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value in seen:
            found.add(ConfigError((*path, i, attr), f"{value!r} is already used by item "
                                  f"{seen[value]}"))  # fmt: skip
        else:
            seen[value] = i
