"""SHA-512 crypt against the spec's published vectors, openssl, and libcrypt."""

from __future__ import annotations

import random
import shutil
import subprocess
import warnings

import pytest

from tests.conftest import required
from vmtailor.customizer.crypt import ALPHABET, sha512_crypt, verify

# Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512", SHA-512 test vectors:
# (setting, password, expected hash)
SPEC_VECTORS = [
    (
        "saltstring",
        None,
        "Hello world!",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiB"
        "FdcbYEdFCoEOfaS35inz1",
    ),
    (
        "saltstringsaltstring",
        10000,
        "Hello world!",
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/Urj"
        "mM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
    (
        "toolongsaltstring",
        5000,
        "This is just a test",
        "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZ"
        "xUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
    ),
    (
        "anotherlongsaltstring",
        1400,
        "a very much longer text to encrypt.  This one even stretches over morethan one line.",
        "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3C"
        "mLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1",
    ),
    (
        "short",
        77777,
        "we have a short salt string but not a short password",
        "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCa"
        "UeOxFmtlcGZelFl5CxtgfiAc0",
    ),
    (
        "asaltof16chars..",
        123456,
        "a short string",
        "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6y"
        "cULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1",
    ),
    (
        "roundstoolow",
        10,
        "the minimum number is still observed",
        "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58"
        "jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.",
    ),
]


@pytest.mark.parametrize(("salt", "rounds", "password", "expected"), SPEC_VECTORS)
def test_spec_vectors(salt, rounds, password, expected):
    assert sha512_crypt(password, salt, rounds) == expected
    assert verify(password, expected)
    assert not verify(password + "x", expected)


def _openssl(scheme: str, salt: str, password: str) -> str:
    # the password on stdin: as an argument, "-leading-dash" would be read as an option
    return subprocess.run(
        ["openssl", "passwd", scheme, "-salt", salt, "-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


needs_openssl = required(shutil.which("openssl") is None, "openssl")


@needs_openssl
@pytest.mark.parametrize(
    ("salt", "password"),
    [
        ("abcdefgh", "secret"),
        ("Zz./09aZzz./09aZ", "correct horse battery staple"),
        ("x", "p"),
        ("saltsaltsaltsalt", "pässwörd ünïcode €"),
        ("12345678", "a" * 200),  # longer than the 64-byte digest: the block loops run
        ("q", "-leading-dash"),
    ],
)
def test_matches_openssl(salt, password):
    expected = _openssl("-6", salt, password)
    assert sha512_crypt(password, salt) == expected
    assert verify(password, expected)


@needs_openssl
def test_verifies_openssl_sha256():
    hashed = _openssl("-5", "abcdefgh", "secret")
    assert verify("secret", hashed)
    assert not verify("Secret", hashed)


def _libcrypt():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            return None
    return crypt


@required(_libcrypt() is None, "the crypt module (Python < 3.13)")
def test_agrees_with_libcrypt_on_random_inputs():
    crypt = _libcrypt()
    rng = random.Random(1234)
    for _ in range(8):
        password = "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(0, 90)))
        salt = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 17)))
        rounds = rng.choice([None, 1000, 1234, 5000])
        setting = "$6$" + (f"rounds={rounds}$" if rounds else "") + salt
        assert sha512_crypt(password, salt, rounds) == crypt.crypt(password, setting)


def test_random_salt_and_format():
    one, two = sha512_crypt("pw"), sha512_crypt("pw")
    assert one != two
    for hashed in (one, two):
        _, ident, salt, digest = hashed.split("$")
        assert ident == "6" and len(salt) == 16 and len(digest) == 86
        assert set(salt + digest) <= set(ALPHABET)
        assert verify("pw", hashed)


def test_rounds_clamped_and_shown_only_when_given():
    assert sha512_crypt("pw", "salt", 5000).startswith("$6$rounds=5000$salt$")
    assert sha512_crypt("pw", "salt").startswith("$6$salt$")
    assert sha512_crypt("pw", "salt", 1).startswith("$6$rounds=1000$")


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        sha512_crypt("pw", "bad:salt")
    with pytest.raises(ValueError):
        sha512_crypt("pw", "with$dollar")
    for bad in ("!", "*", "$1$abc$def", "$6$", "plain", "$y$j9T$abc$def"):
        with pytest.raises(ValueError):
            verify("pw", bad)
