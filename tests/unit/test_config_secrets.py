"""Secrets stay secret: never echoed in an error (text or --json), secret files created
0600 in the guest, config media images (hashes, secret files) 0600 on the host."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import crypt_r
import pytest

from tests.conftest import small_guest, vmtailor
from vmtailor.builder.media import write_media
from vmtailor.customizer import config, engine
from vmtailor.customizer.config import ConfigError
from vmtailor.customizer.localroot import LocalRoot

SECRET = "Hunter2-Correct-Horse"
HASH = crypt_r.crypt(SECRET, "$6$saltsaltsaltsalt")
PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAABG5vbmU -----END OPENSSH PRIVATE KEY-----"


@pytest.mark.parametrize(
    "user, expected",
    [
        ({"password_hash": HASH + " "}, "error at users[0].password_hash: line 3: not a crypt(3)"),
        ({"password_hash": " " + HASH}, "not a crypt(3) hash"),
        ({"password_hash": SECRET}, "(expected $id$salt$hash, or ! to lock; value not shown)"),
        ({"password_hash": 471142}, "expected a string, got a number (value not shown)"),
        ({"password_hash": [SECRET]}, "expected a string, got a list (value not shown)"),
        (
            {"ssh_authorized_keys": [PRIVATE]},
            "error at users[0].ssh_authorized_keys[0]: line 3: "
            "this is a private key (value not shown)",
        ),
        ({"ssh_authorized_keys": [SECRET]}, "not an ssh public key"),
    ],
)
def test_secret_values_are_never_echoed(tmp_path, user, expected):
    path = tmp_path / "c.yaml"
    ((key, value),) = user.items()
    path.write_text(f"users:\n  - name: ops\n    {key}: {json.dumps(value)}\n")
    for args in ((), ("--json",)):
        result = vmtailor("validate", str(path), *args)
        assert result.returncode == 2
        assert expected in result.stderr, result.stderr
        out = result.stdout + result.stderr
        assert SECRET not in out and "471142" not in out and "b3BlbnNz" not in out
        assert HASH.strip() not in out and HASH[:12] not in out


def test_templated_secret_rendered_wrong_is_not_echoed():
    with pytest.raises(ConfigError) as info:
        config.parse({"users": [{"name": "a", "password_hash": "{{ pw }}"}]}, {"pw": SECRET})
    assert SECRET not in str(info.value) and "value not shown" in str(info.value)


def _guest(top: Path) -> Path:
    small_guest(top)
    (top / "etc/shared.key").write_text("old\n")
    os.chmod(top / "etc/shared.key", 0o640)
    return top


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_files_are_created_0600(tmp_path):
    top = _guest(tmp_path / "guest")
    cfg = config.parse({"files": [
        {"path": "/etc/app/token", "content": "t0ken\n", "secret": True},
        {"path": "/etc/app/key", "source": "key.pem", "secret": True},
        {"path": "/etc/app/lines", "append_line": "pw=x", "secret": True},
        {"path": "/etc/app/readable", "content": "x\n", "secret": True, "permissions": "0644"},
        {"path": "/etc/shared.key", "content": "new\n", "secret": True},
        {"path": "/etc/app/plain", "content": "x\n"},
    ]})  # fmt: skip
    engine.apply(cfg, LocalRoot(str(top)), sources={"key.pem": b"KEY"}.__getitem__)
    assert mode(top / "etc/app/token") == 0o600
    assert mode(top / "etc/app/key") == 0o600
    assert mode(top / "etc/app/lines") == 0o600
    assert mode(top / "etc/app/readable") == 0o644  # permissions given win
    assert mode(top / "etc/shared.key") == 0o640  # an existing file keeps its mode
    assert mode(top / "etc/app/plain") == 0o644


@pytest.mark.parametrize("fmt", ["iso", "floppy", "vfat"])
def test_media_images_are_0600(tmp_path, fmt):
    cfg = config.parse({"users": [{"name": "ops", "password_hash": HASH}]})
    fresh = write_media(cfg, lambda name: b"", str(tmp_path / f"new.{fmt}"), fmt)
    assert mode(Path(fresh)) == 0o600
    old = tmp_path / f"old.{fmt}"
    old.write_bytes(b"an earlier image")
    os.chmod(old, 0o644)
    write_media(cfg, lambda name: b"", str(old), fmt)
    assert mode(old) == 0o600
    assert sorted(os.listdir(tmp_path)) == sorted([f"new.{fmt}", f"old.{fmt}"])  # no temp left


def test_deploy_config_media_stay_0600(tmp_path):
    from vmtailor.configfile import LoadedConfig
    from vmtailor.hypervisors.deploy import make_config_media
    from vmtailor.hypervisors.inventory import InventoryVM

    cfg = config.parse({"users": [{"name": "ops", "password_hash": HASH}]})
    vm = InventoryVM("web01", {}, {}, LoadedConfig("c.yaml", cfg, lambda name: b""))
    out = make_config_media(vm, str(tmp_path), "iso", {"token": "t" * 32})
    assert mode(Path(out)) == 0o600
