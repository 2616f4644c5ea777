"""netplan YAML read back (PyYAML, and vmtailor's own netplan-v2 config parser), then on
the Ubuntu fixture root through the real engine, and through the real `netplan generate`
when the host has it."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import required, tree_digest
from tests.unit.network.cases import CASES, MAC1, state
from vmtailor.customizer import config, engine
from vmtailor.customizer.errors import PlanError
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.network import cloudinit
from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts
from vmtailor.customizer.network.renderers.netplan import configures_wired
from vmtailor.customizer.network.state import build_state
from vmtailor.customizer.plan import Plan

PATH = "/etc/netplan/90-vmtailor.yaml"
NETPLAN = shutil.which("netplan")
needs_netplan = required(NETPLAN is None, "netplan.io")
CONFIG = {"network": {"version": 2, "ethernets": {"lan0": {
    "match": {"macaddress": MAC1}, "set-name": "lan0", "addresses": ["192.0.2.10/24"],
    "routes": [{"to": "default", "via": "192.0.2.1"}],
    "nameservers": {"addresses": ["192.0.2.53"], "search": ["example.com"]}}}}}  # fmt: skip


def render(case: str, facts: GuestFacts | None = None) -> dict:
    files = RENDERERS["netplan"].render(state(case), facts or GuestFacts())
    assert list(files) == [PATH]
    assert files[PATH].mode == 0o600
    return yaml.safe_load(files[PATH].content)


@pytest.mark.parametrize("case", sorted(CASES))
def test_yaml_means_what_the_config_says(case):
    """The output is netplan v2, which is vmtailor's own input format: read it back as a
    config and the network state must be the one it was rendered from."""
    doc = render(case)
    assert set(doc) == {"network"}
    back = build_state(config.parse({"network": doc["network"]}).network)
    want = state(case)
    assert len(back.devices) == len(want.devices)
    for got, dev in zip(back.devices, want.devices, strict=True):
        if dev.accept_ra is None and dev.addresses_v(6) and not dev.dhcp6:
            # static IPv6 only: router adverts are switched off, as networkd/NM do
            dev = dataclasses.replace(dev, accept_ra=False)
        assert got == dev


def test_static4_structure_and_quoting():
    eth = render("static4")["network"]["ethernets"]["lan0"]
    # unquoted, YAML 1.1 would read this all-digit MAC as a base-60 integer
    assert eth["match"] == {"macaddress": MAC1}
    assert eth["set-name"] == "lan0"
    assert eth["addresses"] == ["192.0.2.10/24"]
    assert eth["routes"] == [
        {"to": "default", "via": "192.0.2.1"},
        {"to": "198.51.100.0/24", "via": "192.0.2.254", "metric": 50},
    ]
    assert eth["nameservers"] == {"addresses": ["192.0.2.53", "2001:db8::53"],
                                  "search": ["example.com"]}  # fmt: skip
    assert eth["mtu"] == 9000
    assert "gateway4" not in eth and "dhcp4" not in eth


def test_bond_vlan_and_gateway6():
    net = render("bond")["network"]
    bond = net["bonds"]["bond0"]
    assert bond["interfaces"] == ["nic1", "nic2"]
    assert bond["parameters"] == {"mode": "active-backup", "mii-monitor-interval": 100,
                                  "primary": "nic1"}  # fmt: skip
    assert bond["routes"] == [{"to": "default", "via": "192.0.2.1"}]
    vlan = render("vlan")["network"]["vlans"]["vlan10"]
    assert (vlan["id"], vlan["link"]) == (10, "trunk")
    eth = render("static6")["network"]["ethernets"]["ens3"]
    assert eth["routes"] == [{"to": "default", "via": "2001:db8::1"}]
    assert eth["accept-ra"] is False and "match" not in eth


EXTRAS = {
    "version": 2,
    "ethernets": {
        "uplink": {
            "match": {"name": "en*", "driver": "virtio_net"},
            "addresses": ["203.0.113.5/32"],
            "routes": [{"to": "default", "via": "203.0.113.1", "on-link": True, "metric": 10}],
            "macaddress": "02:00:00:00:00:01",
            "optional": True,
            "accept-ra": True,
            "mtu": 1400,
        }
    },
}


def extras_state():
    return build_state(config.parse({"network": EXTRAS}).network)


def test_globs_drivers_on_link_and_the_rest_survive_the_round_trip():
    files = RENDERERS["netplan"].render(extras_state(), GuestFacts())
    doc = yaml.safe_load(files[PATH].content)
    eth = doc["network"]["ethernets"]["uplink"]
    assert eth["match"] == {"name": "en*", "driver": "virtio_net"}
    assert eth["routes"] == [{"to": "default", "via": "203.0.113.1", "metric": 10,
                              "on-link": True}]  # fmt: skip
    assert (eth["optional"], eth["accept-ra"], eth["macaddress"]) == (
        True,
        True,
        "02:00:00:00:00:01",
    )
    assert build_state(config.parse({"network": doc["network"]}).network) == extras_state()


def test_driver_match_with_the_networkmanager_backend_is_refused():
    with pytest.raises(PlanError, match="cannot match a NIC by driver"):
        RENDERERS["netplan"].render(extras_state(), GuestFacts(netplan_backend="NetworkManager"))


def test_renderer_key_follows_the_guest_backend():
    assert render("dhcp")["network"]["renderer"] == "networkd"
    facts = GuestFacts(netplan_backend="NetworkManager")
    assert render("dhcp", facts)["network"]["renderer"] == "NetworkManager"


def test_which_files_configure_wired_nics():
    assert configures_wired("network:\n  version: 2\n  ethernets:\n    eth0: {dhcp4: true}\n")
    assert configures_wired("network: {version: 2, ethernets: {eth0: {dhcp4: true}}}\n")
    assert configures_wired('network:\n  "bonds":\n    bond0: {}\n')
    assert not configures_wired("network:\n  version: 2\n  renderer: NetworkManager\n")
    assert not configures_wired("network:\n  wifis:\n    wlan0: {}\n")
    assert not configures_wired("# ethernets: commented out\nnetwork: {version: 2}\n")


def apply(top):
    return engine.apply(config.parse(CONFIG), LocalRoot(str(top)))


def test_on_ubuntu_template_config_goes_and_revert_restores(make_root):
    top = make_root("ubuntu-22.04")
    resolv = os.readlink(top / "etc/resolv.conf")
    before = tree_digest(top)
    result = apply(top)
    changes = {(c.action, c.path) for c in result.changes}
    assert ("create", PATH) in changes
    assert ("delete", "/etc/netplan/50-cloud-init.yaml") in changes
    assert sorted(os.listdir(top / "etc/netplan")) == ["90-vmtailor.yaml"]
    st = (top / PATH.lstrip("/")).stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o600, 0, 0)
    doc = yaml.safe_load((top / PATH.lstrip("/")).read_text())
    assert doc["network"]["renderer"] == "networkd"
    # cloud-init would write 50-cloud-init.yaml again at the clone's first boot
    dropin = top / cloudinit.DROPIN.lstrip("/")
    assert yaml.safe_load(dropin.read_text()) == {"network": {"config": "disabled"}}
    # the resolved stub symlink is left alone and nothing is written through it into /run
    assert os.readlink(top / "etc/resolv.conf") == resolv
    assert not (top / "run/systemd/resolve").exists()
    assert apply(top).changes == []
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_vendor_netplan_files_are_shadowed_not_touched(make_root):
    top = make_root("ubuntu-22.04")
    vendor = top / "lib/netplan"
    vendor.mkdir(parents=True, exist_ok=True)
    (vendor / "00-vendor.yaml").write_text("network:\n  ethernets:\n    ens3: {dhcp4: true}\n")
    (vendor / "01-nm.yaml").write_text("network:\n  renderer: NetworkManager\n")
    for f in vendor.iterdir():
        f.chmod(0o600)
    before = tree_digest(top)
    apply(top)
    assert (vendor / "00-vendor.yaml").read_text().startswith("network:\n  ethernets:")
    mask = yaml.safe_load((top / "etc/netplan/00-vendor.yaml").read_text())
    assert mask == {"network": {"version": 2}}
    assert not (top / "etc/netplan/01-nm.yaml").exists()
    if NETPLAN:
        run = subprocess.run([NETPLAN, "generate", "--root-dir", str(top)],
                             capture_output=True, text=True)  # fmt: skip
        assert run.returncode == 0 and run.stderr == "", run.stderr
        assert not list((top / "run/systemd/network").glob("*ens3*"))
        shutil.rmtree(top / "run/systemd")
        shutil.rmtree(top / "run/udev", ignore_errors=True)
    assert apply(top).changes == []
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_with_networkmanager_backend_its_stale_profiles_go_too(make_root):
    top = make_root("ubuntu-22.04")
    conns = top / "etc/NetworkManager/system-connections"
    conns.mkdir(parents=True)
    (conns / "Wired.nmconnection").write_text(
        "[connection]\nid=Wired\ntype=ethernet\n\n[ethernet]\nmac-address=52:54:00:6B:3C:58\n"
    )
    plan = Plan(LocalRoot(str(top)))
    facts = GuestFacts(netplan_backend="NetworkManager")
    net = config.parse(CONFIG).network
    RENDERERS["netplan"].clean_stale(plan, build_state(net), facts)
    deleted = {c.path for c in plan.changes() if c.action == "delete"}
    assert deleted == {
        "/etc/netplan/50-cloud-init.yaml",
        "/etc/NetworkManager/system-connections/Wired.nmconnection",
    }


@needs_netplan
def test_real_netplan_generate_accepts_every_case(tmp_path):
    states = {**{case: state(case) for case in CASES}, "extras": extras_state()}
    for case, st in states.items():
        for backend in ("networkd", "NetworkManager"):
            if case == "extras" and backend == "NetworkManager":
                continue  # match by driver: refused, see below
            root = tmp_path / f"{case}-{backend}"
            files = RENDERERS["netplan"].render(st, GuestFacts(netplan_backend=backend))
            dest = root / PATH.lstrip("/")
            dest.parent.mkdir(parents=True)
            dest.write_text(files[PATH].content)
            dest.chmod(files[PATH].mode)
            run = subprocess.run([NETPLAN, "generate", "--root-dir", str(root)],
                                 capture_output=True, text=True)  # fmt: skip
            assert run.returncode == 0 and run.stderr == "", (case, backend, run.stderr)
            out = "run/systemd/network" if backend == "networkd" else "run/NetworkManager"
            assert any((root / out).rglob("*")), (case, backend)


@needs_netplan
def test_real_netplan_generate_on_the_applied_ubuntu_root(make_root):
    top = make_root("ubuntu-22.04")
    apply(top)
    run = subprocess.run([NETPLAN, "generate", "--root-dir", str(top)],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0 and run.stderr == "", run.stderr
    generated = sorted(p.name for p in (top / "run/systemd/network").iterdir())
    # only the config's NIC: nothing left from 50-cloud-init.yaml's eth0
    assert generated == ["10-netplan-lan0.link", "10-netplan-lan0.network"]
    network = (top / "run/systemd/network/10-netplan-lan0.network").read_text()
    assert f"MACAddress={MAC1}" in network
    assert "Address=192.0.2.10/24" in network and "Gateway=192.0.2.1" in network
    assert "DNS=192.0.2.53" in network and "Domains=example.com" in network
