"""`vmtailor hash-password` and `password_hash` checks: hashes made through libxcrypt,
verified by the host's libcrypt called directly (ctypes) and by openssl, never by the code
that made them."""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess

import pytest

from tests.conftest import required, vmtailor
from vmtailor.customizer import config
from vmtailor.customizer.config import ConfigError
from vmtailor.passwords import ALPHABET, HashError, hash_password

_LIBCRYPT_NAME = ctypes.util.find_library("crypt")
needs_libcrypt = required(_LIBCRYPT_NAME is None, "libcrypt (libcrypt1)")
needs_openssl = required(shutil.which("openssl") is None, "openssl")


def _libcrypt_crypt(password: str, setting: str) -> str:
    lib = ctypes.CDLL(_LIBCRYPT_NAME)
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = lib.crypt(password.encode(), setting.encode())
    return out.decode() if out else ""


def _openssl_sha512(salt: str, password: str, rounds: str = "") -> str:
    # openssl passwd has no -rounds: a $6$rounds=N$ salt is given whole in the setting
    return subprocess.run(
        ["openssl", "passwd", "-6", "-salt", rounds + salt, "-stdin"],
        input=password + "\n", capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def _hash_cli(*args: str, password: str = "correct horse") -> str:
    result = vmtailor("hash-password", *args, input=password + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no GetPassWarning, no prompt on a pipe
    assert password not in result.stdout
    return result.stdout.strip()


@needs_libcrypt
def test_yescrypt_is_the_default_and_libcrypt_verifies_it():
    hashed = _hash_cli("--stdin", password="pässwörd €")
    head, ident, params, salt, digest = hashed.split("$")
    assert (head, ident, params) == ("", "y", "j9T")
    assert len(salt) == 22 and len(digest) == 43 and set(salt + digest) <= set(ALPHABET)
    assert _libcrypt_crypt("pässwörd €", hashed) == hashed
    assert _libcrypt_crypt("pässwörd", hashed) != hashed
    assert hash_password("x") != hash_password("x")  # a fresh salt every time


@needs_openssl
@needs_libcrypt
def test_sha512_agrees_with_openssl_and_libcrypt():
    hashed = _hash_cli("--method", "sha512")
    _, ident, salt, digest = hashed.split("$")
    assert ident == "6" and len(salt) == 16 and len(digest) == 86
    assert _openssl_sha512(salt, "correct horse") == hashed
    assert _libcrypt_crypt("correct horse", hashed) == hashed
    rounds = _hash_cli("--method", "sha512", "--rounds", "7000", password="-leading-dash")
    salt = rounds.split("$")[3]
    assert _openssl_sha512(salt, "-leading-dash", "rounds=7000$") == rounds


def test_a_pipe_without_stdin_flag_reads_one_line():
    # before: getpass on a pipe warned, then "internal error: EOFError()"
    hashed = _hash_cli(password="from a pipe")
    assert hashed.startswith("$y$")
    assert _libcrypt_crypt("from a pipe", hashed) == hashed


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("--stdin",), "", "error: no password on stdin (expected one line)\n"),
        ((), "", "error: no password on stdin (expected one line)\n"),
        (("--stdin",), "\n", "error: empty password\n"),
        (("--rounds", "6000"), "pw\n", "error: --rounds applies to --method sha512 only"),
        (("--method", "sha512", "--rounds", "5"), "pw\n", "error: --rounds must be between 1000"),
    ],
)
def test_bad_input_is_one_line(args, stdin, message):
    result = vmtailor("hash-password", *args, input=stdin)
    assert result.returncode == 2 and result.stdout == ""  # bad input, as a bad option is
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert "internal error" not in result.stderr


def test_nul_in_password_is_refused():
    with pytest.raises(HashError, match="NUL"):
        hash_password("a\0b")


GOOD_HASHES = [
    "$6$saltsalt$0uHqI3Ld3nvGOh7mHIlhYfWQyV5FXr3DPCcKa0BE8XJ1jb3YXvcmbc7ktEdXOM5j5VVIXxyH6bMtT0xGDTmQd/",
    "$y$j9T$F5Jx5fExmnOM0U04EZLri.$fJdDv7pBAN4AJ9FlEPTvaNZbTS.JdISNkH.tH/VknT7",
    "$5$rounds=6000$abc$" + "a" * 43,
    "$1$abcdefgh$" + "b" * 22,
    "$2b$12$" + "c" * 53,
    "!",
    "*",
    "!!",
]
BAD_HASHES = [
    "$6$abc$def",  # digest cut short
    "$6$abc$" + "d" * 85,
    "$6$rounds=x$abc$" + "d" * 86,
    "$y$j9T$abc$def",
    "$y$j9T$F5Jx5fExmnOM0U04EZLri.$fJdDv7pBAN4AJ9FlEPTvaNZbTS.JdISNkH.tH/VknT7x",
    "$1$toolongsalt$" + "b" * 22,
    "$2b$1$" + "c" * 53,
    "$2x$12$" + "c" * 53,  # the broken pre-2011 bcrypt variant
]


@pytest.mark.parametrize("value", GOOD_HASHES)
def test_well_formed_hashes_are_accepted(value):
    cfg = config.parse({"users": [{"name": "ops", "password_hash": value}]})
    assert cfg.users[0].password_hash == value


@pytest.mark.parametrize("value", BAD_HASHES)
def test_malformed_hashes_are_one_located_line_without_the_value(value):
    with pytest.raises(ConfigError) as info:
        config.parse({"users": [{"name": "ops", "password_hash": value}]})
    text = str(info.value)
    assert text.startswith("error at users[0].password_hash:")
    assert "crypt(3) hash" in text and "value not shown" in text and "\n" not in text
    assert value not in text and value.split("$")[-1] not in text


def test_shape_error_names_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('hostname: web01\nusers:\n  - name: ops\n    password_hash: "$6$abc$def"\n')
    result = vmtailor("validate", str(path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "error at users[0].password_hash: line 4: not a well-formed SHA-512" in result.stderr
    assert "$6$abc$def" not in result.stderr
