"""The network configs every renderer is checked with (golden files + parse-back)."""

from __future__ import annotations

from vmtailor.customizer import config
from vmtailor.customizer.network.state import NetworkState, build_state

MAC1, MAC2, MAC3 = "52:54:00:12:34:56", "52:54:00:ab:cd:01", "52:54:00:ab:cd:02"
DNS = {"addresses": ["192.0.2.53", "2001:db8::53"], "search": ["example.com"]}

CASES: dict[str, dict] = {
    "dhcp": {"ethernets": {"lan0": {"match": {"macaddress": MAC1}, "dhcp4": True}}},
    "static4": {
        "ethernets": {
            "lan0": {
                "match": {"macaddress": MAC1},
                "set-name": "lan0",
                "addresses": ["192.0.2.10/24"],
                "routes": [{"to": "default", "via": "192.0.2.1"},
                           {"to": "198.51.100.0/24", "via": "192.0.2.254", "metric": 50}],
                "nameservers": DNS,
                "mtu": 9000,
            }
        }
    },
    "static6": {
        "ethernets": {
            "ens3": {
                "addresses": ["2001:db8::10/64"],
                "gateway6": "2001:db8::1",
                "nameservers": {"addresses": ["2001:db8::53"]},
            }
        }
    },
    "dualstack": {
        "ethernets": {
            "lan0": {
                "match": {"macaddress": MAC1},
                "set-name": "lan0",
                "dhcp6": True,
                "addresses": ["192.0.2.10/24", "2001:db8::10/64"],
                "routes": [{"to": "default", "via": "192.0.2.1"},
                           {"to": "default", "via": "2001:db8::1"}],
                "nameservers": DNS,
            }
        }
    },
    "two-nics": {
        "ethernets": {
            "front": {"match": {"macaddress": MAC1}, "set-name": "front",
                      "addresses": ["192.0.2.10/24"], "gateway4": "192.0.2.1",
                      "nameservers": DNS},
            "back": {"match": {"macaddress": MAC2}, "set-name": "back",
                     "addresses": ["10.20.0.10/16"],
                     "routes": [{"to": "10.0.0.0/8", "via": "10.20.0.1"}]},
        }
    },
    "bond": {
        "ethernets": {
            "nic1": {"match": {"macaddress": MAC2}, "set-name": "nic1"},
            "nic2": {"match": {"macaddress": MAC3}, "set-name": "nic2"},
        },
        "bonds": {
            "bond0": {"interfaces": ["nic1", "nic2"], "addresses": ["192.0.2.10/24"],
                      "gateway4": "192.0.2.1", "nameservers": DNS,
                      "parameters": {"mode": "active-backup", "mii-monitor-interval": 100,
                                     "primary": "nic1"}},
        },
    },
    "vlan": {
        "ethernets": {"trunk": {"match": {"macaddress": MAC1}, "set-name": "trunk",
                                "dhcp4": True}},
        "vlans": {"vlan10": {"id": 10, "link": "trunk", "addresses": ["10.10.0.5/24"],
                             "routes": [{"to": "10.0.0.0/8", "via": "10.10.0.1"}]}},
    },
}  # fmt: skip


def state(case: str) -> NetworkState:
    cfg = config.parse({"network": {"version": 2, **CASES[case]}})
    assert cfg.network is not None
    return build_state(cfg.network)
