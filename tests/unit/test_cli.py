"""The real command line, run as a subprocess: exit codes, one-line errors, --json, and
that a bad config or an impossible change leaves the guest untouched."""

from __future__ import annotations

import json

import pytest

from tests.conftest import tree_digest, vmtailor
from vmtailor.commands import COMMANDS


def _guest(top):
    (top / "etc/ssh").mkdir(parents=True)
    (top / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n')
    (top / "etc/hostname").write_text("template\n")
    (top / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\ttemplate\n")
    (top / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (top / "etc/group").write_text("root:x:0:\n")
    return top


@pytest.fixture
def guest(tmp_path):
    return _guest(tmp_path / "guest")


def _config(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_help_lists_every_command():
    out = vmtailor("--help", check=True).stdout
    for command in COMMANDS:
        assert command.NAME in out
        sub = vmtailor(command.NAME, "--help", check=True).stdout
        assert "usage: vmtailor " + command.NAME in sub


def test_validate_exit_codes(tmp_path):
    ok = vmtailor("validate", _config(tmp_path, "hostname: web01\n"))
    assert ok.returncode == 0 and "valid" in ok.stdout
    bad = vmtailor("validate", _config(tmp_path, "hostname: web01\nusers: 3\n"))
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "error at users: line 2:" in bad.stderr
    missing = vmtailor("validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read config" in missing.stderr


def test_bad_config_touches_nothing(tmp_path, guest):
    before = tree_digest(guest)
    cfg = _config(tmp_path, "hostname: web01\nfiles:\n  - {path: /etc/motd, contnet: x}\n")
    result = vmtailor("apply", cfg, "--root", str(guest))
    assert result.returncode == 2 and "did you mean 'content'" in result.stderr
    assert tree_digest(guest) == before


def test_impossible_change_touches_nothing(tmp_path, guest):
    """hostname is planned fine, then a later file item can't be: nothing is written."""
    before = tree_digest(guest)
    cfg = _config(
        tmp_path,
        "hostname: web01\nfiles:\n  - path: /etc/nope.conf\n    replace: {pattern: a, with: b}\n",
    )
    result = vmtailor("apply", cfg, "--root", str(guest))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: files[0] (/etc/nope.conf): /etc/nope.conf does not exist in the guest"
    )
    assert tree_digest(guest) == before


def test_file_where_directory_expected_is_a_clean_error(tmp_path, guest):
    (guest / "etc/ssh").rmdir()
    (guest / "etc/ssh").write_text("not a dir\n")
    before = tree_digest(guest)
    cfg = _config(tmp_path, "files:\n  - {path: /etc/ssh/sshd_config, content: x}\n")
    result = vmtailor("apply", cfg, "--root", str(guest))
    assert result.returncode == 1 and "is not a directory" in result.stderr
    assert result.stderr.count("\n") == 1
    assert tree_digest(guest) == before


def test_dry_run_diff_then_apply_then_revert(tmp_path, guest):
    before = tree_digest(guest)
    cfg = _config(tmp_path, "hostname: web01\ndomain: example.com\n")
    dry = vmtailor("apply", cfg, "--root", str(guest), "--dry-run", "--diff")
    assert dry.returncode == 0
    assert "+127.0.1.1\tweb01.example.com web01" in dry.stdout
    assert "would modify  /etc/hostname" in dry.stdout
    assert tree_digest(guest) == before

    done = vmtailor("apply", cfg, "--root", str(guest), "--json")
    data = json.loads(done.stdout)
    assert data["changed"] and {"action": "modify", "path": "/etc/hostname"} in data["changes"]
    assert (guest / "etc/hostname").read_text() == "web01\n"

    again = vmtailor("apply", cfg, "--root", str(guest))
    assert "nothing to change (this config is already applied)" in again.stdout

    info = json.loads(vmtailor("inspect", "--root", str(guest), "--json", check=True).stdout)
    assert info["family"] == "debian" and info["vmtailor"]["state"] == "applied"

    assert vmtailor("revert", "--root", str(guest)).returncode == 0
    assert tree_digest(guest) == before
    again = vmtailor("revert", "--root", str(guest))
    assert again.returncode == 1 and "nothing to revert" in again.stderr


def test_vars_render_templates(tmp_path, guest):
    cfg = _config(tmp_path, "hostname: '{{ name }}'\n")
    missing = vmtailor("apply", cfg, "--root", str(guest))
    assert missing.returncode == 2 and "undefined variable" in missing.stderr
    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text("name: db07\n")
    assert vmtailor("apply", cfg, "--root", str(guest), "--vars", str(vars_file)).returncode == 0
    assert (guest / "etc/hostname").read_text() == "db07\n"
    assert vmtailor("apply", cfg, "--root", str(guest), "--var", "name=db08").returncode == 0
    assert (guest / "etc/hostname").read_text() == "db08\n"


def test_refuses_host_root_and_non_guests(tmp_path):
    cfg = _config(tmp_path, "hostname: web01\n")
    result = vmtailor("apply", cfg, "--root", "/")
    assert result.returncode == 1 and "refusing" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = vmtailor("apply", cfg, "--root", str(empty))
    assert result.returncode == 1 and "no Linux guest found" in result.stderr
    assert list(empty.iterdir()) == []


def test_hash_password_never_echoes(tmp_path):
    result = vmtailor("hash-password", "--stdin", input="correct horse\n", check=True)
    assert result.stdout.startswith("$y$") and "correct horse" not in result.stdout + result.stderr


def test_ops_lists_registry():
    data = json.loads(vmtailor("ops", "--json", check=True).stdout)
    assert [d["name"] for d in data][:2] == ["hostname", "network"]
