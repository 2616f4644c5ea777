"""The config stage reads the canonical JSON `vmtailor media` wrote: rendered for the clone
on the host, so a "{{" or "{%" in it is the clone's text, never a template to render again
(the initrd ships no jinja2), and every value is checked in full."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from vmtailor.customizer import config as configmod
from vmtailor.initrd.image import CONFIG_PATH
from vmtailor.initrd.stages import StageError
from vmtailor.initrd.stages.config import load_config

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
