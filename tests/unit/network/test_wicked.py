"""SUSE ifcfg files read back by the real shell, ifroute lines by their columns, the
netconfig DNS edit, and SUSE fixture roots through the engine."""

from __future__ import annotations

import difflib

import pytest

from tests.conftest import tree_digest
from tests.unit.network.cases import CASES, MAC1, MAC2, MAC3, state
from tests.unit.network.test_network_scripts import sourced
from vmtailor.customizer import config, engine
from vmtailor.customizer.detect import detect
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.network import sysconfig
from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts
from vmtailor.customizer.network.renderers.wicked import netconfig_dns
from vmtailor.customizer.network.select import choose
from vmtailor.customizer.network.state import build_state

D = "/etc/sysconfig/network"
RULES = "/etc/udev/rules.d/70-vmtailor-net.rules"


def render(case):
    files = RENDERERS["wicked"].render(state(case), GuestFacts())
    return {p: f.content for p, f in files.items()}


def ifcfg(files, name):
    return sourced(files[f"{D}/ifcfg-{name}"])


def routes(files, name):
    """(destination, gateway, netmask, interface, options) of each ifroute line."""
    lines = files[f"{D}/ifroute-{name}"].splitlines()
    return [tuple(ln.split(maxsplit=4)) for ln in lines if ln and not ln.startswith("#")]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_file_means_the_same_to_sh_and_to_our_reader(case):
    for path, text in render(case).items():
        if path.startswith(f"{D}/ifcfg-"):
            assert sourced(text) == sysconfig.parse(text), path


def test_static_v4_meaning():
    files = render("static4")
    lan0 = ifcfg(files, "lan0")
    assert (lan0["BOOTPROTO"], lan0["STARTMODE"]) == ("static", "auto")
    assert (lan0["IPADDR"], lan0["MTU"]) == ("192.0.2.10/24", "9000")
    assert routes(files, "lan0") == [
        ("default", "192.0.2.1", "-", "lan0"),
        ("198.51.100.0/24", "192.0.2.254", "-", "lan0", "metric 50"),
    ]
    # SUSE ifcfg can't match a MAC: the name is pinned by udev
    assert f'ATTR{{address}}=="{MAC1}", NAME="lan0"' in files[RULES]
    assert "/etc/resolv.conf" not in files  # netconfig's: DNS goes to network/config


def test_dhcp_and_static6():
    dhcp = render("dhcp")
    assert ifcfg(dhcp, "lan0")["BOOTPROTO"] == "dhcp4" and f"{D}/ifroute-lan0" not in dhcp
    assert 'NAME="lan0"' in dhcp[RULES]
    v6 = render("static6")
    assert ifcfg(v6, "ens3") == {"BOOTPROTO": "static", "STARTMODE": "auto",
                                 "IPADDR": "2001:db8::10/64"}  # fmt: skip
    assert routes(v6, "ens3") == [("default", "2001:db8::1", "-", "ens3")]
    assert RULES not in v6


def test_dualstack_keeps_static_addresses_with_dhcp6():
    files = render("dualstack")
    lan0 = ifcfg(files, "lan0")
    assert lan0["BOOTPROTO"] == "dhcp6"  # wicked adds the static addresses to any dhcp
    assert {lan0["IPADDR"], lan0["IPADDR_1"]} == {"192.0.2.10/24", "2001:db8::10/64"}
    assert [r[:2] for r in routes(files, "lan0")] == [("default", "192.0.2.1"),
                                                      ("default", "2001:db8::1")]  # fmt: skip


def test_default_route_on_exactly_one_nic():
    files = render("two-nics")
    assert routes(files, "front") == [("default", "192.0.2.1", "-", "front")]
    assert routes(files, "back") == [("10.0.0.0/8", "10.20.0.1", "-", "back")]
    rules = files[RULES]
    assert f'"{MAC1}", NAME="front"' in rules and f'"{MAC2}", NAME="back"' in rules


def test_bond_topology():
    files = render("bond")
    bond = ifcfg(files, "bond0")
    assert bond["BONDING_MASTER"] == "yes" and bond["IPADDR"] == "192.0.2.10/24"
    assert (bond["BONDING_SLAVE_0"], bond["BONDING_SLAVE_1"]) == ("nic1", "nic2")
    opts = set(bond["BONDING_MODULE_OPTS"].split())
    assert opts == {"mode=active-backup", "miimon=100", "primary=nic1"}
    for port, mac in (("nic1", MAC2), ("nic2", MAC3)):
        assert ifcfg(files, port) == {"BOOTPROTO": "none", "STARTMODE": "hotplug"}
        assert f'"{mac}", NAME="{port}"' in files[RULES]
    assert routes(files, "bond0") == [("default", "192.0.2.1", "-", "bond0")]


def test_vlan_topology():
    files = render("vlan")
    vlan = ifcfg(files, "vlan10")
    assert (vlan["ETHERDEVICE"], vlan["VLAN_ID"], vlan["IPADDR"]) == ("trunk", "10", "10.10.0.5/24")
    assert ifcfg(files, "trunk")["BOOTPROTO"] == "dhcp4"
    assert routes(files, "vlan10") == [("10.0.0.0/8", "10.10.0.1", "-", "vlan10")]


def test_on_link_gateway_gets_a_host_route_first():
    cfg = config.parse({"network": {"version": 2, "ethernets": {"eth0": {
        "addresses": ["10.1.0.5/24"], "optional": True,
        "routes": [{"to": "default", "via": "198.51.100.1", "on-link": True}]}}}})  # fmt: skip
    assert cfg.network is not None
    files = {p: f.content for p, f in
             RENDERERS["wicked"].render(build_state(cfg.network), GuestFacts()).items()}  # fmt: skip
    assert routes(files, "eth0") == [("198.51.100.1", "-", "-", "eth0"),
                                     ("default", "198.51.100.1", "-", "eth0")]  # fmt: skip
    assert ifcfg(files, "eth0")["STARTMODE"] == "hotplug"  # optional: boot doesn't wait


CONFIG = """## Type:        string
NETCONFIG_DNS_POLICY="auto"
# search list
NETCONFIG_DNS_STATIC_SEARCHLIST=""
NETCONFIG_DNS_STATIC_SERVERS="192.168.122.1" # old
"""


def test_netconfig_dns_is_an_in_place_edit():
    edited = netconfig_dns(CONFIG, state("static4"))
    changed = [ln for ln in difflib.ndiff(CONFIG.splitlines(), edited.splitlines())
               if ln.startswith(("-", "+"))]  # fmt: skip
    assert changed == [
        '- NETCONFIG_DNS_STATIC_SEARCHLIST=""',
        '+ NETCONFIG_DNS_STATIC_SEARCHLIST="example.com"',
        '- NETCONFIG_DNS_STATIC_SERVERS="192.168.122.1" # old',
        '+ NETCONFIG_DNS_STATIC_SERVERS="192.0.2.53 2001:db8::53"',
    ]
    assert netconfig_dns(edited, state("static4")) == edited
    assert netconfig_dns(CONFIG, state("dhcp")) == CONFIG  # no DNS in the config: untouched
    assert netconfig_dns("", state("static4")).splitlines() == [
        'NETCONFIG_DNS_STATIC_SERVERS="192.0.2.53 2001:db8::53"',
        'NETCONFIG_DNS_STATIC_SEARCHLIST="example.com"',
    ]


# -- on fixture roots, through the engine ------------------------------------------------

NET = {"version": 2, "ethernets": {"lan0": {
    "match": {"macaddress": MAC1}, "addresses": ["192.0.2.10/24"], "gateway4": "192.0.2.1",
    "nameservers": {"addresses": ["192.0.2.53"], "search": ["example.com"]}}}}  # fmt: skip


@pytest.mark.parametrize("name", ["opensuse-leap-15.5", "sles-11"])
def test_on_suse_fixture_template_nic_is_replaced_and_revert_restores(make_root, name):
    top = make_root(name)
    assert choose(detect(LocalRoot(str(top))), None)[0] == "wicked"
    resolv = top / "etc/resolv.conf"
    resolv_before = (resolv.is_symlink(), resolv.readlink() if resolv.is_symlink() else
                     resolv.read_bytes())  # fmt: skip
    config_before = (top / "etc/sysconfig/network/config").read_text()
    before = tree_digest(top)
    engine.apply(config.parse({"network": NET}), LocalRoot(str(top)))
    net = top / "etc/sysconfig/network"
    left = sorted(p.name for p in net.glob("if[cr]*-*"))
    assert left == ["ifcfg-lan0", "ifcfg-lo", "ifroute-lan0"]
    assert sourced((net / "ifcfg-lan0").read_text())["IPADDR"] == "192.0.2.10/24"
    assert f'"{MAC1}", NAME="lan0"' in (top / RULES.lstrip("/")).read_text()
    assert not (top / "etc/udev/rules.d/70-persistent-net.rules").exists()
    after = (resolv.is_symlink(), resolv.readlink() if resolv.is_symlink() else
             resolv.read_bytes())  # fmt: skip
    assert after == resolv_before  # leap: dangling link into /run; sles-11: netconfig's file
    diff = [ln for ln in difflib.ndiff(config_before.splitlines(),
                                       (net / "config").read_text().splitlines())
            if ln.startswith(("-", "+"))]  # fmt: skip
    assert diff == [
        '- NETCONFIG_DNS_STATIC_SEARCHLIST=""',
        '+ NETCONFIG_DNS_STATIC_SEARCHLIST="example.com"',
        '- NETCONFIG_DNS_STATIC_SERVERS=""',
        '+ NETCONFIG_DNS_STATIC_SERVERS="192.0.2.53"',
    ]
    assert engine.apply(config.parse({"network": NET}), LocalRoot(str(top))).changes == []
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_stale_template_routes_and_virtual_devices(make_root):
    top = make_root("opensuse-leap-15.5")
    net = top / "etc/sysconfig/network"
    (net / "routes").write_text(
        "# YaST writes the default gateway here\n"
        "default 192.168.122.1 - -\n"
        "10.9.0.0/16 192.168.122.254 - eth0\n"
        "172.16.0.0/12 10.0.0.1 - br9\n"
    )
    (net / "ifroute-eth0").write_text("10.8.0.0/16 192.168.122.253 - eth0\n")
    (net / "ifcfg-eth1").write_text("BOOTPROTO='dhcp'\nSTARTMODE='auto'\nBONDING_MASTER=''\n")
    (net / "ifcfg-br9").write_text("BRIDGE='yes'\nBRIDGE_PORTS=''\nBOOTPROTO='dhcp'\n")
    (net / "ifcfg-lo").write_text("IPADDR=127.0.0.1\nNETMASK=255.0.0.0\nSTARTMODE=nfsroot\n")
    (net / "ifcfg-eth0.rpmsave").write_text("BOOTPROTO='dhcp'\n")
    before = tree_digest(top)
    engine.apply(config.parse({"network": NET}), LocalRoot(str(top)))
    assert sorted(p.name for p in net.glob("if[cr]*-*")) == [
        "ifcfg-br9", "ifcfg-eth0.rpmsave", "ifcfg-lan0", "ifcfg-lo", "ifroute-lan0"]  # fmt: skip
    assert (net / "routes").read_text() == (
        "# YaST writes the default gateway here\n172.16.0.0/12 10.0.0.1 - br9\n"
    )
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_bridge_over_a_bond_in_suse_ifcfg_files():
    from vmtailor.customizer import config as cfg
    from vmtailor.customizer.network import sysconfig
    from vmtailor.customizer.network.state import build_state

    net = {"version": 2, "ethernets": {"eth0": {}, "eth1": {}},
           "bonds": {"bond0": {"interfaces": ["eth0"], "parameters": {"mode": "active-backup"}}},
           "bridges": {"br0": {"interfaces": ["bond0", "eth1"], "dhcp4": True, "parameters": {
               "stp": True, "forward-delay": 4, "hello-time": 2, "max-age": 12,
               "ageing-time": 50, "priority": 100, "path-cost": {"eth1": 50}}}}}  # fmt: skip
    state = build_state(cfg.parse({"network": net}).network)
    RENDERERS["wicked"].check(state, GuestFacts())
    files = RENDERERS["wicked"].render(state, GuestFacts())
    d = "/etc/sysconfig/network/ifcfg-"
    br0 = sysconfig.parse(files[f"{d}br0"].content)
    assert {k: v for k, v in br0.items() if k.startswith("BRIDGE")} == {
        "BRIDGE": "yes", "BRIDGE_PORTS": "bond0 eth1", "BRIDGE_STP": "on",
        "BRIDGE_FORWARDDELAY": "4", "BRIDGE_HELLOTIME": "2", "BRIDGE_MAXAGE": "12",
        "BRIDGE_AGEINGTIME": "50", "BRIDGE_PRIORITY": "100", "BRIDGE_PATHCOSTS": "- 50"}  # fmt: skip
    assert br0["BOOTPROTO"] == "dhcp4"
    for port in ("bond0", "eth1"):
        values = sysconfig.parse(files[f"{d}{port}"].content)
        assert values["BOOTPROTO"] == "none" and "IPADDR" not in values
