"""The network operation on fixture roots: NIC naming warnings and inspect's report."""

from __future__ import annotations

import json

from tests.conftest import vmtailor
from vmtailor.customizer import config, engine
from vmtailor.customizer.localroot import LocalRoot


def _by_name(name: str) -> config.Config:
    return config.parse({"network": {"version": 2, "ethernets": {name: {"dhcp4": True}}}})


def test_eth0_on_a_guest_with_predictable_names_warns(make_root):
    result = engine.apply(_by_name("eth0"), LocalRoot(str(make_root("ubuntu-22.04"))),
                          dry_run=True)  # fmt: skip
    assert any("names NICs predictably" in w and "'eth0'" in w for w in result.warnings)


def test_ens3_on_a_classic_names_guest_warns(make_root):
    result = engine.apply(_by_name("ens3"), LocalRoot(str(make_root("debian-7"))), dry_run=True)
    assert any("classic NIC names" in w and "'ens3'" in w for w in result.warnings)


def test_mac_match_never_warns(make_root):
    cfg = config.parse({"network": {"version": 2, "ethernets": {"eth0": {
        "match": {"macaddress": "52:54:00:12:34:56"}, "dhcp4": True}}}})  # fmt: skip
    result = engine.apply(cfg, LocalRoot(str(make_root("ubuntu-22.04"))), dry_run=True)
    assert not [w for w in result.warnings if "NIC" in w]


def test_inspect_names_the_stack_it_would_write_and_why(make_root):
    top = make_root("centos-7")
    data = json.loads(vmtailor("inspect", "--root", str(top), "--json", check=True).stdout)
    assert data["network_renderer"] == {
        "name": "network-scripts",
        "why": "CentOS Linux 7 (Core): ifcfg files (EL < 9)",
    }
    text = vmtailor("inspect", "--root", str(top), check=True).stdout
    assert "writes:    network-scripts (CentOS Linux 7 (Core): ifcfg files (EL < 9))" in text
