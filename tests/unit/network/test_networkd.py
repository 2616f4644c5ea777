"""networkd files read back with a systemd-style parser: the meaning, not the bytes."""

from __future__ import annotations

from tests.unit.network.cases import MAC1, MAC2, state
from vmtailor.customizer import config, engine
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.network import unitfile
from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts

D = "/etc/systemd/network/10-vmtailor-"


def render(case):
    return {
        p: f.content for p, f in RENDERERS["networkd"].render(state(case), GuestFacts()).items()
    }


def test_static_v4_meaning():
    files = render("static4")
    net = files[f"{D}lan0.network"]
    assert unitfile.values(net, "Match", "MACAddress") == [MAC1]
    assert unitfile.values(net, "Network", "Address") == ["192.0.2.10/24"]
    assert unitfile.values(net, "Network", "DHCP") == ["no"]
    assert unitfile.values(net, "Network", "DNS") == ["192.0.2.53", "2001:db8::53"]
    assert unitfile.values(net, "Link", "MTUBytes") == ["9000"]
    routes = [dict(items) for name, items in unitfile.parse(net) if name == "Route"]
    assert {"Gateway": "192.0.2.1"} in routes
    assert {"Destination": "198.51.100.0/24", "Gateway": "192.0.2.254", "Metric": "50"} in routes
    link = files[f"{D}lan0.link"]
    assert unitfile.values(link, "Link", "Name") == ["lan0"]


def test_dhcp_and_dualstack():
    assert unitfile.values(render("dhcp")[f"{D}lan0.network"], "Network", "DHCP") == ["ipv4"]
    net = render("dualstack")[f"{D}lan0.network"]
    assert unitfile.values(net, "Network", "DHCP") == ["ipv6"]
    gws = [dict(i).get("Gateway") for n, i in unitfile.parse(net) if n == "Route"]
    assert gws == ["192.0.2.1", "2001:db8::1"]


def test_bond_and_vlan_topology():
    files = render("bond")
    assert unitfile.values(files[f"{D}bond0.netdev"], "NetDev", "Kind") == ["bond"]
    assert unitfile.values(files[f"{D}bond0.netdev"], "Bond", "MIIMonitorSec") == ["100ms"]
    nic1 = files[f"{D}nic1.network"]
    assert unitfile.values(nic1, "Match", "PermanentMACAddress") == [MAC2]
    assert unitfile.values(nic1, "Network", "Bond") == ["bond0"]
    assert unitfile.values(files[f"{D}bond0.network"], "Network", "Address") == ["192.0.2.10/24"]
    vlan = render("vlan")
    assert unitfile.values(vlan[f"{D}trunk.network"], "Network", "VLAN") == ["vlan10"]
    assert unitfile.values(vlan[f"{D}vlan10.netdev"], "VLAN", "Id") == ["10"]


def test_on_arch_stale_template_config_is_removed_and_revert_restores(make_root):
    top = make_root("arch")
    stale = sorted(p.name for p in (top / "etc/systemd/network").iterdir())
    assert stale, "the arch fixture has a template .network file"
    cfg = config.parse({"network": {"version": 2, "ethernets": {"lan0": {
        "match": {"macaddress": MAC1}, "addresses": ["192.0.2.10/24"],
        "gateway4": "192.0.2.1"}}}})  # fmt: skip
    from tests.conftest import tree_digest

    before = tree_digest(top)
    result = engine.apply(cfg, LocalRoot(str(top)))
    assert ("delete", f"/etc/systemd/network/{stale[0]}") in [
        (c.action, c.path) for c in result.changes
    ]
    assert sorted(p.name for p in (top / "etc/systemd/network").iterdir()) == [
        "10-vmtailor-lan0.network"
    ]
    assert engine.apply(cfg, LocalRoot(str(top))).changes == []
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_dhcp6_overrides_go_where_networkd_applies_them():
    """Not [DHCP] (DHCPv4's since systemd 244, where netplan 0.106 puts them): DHCPv6's
    own section, and router advertisements' for the routes and MTU they bring."""
    from vmtailor.customizer import config
    from vmtailor.customizer.network.state import build_state

    six = {"use-dns": False, "use-domains": False, "use-routes": False, "route-metric": 60,
           "use-mtu": False}  # fmt: skip
    net = {"version": 2, "ethernets": {"eth0": {"dhcp6": True, "dhcp6-overrides": six}}}
    state = build_state(config.parse({"network": net}).network)
    text = RENDERERS["networkd"].render(state, GuestFacts())[f"{D}eth0.network"].content
    assert unitfile.values(text, "DHCPv6", "UseDNS") == ["no"]
    assert unitfile.values(text, "DHCPv6", "UseDomains") == ["no"]
    assert unitfile.values(text, "IPv6AcceptRA", "RouteMetric") == ["60"]
    assert unitfile.values(text, "IPv6AcceptRA", "UseGateway") == ["no"]
    assert unitfile.values(text, "IPv6AcceptRA", "UseMTU") == ["no"]
    assert not unitfile.values(text, "DHCPv4", "UseDNS")
