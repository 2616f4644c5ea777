"""vmtailor.api, the supported Python API: driven exactly as the README shows it, and
its promises — rendered configs only, typed results equal to the CLI's --json, one error
hierarchy, a guest handle that is only usable inside its block."""

from __future__ import annotations

import json

import pytest

from tests.conftest import tree_digest, vmtailor
from tests.readme_api import README, api_blocks, run_readme
from vmtailor import api


@pytest.fixture
def site(tmp_path, make_root):
    """A folder as the README's examples expect: web.yaml (written from the README) and a
    Debian guest's root at clone/."""
    clone = make_root("debian-12")
    clone.rename(tmp_path / "clone")
    return tmp_path


def test_readme_examples_run_as_shown(site):
    before = tree_digest(site / "clone")
    ran = run_readme(site, lambda code: "open_disks" not in code)
    assert ran >= 3
    # the examples end with a revert: the guest is as it was
    assert tree_digest(site / "clone") == before


def test_readme_shows_every_public_name():
    code = "\n".join(body for lang, body in api_blocks() if lang == "python")
    for name in ("load_config", "open_root", "open_disks", "inspect", "apply", "revert",
                 "ConfigError", "LockedError"):  # fmt: skip
        assert f"api.{name}" in code, name
    prose = README.read_text()
    for name in api.__all__:
        assert name in prose, f"vmtailor.api.{name} is not in the README"


def _config(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_undefined_variable_is_refused_with_key_path_and_name(tmp_path):
    path = _config(tmp_path, 'hostname: "{{ h }}"\nfiles:\n  - {path: /etc/motd, '
                             'content: "{{ greeting }} from {{ h }}"}\n')  # fmt: skip
    with pytest.raises(api.ConfigError) as err:
        api.load_config(path, vars={"h": "web01"})
    assert err.value.key_path == "files[0].content" and err.value.line == 3
    assert "undefined variable 'greeting'" in str(err.value) and err.value.source == str(path)
    config = api.load_config(path, vars={"h": "web01", "greeting": "hi"})
    assert config.to_dict()["files"][0]["content"] == "hi from web01"
    assert "{{" not in json.dumps(config.to_dict())


def test_bad_config_reports_through_the_api_hierarchy(tmp_path):
    with pytest.raises(api.ConfigError) as err:
        api.load_config(_config(tmp_path, "hostname: web01\nusers: 3\n"))
    assert err.value.key_path == "users" and err.value.line == 2
    assert err.value.to_dict()["type"] == "ConfigError"
    with pytest.raises(api.ConfigError) as missing:
        api.load_config(tmp_path / "nope.yaml")
    assert "cannot read config" in str(missing.value)
    assert missing.value.source == str(tmp_path / "nope.yaml") and missing.value.key_path is None
    # a caller never needs vmtailor's internal error classes
    assert type(missing.value).__module__ == "vmtailor.api"


def test_inspection_and_dry_run_equal_the_cli_json(site):
    config = _config(site, "hostname: web01\n")
    clone = str(site / "clone")
    with api.open_root(clone, readonly=True) as guest:
        found = api.inspect(guest).to_dict()
        planned = api.apply(api.load_config(config), guest, dry_run=True).to_dict()
    cli = vmtailor("inspect", "--root", clone, "--json", check=True)
    assert json.loads(cli.stdout) == found
    cli = vmtailor("apply", str(config), "--root", clone, "--dry-run", "--json", check=True)
    assert json.loads(cli.stdout) == planned


def test_read_only_and_closed_guests_change_nothing(site):
    config = api.load_config(_config(site, "hostname: web01\n"))
    before = tree_digest(site / "clone")
    with api.open_root(site / "clone", readonly=True) as guest:
        with pytest.raises(api.GuestError, match="read-only"):
            api.apply(config, guest)
        with pytest.raises(api.GuestError, match="read-only"):
            api.revert(guest)
        assert "+web01\n" in api.apply(config, guest, dry_run=True, diff=True).diff
    with pytest.raises(api.GuestError, match="closed"):
        api.apply(config, guest)
    assert tree_digest(site / "clone") == before


def test_guest_errors_are_api_errors(tmp_path, site):
    with pytest.raises(api.GuestError, match="not a directory"), api.open_root(tmp_path / "no"):
        pass
    with (
        pytest.raises(api.ImageError, match="no such image"),
        api.open_disks([str(tmp_path / "missing.qcow2")]),
    ):
        pass
    with pytest.raises(api.ImageError, match="no disk images"):
        api.open_disks([])
    # nothing vmtailor recognises as a Linux guest: detection's error, as an api.GuestError
    empty = tmp_path / "empty"
    (empty / "etc").mkdir(parents=True)
    with api.open_root(empty) as guest, pytest.raises(api.GuestError, match="no Linux guest"):
        api.inspect(guest)


def test_a_change_the_guest_refuses_is_a_guest_error_and_changes_nothing(site):
    config = api.load_config(_config(site, "hostname: web01\nfiles:\n"
                                           "  - {path: /etc/nope/x, replace: {pattern: a, with: b}}\n"))  # fmt: skip
    before = tree_digest(site / "clone")
    with api.open_root(site / "clone") as guest, pytest.raises(api.GuestError) as err:
        api.apply(config, guest)
    assert str(err.value) == "files[0] (/etc/nope/x): /etc/nope/x does not exist in the guest"
    assert err.value.to_dict()["type"] == "GuestError"
    assert tree_digest(site / "clone") == before
