"""Password hashes for `password_hash`, made by the host's libcrypt (libxcrypt on current
distributions) through crypt_r, the stdlib `crypt` module kept alive for Python ≥ 3.13.

The hashing itself is libcrypt's: this module only builds the setting string (method,
cost, salt). That is the part libxcrypt's crypt_gensalt does, which crypt_r does not
expose; yescrypt's setting is short and documented, so it is written out here.
"""

from __future__ import annotations

import secrets

import crypt_r

from .customizer.errors import UsageError, VmtailorError

# crypt(3)'s base-64 alphabet, shared by every $id$ method
ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# libxcrypt's default yescrypt cost (crypt_gensalt("$y$", 0)): N=4096, r=32, p=1 — what
# Debian's passwd, chpasswd and mkpasswd write today
YESCRYPT_PARAMS = "j9T"
METHODS = ("yescrypt", "sha512")
DEFAULT_METHOD = "yescrypt"
SHA512_ROUNDS = (1000, 999_999_999)


class HashError(VmtailorError):
    """The password could not be hashed (a libcrypt without the method, a NUL in it)."""


class HashOptionError(HashError, UsageError):
    """A method or cost that makes no sense: a usage error (exit 2), like a bad option."""


def _encode64(data: bytes) -> str:
    """yescrypt's salt encoding: little-endian 6-bit groups of each 3-byte chunk. A salt
    string that is not a canonical encoding is refused by libxcrypt (crypt returns "*0")."""
    out = []
    for i in range(0, len(data), 3):
        chunk = data[i : i + 3]
        value = int.from_bytes(chunk, "little")
        for _ in range((len(chunk) * 8 + 5) // 6):
            out.append(ALPHABET[value & 0x3F])
            value >>= 6
    return "".join(out)


def setting(method: str, rounds: int | None = None) -> str:
    """A fresh crypt(3) setting (method, cost, random salt) for `method`."""
    if method not in METHODS:
        raise HashOptionError(f"unknown hash method {method!r} (known: {', '.join(METHODS)})")
    if method == "yescrypt":
        if rounds is not None:
            raise HashOptionError(
                "--rounds applies to --method sha512 only (yescrypt has its cost)"
            )
        return f"$y${YESCRYPT_PARAMS}${_encode64(secrets.token_bytes(16))}"
    if rounds is not None and not SHA512_ROUNDS[0] <= rounds <= SHA512_ROUNDS[1]:
        raise HashOptionError(f"--rounds must be between {SHA512_ROUNDS[0]} and {SHA512_ROUNDS[1]}")
    salt = "".join(secrets.choice(ALPHABET) for _ in range(16))
    return "$6$" + (f"rounds={rounds}$" if rounds is not None else "") + salt


def hash_password(password: str, method: str = DEFAULT_METHOD, rounds: int | None = None) -> str:
    """`password` hashed by the host's libcrypt with a random salt."""
    if "\0" in password:
        raise HashError("the password holds a NUL character, which crypt(3) cannot take")
    prefix = setting(method, rounds)
    hashed = crypt_r.crypt(password, prefix)
    # libcrypt signals failure with None or a string starting with "*" (never a valid hash)
    if not hashed or not hashed.startswith(prefix.split("$", 3)[1].join("$$")):
        raise HashError(f"this host's libcrypt cannot make {method} hashes",
                        hint="try --method sha512")  # fmt: skip
    return hashed
