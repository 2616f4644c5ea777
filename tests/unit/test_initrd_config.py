"""The config stage reads the canonical JSON `vmtailor media` wrote: rendered for the clone
on the host, so a "{{" or "{%" in it is the clone's text, never a template to render again
(the initrd ships no jinja2), and every value is checked in full. It finds the media on a
CD or disk first and only then loads the floppy driver, where there is a controller."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from vmtailor.customizer import config as configmod
from vmtailor.initrd.image import CONFIG_PATH, REBOOT_STOPS_FILE, RUN_PATH, RUN_TOKEN_FILE
from vmtailor.initrd.stages import StageError
from vmtailor.initrd.stages.config import load_config, load_run

# a firstboot script and a file whose text is jinja-like once the host rendered them
CONFIG = """
hostname: "{{ name }}"
files:
  - {path: /etc/motd, content: "{% raw %}{{ not a var }} and {% unbalanced{% endraw %}\\n"}
firstboot:
  - {name: show, script: "{% raw %}echo '{%' {{{% endraw %}"}
"""


def _media(tmp_path, data) -> str:
    top = tmp_path / "media"
    (top / CONFIG_PATH.lstrip("/")).parent.mkdir(parents=True)
    (top / CONFIG_PATH.lstrip("/")).write_text(data)
    return str(top)


def _rendered(tmp_path) -> str:
    import yaml

    config = configmod.parse(yaml.safe_load(CONFIG), {"name": "web01"})
    return configmod.canonical_json(config)


def test_literal_braces_on_the_media_reach_the_guest_as_they_are(tmp_path):
    config = load_config(_media(tmp_path, _rendered(tmp_path)))
    assert config.hostname == "web01"
    assert config.files[0].content == "{{ not a var }} and {% unbalanced\n"
    assert config.firstboot[0].script == "echo '{%' {{"
    # the host's own parser, given the same JSON, would take the text for a template
    with pytest.raises(configmod.ConfigError, match="template syntax error"):
        configmod.parse(json.loads(_rendered(tmp_path)))


def test_every_value_is_checked_none_deferred(tmp_path):
    # a template left in a hostname is a bad hostname here, not one for later
    with pytest.raises(configmod.ConfigError, match="hostname"):
        load_config(_media(tmp_path, json.dumps({"hostname": "{{ name }}"})))


def test_a_media_without_json_is_a_stage_error(tmp_path):
    with pytest.raises(StageError, match="not JSON"):
        load_config(_media(tmp_path, "hostname: [web01"))


def test_reading_the_media_needs_no_jinja2(tmp_path):
    top = _media(tmp_path, _rendered(tmp_path))
    code = (
        "import sys; from vmtailor.initrd.stages.config import load_config; "
        f"load_config({top!r}); print('jinja2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


class FakeMachine:
    """sys_block, blkid and run as find_media sees them: CDs and disks from the start, the
    floppy drive only once its driver is loaded."""

    def __init__(self, media_on: str | None, floppy_controller: bool = True):
        self.media_on, self.controller, self.runs, self.probed = media_on, floppy_controller, [], []

    def sys_block(self):
        from vmtailor.customizer.storage.discover import SysBlock

        names = ["sr0", "vda"] + (["fd0"] if ["modprobe", "floppy"] in self.runs else [])
        return [SysBlock(n, n, None, 0 if n == "fd0" else 1 << 20, False, False) for n in names]

    def blkid_many(self, paths):
        self.probed.append(list(paths))
        found = {"TYPE": "iso9660", "LABEL": "VMTCONFIG"}
        return {p: found if p == self.media_on else {} for p in paths}

    def run(self, argv, check=True):
        self.runs.append(list(argv))

    def install(self, monkeypatch):
        from vmtailor.initrd.stages import config as stage

        monkeypatch.setattr(stage.discover, "sys_block", self.sys_block)
        monkeypatch.setattr(stage.discover, "blkid_many", self.blkid_many)
        monkeypatch.setattr(stage, "run", self.run)
        monkeypatch.setattr(stage, "floppy_controller", lambda: self.controller)
        return stage


def test_media_on_a_cd_leaves_the_floppy_driver_unloaded(monkeypatch):
    machine = FakeMachine("/dev/sr0")
    stage = machine.install(monkeypatch)
    device, fstype, seen = stage.find_media(wait=1)
    assert (device, fstype) == ("/dev/sr0", "iso9660")
    assert machine.runs == [] and machine.probed == [["/dev/sr0", "/dev/vda"]]
    assert set(seen) == {"/dev/sr0", "/dev/vda"}  # handed on to the disks stage


def test_media_on_a_floppy_is_found_after_everything_else(monkeypatch):
    machine = FakeMachine("/dev/fd0")
    stage = machine.install(monkeypatch)
    assert stage.find_media(wait=1)[:2] == ("/dev/fd0", "iso9660")
    assert machine.runs == [["modprobe", "floppy"]]
    assert machine.probed == [["/dev/sr0", "/dev/vda"], ["/dev/fd0"]]


def test_no_media_loads_the_floppy_driver_once_and_never_without_a_controller(monkeypatch):
    for controller, modprobes in ((True, 1), (False, 0)):
        machine = FakeMachine(None, floppy_controller=controller)
        stage = machine.install(monkeypatch)
        with pytest.raises(StageError, match="no config media"):
            stage.find_media(wait=0.6)  # two rounds, half a second apart
        assert machine.runs.count(["modprobe", "floppy"]) == modprobes
        assert ["vmtailor-coldplug"] in machine.runs  # a late controller's drivers


def test_floppy_controller_is_read_from_acpi_or_pnp(tmp_path):
    from vmtailor.initrd.stages.config import floppy_controller

    assert not floppy_controller(str(tmp_path))
    (tmp_path / "acpi/devices/PNP0303:00").mkdir(parents=True)
    (tmp_path / "acpi/devices/PNP0303:00/modalias").write_text("acpi:PNP0303:\n")
    assert not floppy_controller(str(tmp_path))
    (tmp_path / "pnp/devices/00:03").mkdir(parents=True)
    (tmp_path / "pnp/devices/00:03/id").write_text("PNP0700\n")
    assert floppy_controller(str(tmp_path))


# -- run.json: what deploy tells one boot ---------------------------------------------
def _run_media(tmp_path, text: str | None) -> tuple[str, Path]:
    top = Path(_media(tmp_path, "{}"))
    if text is not None:
        (top / RUN_PATH.lstrip("/")).write_text(text)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return str(top), run_dir


def test_the_run_token_and_reboot_flag_are_left_for_init(tmp_path):
    token = "0123456789abcdef" * 2
    top, run_dir = _run_media(tmp_path, json.dumps({"run": token, "reboot_stops": True}))
    assert load_run(top, str(run_dir)) == token
    assert (run_dir / RUN_TOKEN_FILE).read_text() == token + "\n"
    assert (run_dir / REBOOT_STOPS_FILE).exists()


@pytest.mark.parametrize("text", [
    None,  # media `vmtailor media` made
    "not json",
    json.dumps(["0123456789abcdef"]),
    json.dumps({"run": "0123456789ABCDEF"}),  # only lowercase hex, as deploy writes it
    json.dumps({"run": "0123456789abcde"}),  # too short to be unguessable
    json.dumps({"run": "0123456789abcdef\n-----END VMTAILOR RESULT-----"}),
    json.dumps({"run": 1234567890123456789}),
])  # fmt: skip
def test_no_valid_token_means_no_token_and_no_reboot(tmp_path, text):
    top, run_dir = _run_media(tmp_path, text)
    assert load_run(top, str(run_dir)) is None
    assert list(run_dir.iterdir()) == []


def test_reboot_only_when_the_host_says_a_reboot_stops_the_vm(tmp_path):
    top, run_dir = _run_media(tmp_path, json.dumps({"run": "ab" * 16, "reboot_stops": "yes"}))
    assert load_run(top, str(run_dir)) == "ab" * 16
    assert not (run_dir / REBOOT_STOPS_FILE).exists()
