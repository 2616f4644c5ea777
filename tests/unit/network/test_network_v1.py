"""cloud-init network-config v1: converted into the network state the same v2 document
gives, with errors that name the v1 key the user wrote."""

from __future__ import annotations

import pytest

from vmtailor.customizer import config
from vmtailor.customizer.config import ConfigError
from vmtailor.customizer.network.state import build_state

MAC1, MAC2, MAC3 = "52:54:00:12:34:56", "52:54:00:ab:cd:01", "52:54:00:ab:cd:02"

V1 = {"version": 1, "config": [
    {"type": "physical", "name": "eth0", "mac_address": MAC1, "mtu": 9000, "subnets": [
        {"type": "static", "address": "192.0.2.10", "netmask": "255.255.255.0",
         "gateway": "192.0.2.1", "dns_nameservers": ["192.0.2.53"],
         "dns_search": ["example.com"],
         "routes": [{"network": "198.51.100.0", "netmask": "255.255.255.0",
                     "gateway": "192.0.2.254", "metric": 50}]},
        {"type": "static6", "address": "2001:db8::10/64", "gateway": "2001:db8::1"}]},
    {"type": "physical", "name": "eth1", "subnets": [{"type": "dhcp"}, {"type": "ipv6_slaac"}]},
    {"type": "physical", "name": "nic1", "mac_address": MAC2},
    {"type": "physical", "name": "nic2", "mac_address": MAC3},
    {"type": "bond", "name": "bond0", "bond_interfaces": ["nic1", "nic2"],
     "params": {"bond-mode": "active-backup", "bond_miimon": 100, "bond-primary": "nic1",
                "bond-xmit-hash-policy": "layer3+4", "bond-num-grat-arp": 3}},
    {"type": "bridge", "name": "br0", "bridge_interfaces": ["bond0"],
     "params": {"bridge_stp": "off", "bridge_fd": 4, "bridge_bridgeprio": 100,
                "bridge_pathcost": ["bond0 50"], "bridge_maxwait": 0},
     "subnets": [{"type": "dhcp6"}]},
    {"type": "vlan", "name": "vlan10", "vlan_link": "br0", "vlan_id": 10,
     "subnets": [{"type": "static", "address": "10.10.0.5/24"},
                 {"type": "ipv6_dhcpv6-stateless"}]},
    {"type": "nameserver", "address": ["192.0.2.54"], "search": ["b.example"]},
    {"type": "route", "destination": "10.0.0.0/8", "gateway": "10.10.0.1"},
]}  # fmt: skip

NS = {"addresses": ["192.0.2.54"], "search": ["b.example"]}
V2 = {"version": 2,
      "ethernets": {
          "eth0": {"match": {"macaddress": MAC1}, "set-name": "eth0", "mtu": 9000,
                   "addresses": ["192.0.2.10/24", "2001:db8::10/64"],
                   "routes": [{"to": "default", "via": "192.0.2.1"},
                              {"to": "198.51.100.0/24", "via": "192.0.2.254", "metric": 50},
                              {"to": "default", "via": "2001:db8::1"}],
                   "nameservers": {"addresses": ["192.0.2.53", "192.0.2.54"],
                                   "search": ["example.com", "b.example"]}},
          "eth1": {"dhcp4": True, "accept-ra": True, "nameservers": NS},
          "nic1": {"match": {"macaddress": MAC2}, "set-name": "nic1"},
          "nic2": {"match": {"macaddress": MAC3}, "set-name": "nic2"}},
      "bonds": {"bond0": {"interfaces": ["nic1", "nic2"], "parameters": {
          "mode": "active-backup", "mii-monitor-interval": 100, "primary": "nic1",
          "transmit-hash-policy": "layer3+4", "gratuitous-arp": 3}}},
      "bridges": {"br0": {"interfaces": ["bond0"], "dhcp6": True, "nameservers": NS,
                          "parameters": {"stp": False, "forward-delay": 4, "priority": 100,
                                         "path-cost": {"bond0": 50}}}},
      "vlans": {"vlan10": {"id": 10, "link": "br0", "addresses": ["10.10.0.5/24"],
                           "dhcp6": True, "accept-ra": True,
                           "routes": [{"to": "10.0.0.0/8", "via": "10.10.0.1"}],
                           "nameservers": NS}},
      }  # fmt: skip


def test_v1_means_what_the_same_v2_means():
    v1 = build_state(config.parse({"network": V1}).network)
    v2 = build_state(config.parse({"network": V2}).network)
    assert v1 == v2


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (lambda c: c[0]["subnets"][0].update(address="192.0.2.300"),
         "network.config[0].subnets[0].address", "'192.0.2.300/24' is not an IPv4"),
        (lambda c: c[0]["subnets"][0].update(gateway="203.0.113.1"),
         "network.config[0].subnets[0].gateway", "gateway 203.0.113.1 is outside every subnet"),
        (lambda c: c[0]["subnets"][0].update(netmask="255.0.255.0"),
         "network.config[0].subnets[0].netmask", "'255.0.255.0' is not a netmask"),
        (lambda c: c[1]["subnets"][0].update(type="dhcp5"),
         "network.config[1].subnets[0].type", "unknown subnet type 'dhcp5'"),
        (lambda c: c[1]["subnets"][0].update(mtu_x=1),
         "network.config[1].subnets[0].mtu_x", "unknown key 'mtu_x' in a v1 subnet"),
        (lambda c: c[4]["params"].update({"bond-fancy": 1}),
         "network.config[4].params.bond-fancy", "unknown bond option 'bond-fancy'"),
        (lambda c: c[4]["bond_interfaces"].append("nic9"),
         "network.config[4].bond_interfaces", "bond member 'nic9' is not defined"),
        (lambda c: c[6].update(vlan_id=5000),
         "network.config[6].vlan_id", "5000"),
        (lambda c: c[8].update(gateway="203.0.113.1"),
         "network.config[8].gateway", "route gateway '203.0.113.1' is in no subnet"),
        (lambda c: c[1]["subnets"][0].update(control="manual"),
         "network.config[1].subnets[0].control", "control 'manual': auto and hotplug"),
        (lambda c: c.append({"type": "wifi", "name": "wlan0"}),
         "network.config[9].type", "unknown v1 entry type 'wifi'"),
    ],
)  # fmt: skip
def test_v1_errors_name_the_v1_key(change, where, message):
    import copy

    doc = copy.deepcopy(V1)
    change(doc["config"])
    with pytest.raises(ConfigError) as err:
        config.parse({"network": doc})
    assert str(err.value).startswith(f"error at {where}"), str(err.value)
    assert message in str(err.value)


def test_other_versions_say_which_are_accepted():
    with pytest.raises(ConfigError, match=r"versions 1 \(cloud-init .*\) and 2 \(netplan\)"):
        config.parse({"network": {"version": 3, "ethernets": {}}})
