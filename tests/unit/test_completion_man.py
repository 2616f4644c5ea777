"""Shell completion and the man page are generated from the live parser: every command and
option the parser has is in both, the scripts parse in their shell, bash completes what
the parser accepts, and the man page renders without a roff warning."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import required, vmtailor
from vmtailor.argspec import live


def _every_option():
    top, commands = live()
    yield "", top
    for command in commands:
        yield command.name, command


@pytest.fixture(scope="module")
def scripts():
    return {shell: vmtailor("completion", shell, check=True).stdout for shell in ("bash", "zsh")}


@pytest.fixture(scope="module")
def page():
    return vmtailor("man", check=True).stdout


def test_every_command_and_option_is_completed_and_in_the_man_page(scripts, page):
    _, commands = live()
    assert len(commands) >= 13  # validate … deploy, completion, man
    for name, command in _every_option():
        if name:
            assert f"        {name})" in scripts["bash"], name
            assert f"            {name})" in scripts["zsh"], name
            assert f'.SS "vmtailor {name}' in page.replace("\\-", "-"), name
        for option in command.options:
            for flag in option.flags:
                assert flag in scripts["bash"], (name, flag)
                assert flag in scripts["zsh"], (name, flag)
                roff = flag.replace("-", "\\-")
                assert f"\\fB{roff}\\fR" in page, (name, flag)


def _complete(script: str, tmp_path, *words: str) -> list[str]:
    """What bash offers for the last of `words`, with the script loaded."""
    (tmp_path / "web.yaml").write_text("hostname: x\n")
    (tmp_path / "clone").mkdir(exist_ok=True)
    line = " ".join(f"'{w}'" for w in words)
    code = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n"
            '_vmtailor; printf "%s\\n" "${COMPREPLY[@]}"\n')  # fmt: skip
    out = subprocess.run(["bash", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and not out.stderr, out.stderr
    return sorted(filter(None, out.stdout.splitlines()))


def test_bash_completes_commands_options_and_values(scripts, tmp_path):
    bash = scripts["bash"]
    assert _complete(bash, tmp_path, "vmtailor", "ap") == ["apply"]
    # --debug: the global options are accepted after the command too
    assert _complete(bash, tmp_path, "vmtailor", "apply", "--d") == [
        "--debug", "--diff", "--diff=full", "--disk", "--dry-run"]  # fmt: skip
    assert _complete(bash, tmp_path, "vmtailor", "media", "c.yaml", "--format", "") == [
        "floppy", "iso", "vfat"]  # fmt: skip
    assert _complete(bash, tmp_path, "vmtailor", "completion", "") == ["bash", "zsh"]
    assert _complete(bash, tmp_path, "vmtailor", "apply", "--root", "cl") == ["clone"]
    assert _complete(bash, tmp_path, "vmtailor", "apply", "w") == ["web.yaml"]
    assert _complete(bash, tmp_path, "vmtailor", "apply", "--var", "") == []  # typed by hand
    assert _complete(bash, tmp_path, "vmtailor", "--de") == ["--debug"]


@required(shutil.which("zsh") is None, "zsh")
def test_zsh_script_parses(scripts, tmp_path):
    path = tmp_path / "_vmtailor"
    path.write_text(scripts["zsh"])
    out = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True)
    assert out.returncode == 0 and not out.stderr, out.stderr
    assert scripts["zsh"].startswith("#compdef vmtailor\n")


@required(shutil.which("groff") is None, "groff")
def test_man_page_renders_without_warnings(page, tmp_path):
    path = tmp_path / "vmtailor.1"
    path.write_text(page)
    out = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(path)], capture_output=True,
                         text=True)  # fmt: skip
    assert out.returncode == 0 and not out.stderr, out.stderr
    text = re.sub(".\b", "", out.stdout)  # bold and underline are overstruck
    for heading in ("NAME", "SYNOPSIS", "OPTIONS", "COMMANDS", "EXIT STATUS"):
        assert heading in text
    assert "vmtailor validate web.yaml" in text  # the examples, line for line
