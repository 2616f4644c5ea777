"""SHA-crypt (`$6$`, and `$5$` for checking) in pure Python, after Ulrich Drepper's
"Unix crypt using SHA-256 and SHA-512". The stdlib `crypt` module is deprecated and gone
in Python 3.13, and the initrd has no libcrypt to lean on.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ROUNDS_DEFAULT = 5000
ROUNDS_MIN = 1000
ROUNDS_MAX = 999_999_999
SALT_MAX = 16
ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _rotate(t: tuple[int, ...], n: int) -> tuple[int, ...]:
    return t[n:] + t[:n]


# Byte order of the final base-64 step: groups of three digest bytes, high byte first,
# then the leftover bytes (the spec's b64_from_24bit calls, written out once here).
_ORDER = {
    "sha512": ([_rotate((i, i + 21, i + 42), i % 3) for i in range(21)], (63,)),
    "sha256": ([_rotate((i, i + 10, i + 20), -i % 3) for i in range(10)], (31, 30)),
}
_SCHEMES = {"6": "sha512", "5": "sha256"}


def sha512_crypt(password: str, salt: str | None = None, rounds: int | None = None) -> str:
    """A `$6$` crypt(3) hash of `password`: a random 16-character salt unless one is given;
    `rounds` (clamped to 1000..999999999) appears in the hash only when given."""
    if salt is None:
        salt = "".join(secrets.choice(ALPHABET) for _ in range(SALT_MAX))
    bad = set(salt) - set(ALPHABET)
    if bad:
        raise ValueError("salt characters must come from [./0-9A-Za-z]")
    return _crypt("sha512", password.encode("utf-8"), salt, rounds)


def verify(password: str, hashed: str) -> bool:
    """Whether `password` matches a `$6$` (or `$5$`) crypt hash."""
    scheme, salt, rounds = _parse(hashed)
    again = _crypt(scheme, password.encode("utf-8"), salt, rounds)
    return hmac.compare_digest(again.encode(), hashed.encode())


def _parse(hashed: str) -> tuple[str, str, int | None]:
    parts = hashed.split("$")
    if len(parts) < 4 or parts[0] or parts[1] not in _SCHEMES:
        raise ValueError("not a $5$ or $6$ crypt hash")
    rest = parts[2:]
    rounds = None
    if rest[0].startswith("rounds=") and len(rest) > 2:
        digits = rest[0][len("rounds=") :]
        if not digits.isdigit():
            raise ValueError("bad rounds= in crypt hash")
        rounds = int(digits)
        rest = rest[1:]
    return _SCHEMES[parts[1]], rest[0], rounds


def _crypt(scheme: str, key: bytes, salt_text: str, rounds: int | None) -> str:
    h = getattr(hashlib, scheme)
    salt = salt_text.encode("utf-8")[:SALT_MAX]
    count = ROUNDS_DEFAULT if rounds is None else min(max(rounds, ROUNDS_MIN), ROUNDS_MAX)

    alternate = h(key + salt + key).digest()
    size = len(alternate)
    ctx = h(key + salt)
    ctx.update(_repeat(alternate, len(key)))
    n = len(key)
    while n:
        ctx.update(alternate if n & 1 else key)
        n >>= 1
    a = ctx.digest()

    p_bytes = _repeat(h(key * len(key)).digest(), len(key))
    s_bytes = _repeat(h(salt * (16 + a[0])).digest(), len(salt))

    c = a
    for i in range(count):
        ctx = h(p_bytes if i & 1 else c)
        if i % 3:
            ctx.update(s_bytes)
        if i % 7:
            ctx.update(p_bytes)
        ctx.update(c if i & 1 else p_bytes)
        c = ctx.digest()
    assert len(c) == size

    groups, tail = _ORDER[scheme]
    out = [_b64(c[x] << 16 | c[y] << 8 | c[z], 4) for x, y, z in groups]
    if len(tail) == 1:
        out.append(_b64(c[tail[0]], 2))
    else:
        out.append(_b64(c[tail[0]] << 8 | c[tail[1]], 3))
    ident = "6" if scheme == "sha512" else "5"
    head = f"${ident}$" + (f"rounds={count}$" if rounds is not None else "")
    return head + salt.decode("utf-8", errors="replace") + "$" + "".join(out)


def _repeat(block: bytes, length: int) -> bytes:
    """`block` repeated (and cut) to `length` bytes."""
    return (block * (length // len(block) + 1))[:length]


def _b64(value: int, chars: int) -> str:
    out = []
    for _ in range(chars):
        out.append(ALPHABET[value & 0x3F])
        value >>= 6
    return "".join(out)
