"""The network state renderers work from: the config's `network` key resolved into
devices with typed addresses and routes — no untyped dicts, no YAML spellings."""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass, field

from ..config.network import Bond, Bridge, Ethernet, Network
from ..config.network import Interface as ConfigInterface

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
# netplan's offload keys (ethtool features)
OFFLOAD = ("receive-checksum-offload", "transmit-checksum-offload", "tcp-segmentation-offload",
           "tcp6-segmentation-offload", "generic-segmentation-offload",
           "generic-receive-offload", "large-receive-offload")  # fmt: skip
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Route:
    """One static route of a device."""

    to: str  # "default" or a network in CIDR form
    via: IPAddress | None
    metric: int | None = None
    on_link: bool = False
    source: IPAddress | None = None  # preferred source address (netplan's `from`)
    table: int | None = None
    scope: str | None = None
    type: str | None = None
    mtu: int | None = None
    congestion_window: int | None = None
    receive_window: int | None = None

    @property
    def options(self) -> dict[str, object]:
        """What the route has beyond destination, gateway, metric and on-link (netplan's
        names): the stacks that can't write these refuse the route."""
        values = {"from": self.source, "table": self.table, "scope": self.scope,
                  "type": self.type, "mtu": self.mtu, "congestion-window": self.congestion_window,
                  "advertised-receive-window": self.receive_window}  # fmt: skip
        return {k: v for k, v in values.items() if v is not None}

    @property
    def version(self) -> int:
        for address in (self.via, self.source):
            if address is not None:
                return address.version
        return ipaddress.ip_network(self.to, strict=False).version

    @property
    def is_default(self) -> bool:
        return self.to == "default"

    def network(self) -> str:
        """The destination as CIDR, with default spelled 0.0.0.0/0 or ::/0."""
        if self.is_default:
            return "0.0.0.0/0" if self.version == 4 else "::/0"
        return str(ipaddress.ip_network(self.to, strict=False))


@dataclass(frozen=True)
class Rule:
    """One policy routing rule of a device (netplan's routing-policy)."""

    source: str | None = None  # network in CIDR form
    to: str | None = None
    table: int | None = None
    priority: int | None = None
    mark: int | None = None
    tos: int | None = None

    @property
    def version(self) -> int:
        return ipaddress.ip_network(str(self.source or self.to), strict=False).version


@dataclass(frozen=True)
class Device:
    """One interface to configure. `name` is the kernel name the config says it has (or
    gets via set-name); `key` is its key in the config."""

    key: str
    kind: str  # "ethernet", "bond", "bridge" or "vlan"
    name: str
    mac: str | None = None  # match by MAC (lower case)
    set_name: str | None = None  # rename the matched NIC to `name`
    match_name: str | None = None  # match by kernel name, may be a glob
    driver: str | None = None
    set_mac: str | None = None
    dhcp4: bool = False
    dhcp6: bool = False
    addresses: tuple[IPInterface, ...] = ()
    routes: tuple[Route, ...] = ()
    rules: tuple[Rule, ...] = ()
    dns: tuple[IPAddress, ...] = ()
    search: tuple[str, ...] = ()
    mtu: int | None = None
    optional: bool = False
    accept_ra: bool | None = None
    dhcp4_overrides: dict[str, object] = field(default_factory=dict)  # netplan's names
    dhcp6_overrides: dict[str, object] = field(default_factory=dict)
    dhcp_identifier: str | None = None
    link_local: tuple[str, ...] | None = None  # None: the stack's default
    ipv6_privacy: bool | None = None
    ipv6_mtu: int | None = None
    wakeonlan: bool | None = None
    offload: dict[str, bool] = field(default_factory=dict)  # netplan's names
    bond_members: tuple[str, ...] = ()  # kernel names of member ethernets
    bond_master: str | None = None  # for a bond member: the bond's kernel name
    bond_params: dict[str, object] = field(default_factory=dict)  # netplan's names
    bridge_members: tuple[str, ...] = ()  # kernel names of member interfaces
    bridge_master: str | None = None  # for a bridge port: the bridge's kernel name
    bridge_params: dict[str, int | bool] = field(default_factory=dict)  # netplan's names
    port_cost: int | None = None  # for a bridge port: its STP path cost
    port_priority: int | None = None
    vlan_id: int | None = None
    vlan_link: str | None = None  # kernel name of the underlying device

    @property
    def extras(self) -> list[str]:
        """netplan keys set here that only some stacks write (see Renderer.check)."""
        keys = {"dhcp4-overrides": self.dhcp4_overrides, "dhcp6-overrides": self.dhcp6_overrides,
                "dhcp-identifier": self.dhcp_identifier,
                "link-local": self.link_local is not None, "ipv6-privacy": self.ipv6_privacy,
                "ipv6-mtu": self.ipv6_mtu, "wakeonlan": self.wakeonlan}  # fmt: skip
        return [k for k, v in keys.items() if v not in (None, False, {}, ())] + list(self.offload)

    @property
    def is_port(self) -> bool:
        """A bond member or bridge port: it carries no IP configuration of its own."""
        return self.bond_master is not None or self.bridge_master is not None

    @property
    def name_unknown(self) -> bool:
        """Matched by MAC with no name given: stacks that configure NICs by name must pin
        the name themselves (a udev rule), since the clone's NIC name isn't knowable."""
        return (
            self.kind == "ethernet"
            and self.mac is not None
            and self.name == self.key
            and not self.set_name
            and not self.match_name
        )

    @property
    def is_glob(self) -> bool:
        return self.match_name is not None and any(c in self.match_name for c in "*?[")

    def addresses_v(self, version: int) -> list[IPInterface]:
        return [a for a in self.addresses if a.version == version]

    def routes_v(self, version: int) -> list[Route]:
        return [r for r in self.routes if r.version == version]

    def gateway(self, version: int) -> Route | None:
        main = (r for r in self.routes_v(version) if r.is_default and r.table in (None, 254))
        return next(main, None)

    @property
    def static(self) -> bool:
        return bool(self.addresses)


@dataclass(frozen=True)
class NetworkState:
    """The config's network, resolved: every device, in config order."""

    devices: tuple[Device, ...]

    @property
    def dns(self) -> tuple[IPAddress, ...]:
        """All DNS servers, in device order, without repeats (for global resolv.conf)."""
        out: list[IPAddress] = []
        for dev in self.devices:
            out.extend(a for a in dev.dns if a not in out)
        return tuple(out)

    @property
    def search(self) -> tuple[str, ...]:
        out: list[str] = []
        for dev in self.devices:
            out.extend(s for s in dev.search if s not in out)
        return tuple(out)

    def by_kind(self, kind: str) -> list[Device]:
        return [d for d in self.devices if d.kind == kind]

    def matches(self, device: Device, name: str, mac: str | None) -> bool:
        """Does a guest NIC (kernel name, MAC) fall under this device's match?"""
        if device.mac is not None:
            return mac is not None and mac.lower() == device.mac
        if device.match_name is not None:
            return fnmatch.fnmatchcase(name, device.match_name)
        return name == device.name


def _routes(iface: ConfigInterface) -> tuple[Route, ...]:
    routes = [
        Route(
            r.to,
            ipaddress.ip_address(r.via) if r.via else None,
            r.metric,
            r.on_link,
            source=ipaddress.ip_address(r.from_) if r.from_ else None,
            table=r.table,
            scope=r.scope,
            type=r.type,
            mtu=r.mtu,
            congestion_window=r.congestion_window,
            receive_window=r.advertised_receive_window,
        )
        for r in iface.routes
    ]
    for attr in ("gateway4", "gateway6"):
        gw = getattr(iface, attr)
        if gw and not any(r.is_default and r.via == ipaddress.ip_address(gw) for r in routes):
            routes.append(Route("default", ipaddress.ip_address(gw)))
    return tuple(routes)


def _cidr(value: str | None) -> str | None:
    return str(ipaddress.ip_network(value, strict=False)) if value else None


def _common(iface: ConfigInterface) -> dict:
    ns = iface.nameservers
    return {
        "dhcp4": iface.dhcp4,
        "dhcp6": iface.dhcp6,
        "addresses": tuple(ipaddress.ip_interface(a) for a in iface.addresses),
        "routes": _routes(iface),
        "rules": tuple(
            Rule(_cidr(r.from_), _cidr(r.to), r.table, r.priority, r.mark, r.type_of_service)
            for r in iface.routing_policy
        ),
        "dns": tuple(ipaddress.ip_address(a) for a in ns.addresses) if ns else (),
        "search": tuple(ns.search) if ns else (),
        "mtu": iface.mtu,
        "optional": iface.optional,
        "accept_ra": iface.accept_ra,
        "set_mac": iface.macaddress.lower() if iface.macaddress else None,
        "dhcp4_overrides": iface.dhcp4_overrides.values() if iface.dhcp4_overrides else {},
        "dhcp6_overrides": iface.dhcp6_overrides.values() if iface.dhcp6_overrides else {},
        "dhcp_identifier": iface.dhcp_identifier,
        "link_local": tuple(iface.link_local) if iface.link_local is not None else None,
        "ipv6_privacy": iface.ipv6_privacy,
        "ipv6_mtu": iface.ipv6_mtu,
    }


def _ethernet_name(key: str, eth: Ethernet) -> str:
    if eth.set_name:
        return eth.set_name
    if eth.match and eth.match.name and not any(c in eth.match.name for c in "*?["):
        return eth.match.name
    return key


def build_state(net: Network) -> NetworkState:
    """Resolve the config into devices; the config was validated, so this cannot fail."""
    names = {key: _ethernet_name(key, eth) for key, eth in net.ethernets.items()}
    names.update({key: key for key in [*net.bonds, *net.bridges, *net.vlans]})
    master = {m: bond for bond, b in net.bonds.items() for m in b.interfaces}
    bridge_of = {m: br for br, b in net.bridges.items() for m in b.interfaces}
    devices = []
    for key, eth in net.ethernets.items():
        match = eth.match
        devices.append(
            Device(
                key=key,
                kind="ethernet",
                name=names[key],
                mac=match.macaddress.lower() if match and match.macaddress else None,
                match_name=match.name if match and match.name else None,
                driver=match.driver if match else None,
                set_name=eth.set_name,
                wakeonlan=eth.wakeonlan,
                offload=eth.offload(),
                bond_master=names[master[key]] if key in master else None,
                **_port(net, key, bridge_of),
                **_common(eth),
            )
        )
    for key, bond in net.bonds.items():
        devices.append(
            Device(
                key=key,
                kind="bond",
                name=key,
                bond_members=tuple(names[m] for m in bond.interfaces),
                bond_params=_bond_params(bond),
                **_port(net, key, bridge_of),
                **_common(bond),
            )
        )
    for key, bridge in net.bridges.items():
        devices.append(
            Device(
                key=key,
                kind="bridge",
                name=key,
                bridge_members=tuple(names[m] for m in bridge.interfaces),
                bridge_params=_bridge_params(bridge),
                **_common(bridge),
            )
        )
    for key, vlan in net.vlans.items():
        devices.append(
            Device(
                key=key,
                kind="vlan",
                name=key,
                vlan_id=vlan.id,
                vlan_link=names[vlan.link],
                **_port(net, key, bridge_of),
                **_common(vlan),
            )
        )
    return NetworkState(tuple(devices))


def _port(net: Network, key: str, bridge_of: dict[str, str]) -> dict:
    """A bridge port's settings: its bridge, and the per-port values the bridge sets."""
    if key not in bridge_of:
        return {}
    params = net.bridges[bridge_of[key]].parameters
    return {
        "bridge_master": bridge_of[key],
        "port_cost": params.path_cost.get(key) if params else None,
        "port_priority": params.port_priority.get(key) if params else None,
    }


BRIDGE_PARAMS = ("ageing_time", "priority", "forward_delay", "hello_time", "max_age", "stp")


def _bridge_params(bridge: Bridge) -> dict[str, int | bool]:
    p = bridge.parameters
    if p is None:
        return {}  # the stack's defaults: the kernel's STP off under networkd
    values = {a.replace("_", "-"): getattr(p, a) for a in BRIDGE_PARAMS}
    if p.stp is None:
        values["stp"] = True  # netplan's documented default once parameters are given
    return {k: v for k, v in values.items() if v is not None}


def _bond_params(bond: Bond) -> dict[str, object]:
    return bond.parameters.values() if bond.parameters else {}


__all__ = ["Device", "NetworkState", "Route", "Rule", "build_state"]
