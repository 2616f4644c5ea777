"""The network key is validated in full, with located errors, before any disk is touched."""

from __future__ import annotations

import pytest

from vmtailor.configfile import load_config
from vmtailor.customizer import config
from vmtailor.customizer.config import ConfigError


def error(tmp_path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text("network:\n  version: 2\n" + text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path), {})
    return str(info.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "  ethernets:\n    e0:\n      addresses: [192.0.2.300/24]\n",
            "error at network.ethernets.e0.addresses[0]: line 5: '192.0.2.300/24' is not an IPv4",
        ),
        (
            "  ethernets:\n    e0:\n      addresses: [192.0.2.10]\n",
            "error at network.ethernets.e0.addresses[0]: line 5: '192.0.2.10' needs a prefix",
        ),
        (
            "  ethernets:\n    e0:\n      addresses: [192.0.2.10/24]\n      gateway4: 10.0.0.1\n",
            "error at network.ethernets.e0.gateway4: line 6: gateway 10.0.0.1 is outside every "
            "subnet of this interface (192.0.2.0/24)",
        ),
        (
            "  ethernets:\n    e0:\n      addresses: [192.0.2.10/24]\n      routes:\n"
            "        - {to: default, via: 198.51.100.1}\n",
            "error at network.ethernets.e0.routes[0].via: line 7: gateway 198.51.100.1 is outside",
        ),
        (
            "  ethernets:\n    a: {match: {macaddress: '52:54:00:00:00:01'}}\n"
            "    b: {match: {macaddress: '52:54:00:00:00:01'}}\n",
            "error at network.ethernets.b.match.macaddress: line 5: MAC 52:54:00:00:00:01 is "
            "already matched by ethernets.a",
        ),
        (
            "  vlans:\n    v10: {id: 10, link: eth9}\n",
            "error at network.vlans.v10.link: line 4: vlan link 'eth9' is not defined",
        ),
        (
            "  vlans:\n    v10: {id: 5000, link: eth9}\n",
            "error at network.vlans.v10.id: line 4: 5000 is above the maximum 4094",
        ),
        (
            "  bonds:\n    bond0: {interfaces: [nic9]}\n",
            "error at network.bonds.bond0.interfaces[0]: line 4: bond member 'nic9' is not defined",
        ),
        (
            "  ethernets:\n    a: {addresses: [192.0.2.10/24], gateway4: 192.0.2.1}\n"
            "    b: {addresses: [10.0.0.10/8], gateway4: 10.0.0.1}\n",
            "error at network: line 1: IPv4 default route on 2 interfaces (a, b)",
        ),
        (
            "  ethernets:\n    e0:\n      match: {macaddress: '52:54:00:zz:00:01'}\n",
            "error at network.ethernets.e0.match.macaddress: line 5:",
        ),
        (
            "  ethernets:\n    e0:\n      dhcp: true\n",
            "error at network.ethernets.e0.dhcp: line 5: unknown key 'dhcp' in "
            "network.ethernets.e0 (did you mean 'dhcp4'?)",
        ),
        (
            "  renderer: ifupdonw\n",
            "error at network.renderer: line 3: unknown value 'ifupdonw' (did you mean 'ifupdown'?)",
        ),
    ],
)
def test_network_errors(tmp_path, text, expected):
    message = error(tmp_path, text)
    assert message.startswith(expected), message


def test_valid_network_shapes():
    cfg = config.parse({"network": {"version": 2, "ethernets": {
        "a": {"addresses": ["192.0.2.10/24"], "routes": [
            {"to": "default", "via": "192.0.2.1", "metric": 100}]},
        "b": {"addresses": ["10.0.0.10/8"], "routes": [
            {"to": "default", "via": "10.0.0.1", "metric": 200}]},
        "c": {"addresses": ["2001:db8::5/64"], "gateway6": "fe80::1"},
        "d": {"routes": [{"to": "default", "via": "203.0.113.1", "on-link": True,
                          "metric": 300}]},
    }}})  # fmt: skip
    assert cfg.network is not None and len(cfg.network.ethernets) == 4


def test_templated_addresses_are_checked_after_rendering():
    text = {"network": {"version": 2, "ethernets": {"e0": {
        "addresses": ["{{ ip }}"], "gateway4": "192.0.2.1"}}}}  # fmt: skip
    config.parse(text)  # deferred: can't check yet
    config.parse(text, {"ip": "192.0.2.10/24"})
    with pytest.raises(ConfigError, match="outside every subnet"):
        config.parse(text, {"ip": "10.1.1.1/24"})


BRIDGE = {"version": 2, "ethernets": {"eth0": {}}, "bridges": {"br0": {
    "interfaces": ["eth0"], "dhcp4": True}}}  # fmt: skip


@pytest.mark.parametrize(
    ("bridges", "where", "message"),
    [
        ({"br0": {"interfaces": ["nope"]}}, "network.bridges.br0.interfaces[0]",
         "bridge member 'nope' is not defined under ethernets, bonds or vlans"),
        ({"br0": {"interfaces": ["eth0"]}, "br1": {"interfaces": ["eth0"]}},
         "network.bridges.br1.interfaces[0]", "'eth0' is already a member of bridge 'br0'"),
        ({"br0": {"interfaces": ["eth0"], "parameters": {"path-cost": {"eth1": 5}}}},
         "network.bridges.br0.parameters.path-cost.eth1", "'eth1' is not a member"),
    ],
)  # fmt: skip
def test_bridge_members_are_checked(bridges, where, message):
    with pytest.raises(ConfigError) as err:
        config.parse({"network": {"version": 2, "ethernets": {"eth0": {}}, "bridges": bridges}})
    assert str(err.value).startswith(f"error at {where}: {message}"), str(err.value)


@pytest.mark.parametrize(
    ("parameters", "where", "message"),
    [
        ({"all-members-active": True, "all-slaves-active": True},
         "network.bonds.bond0.parameters.all-slaves-active",
         "all-slaves-active and all-members-active are the same option"),
        ({"primary": "eth9"}, "network.bonds.bond0.parameters.primary",
         "primary 'eth9' is not a member of bond 'bond0'"),
        ({"mode": "802.3ad", "primary": "eth0"}, "network.bonds.bond0.parameters.primary",
         "primary is for modes active-backup, balance-tlb, balance-alb, not 802.3ad"),
        ({"arp-ip-targets": ["192.0.2.300"]}, "network.bonds.bond0.parameters.arp-ip-targets",
         "'192.0.2.300' is not an IPv4 or IPv6 address"),
    ],
)  # fmt: skip
def test_bond_parameters_are_checked(parameters, where, message):
    net = {"version": 2, "ethernets": {"eth0": {}},
           "bonds": {"bond0": {"interfaces": ["eth0"], "parameters": parameters}}}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        config.parse({"network": net})
    assert str(err.value).startswith(f"error at {where}"), str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize("stack", ["ifupdown", "alpine", "network-scripts", "wicked"])
@pytest.mark.parametrize(
    ("eth", "where"),
    [
        ({"routes": [{"to": "10.0.0.0/8", "via": "192.0.2.1", "table": 5}]}, r"routes\[0\]"),
        ({"routing-policy": [{"from": "192.0.2.0/24", "table": 5}]}, "routing-policy"),
    ],
)
def test_stacks_without_policy_routing_refuse_it_naming_key_and_stack(stack, eth, where):
    from vmtailor.customizer.errors import PlanError
    from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts
    from vmtailor.customizer.network.state import build_state

    eth = {"addresses": ["192.0.2.10/24"], **eth}
    net = config.parse({"network": {"version": 2, "ethernets": {"eth0": eth}}}).network
    with pytest.raises(PlanError, match=rf"^network\.ethernets\.eth0\.{where}: .*{stack} stack"):
        RENDERERS[stack].check(build_state(net), GuestFacts())


def test_a_default_route_in_another_table_is_no_second_default():
    eth = {"addresses": ["192.0.2.10/24"], "routes": [{"to": "default", "via": "192.0.2.1"}]}
    other = {"addresses": ["198.51.100.10/24"],
             "routes": [{"to": "default", "via": "198.51.100.1", "table": 7}]}  # fmt: skip
    net = {"version": 2, "ethernets": {"eth0": eth, "eth1": other}}
    assert config.parse({"network": net}).network is not None


@pytest.mark.parametrize(
    ("stack", "eth", "message"),
    [
        ("ifupdown", {"dhcp4-overrides": {"route-metric": 5}}, r"dhcp4-overrides: .* ifupdown"),
        ("wicked", {"ipv6-privacy": True}, r"ipv6-privacy: .* wicked"),
        ("networkmanager", {"link-local": []}, r"link-local: .* networkmanager"),
        ("networkmanager", {"dhcp4-overrides": {"use-mtu": False}},
         r"dhcp4-overrides\.use-mtu: NetworkManager has no switch"),
        ("networkmanager", {"dhcp4-overrides": {"use-dns": False}},
         r"dhcp4-overrides: NetworkManager takes DHCP's DNS servers and domains together"),
    ],
)  # fmt: skip
def test_what_a_stack_cannot_write_is_refused_naming_key_and_stack(stack, eth, message):
    from vmtailor.customizer.errors import PlanError
    from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts
    from vmtailor.customizer.network.state import build_state

    net = {"version": 2, "ethernets": {"eth0": {"dhcp4": True, **eth}}}
    state = build_state(config.parse({"network": net}).network)
    with pytest.raises(PlanError, match=rf"^network\.ethernets\.eth0\.{message}"):
        RENDERERS[stack].check(state, GuestFacts())


def test_networkmanager_refuses_primary_outside_active_backup():
    from vmtailor.customizer.errors import PlanError
    from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts
    from vmtailor.customizer.network.state import build_state

    net = {"version": 2, "ethernets": {"eth0": {}}, "bonds": {"bond0": {
        "interfaces": ["eth0"], "parameters": {"mode": "balance-tlb", "primary": "eth0"}}}}  # fmt: skip
    state = build_state(config.parse({"network": net}).network)
    with pytest.raises(PlanError, match=r"^network\.bonds\.bond0\.parameters\.primary: Netw"):
        RENDERERS["networkmanager"].check(state, GuestFacts())
