"""Checks across a network config's interfaces: names used once, members that exist
and belong to one bond or bridge, MACs matched once, gateways inside a subnet, one
default route per family (unless metrics differ). Each problem is reported with its key
path, all of them at once."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from .errors import Collector, ConfigError, Path
from .template import Deferred

if TYPE_CHECKING:
    from .network import Interface, Network

# bond modes the driver takes a primary member for (libnm refuses the profile otherwise)
PRIMARY_MODES = ("active-backup", "balance-tlb", "balance-alb")


def check_network(net: Network, path: Path) -> None:
    found = Collector()
    names = [k for _, k, _ in net.all()]
    for name in dict.fromkeys(n for n in names if names.count(n) > 1):
        found.add(ConfigError(path, f"interface name {name!r} is used twice"))
    _check_macs(net, path, found)
    _check_members(net, path, found)
    for key, vlan in net.vlans.items():
        if not any(vlan.link in s for s in (net.ethernets, net.bonds, net.bridges)):
            found.add(ConfigError(
                (*path, "vlans", key, "link"),
                f"vlan link {vlan.link!r} is not defined under ethernets, bonds or bridges",
            ))  # fmt: skip
    defaults: dict[int, list[str]] = {4: [], 6: []}
    for section, key, iface in net.all():
        where = (*path, section, key)
        for family, gateway in _gateways(iface, where):
            defaults[family].append(key)
            with found.check():
                _check_gateway(iface, gateway, where)
    for family, owners in defaults.items():
        if len(owners) > 1 and not _metrics_differ(net, family):
            found.add(ConfigError(
                path,
                f"IPv{family} default route on {len(owners)} interfaces "
                f"({', '.join(owners)}): keep it on one, or give each a different metric",
            ))  # fmt: skip
    found.raise_any()


def _check_members(net: Network, path: Path, found: Collector) -> None:
    """Bond members are ethernets; bridge members ethernets, bonds or VLANs; each belongs
    to one bond or bridge at most, and carries no addresses of its own."""
    owner: dict[str, str] = {}
    kinds = {"bonds": ("ethernets",), "bridges": ("ethernets", "bonds", "vlans")}
    for section, allowed in kinds.items():
        for key, dev in getattr(net, section).items():
            what = section[:-1]
            for i, member in enumerate(dev.interfaces):
                where = (*path, section, key, "interfaces", i)
                section_of = next((s for s in allowed if member in getattr(net, s)), None)
                if section_of is None:
                    found.add(ConfigError(
                        where, f"{what} member {member!r} is not defined under "
                        f"{', '.join(allowed[:-1])}{' or ' * (len(allowed) > 1)}{allowed[-1]}",
                    ))  # fmt: skip
                    continue
                if member in owner:
                    found.add(ConfigError(where, f"{member!r} is already a member of "
                                          f"{owner[member]}"))  # fmt: skip
                    continue
                owner[member] = f"{what} {key!r}"
                iface = getattr(net, section_of)[member]
                if iface.addresses or iface.dhcp4 or iface.dhcp6:
                    found.add(ConfigError(
                        (*path, section_of, member),
                        f"{member!r} is a member of {what} {key!r}: give addresses/dhcp to "
                        f"the {what}, not to its members",
                    ))  # fmt: skip
    for key, bond in net.bonds.items():
        primary = bond.parameters.primary if bond.parameters else None
        where = (*path, "bonds", key, "parameters", "primary")
        if primary is not None and primary not in bond.interfaces:
            found.add(ConfigError(where, f"primary {primary!r} is not a member of bond {key!r}"))
        mode = bond.parameters.mode if bond.parameters else None
        if primary is not None and mode not in PRIMARY_MODES:
            # the driver refuses it, and libnm the whole profile
            found.add(ConfigError(
                where,
                f"primary is for modes {', '.join(PRIMARY_MODES)}, not {mode or 'balance-rr'}",
            ))  # fmt: skip
    for key, bridge in net.bridges.items():
        params = bridge.parameters
        for option in ("port_priority", "path_cost"):
            for member in getattr(params, option) if params else {}:
                if member not in bridge.interfaces:
                    found.add(ConfigError(
                        (*path, "bridges", key, "parameters", option.replace("_", "-"), member),
                        f"{member!r} is not a member of bridge {key!r}",
                    ))  # fmt: skip


def _check_macs(net: Network, path: Path, found: Collector) -> None:
    seen: dict[str, str] = {}
    for key, eth in net.ethernets.items():
        mac = eth.match.macaddress if eth.match else None
        if mac is None or isinstance(mac, Deferred):
            continue
        mac = mac.lower()
        if mac in seen:
            found.add(ConfigError(
                (*path, "ethernets", key, "match", "macaddress"),
                f"MAC {mac} is already matched by ethernets.{seen[mac]}",
            ))  # fmt: skip
            continue
        seen[mac] = key


def _gateways(iface: Interface, where: Path) -> list[tuple[int, tuple[str, Path]]]:
    """(IP version, (gateway, path)) of each default route of an interface."""
    out = []
    for attr in ("gateway4", "gateway6"):
        value = getattr(iface, attr)
        if value and not isinstance(value, Deferred):
            out.append((int(attr[-1]), (value, (*where, attr))))
    for i, route in enumerate(iface.routes):
        if not route.main_table:
            continue  # another table's default route is no competitor of the main one
        if route.to == "default" and route.via and not isinstance(route.via, Deferred):
            version = ipaddress.ip_address(route.via).version
            out.append((version, (route.via, (*where, "routes", i, "via"))))
    return out


def _check_gateway(iface: Interface, gateway: tuple[str, Path], where: Path) -> None:
    address, path = gateway
    if iface.dhcp4 or iface.dhcp6 or any(r.on_link for r in iface.routes if r.via == address):
        return
    gw = ipaddress.ip_address(address)
    nets = [
        ipaddress.ip_interface(a).network for a in iface.addresses if not isinstance(a, Deferred)
    ]
    if any(isinstance(a, Deferred) for a in iface.addresses):
        return
    if gw.version == 6 and gw.is_link_local:
        return
    if not any(gw in net for net in nets if net.version == gw.version):
        subnets = ", ".join(str(n) for n in nets) or "none"
        raise ConfigError(
            path,
            f"gateway {address} is outside every subnet of this interface ({subnets})",
            hint="add the matching address, or set on-link: true on the route",
        )


def _metrics_differ(net: Network, family: int) -> bool:
    metrics = []
    for _, _, iface in net.all():
        for route in iface.routes:
            if route.to == "default" and route.via and route.main_table:
                if ipaddress.ip_address(route.via).version == family:
                    metrics.append(route.metric)
        if getattr(iface, f"gateway{family}"):
            metrics.append(None)
    return None not in metrics and len(set(metrics)) == len(metrics)
