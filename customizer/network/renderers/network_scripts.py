"""RHEL/CentOS ≤ 8 ifcfg files in /etc/sysconfig/network-scripts: read by initscripts'
`network` service (EL 6-8) and by NetworkManager's ifcfg-rh plugin (EL 7/8), so every key
written here is one both understand."""

from __future__ import annotations

import posixpath

from ...errors import PlanError
from ...plan import Plan
from .. import bond, dns, naming, sysconfig
from ..state import Device, IPInterface, NetworkState, Route
from . import register
from .base import File, GuestFacts, Renderer

DIR = "/etc/sysconfig/network-scripts"
NETWORK = "/etc/sysconfig/network"
HEADER = "# Written by vmtailor from the config's network key.\n"
TYPES = {"ethernet": "Ethernet", "bond": "Bond", "vlan": "Vlan", "bridge": "Bridge"}
# bridge parameters in BRIDGING_OPTS: hello-time, max-age and ageing-time are left out,
# as initscripts writes them to sysfs in 1/100 s and NetworkManager's ifcfg-rh reads
# them in seconds, so no one value means the same to both
BRIDGE_TIMES = ("hello-time", "max-age", "ageing-time")
# The template's default route lives per device from now on; a global GATEWAYDEV would
# even keep it off the device the config gives it to.
GLOBAL_KEYS: dict[str, str | None] = {
    "NETWORKING": "yes", "GATEWAY": None, "GATEWAYDEV": None, "IPV6_DEFAULTGW": None,
    "IPV6_DEFAULTDEV": None,
}  # fmt: skip


def _gateway_key(dev: Device, version: int) -> Route | None:
    """The default route GATEWAY= / IPV6_DEFAULTGW= can carry: a plain gateway reached via
    a static address of that family. initscripts drops GATEWAY on a DHCP device and has
    no metric or onlink for it; those defaults go to the route file instead."""
    route = dev.gateway(version)
    if route is None or route.via is None or route.on_link or route.metric is not None:
        return None
    if not dev.addresses_v(version) or (version == 4 and dev.dhcp4):
        return None
    return route


def _owners(state: NetworkState, version: int) -> set[str]:
    return {d.name for d in state.devices if d.gateway(version)}


def _v4_addresses(dev: Device) -> list[IPInterface]:
    """The address whose subnet holds the gateway first: initscripts (EL 6-8) set GATEWAY
    only when it lies in the first address's network."""
    addresses = dev.addresses_v(4)
    route = dev.gateway(4)
    if route is not None and route.via is not None:
        via = route.via
        addresses.sort(key=lambda a: via not in a.network)
    return addresses


def _ipv4(dev: Device, state: NetworkState) -> list[tuple[str, object]]:
    addresses = _v4_addresses(dev)
    items: list[tuple[str, object]] = []
    for i, address in enumerate(addresses):
        n = str(i) if len(addresses) > 1 else ""
        items += [(f"IPADDR{n}", address.ip), (f"PREFIX{n}", address.network.prefixlen)]
    gateway = _gateway_key(dev, 4)
    items.append(("GATEWAY", gateway.via if gateway else None))
    owners = _owners(state, 4)
    if owners:
        # DEFROUTE=no keeps a DHCP lease's router off the devices without the default
        items.append(("DEFROUTE", dev.name in owners))
    return items


def _ipv6(dev: Device, state: NetworkState) -> list[tuple[str, object]]:
    addresses = [str(a) for a in dev.addresses_v(6)]
    if not (addresses or dev.dhcp6 or dev.accept_ra or dev.gateway(6)):
        return []
    autoconf = dev.accept_ra
    if autoconf is None and addresses and not dev.dhcp6:
        autoconf = False
    gateway = _gateway_key(dev, 6)
    via = None
    if gateway is not None and gateway.via is not None:
        via = f"{gateway.via}%{dev.name}" if gateway.via.is_link_local else str(gateway.via)
    owners = _owners(state, 6)
    return [
        ("IPV6INIT", True),
        ("IPV6_AUTOCONF", autoconf),
        ("DHCPV6C", True if dev.dhcp6 else None),
        ("IPV6ADDR", addresses[0] if addresses else None),
        ("IPV6ADDR_SECONDARIES", " ".join(addresses[1:]) or None),
        ("IPV6_DEFAULTGW", via),
        ("IPV6_DEFROUTE", False if owners and dev.name not in owners else None),
    ]


def _bond_opts(dev: Device, state: NetworkState) -> str:
    opts = [f"{name}={value}" for name, value in bond.kernel_options(dev, state)]
    return " ".join(opts)


def _ifcfg(dev: Device, state: NetworkState) -> str:
    # NM_CONTROLLED is left out (yes): EL8 has only NetworkManager to read these files,
    # and on EL6/7 ifup hands a device to NetworkManager itself when NM is running.
    items: list[tuple[str, object]] = [
        ("DEVICE", dev.name),
        # initscripts' rename_device (udev) and ifcfg-rh match the NIC by it
        ("HWADDR", dev.mac.upper() if dev.mac else None),
        ("TYPE", TYPES[dev.kind]),
        ("ONBOOT", True),
        ("BOOTPROTO", "dhcp" if dev.dhcp4 else "none"),
    ]
    if dev.bond_master:
        items += [("MASTER", dev.bond_master), ("SLAVE", True)]
    if dev.bridge_master:
        port = [("path_cost", dev.port_cost), ("priority", dev.port_priority)]
        opts = " ".join(f"{k}={v}" for k, v in port if v is not None)
        items += [("BRIDGE", dev.bridge_master), ("BRIDGING_OPTS", opts or None)]
    if dev.kind == "bridge":
        p = dev.bridge_params
        stp = ("on" if p["stp"] else "off") if "stp" in p else None
        prio = f"priority={p['priority']}" if "priority" in p else None
        items += [("STP", stp), ("DELAY", p.get("forward-delay")), ("BRIDGING_OPTS", prio)]
    if dev.kind == "bond":
        items += [("BONDING_MASTER", True), ("BONDING_OPTS", _bond_opts(dev, state))]
    if dev.kind == "vlan":
        # an explicit id and parent work whatever the name: VID for initscripts,
        # VLAN_ID for ifcfg-rh (each derives them from eth0.10-style names otherwise)
        items += [("VLAN", True), ("PHYSDEV", dev.vlan_link), ("VID", dev.vlan_id),
                  ("VLAN_ID", dev.vlan_id)]  # fmt: skip
    items += [("MACADDR", dev.set_mac.upper() if dev.set_mac else None), ("MTU", dev.mtu)]
    if not dev.is_port:
        items += _ipv4(dev, state) + _ipv6(dev, state)
        items += [(f"DNS{i}", a) for i, a in enumerate(dev.dns, 1)]
        items.append(("DOMAIN", " ".join(dev.search) or None))
    return sysconfig.render(items, "bare", HEADER)


def _route_lines(dev: Device, version: int) -> list[str]:
    """`ip route add` arguments, the format both initscripts and ifcfg-rh read with
    metric and onlink (initscripts ignores METRICn in the ADDRESSn= format)."""
    carried = _gateway_key(dev, version)
    lines = []
    for route in dev.routes_v(version):
        if route == carried:
            continue
        words = ["default" if route.is_default else route.network()]
        words += ["via", str(route.via)] if route.via else []
        words += ["dev", dev.name]
        words += ["metric", str(route.metric)] if route.metric is not None else []
        words += ["onlink"] if route.on_link else []
        lines.append(" ".join(words))
    return lines


@register
class NetworkScripts(Renderer):
    name = "network-scripts"
    summary = "RHEL/CentOS ≤ 8 ifcfg files (initscripts and NetworkManager ifcfg-rh)"

    def check(self, state: NetworkState, facts: GuestFacts) -> None:
        super().check(state, facts)
        for dev in state.by_kind("bridge"):
            for key in BRIDGE_TIMES:
                if key in dev.bridge_params:
                    raise PlanError(
                        f"network.bridges.{dev.key}.parameters.{key}: ifcfg files can't say "
                        "it for both readers (initscripts: 1/100 s, NetworkManager: seconds)"
                    )

    def render(self, state: NetworkState, facts: GuestFacts) -> dict[str, File]:
        sysconfig.require_names(state, self.name)
        files: dict[str, File] = {}
        for dev in state.devices:
            files[f"{DIR}/ifcfg-{dev.name}"] = File(_ifcfg(dev, state))
            for version, prefix in ((4, "route"), (6, "route6")):
                if lines := _route_lines(dev, version):
                    files[f"{DIR}/{prefix}-{dev.name}"] = File(HEADER + "\n".join(lines) + "\n")
        # rename_device renames by HWADDR only where initscripts is installed; NM never
        # renames: a udev rule names the NIC with nothing else to rely on
        if (rules := naming.udev_rules(state, all_macs=True)) is not None:
            files[rules[0]] = rules[1]
        if facts.resolv_conf != "symlink" and (resolv := dns.resolv_conf(state)) is not None:
            # initscripts merge DNS1.. into it only when ifup runs: resolve from first boot
            files["/etc/resolv.conf"] = resolv
        return files

    def clean_stale(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> None:
        """Remove the template's ifcfg files for physical NICs (with their HWADDR pins to
        MACs the clone doesn't have) and for the names the config now owns, with their
        aliases and route files; drop the global default route from /etc/sysconfig/network."""
        if plan.is_dir(DIR):
            _remove_stale(plan, {d.name for d in state.devices})
        text = plan.read_text(NETWORK)
        edited = sysconfig.set_keys(text or "", GLOBAL_KEYS, "bare")
        if edited != text:
            # the `network` service won't start without this file (and NETWORKING=yes)
            plan.mkdir(posixpath.dirname(NETWORK))
            plan.write(NETWORK, edited, 0o644 if text is None else None)


def _remove_stale(plan: Plan, ours: set[str]) -> None:
    names = plan.listdir(DIR)
    gone = set(ours)
    aliases = []
    for name in sysconfig.config_files(names, "ifcfg-"):
        device = name.removeprefix("ifcfg-")
        if ":" in device:
            aliases.append(name)
            continue
        values = sysconfig.parse(plan.read_text(f"{DIR}/{name}") or "")
        mine = device in ours or values.get("DEVICE") in ours
        if device != "lo" and (mine or _physical(values)):
            plan.delete(f"{DIR}/{name}")
            gone |= {device, values.get("DEVICE", device)}
    for name in aliases:
        if name.removeprefix("ifcfg-").split(":")[0] in gone:
            plan.delete(f"{DIR}/{name}")
    for name in sysconfig.config_files(names, "route"):
        kind, _, device = name.partition("-")
        if kind in ("route", "route6") and device in gone:
            plan.delete(f"{DIR}/{name}")


def _physical(values: dict[str, str]) -> bool:
    """An ifcfg file for an ethernet NIC (bond and bridge ports too), not a virtual one."""
    if values.get("TYPE", "Ethernet").lower() not in ("ethernet", ""):
        return False
    virtual = ("BONDING_MASTER", "VLAN")
    if any(values.get(k, "").lower() in ("yes", "true", "1") for k in virtual):
        return False
    return not values.get("DEVICETYPE") and not values.get("PHYSDEV")
