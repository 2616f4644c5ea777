"""What `apply`, `batch` and `deploy` print for a person: changes grouped per operation,
skel copies and vmtailor's first-boot machinery folded, colour only on a terminal (and
never with NO_COLOR), progress lines on stderr when it is not a terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import vmtailor
from vmtailor import main as cli
from vmtailor.hypervisors import deploy as deploy_module
from vmtailor.hypervisors import flow

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs/examples/web-server.yaml")
VARS = ("--var", "hostname=web01", "--var", "ip=192.0.2.10/24")
ANSI = re.compile(rb"\x1b\[")


@pytest.fixture
def root(make_root):
    top = make_root("debian-12")
    # a skeleton with a sub-folder: its copies are folded all the same
    (top / "etc/skel/.config/app").mkdir(parents=True)
    (top / "etc/skel/.config/app/rc").write_text("x=1\n")
    return str(top)


def _apply(root, *extra):
    result = vmtailor("apply", CONFIG, "--root", root, *VARS, "--dry-run", *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_changes_are_grouped_per_operation_with_counts(root):
    out = _apply(root)
    assert "hostname (2)\n  would modify  /etc/hosts\n  would modify  /etc/hostname\n" in out
    heads = re.findall(r"^(\w+) \((\d+)\)$", out, re.M)
    assert [h for h, _ in heads] == ["hostname", "network", "users", "files", "reset",
                                     "firstboot"]  # fmt: skip
    total = int(re.search(r"^(\d+) change\(s\) planned", out, re.M).group(1))
    assert sum(int(n) for _, n in heads) == total
    data = json.loads(vmtailor("apply", CONFIG, "--root", root, *VARS, "--dry-run",
                               "--json").stdout)  # fmt: skip
    assert data["operations"] == {h: int(n) for h, n in heads}
    # the skel copies and the runner are counted, listed as one line each
    assert re.search(r"^  would copy    6 path\(s\) from the skeleton into /home/ops$", out, re.M)
    assert re.search(r"^  would install the first-boot runner and boot hook \(\d+ paths\): "
                     r"/usr/lib/vmtailor/firstboot/run, ", out, re.M)  # fmt: skip
    assert "/home/ops/.bashrc" not in out and "would create  /usr/lib/vmtailor/firstboot/run" \
        not in out  # fmt: skip
    assert len(out.splitlines()) < total


def test_diff_folds_skel_copies_and_helpers(root):
    folded = _apply(root, "--diff")
    full = _apply(root, "--diff=full")
    for path in ("/home/ops/.bashrc", "/home/ops/.config/app/rc",
                 "/usr/lib/vmtailor/firstboot/run",
                 "/etc/systemd/system/vmtailor-firstboot.service"):  # fmt: skip
        assert f"+++ b{path}\n" in full and f"+++ b{path}\n" not in folded
    assert folded.count("\n=== copy 6 path(s) from the skeleton into /home/ops (--diff=full "
                        "shows them)\n") == 1  # fmt: skip
    assert len(re.findall(r"^=== install the first-boot runner", folded, re.M)) == 1
    # the config's own first-boot script is shown in full
    assert "+++ b/usr/lib/vmtailor/firstboot/scripts/10-register\n" in folded
    assert len(folded.splitlines()) < len(full.splitlines()) - 150
    assert "+++ b/usr/lib/vmtailor/firstboot/run\n" in _apply(root, "--diff=full")


def test_diff_flag_before_the_config(root):
    result = vmtailor("apply", "--diff", "--dry-run", CONFIG, "--root", root, *VARS)
    assert result.returncode == 0 and "\n=== copy 6 path(s)" in result.stdout


def _on_a_terminal(args, env):
    """Run the CLI with stdout on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vmtailor", *args], stdout=slave,
                            stderr=subprocess.PIPE, env=env)  # fmt: skip
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    proc.stderr.close()
    return out


def test_colour_on_a_terminal_only_and_never_with_no_color(root):
    args = ["apply", CONFIG, "--root", root, *VARS, "--dry-run", "--diff"]
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    coloured = _on_a_terminal(args, env)
    assert ANSI.search(coloured) and b"hostname (2)" in coloured
    assert b"\x1b[32m+127.0.1.1" in coloured  # an added line, green
    plain = _on_a_terminal(args, {**env, "NO_COLOR": "1"})
    assert not ANSI.search(plain) and b"hostname (2)" in plain
    piped = subprocess.run([sys.executable, "-m", "vmtailor", *args], capture_output=True,
                           env=env, check=True)  # fmt: skip
    assert not ANSI.search(piped.stdout + piped.stderr)
    # a pipe gets the diff byte for byte: tabs stay tabs
    assert b"\n-127.0.1.1\t" in piped.stdout


def test_batch_progress_lines_on_a_pipe(tmp_path):
    (tmp_path / "web.yaml").write_text("hostname: web01\n")
    (tmp_path / "site.yaml").write_text(
        "config: web.yaml\nclones:\n  - {name: web01, image: a.qcow2}\n"
        "  - {name: web02, image: b.qcow2}\n"
    )
    result = vmtailor("batch", str(tmp_path / "site.yaml"))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and not ANSI.search(result.stderr.encode())
    assert re.fullmatch(r"\[ +\d+\.\ds\] 1/2 web01: failed: .*/a\.qcow2: no such image", lines[0])
    assert re.fullmatch(r"\[ +\d+\.\ds\] 2/2 web02: failed: .*/b\.qcow2: no such image", lines[1])


def test_deploy_progress_lines_when_stderr_is_not_a_terminal(tmp_path, monkeypatch, capsys):
    (tmp_path / "web.yaml").write_text("hostname: web01\n")
    (tmp_path / "site.yaml").write_text(
        "hypervisor: {driver: virtualbox}\nconfig: web.yaml\nvms: [{name: web01}]\n"
    )

    def fake_deploy(inventory, opts, *, jobs=1, force=False, progress=None):
        report = progress or deploy_module.console_progress()
        report("web01", "booting the customization ISO")
        report("web01", "restoring media and boot order")
        return [flow.Outcome("web01", "ok", "", result={"changes": [{}]})]

    monkeypatch.setattr(deploy_module, "deploy", fake_deploy)
    assert cli.main(["deploy", str(tmp_path / "site.yaml")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [re.sub(r"^\[ +\d+\.\ds\] ", "", line) for line in err] == [
        "web01: booting the customization ISO",
        "web01: restoring media and boot order",
    ]
