"""Each driver's inventory keys: declared once in the registry, they make the loader's
accepted keys, its unknown-key error, `deploy --help-driver` and the README table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import vmtailor
from vmtailor.customizer.config import ConfigError
from vmtailor.hypervisors import DRIVERS
from vmtailor.hypervisors.inventory import load_inventory
from vmtailor.hypervisors.keys import COMMON_KEYS, readme_table

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", list(DRIVERS))
def test_help_driver_prints_its_keys_and_an_example(name):
    result = vmtailor("deploy", "--help-driver", name)  # no INVENTORY needed
    assert result.returncode == 0 and result.stderr == ""
    out = result.stdout
    info = DRIVERS[name]
    assert out.startswith(f"{name}: {info.summary}\n")
    for key in (*info.keys, *info.vm_keys, *COMMON_KEYS):
        assert re.search(rf"^  {key.name} +{re.escape(key.help)}", out, re.M), key.name
    assert f"  hypervisor: {{driver: {name}" in out and info.install in out


def test_help_driver_refuses_an_unknown_driver():
    result = vmtailor("deploy", "--help-driver", "vmware")
    assert result.returncode == 2 and "invalid choice: 'vmware'" in result.stderr


def _inventory(tmp_path, text):
    (tmp_path / "web.yaml").write_text("hostname: web01\n")
    (tmp_path / "inv.yaml").write_text(text)
    return str(tmp_path / "inv.yaml")


def test_unknown_key_lists_the_accepted_ones(tmp_path):
    inv = _inventory(
        tmp_path, "hypervisor:\n  driver: vsphere\n  server: vc.example.com\n"
        "config: web.yaml\nvms: [{name: a}]\n",
    )  # fmt: skip
    result = vmtailor("deploy", inv)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        f"{inv}: error at hypervisor.server: line 3: unknown key 'server' — did you mean "
        "'uri'? accepted: driver, uri, username, password_env, credentials_file, verify_tls, "
        "datastore, folder (`vmtailor deploy --help-driver vsphere`)"
    )


def test_unknown_vm_key_lists_the_drivers_vm_keys(tmp_path):
    inv = _inventory(tmp_path, "hypervisor: {driver: proxmox, uri: 'https://pve:8006'}\n"
                     "config: web.yaml\nvms: [{name: a, vm_id: 3}]\n")  # fmt: skip
    with pytest.raises(ConfigError) as info:
        load_inventory(inv, render=False)
    assert str(info.value).endswith(
        "error at vms[0].vm_id: line 3: unknown key 'vm_id' — accepted: name, vars, vmid "
        "(`vmtailor deploy --help-driver proxmox`)"
    )


@pytest.mark.parametrize("name", list(DRIVERS))
def test_each_example_inventory_loads(tmp_path, monkeypatch, name):
    info = DRIVERS[name]
    for var in re.findall(r"password_env: (\w+)", info.example):
        monkeypatch.setenv(var, "secret")
    inventory = load_inventory(_inventory(tmp_path, info.example + "\n"), render=False)
    assert inventory.connection.driver == name and [v.name for v in inventory.vms] == ["web01"]


@pytest.mark.parametrize("name", list(DRIVERS))
def test_every_key_a_driver_reads_is_declared(name):
    source = (REPO / "hypervisors" / f"{name}.py").read_text()
    read = set(re.findall(r"options(?:\.get\(|\[)\"(\w+)\"", source))
    read |= set(re.findall(r"settings(?:\.get\(|\[)\"(\w+)\"", source))
    info = DRIVERS[name]
    assert read <= {k.name for k in info.keys + info.vm_keys}


def test_readme_holds_the_generated_table():
    assert readme_table(DRIVERS.values()) in (REPO / "README.md").read_text()
