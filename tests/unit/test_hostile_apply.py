"""The whole engine on hostile guests: whatever links the guest holds, apply and revert
read and write only inside the guest root — or stop with a clean error."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.conftest import tree_digest
from vmtailor.customizer import config, engine
from vmtailor.customizer.errors import VmtailorError
from vmtailor.customizer.localroot import LocalRoot

HOST_FILES = ["/etc/shadow", "/etc/passwd", "/etc/group", "/etc/hostname", "/etc/hosts"]

CONFIG = {
    "hostname": "web01",
    "domain": "example.com",
    "users": [
        {
            "name": "ops",
            "ssh_authorized_keys": ["ssh-ed25519 AAAAC3Nz ops@x"],
            "sudo": "ALL=(ALL) ALL",
        },
        {"name": "root", "ssh_authorized_keys": ["ssh-ed25519 AAAAC3Nz root@x"]},
    ],
    "files": [
        {"path": "/etc/motd", "content": "pwned?\n"},
        {"path": "/etc/ssh/sshd_config", "append_line": "PermitRootLogin no"},
        {"path": "/var/www/index.html", "content": "x\n"},
    ],
    "firstboot": [{"name": "hello", "script": "echo hi"}],
    "reset": ["machine-id"],
}

# name -> {guest path: link target}; each is applied on top of a small Debian guest
HOSTILE = {
    "etc-is-root-absolute": {"/etc/motd": "/", "/etc/ssh": "/"},
    "hostname-to-host-shadow": {"/etc/hostname": "/etc/shadow"},
    "dotdot-escapes": {
        "/etc/hosts": "../../../../../../../../etc/hosts",
        "/etc/motd": "../../../../../../../../../etc/motd",
        "/etc/ssh": "../../../../../../outside",
    },
    "home-to-host-root": {"/home": "/../../../../root", "/root": "../../../../../root"},
    "var-escapes": {"/var": "../../../../../../var"},
    "loops": {"/etc/motd": "/etc/motd2", "/etc/motd2": "/etc/motd", "/etc/ssh": "ssh"},
    "machine-id-out": {"/etc/machine-id": "/../../../../etc/machine-id"},
}


def _guest(top: Path) -> Path:
    for d in ("etc/ssh", "home", "root", "var/lib", "sbin", "lib/systemd", "etc/systemd/system"):
        (top / d).mkdir(parents=True, exist_ok=True)
    (top / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (top / "lib/systemd/systemd").write_text("")
    os.symlink("../lib/systemd/systemd", top / "sbin/init")
    (top / "etc/hostname").write_text("template\n")
    (top / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 template\n")
    (top / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (top / "etc/group").write_text("root:x:0:\nsudo:x:27:\n")
    (top / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (top / "etc/gshadow").write_text("root:*::\nsudo:*::\n")
    (top / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return top


def _host_digest() -> dict[str, str]:
    out = {}
    for path in HOST_FILES:
        try:
            out[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError as exc:
            out[path] = f"unreadable: {exc.errno}"
    return out


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_guest_stays_inside(tmp_path, name):
    # the guest sits next to a sentinel tree shaped like a real system
    sentinel = tmp_path / "sentinel"
    for d in ("etc/ssh", "root/.ssh", "var/www", "home", "outside"):
        (sentinel / d).mkdir(parents=True)
    for f in (
        "etc/shadow",
        "etc/passwd",
        "etc/hostname",
        "etc/hosts",
        "etc/motd",
        "etc/machine-id",
        "etc/ssh/sshd_config",
        "root/.ssh/authorized_keys",
    ):
        (sentinel / f).write_text(f"sentinel {f}\n")
    top = _guest(sentinel / "guest")
    for path, target in HOSTILE[name].items():
        host = top / path.lstrip("/")
        if host.is_dir() and not host.is_symlink():
            host.rmdir() if not any(host.iterdir()) else _clear(host)
        elif host.exists() or host.is_symlink():
            host.unlink()
        os.symlink(target, host)
    outside = {k: v for k, v in tree_digest(sentinel).items() if not k.startswith("guest")}
    host_before = _host_digest()
    pristine = tree_digest(top)

    try:
        engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
        applied = True
    except VmtailorError as exc:
        assert "\n" not in str(exc)
        applied = False
        assert tree_digest(top) == pristine, "a failed apply must leave the guest untouched"

    after = {k: v for k, v in tree_digest(sentinel).items() if not k.startswith("guest")}
    assert after == outside
    assert _host_digest() == host_before
    if applied:
        engine.revert(LocalRoot(str(top)))
        assert tree_digest(top) == pristine
        assert {
            k: v for k, v in tree_digest(sentinel).items() if not k.startswith("guest")
        } == outside


def _clear(path: Path) -> None:
    import shutil

    shutil.rmtree(path)
