"""network-scripts ifcfg files read back by the real shell (they are sourced by
initscripts), and applied to EL fixture roots through the engine."""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from tests.conftest import tree_digest
from tests.unit.network.cases import CASES, MAC1, MAC2, MAC3, state
from vmtailor.customizer import config, engine
from vmtailor.customizer.detect import detect
from vmtailor.customizer.errors import PlanError
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.network import sysconfig
from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts
from vmtailor.customizer.network.select import choose
from vmtailor.customizer.network.state import build_state

D = "/etc/sysconfig/network-scripts"
RULES = "/etc/udev/rules.d/70-vmtailor-net.rules"


def sourced(text: str) -> dict[str, str]:
    """What `. file` sets: the real shell is the best parser of a sourced file."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh") as f:
        f.write(text)
        f.flush()
        out = subprocess.run(
            ["sh", "-c", 'set -a; . "$1"; env -0', "sh", f.name],
            env={"PATH": os.environ["PATH"]},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    pairs = (item.split("=", 1) for item in out.split("\0") if item)
    return {k: v for k, v in pairs if k not in ("PATH", "PWD", "OLDPWD", "SHLVL", "_")}


def render(case, facts=None):
    files = RENDERERS["network-scripts"].render(state(case), facts or GuestFacts())
    return {p: f.content for p, f in files.items()}


def render_net(net: dict) -> dict[str, str]:
    cfg = config.parse({"network": {"version": 2, **net}})
    assert cfg.network is not None
    files = RENDERERS["network-scripts"].render(build_state(cfg.network), GuestFacts())
    return {p: f.content for p, f in files.items()}


def ifcfg(files, name):
    return sourced(files[f"{D}/ifcfg-{name}"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_file_means_the_same_to_sh_and_to_our_reader(case):
    for path, text in render(case).items():
        if path.startswith(f"{D}/ifcfg-"):
            assert sourced(text) == sysconfig.parse(text), path


def test_static_v4_meaning():
    files = render("static4")
    lan0 = ifcfg(files, "lan0")
    assert lan0["DEVICE"] == "lan0" and lan0["HWADDR"].lower() == MAC1
    assert (lan0["BOOTPROTO"], lan0["ONBOOT"], lan0["TYPE"]) == ("none", "yes", "Ethernet")
    assert (lan0["IPADDR"], lan0["PREFIX"], lan0["GATEWAY"]) == ("192.0.2.10", "24", "192.0.2.1")
    assert lan0["DEFROUTE"] == "yes" and lan0["MTU"] == "9000"
    assert [lan0["DNS1"], lan0["DNS2"]] == ["192.0.2.53", "2001:db8::53"]
    assert lan0["DOMAIN"] == "example.com"
    assert "IPV6INIT" not in lan0 and "NM_CONTROLLED" not in lan0
    routes = files[f"{D}/route-lan0"].splitlines()[1:]
    assert routes == ["198.51.100.0/24 via 192.0.2.254 dev lan0 metric 50"]
    assert f'ATTR{{address}}=="{MAC1}", NAME="lan0"' in files[RULES]
    assert "nameserver 192.0.2.53" in files["/etc/resolv.conf"].splitlines()
    assert all(f.mode == 0o644 for f in RENDERERS["network-scripts"].render(
        state("static4"), GuestFacts()).values())  # fmt: skip


def test_dhcp_names_the_nic_it_matches_by_mac():
    files = render("dhcp")
    lan0 = ifcfg(files, "lan0")
    assert lan0["BOOTPROTO"] == "dhcp" and lan0["HWADDR"].lower() == MAC1
    assert not {"IPADDR", "GATEWAY", "DEFROUTE"} & set(lan0)
    # the key is the name: pinned by udev, whoever would otherwise name the NIC
    assert f'ATTR{{address}}=="{MAC1}", NAME="lan0"' in files[RULES]
    assert "/etc/resolv.conf" not in files  # nothing to say: DHCP's resolv.conf stays


def test_static_v6_by_name():
    files = render("static6")
    ens3 = ifcfg(files, "ens3")
    assert "HWADDR" not in ens3 and RULES not in files
    assert ens3["IPV6INIT"] == "yes" and ens3["IPV6_AUTOCONF"] == "no"
    assert ens3["IPV6ADDR"] == "2001:db8::10/64" and ens3["IPV6_DEFAULTGW"] == "2001:db8::1"
    assert ens3["BOOTPROTO"] == "none" and "IPADDR" not in ens3


def test_dualstack():
    lan0 = ifcfg(render("dualstack"), "lan0")
    assert (lan0["IPADDR"], lan0["GATEWAY"]) == ("192.0.2.10", "192.0.2.1")
    assert (lan0["IPV6ADDR"], lan0["IPV6_DEFAULTGW"]) == ("2001:db8::10/64", "2001:db8::1")
    assert lan0["DHCPV6C"] == "yes" and "IPV6_AUTOCONF" not in lan0  # RA too, with DHCPv6
    assert lan0["BOOTPROTO"] == "none"


def test_default_route_on_exactly_one_nic():
    files = render("two-nics")
    front, back = ifcfg(files, "front"), ifcfg(files, "back")
    assert (front["GATEWAY"], front["DEFROUTE"]) == ("192.0.2.1", "yes")
    assert "GATEWAY" not in back and back["DEFROUTE"] == "no"
    assert files[f"{D}/route-back"].splitlines()[1:] == ["10.0.0.0/8 via 10.20.0.1 dev back"]
    assert f"{D}/route-front" not in files
    assert (front["HWADDR"].lower(), back["HWADDR"].lower()) == (MAC1, MAC2)


def test_bond_topology():
    files = render("bond")
    bond = ifcfg(files, "bond0")
    assert (bond["TYPE"], bond["BONDING_MASTER"]) == ("Bond", "yes")
    assert set(bond["BONDING_OPTS"].split()) == {"mode=active-backup", "miimon=100", "primary=nic1"}
    assert (bond["IPADDR"], bond["GATEWAY"]) == ("192.0.2.10", "192.0.2.1")
    assert bond["DNS1"] == "192.0.2.53"
    for name, mac in (("nic1", MAC2), ("nic2", MAC3)):
        member = ifcfg(files, name)
        assert (member["MASTER"], member["SLAVE"], member["BOOTPROTO"]) == ("bond0", "yes", "none")
        assert member["HWADDR"].lower() == mac
        assert not {"IPADDR", "GATEWAY", "DEFROUTE", "DNS1"} & set(member)


def test_vlan_topology():
    files = render("vlan")
    vlan = ifcfg(files, "vlan10")
    # initscripts reads VID, NetworkManager's ifcfg-rh VLAN_ID: both, whatever the name
    assert (vlan["VLAN"], vlan["TYPE"], vlan["PHYSDEV"]) == ("yes", "Vlan", "trunk")
    assert (vlan["VID"], vlan["VLAN_ID"], vlan["IPADDR"]) == ("10", "10", "10.10.0.5")
    assert "HWADDR" not in vlan
    assert ifcfg(files, "trunk")["BOOTPROTO"] == "dhcp"
    assert files[f"{D}/route-vlan10"].splitlines()[1:] == ["10.0.0.0/8 via 10.10.0.1 dev vlan10"]


def test_gateway_subnet_comes_first():
    # ifup-eth (EL 6-8) sets GATEWAY only when it lies in the first address's network
    files = render_net({"ethernets": {"eth0": {
        "addresses": ["10.0.0.5/24", "192.0.2.10/24", "192.0.2.11/24"],
        "gateway4": "192.0.2.1"}}})  # fmt: skip
    eth0 = ifcfg(files, "eth0")
    assert [eth0[f"IPADDR{i}"] for i in range(3)] == ["192.0.2.10", "192.0.2.11", "10.0.0.5"]
    assert eth0["PREFIX0"] == "24" and "IPADDR" not in eth0


def test_defaults_gateway_cannot_carry_go_to_the_route_file():
    files = render_net({"ethernets": {
        "eth0": {"dhcp4": True, "routes": [{"to": "default", "via": "192.0.2.1", "metric": 100}]},
        "eth1": {"addresses": ["10.1.0.5/24", "2001:db8:1::5/64"],
                 "routes": [{"to": "default", "via": "198.51.100.1", "on-link": True,
                             "metric": 200},
                            {"to": "default", "via": "fe80::1", "metric": 10}]},
    }})  # fmt: skip
    assert "GATEWAY" not in ifcfg(files, "eth0") and "GATEWAY" not in ifcfg(files, "eth1")
    assert files[f"{D}/route-eth0"].endswith("default via 192.0.2.1 dev eth0 metric 100\n")
    assert files[f"{D}/route-eth1"].endswith(
        "default via 198.51.100.1 dev eth1 metric 200 onlink\n"
    )
    assert files[f"{D}/route6-eth1"].endswith("default via fe80::1 dev eth1 metric 10\n")
    assert ifcfg(files, "eth0")["DEFROUTE"] == ifcfg(files, "eth1")["DEFROUTE"] == "yes"


def test_link_local_v6_gateway_names_its_device():
    files = render_net({"ethernets": {"eth0": {"addresses": ["2001:db8::5/64"],
                                               "gateway6": "fe80::1"}}})  # fmt: skip
    assert ifcfg(files, "eth0")["IPV6_DEFAULTGW"] == "fe80::1%eth0"


def test_symlinked_resolv_conf_is_not_rendered():
    assert "/etc/resolv.conf" not in render("static4", GuestFacts(resolv_conf="symlink"))


@pytest.mark.parametrize(
    "eth, words",
    [
        ({"match": {"name": "en*"}, "dhcp4": True}, "pattern"),
        ({"match": {"name": "eth0"}, "set-name": "lan0", "dhcp4": True}, "macaddress"),
        ({"match": {"driver": "virtio_net"}, "dhcp4": True}, "driver"),
    ],
)
def test_matches_ifcfg_cannot_express_are_refused(eth, words):
    with pytest.raises(PlanError, match=words):
        render_net({"ethernets": {"lan": eth}})


# -- on fixture roots, through the engine ------------------------------------------------

NET = {"version": 2, "ethernets": {"lan0": {
    "match": {"macaddress": MAC1}, "addresses": ["192.0.2.10/24"], "gateway4": "192.0.2.1",
    "nameservers": {"addresses": ["192.0.2.53"], "search": ["example.com"]}}}}  # fmt: skip


@pytest.mark.parametrize("name, chosen", [("centos-7", True), ("centos-6", True),
                                          ("rocky-9", False)])  # fmt: skip
def test_el_up_to_8_choose_network_scripts(make_root, name, chosen):
    stack, _ = choose(detect(LocalRoot(str(make_root(name)))), None)
    assert (stack == "network-scripts") is chosen, stack


@pytest.mark.parametrize("name", ["centos-7", "centos-6"])
def test_on_el_fixture_template_nic_is_replaced_and_revert_restores(make_root, name):
    top = make_root(name)
    etc = top / "etc/sysconfig"
    network_before = (etc / "network").read_bytes()
    before = tree_digest(top)
    result = engine.apply(config.parse({"network": NET}), LocalRoot(str(top)))
    changed = {(c.action, c.path) for c in result.changes}
    assert ("delete", f"{D}/ifcfg-eth0") in changed  # its HWADDR pins the template's NIC
    assert sorted(p.name for p in (etc / "network-scripts").glob("ifcfg-*")) == [
        "ifcfg-lan0", "ifcfg-lo"]  # fmt: skip
    lan0 = sourced((etc / "network-scripts/ifcfg-lan0").read_text())
    assert (lan0["HWADDR"].lower(), lan0["IPADDR"], lan0["GATEWAY"]) == (MAC1, "192.0.2.10",
                                                                        "192.0.2.1")  # fmt: skip
    assert (etc / "network").read_bytes() == network_before  # NETWORKING=yes already
    resolv = top / "etc/resolv.conf"
    assert not resolv.is_symlink() and "nameserver 192.0.2.53" in resolv.read_text()
    assert (top / RULES.lstrip("/")).read_text().count("NAME=") == 1
    assert not (top / "etc/udev/rules.d/70-persistent-net.rules").exists()
    assert engine.apply(config.parse({"network": NET}), LocalRoot(str(top))).changes == []
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_stale_template_config_goes_and_the_rest_stays(make_root):
    top = make_root("centos-7")
    scripts = top / "etc/sysconfig/network-scripts"
    (top / "etc/sysconfig/network").write_text(
        "NETWORKING=yes\nGATEWAY=10.0.0.1\nGATEWAYDEV=eth0\nNOZEROCONF=yes\n"
    )
    (scripts / "ifcfg-eth1").write_text('DEVICE="eth1"\nHWADDR="52:54:00:de:ad:01"\n')
    (scripts / "route-eth1").write_text("ADDRESS0=10.9.0.0\nNETMASK0=255.255.0.0\n")
    (scripts / "ifcfg-eth0:1").write_text("DEVICE=eth0:1\nIPADDR=10.0.0.7\n")
    (scripts / "ifcfg-bond9").write_text("DEVICE=bond9\nTYPE=Bond\nBONDING_MASTER=yes\n")
    (scripts / "ifcfg-eth0.bak").write_text("DEVICE=eth0\n")
    before = tree_digest(top)
    engine.apply(config.parse({"network": NET}), LocalRoot(str(top)))
    left = sorted(p.name for p in scripts.iterdir() if p.name.startswith(("ifcfg-", "route")))
    assert left == ["ifcfg-bond9", "ifcfg-eth0.bak", "ifcfg-lan0", "ifcfg-lo"]
    # the template's default route would compete (GATEWAYDEV even wins over DEFROUTE)
    assert (top / "etc/sysconfig/network").read_text() == "NETWORKING=yes\nNOZEROCONF=yes\n"
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_el6_host_name_and_network_file_edits_combine(make_root):
    top = make_root("centos-6")
    engine.apply(config.parse({"hostname": "web1", "network": NET}), LocalRoot(str(top)))
    values = sourced((top / "etc/sysconfig/network").read_text())
    assert (values["NETWORKING"], values["HOSTNAME"]) == ("yes", "web1")


def test_missing_network_file_is_created(make_root):
    top = make_root("centos-7")
    (top / "etc/sysconfig/network").unlink()
    engine.apply(config.parse({"network": NET}), LocalRoot(str(top)))
    assert (top / "etc/sysconfig/network").read_text() == "NETWORKING=yes\n"


def test_bridge_over_a_bond_in_ifcfg_files():
    from vmtailor.customizer.errors import PlanError
    from vmtailor.customizer.network import sysconfig
    from vmtailor.customizer.network.state import build_state

    net = {"version": 2,
           "ethernets": {"nic1": {"match": {"macaddress": MAC2}, "set-name": "nic1"},
                         "eth1": {}},
           "bonds": {"bond0": {"interfaces": ["nic1"], "parameters": {"mode": "active-backup"}}},
           "bridges": {"br0": {"interfaces": ["bond0", "eth1"], "addresses": ["192.0.2.10/24"],
                               "parameters": {"stp": False, "forward-delay": 4, "priority": 100,
                                              "path-cost": {"eth1": 50}}}}}  # fmt: skip
    state = build_state(config.parse({"network": net}).network)
    RENDERERS["network-scripts"].check(state, GuestFacts())
    files = RENDERERS["network-scripts"].render(state, GuestFacts())
    d = "/etc/sysconfig/network-scripts/ifcfg-"
    br0 = sysconfig.parse(files[f"{d}br0"].content)
    assert (br0["TYPE"], br0["STP"], br0["DELAY"], br0["BRIDGING_OPTS"]) == (
        "Bridge",
        "off",
        "4",
        "priority=100",
    )
    assert br0["IPADDR"] == "192.0.2.10" and br0["PREFIX"] == "24"
    eth1 = sysconfig.parse(files[f"{d}eth1"].content)
    assert (eth1["BRIDGE"], eth1["BRIDGING_OPTS"]) == ("br0", "path_cost=50")
    assert "IPADDR" not in eth1
    bond0 = sysconfig.parse(files[f"{d}bond0"].content)
    assert bond0["BRIDGE"] == "br0" and bond0["BONDING_MASTER"] == "yes"
    net["bridges"]["br0"]["parameters"]["hello-time"] = 2
    state = build_state(config.parse({"network": net}).network)
    with pytest.raises(PlanError, match=r"^network\.bridges\.br0\.parameters\.hello-time: "):
        RENDERERS["network-scripts"].check(state, GuestFacts())
