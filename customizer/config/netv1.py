"""cloud-init's network-config version 1 (physical, bond, vlan, bridge, nameserver and
route entries with subnets), turned into the netplan v2 mapping the `network` key takes,
so both versions give one network state and one set of checks.

Each v2 key made remembers the v1 key it came from: an error found by the v2 checks
(a bad address, a gateway outside every subnet) names the v1 key the user wrote."""

from __future__ import annotations

import ipaddress
from typing import Any

from .errors import ConfigError, Path

KINDS = ("physical", "bond", "vlan", "bridge", "nameserver", "route")
DEVICE_KEYS = {
    "physical": {"name", "mac_address", "mtu", "subnets", "accept-ra"},
    "bond": {"name", "mac_address", "mtu", "subnets", "bond_interfaces", "params",
             "accept-ra"},
    "vlan": {"name", "mac_address", "mtu", "subnets", "vlan_link", "vlan_id", "accept-ra"},
    "bridge": {"name", "mac_address", "mtu", "subnets", "bridge_interfaces", "params",
               "accept-ra"},
}  # fmt: skip
SUBNET_TYPES = ("dhcp", "dhcp4", "dhcp6", "static", "static4", "static6", "manual",
                "ipv6_slaac", "ipv6_dhcpv6-stateless", "ipv6_dhcpv6-stateful")  # fmt: skip
SUBNET_KEYS = {"type", "address", "netmask", "prefix", "gateway", "dns_nameservers",
               "dns_search", "routes", "control", "metric"}  # fmt: skip
ROUTE_KEYS = {"network", "destination", "netmask", "prefix", "gateway", "metric"}
# v1 bridge params -> netplan bridge parameters
BRIDGE = {"bridge_ageing": "ageing-time", "bridge_bridgeprio": "priority",
          "bridge_fd": "forward-delay", "bridge_hello": "hello-time",
          "bridge_maxage": "max-age", "bridge_stp": "stp"}  # fmt: skip
BRIDGE_PORTS = {"bridge_pathcost": "path-cost", "bridge_portprio": "port-priority"}


class Converter:
    def __init__(self, path: Path):
        self.path = path
        self.v2: dict[str, Any] = {"version": 2}
        self.origin: dict[Path, Path] = {}  # v2 key path (under network) -> v1 key path
        self.dns: list[tuple[dict, Path]] = []  # global nameserver entries

    def place(self, v2: Path, v1: Path) -> None:
        self.origin[v2] = v1

    def convert(self, value: dict) -> dict:
        for key in value:
            if key not in ("version", "config"):
                raise ConfigError((*self.path, key), f"unknown key '{key}' in network (v1)")
        entries = value.get("config")
        if not isinstance(entries, list):
            raise ConfigError((*self.path, "config"), "network v1 needs config: a list of entries")
        routes = []
        for i, entry in enumerate(entries):
            where = (*self.path, "config", i)
            if not isinstance(entry, dict):
                raise ConfigError(where, "expected a mapping (an entry with a type)")
            kind = entry.get("type")
            if kind not in KINDS:
                raise ConfigError(
                    (*where, "type"),
                    f"unknown v1 entry type {kind!r}; known: {', '.join(KINDS)}",
                )
            if kind == "nameserver":
                self.dns.append((entry, where))
            elif kind == "route":
                routes.append((entry, where))
            else:
                self.device(kind, entry, where)
        for entry, where in routes:
            self.global_route(entry, where)
        for entry, where in self.dns:
            self.global_dns(entry, where)
        return self.v2

    def device(self, kind: str, entry: dict, where: Path) -> None:
        _known(entry, DEVICE_KEYS[kind], where, f"a v1 {kind} entry")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError((*where, "name"), f"a v1 {kind} entry needs a name")
        section = {"physical": "ethernets", "bond": "bonds", "vlan": "vlans",
                   "bridge": "bridges"}[kind]  # fmt: skip
        dev: dict[str, Any] = {}
        v2 = (section, name)
        self.place(v2, where)
        if kind == "physical" and entry.get("mac_address"):
            # as cloud-init renders it: the NIC by its MAC, given the entry's name
            dev["match"] = {"macaddress": entry["mac_address"]}
            dev["set-name"] = name
            self.place((*v2, "match"), (*where, "mac_address"))
        elif entry.get("mac_address"):
            dev["macaddress"] = entry["mac_address"]
            self.place((*v2, "macaddress"), (*where, "mac_address"))
        for key, to in (("mtu", "mtu"), ("accept-ra", "accept-ra")):
            if key in entry:
                dev[to] = entry[key]
                self.place((*v2, to), (*where, key))
        if kind == "bond":
            dev["interfaces"] = entry.get("bond_interfaces", [])
            self.place((*v2, "interfaces"), (*where, "bond_interfaces"))
            if params := _bond_params(entry.get("params"), (*where, "params")):
                dev["parameters"] = params
                self.place((*v2, "parameters"), (*where, "params"))
        elif kind == "bridge":
            dev["interfaces"] = entry.get("bridge_interfaces", [])
            self.place((*v2, "interfaces"), (*where, "bridge_interfaces"))
            if params := _bridge_params(entry.get("params"), (*where, "params")):
                dev["parameters"] = params
                self.place((*v2, "parameters"), (*where, "params"))
        elif kind == "vlan":
            for key, to in (("vlan_id", "id"), ("vlan_link", "link")):
                if key in entry:
                    dev[to] = entry[key]
                    self.place((*v2, to), (*where, key))
        subnets = entry.get("subnets", [])
        if not isinstance(subnets, list):
            raise ConfigError((*where, "subnets"), "expected a list of subnets")
        for j, subnet in enumerate(subnets):
            self.subnet(dev, v2, subnet, (*where, "subnets", j))
        self.v2.setdefault(section, {})
        if name in self.v2[section]:
            raise ConfigError((*where, "name"), f"interface name {name!r} is used twice")
        self.v2[section][name] = dev

    def subnet(self, dev: dict, v2: Path, subnet: Any, where: Path) -> None:
        if not isinstance(subnet, dict):
            raise ConfigError(where, "expected a mapping (a subnet with a type)")
        _known(subnet, SUBNET_KEYS, where, "a v1 subnet")
        kind = subnet.get("type")
        if kind not in SUBNET_TYPES:
            raise ConfigError(
                (*where, "type"),
                f"unknown subnet type {kind!r}; known: {', '.join(SUBNET_TYPES)}",
            )
        flags = {"dhcp": {"dhcp4": True}, "dhcp4": {"dhcp4": True}, "dhcp6": {"dhcp6": True},
                 "ipv6_dhcpv6-stateful": {"dhcp6": True},
                 "ipv6_dhcpv6-stateless": {"dhcp6": True, "accept-ra": True},
                 "ipv6_slaac": {"accept-ra": True}}.get(kind, {})  # fmt: skip
        for key, value in flags.items():
            dev[key] = value
            self.place((*v2, key), (*where, "type"))
        control = subnet.get("control", "auto")
        if control not in ("auto", "hotplug"):
            # manual: configured but not brought up at boot, which v2 can't say
            raise ConfigError((*where, "control"), f"control {control!r}: auto and hotplug "
                              "are accepted")  # fmt: skip
        if control == "hotplug":
            dev["optional"] = True  # boot doesn't wait for it
        if kind.startswith("static") and "address" not in subnet:
            raise ConfigError(where, f"a {kind} subnet needs an address")
        if "address" in subnet:
            addresses = dev.setdefault("addresses", [])
            self.place((*v2, "addresses", len(addresses)), (*where, "address"))
            addresses.append(_cidr(subnet, where))
        if "gateway" in subnet:
            route = {"to": "default", "via": subnet["gateway"]}
            if "metric" in subnet:
                route["metric"] = subnet["metric"]
            self.add_route(dev, v2, route, (*where, "gateway"))
        for k, r in enumerate(subnet.get("routes") or []):
            self.add_route(dev, v2, _route(r, (*where, "routes", k)), (*where, "routes", k))
        ns = {"addresses": subnet.get("dns_nameservers"), "search": subnet.get("dns_search")}
        for key, value in ns.items():
            if value:
                got = dev.setdefault("nameservers", {}).setdefault(key, [])
                got.extend(value if isinstance(value, list) else [value])
                self.place((*v2, "nameservers", key), (*where, f"dns_{key}"
                           if key == "search" else "dns_nameservers"))  # fmt: skip

    def add_route(self, dev: dict, v2: Path, route: dict, where: Path) -> None:
        routes = dev.setdefault("routes", [])
        self.place((*v2, "routes", len(routes)), where)
        routes.append(route)

    def devices(self) -> list[tuple[Path, dict]]:
        return [
            ((section, name), dev)
            for section in ("ethernets", "bonds", "bridges", "vlans")
            for name, dev in self.v2.get(section, {}).items()
        ]

    def global_route(self, entry: dict, where: Path) -> None:
        """A route entry belongs to the interface whose subnet holds its gateway."""
        route = _route({k: v for k, v in entry.items() if k != "type"}, where)
        via = route.get("via")
        for v2, dev in self.devices():
            for address in dev.get("addresses", []):
                try:
                    net = ipaddress.ip_interface(address).network
                    if via and ipaddress.ip_address(via) in net:
                        self.add_route(dev, v2, route, where)
                        return
                except ValueError:
                    continue  # the v2 checks name the bad address
        raise ConfigError(
            (*where, "gateway"),
            f"route gateway {via!r} is in no subnet of any interface",
            hint="give the route in that interface's subnet instead",
        )

    def global_dns(self, entry: dict, where: Path) -> None:
        """A nameserver entry: for the interface it names, else for every interface that
        has addresses or DHCP (v2 has no global DNS)."""
        _known(entry, {"type", "address", "search", "interface"}, where, "a v1 nameserver entry")
        targets = [
            (v2, dev)
            for v2, dev in self.devices()
            if (v2[1] == entry["interface"] if "interface" in entry
                else dev.get("addresses") or dev.get("dhcp4") or dev.get("dhcp6"))
        ]  # fmt: skip
        if not targets:
            raise ConfigError(where, "nameserver entry: no interface with addresses or DHCP")
        for v2, dev in targets:
            for key, v1 in (("addresses", "address"), ("search", "search")):
                value = entry.get(v1)
                if value:
                    got = dev.setdefault("nameservers", {}).setdefault(key, [])
                    got.extend(v for v in (value if isinstance(value, list) else [value])
                               if v not in got)  # fmt: skip
                    self.place((*v2, "nameservers", key), (*where, v1))

    def v1_path(self, path: Path) -> Path:
        """The v1 key an error in the converted v2 is about: the longest known prefix."""
        rel = path[len(self.path) :]
        for n in range(len(rel), 0, -1):
            if rel[:n] in self.origin:
                return self.origin[rel[:n]]
        return path


def _known(entry: dict, keys: set[str], where: Path, what: str) -> None:
    for key in entry:
        if key != "type" and key not in keys:
            raise ConfigError((*where, key), f"unknown key '{key}' in {what}")


def _cidr(subnet: dict, where: Path) -> str:
    address = str(subnet["address"])
    if "/" in address:
        return address
    for key in ("prefix", "netmask"):
        if key in subnet:
            try:
                prefix = ipaddress.ip_network(f"0.0.0.0/{subnet[key]}").prefixlen
            except ValueError:
                if key == "prefix":
                    return f"{address}/{subnet[key]}"
                raise ConfigError((*where, key), f"{subnet[key]!r} is not a netmask") from None
            return f"{address}/{prefix}"
    return address  # the v2 check asks for the prefix length


def _route(r: Any, where: Path) -> dict:
    if not isinstance(r, dict):
        raise ConfigError(where, "expected a mapping (a route)")
    _known(r, ROUTE_KEYS, where, "a v1 route")
    dest = r.get("destination") or r.get("network")
    if dest is None:
        raise ConfigError(where, "a route needs network or destination")
    dest = str(dest)
    if "/" not in dest and ("netmask" in r or "prefix" in r):
        dest = _cidr({"address": dest, **r}, where)
    if dest in ("0.0.0.0/0", "::/0"):
        dest = "default"
    out: dict[str, Any] = {"to": dest}
    if "gateway" in r:
        out["via"] = r["gateway"]
    if "metric" in r:
        out["metric"] = r["metric"]
    return out


def _bond_params(params: Any, where: Path) -> dict:
    """bond-mode, bond_miimon, bond-xmit-hash-policy, ...: the driver's names."""
    from ..network.bond import PARAMS

    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ConfigError(where, "expected a mapping of bond-* options")
    by_kernel = {p.kernel: p.netplan for p in PARAMS}
    out: dict[str, Any] = {}
    for key, value in params.items():
        kernel = str(key).removeprefix("bond").lstrip("-_").replace("-", "_")
        if kernel in ("slaves", "master"):
            continue  # membership is bond_interfaces
        if kernel not in by_kernel:
            raise ConfigError((*where, key), f"unknown bond option '{key}'")
        name = by_kernel[kernel]
        if name == "arp-ip-targets" and isinstance(value, str):
            value = value.replace(",", " ").split()
        out[name] = value
    return out


def _bridge_params(params: Any, where: Path) -> dict:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ConfigError(where, "expected a mapping of bridge_* options")
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in BRIDGE:
            if key == "bridge_stp" and isinstance(value, str):
                value = value.lower() in ("on", "yes", "true", "1")
            out[BRIDGE[key]] = value
        elif key in BRIDGE_PORTS:  # "eth0 50", or a list of them
            ports = out.setdefault(BRIDGE_PORTS[key], {})
            for item in value if isinstance(value, list) else [value]:
                port, _, number = str(item).partition(" ")
                if not number.strip().isdigit():
                    raise ConfigError((*where, key), f"expected 'PORT NUMBER', got {item!r}")
                ports[port] = int(number)
        elif key != "bridge_maxwait":  # ifupdown's boot wait: nothing to configure
            raise ConfigError((*where, key), f"unknown bridge option '{key}'")
    return out


def convert(value: dict, path: Path) -> tuple[dict, Converter]:
    conv = Converter(path)
    return conv.convert(value), conv
