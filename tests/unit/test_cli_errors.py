"""How the command line fails: every config error at once, the documented exit status
(0 ok, 1 guest or system, 2 config or usage, 3 internal), an error document with --json,
global options after the command, and crash-class mistakes as one line that leaves
nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import tree_digest, vmtailor
from tests.unit.test_cli import _guest
from vmtailor import main as cli_main
from vmtailor.commands import validate as validate_cmd
from vmtailor.customizer import config as configmod
from vmtailor.customizer import engine
from vmtailor.customizer.config import ConfigError, ConfigErrors
from vmtailor.customizer.localroot import LocalRoot

# four mistakes, each found by a different layer: the template parser, the model loader
# (a bad format, an unknown key), the network cross-checks and the config-wide checks
MISTAKES = """\
hostname: "bad host"
users:
  - name: ops
    shel: /bin/sh
  - name: ops
network:
  ethernets:
    eth0: {addresses: [10.0.0.2/24], gateway4: 10.1.0.1}
firstboot:
  - {name: a, script: "{{ x | nosuchfilter }}"}
"""


def _config(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_every_config_error_at_once_in_file_order(tmp_path):
    cfg = _config(tmp_path, MISTAKES)
    result = vmtailor("validate", cfg)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines == [
        f"{cfg}: error at hostname: line 1: 'bad host' is not valid here (host name; a "
        "dotted name also sets the domain)",
        f"{cfg}: error at users[0].shel: line 4: unknown key 'shel' in users.0 (did you "
        "mean 'shell'?)",
        f"{cfg}: error at network.ethernets.eth0.gateway4: line 8: gateway 10.1.0.1 is "
        "outside every subnet of this interface (10.0.0.0/24) — add the matching address, "
        "or set on-link: true on the route",
        f"{cfg}: error at firstboot[0].script: line 10: template syntax error: No filter "
        "named 'nosuchfilter'.",
    ]


def test_the_config_wide_checks_report_all_their_problems():
    data = {"users": [{"name": "a"}, {"name": "a"}], "firstboot": [
        {"name": "x", "script": "true"}, {"name": "x", "script": "true"}],
        "reset": ["machine-id", "machine-id"]}  # fmt: skip
    with pytest.raises(ConfigErrors) as info:
        configmod.parse(data)
    paths = [e.path for e in info.value.errors]
    assert paths == [("users", 1, "name"), ("firstboot", 1, "name"), ("reset",)]
    # to code that expects one error it reads as the first
    assert info.value.path == ("users", 1, "name") and isinstance(info.value, ConfigError)


def test_network_checks_report_all_their_problems():
    data = {"network": {"ethernets": {
        "eth0": {"match": {"macaddress": "52:54:00:00:00:01"}},
        "eth1": {"match": {"macaddress": "52:54:00:00:00:01"}}},
        "bonds": {"bond0": {"interfaces": ["eth9"]}},
        "vlans": {"v1": {"id": 1, "link": "nope"}}}}  # fmt: skip
    with pytest.raises(ConfigErrors) as info:
        configmod.parse(data)
    messages = " | ".join(e.message for e in info.value.errors)
    assert "already matched" in messages
    assert "'eth9' is not defined" in messages
    assert "vlan link 'nope'" in messages


def test_exit_status_is_documented_and_kept(tmp_path, guest_tree):
    help_text = vmtailor("--help", check=True).stdout
    for line in ("0    success", "1    the guest or the system", "2    bad config",
                 "3    internal error"):  # fmt: skip
        assert line in help_text
    cfg = _config(tmp_path, "hostname: web01\n")
    bad_var = vmtailor("validate", cfg, "--var", "no-equals-sign")
    assert bad_var.returncode == 2 and "--var 'no-equals-sign'" in bad_var.stderr
    missing = vmtailor("apply", str(tmp_path / "nope.yaml"), "--root", str(guest_tree))
    assert missing.returncode == 2 and "cannot read config" in missing.stderr
    usage = vmtailor("validate")
    assert usage.returncode == 2
    assert usage.stderr.startswith("usage: vmtailor validate")
    assert "required: CONFIG" in usage.stderr.splitlines()[-1]
    inventory = _config(tmp_path, "config: c.yaml\nclones: 3\n", "site.yaml")
    bad_inventory = vmtailor("batch", inventory)
    assert bad_inventory.returncode == 2 and "error at clones: line 2" in bad_inventory.stderr
    # a problem of the guest: 1
    (guest_tree / "etc/ssh").rmdir()
    (guest_tree / "etc/ssh").write_text("a file\n")
    cfg2 = _config(tmp_path, "files:\n  - {path: /etc/ssh/x, content: x}\n", "c2.yaml")
    refused = vmtailor("apply", cfg2, "--root", str(guest_tree))
    assert refused.returncode == 1, refused.stderr


def test_json_failure_prints_an_error_document(tmp_path):
    cfg = _config(tmp_path, MISTAKES)
    result = vmtailor("validate", cfg, "--json")
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "config"
    assert error["message"].endswith("(and 3 more)")
    assert [(e["path"], e["line"]) for e in error["errors"]] == [
        ("hostname", 1), ("users[0].shel", 4), ("network.ethernets.eth0.gateway4", 8),
        ("firstboot[0].script", 10)]  # fmt: skip
    assert error["errors"][2]["hint"].startswith("add the matching address")
    assert len(result.stderr.splitlines()) == 4  # the lines for people, as without --json
    missing = vmtailor("--json", "validate", str(tmp_path / "nope.yaml"))
    doc = json.loads(missing.stdout)["error"]
    assert missing.returncode == 2 and doc["kind"] == "usage" and doc["errors"] == []
    assert "nope.yaml" in doc["message"] and missing.stderr.startswith("error: cannot read")
    usage = vmtailor("validate", "--json")
    assert usage.returncode == 2 and json.loads(usage.stdout)["error"]["kind"] == "usage"


def test_global_options_before_or_after_the_command(tmp_path, guest_tree):
    cfg = _config(tmp_path, "hostname: web01\n")
    applied = vmtailor("apply", cfg, "--root", str(guest_tree), "--dry-run", "-v")
    assert applied.returncode == 0, applied.stderr
    assert "2 change(s) planned" in applied.stdout
    for argv in (("validate", cfg, "-v"), ("-v", "validate", cfg),
                 ("validate", "--debug", cfg), ("validate", cfg, "--verbose")):  # fmt: skip
        result = vmtailor(*argv)
        assert result.returncode == 0 and result.stdout == f"{cfg}: valid\n", argv
    for argv in (("--json", "validate", cfg), ("validate", cfg, "--json")):
        assert json.loads(vmtailor(*argv).stdout)["valid"] is True


def test_eof_and_interrupt_are_one_line(tmp_path, monkeypatch, capsys):
    cfg = _config(tmp_path, "hostname: web01\n")
    # after an unanswered prompt ("Password: "), the error starts its own line
    for exc, status, text in ((EOFError(), 2, "\nerror: the input ended"),
                              (KeyboardInterrupt(), 130, "error: interrupted")):  # fmt: skip

        def boom(args, exc=exc):
            raise exc

        monkeypatch.setattr(validate_cmd, "run", boom)
        assert cli_main.main(["validate", cfg]) == status
        err = capsys.readouterr().err
        assert err.startswith(text) and err.strip().count("\n") == 0


def test_output_in_a_missing_folder_is_named_and_nothing_is_made(tmp_path):
    cfg = _config(tmp_path, "hostname: web01\n")
    before = sorted(os.listdir(tmp_path))
    for command in ("media", "build"):
        result = vmtailor(command, *([cfg] if command == "media" else []),
                          "--out", str(tmp_path / "nodir/x.iso"))  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            f"error: --out {tmp_path}/nodir/x.iso: the folder {tmp_path}/nodir does not exist\n"
        )
    assert sorted(os.listdir(tmp_path)) == before


def test_not_root_is_told_to_run_as_root_and_nothing_is_made():
    # the tree and config must be readable by nobody: pytest's tmp_path is not
    import tempfile

    top = tempfile.mkdtemp(prefix="vmtailor-nonroot-")
    try:
        os.chmod(top, 0o755)
        from pathlib import Path

        guest = _guest(Path(top) / "guest")
        cfg = Path(top) / "c.yaml"
        cfg.write_text("hostname: web01\n")
        for path in Path(top).rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        before = tree_digest(guest)
        # as root, become nobody; otherwise this user is already not root
        uid = 65534 if os.geteuid() == 0 else os.geteuid()
        become = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        locks = f"/tmp/vmtailor-{uid}"
        shutil.rmtree(locks, ignore_errors=True)
        result = subprocess.run(
            [*(become if os.geteuid() == 0 else []),
             sys.executable, "-m", "vmtailor", "apply", str(cfg), "--root", str(guest)],
            capture_output=True, text=True, env={**os.environ, "XDG_RUNTIME_DIR": ""},
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert "needs root" in result.stderr and "run as root" in result.stderr
        assert result.stderr.count("\n") == 1
        assert tree_digest(guest) == before
        assert not os.path.exists(locks)  # not even a lock folder
    finally:
        shutil.rmtree(top)


def test_validate_lists_the_variables_a_config_needs(tmp_path):
    cfg = _config(tmp_path, 'hostname: "{{ h }}"\nfiles:\n'
                  '  - {path: /etc/motd, content: "hi {{ who }} {{ h }}"}\n')  # fmt: skip
    result = vmtailor("validate", cfg)
    assert result.returncode == 0
    assert "it needs:\n  h    hostname, files[0].content\n  who  files[0].content\n" in (
        result.stdout
    )
    doc = json.loads(vmtailor("validate", cfg, "--json").stdout)
    assert doc["variables"] == {"h": ["hostname", "files[0].content"],
                                "who": ["files[0].content"]}  # fmt: skip
    assert doc["rendered"] is False
    partial = vmtailor("validate", cfg, "--var", "who=me")
    assert partial.returncode == 2
    assert partial.stderr.splitlines() == [
        f"{cfg}: error at hostname: line 1: uses undefined variable 'h' — pass it with "
        "--var NAME=VALUE or in the clone's vars",
        f"{cfg}: error at files[0].content: line 3: uses undefined variable 'h' — pass it "
        "with --var NAME=VALUE or in the clone's vars",
    ]
    full = vmtailor("validate", cfg, "--var", "who=me", "--var", "h=web01")
    assert full.returncode == 0 and "rendered with these variables" in full.stdout


def test_a_config_parsed_without_its_variables_is_never_applied(guest_tree):
    before = tree_digest(guest_tree)
    config = configmod.parse({"hostname": "{{ h }}"})  # no variables: left as a template
    with pytest.raises(ConfigError, match=r"hostname.*template not rendered: it needs h"):
        engine.apply(config, LocalRoot(str(guest_tree)))
    assert tree_digest(guest_tree) == before
    assert "{{" not in (guest_tree / "etc/hostname").read_text()


@pytest.fixture
def guest_tree(tmp_path):
    return _guest(tmp_path / "guest")


def test_a_reader_that_goes_away_is_one_line_not_a_traceback():
    read, write = os.pipe()
    os.close(read)  # like `vmtailor schema | head -1` once head has its line
    try:
        result = subprocess.run([sys.executable, "-m", "vmtailor", "schema"], stdout=write,
                                stderr=subprocess.PIPE, text=True, timeout=60)  # fmt: skip
    finally:
        os.close(write)
    assert result.returncode == 1
    assert result.stderr == "error: the output was closed before it was complete (broken pipe)\n"


def test_source_files_are_checked_even_when_the_rest_has_errors(tmp_path):
    (tmp_path / "sub").mkdir()
    cfg = _config(tmp_path, 'hostname: "bad host"\nfiles:\n  - {path: /etc/x, source: sub}\n'
                  "  - {path: /etc/y, source: '{{ later }}'}\n")  # fmt: skip
    result = vmtailor("validate", cfg)
    assert result.returncode == 2
    assert [line.split(": ")[1] for line in result.stderr.splitlines()] == [
        "error at hostname", "error at files[0].source"]  # fmt: skip
    assert "source 'sub' is a folder, not a file" in result.stderr
