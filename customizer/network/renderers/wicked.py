"""SUSE ifcfg files in /etc/sysconfig/network, read by wicked (SLES/openSUSE ≥ 12) and by
the sysconfig ifup scripts before it (SLES 11): ifcfg-<name>, ifroute-<name>, DNS through
netconfig's network/config, and NIC names pinned by udev (SUSE ifcfg can't match a MAC)."""

from __future__ import annotations

import ipaddress

from ...plan import Plan
from .. import bond, naming, sysconfig
from ..state import Device, NetworkState
from . import register
from .base import File, GuestFacts, Renderer

DIR = "/etc/sysconfig/network"
CONFIG = f"{DIR}/config"
ROUTES = f"{DIR}/routes"
HEADER = "# Written by vmtailor from the config's network key.\n"
# set (non-empty) in the ifcfg of a virtual interface, never in a NIC's
VIRTUAL_KEYS = ("ETHERDEVICE", "TUNNEL", "TEAM_RUNNER", "INTERFACETYPE", "OVS_BRIDGE",
                "MACVLAN_DEVICE", "IPVLAN_DEVICE", "VXLAN_ID", "DUMMY")  # fmt: skip


def _bootproto(dev: Device) -> str:
    if dev.is_port:
        return "none"  # a port: wicked keeps IPv4 and IPv6 off it
    # static addresses come with every dhcp variant, so "static" means no DHCP at all
    return {(True, True): "dhcp", (True, False): "dhcp4", (False, True): "dhcp6"}.get(
        (dev.dhcp4, dev.dhcp6), "static"
    )


def _bond(dev: Device, state: NetworkState) -> list[tuple[str, object]]:
    opts = [f"{name}={value}" for name, value in bond.kernel_options(dev, state)]
    items: list[tuple[str, object]] = [("BONDING_MASTER", True)]
    items += [(f"BONDING_SLAVE_{i}", m) for i, m in enumerate(dev.bond_members)]
    return [*items, ("BONDING_MODULE_OPTS", " ".join(opts))]


def _ifcfg(dev: Device, state: NetworkState) -> str:
    # hotplug: boot neither waits for nor fails on it (bond ports: the bond waits)
    start = "hotplug" if dev.is_port or dev.optional else "auto"
    items: list[tuple[str, object]] = [("BOOTPROTO", _bootproto(dev)), ("STARTMODE", start)]
    if not dev.is_port:
        items += [(f"IPADDR_{i}" if i else "IPADDR", a) for i, a in enumerate(dev.addresses)]
    items += [("MTU", dev.mtu), ("LLADDR", dev.set_mac)]
    if dev.kind == "bond":
        items += _bond(dev, state)
    if dev.kind == "bridge":
        items += _bridge(dev, state)
    if dev.kind == "vlan":
        items += [("ETHERDEVICE", dev.vlan_link), ("VLAN_ID", dev.vlan_id)]
    return sysconfig.render(items, "single", HEADER)


def _bridge(dev: Device, state: NetworkState) -> list[tuple[str, object]]:
    """BRIDGE_* keys; per-port values are lists in BRIDGE_PORTS order, '-' for unset."""
    p = dev.bridge_params
    ports = [next(d for d in state.devices if d.name == m) for m in dev.bridge_members]

    def per_port(attr: str) -> str | None:
        values = [getattr(d, attr) for d in ports]
        return " ".join("-" if v is None else str(v) for v in values) if any(
            v is not None for v in values) else None  # fmt: skip

    stp = ("on" if p["stp"] else "off") if "stp" in p else None
    return [("BRIDGE", True), ("BRIDGE_PORTS", " ".join(dev.bridge_members)),
            ("BRIDGE_STP", stp), ("BRIDGE_FORWARDDELAY", p.get("forward-delay")),
            ("BRIDGE_HELLOTIME", p.get("hello-time")), ("BRIDGE_MAXAGE", p.get("max-age")),
            ("BRIDGE_AGEINGTIME", p.get("ageing-time")), ("BRIDGE_PRIORITY", p.get("priority")),
            ("BRIDGE_PATHCOSTS", per_port("port_cost")),
            ("BRIDGE_PORTPRIORITIES", per_port("port_priority"))]  # fmt: skip


def _ifroute(dev: Device) -> list[str]:
    """Destination, gateway, (deprecated) netmask, interface, options."""
    lines: list[str] = []
    for route in dev.routes:
        dest = "default" if route.is_default else route.network()
        if route.on_link and route.via:
            # wicked has no single-path onlink: a host route makes the gateway reachable
            lines.append(f"{route.via} - - {dev.name}")
        line = f"{dest} {route.via or '-'} - {dev.name}"
        if route.metric is not None:
            line += f" metric {route.metric}"
        lines.append(line)
    return list(dict.fromkeys(lines))


def netconfig_dns(text: str, state: NetworkState) -> str:
    """network/config with the config's DNS in netconfig's static lists, every other byte
    kept. netconfig merges them with what DHCP brings and writes resolv.conf at boot."""
    values: dict[str, str | None] = {}
    if state.dns:
        values["NETCONFIG_DNS_STATIC_SERVERS"] = " ".join(str(a) for a in state.dns)
    if state.search:
        values["NETCONFIG_DNS_STATIC_SEARCHLIST"] = " ".join(state.search)
    return sysconfig.set_keys(text, values, "double") if values else text


@register
class Wicked(Renderer):
    name = "wicked"
    summary = "SUSE ifcfg files (wicked, SLES 11 sysconfig ifup) with netconfig DNS"

    def render(self, state: NetworkState, facts: GuestFacts) -> dict[str, File]:
        sysconfig.require_names(state, self.name)
        files: dict[str, File] = {}
        for dev in state.devices:
            files[f"{DIR}/ifcfg-{dev.name}"] = File(_ifcfg(dev, state))
            if routes := _ifroute(dev):
                files[f"{DIR}/ifroute-{dev.name}"] = File(HEADER + "\n".join(routes) + "\n")
        if (rules := naming.udev_rules(state, all_macs=True)) is not None:
            files[rules[0]] = rules[1]
        # no /etc/resolv.conf: netconfig stops updating a file someone else wrote
        return files

    def clean_stale(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> None:
        """Remove the template's ifcfg/ifroute files for physical NICs and for the names the
        config now owns, and their lines in the global routes file. DNS is an in-place edit
        of network/config, which render() can't do without reading the guest: it is staged
        here, the one step with the plan in hand."""
        gone = {d.name for d in state.devices}
        if plan.is_dir(DIR):
            names = plan.listdir(DIR)
            for name in sysconfig.config_files(names, "ifcfg-"):
                device = name.removeprefix("ifcfg-")
                values = sysconfig.parse(plan.read_text(f"{DIR}/{name}") or "")
                if device != "lo" and (device in gone or _physical(values)):
                    plan.delete(f"{DIR}/{name}")
                    gone.add(device)
            for name in sysconfig.config_files(names, "ifroute-"):
                if name.removeprefix("ifroute-") in gone:
                    plan.delete(f"{DIR}/{name}")
        routes = plan.read_text(ROUTES)
        if routes is not None:
            families = {v for v in (4, 6) if any(d.gateway(v) for d in state.devices)}
            if (kept := _global_routes(routes, gone, families)) != routes:
                plan.write(ROUTES, kept)
        config = plan.read_text(CONFIG)
        if (edited := netconfig_dns(config or "", state)) != (config or ""):
            plan.mkdir(DIR)
            plan.write(CONFIG, edited, 0o644 if config is None else None)


def _physical(values: dict[str, str]) -> bool:
    if any(values.get(k, "").lower() == "yes" for k in ("BONDING_MASTER", "BRIDGE")):
        return False
    return not any(values.get(k) for k in VIRTUAL_KEYS)


def _global_routes(text: str, gone: set[str], families: set[int]) -> str:
    """Drop the lines for interfaces whose config went, and unbound default routes of a
    family the config routes itself; keep every other line as it was."""
    out = []
    for line in text.splitlines(keepends=True):
        words = line.split()
        if not words or words[0].startswith("#"):
            out.append(line)
            continue
        iface = words[3] if len(words) > 3 else "-"
        if iface in gone:
            continue
        if words[0] == "default" and iface == "-" and _family(words[1:2]) in families:
            continue
        out.append(line)
    return "".join(out)


def _family(gateway: list[str]) -> int | None:
    try:
        return ipaddress.ip_address(gateway[0]).version if gateway else None
    except ValueError:
        return None
