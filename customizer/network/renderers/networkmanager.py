"""NetworkManager: one keyfile per interface in /etc/NetworkManager/system-connections
(RHEL >= 9, Fedora, any guest where NetworkManager is the enabled stack)."""

from __future__ import annotations

import configparser
import posixpath
import uuid

from ...errors import PlanError
from ...plan import Plan
from .. import bond, naming
from ..state import Device, NetworkState, Route, Rule
from . import register
from .base import File, GuestFacts, Renderer

DIR = "/etc/NetworkManager/system-connections"
PREFIX = "vmtailor-"
IFCFG = "/etc/sysconfig/network-scripts"
# cloud-init's [main] dns=none: NM would stop writing resolv.conf from our dns= keys
CLOUD_INIT_CONF = "/etc/NetworkManager/conf.d/99-cloud-init.conf"
HEADER = "# Written by vmtailor from the config's network key.\n"
# above cloud-init's profiles (120) and the distro's "System eth0" (-999), so ours win
# should any profile for the same NIC survive (one in /usr/lib, one made at first boot)
PRIORITY = 200

Section = tuple[str, list[tuple[str, object]]]
# the methods under which libnm (1.42, Debian 12; EL 9) accepts dns= and dns-search=
CARRIES_DNS = ("auto", "manual")
GLOBAL_DNS = "/etc/NetworkManager/conf.d/90-vmtailor-dns.conf"
# netplan's offload keys -> NM's ethtool features
ETHTOOL = {"receive-checksum-offload": "feature-rx", "transmit-checksum-offload": "feature-tx",
           "tcp-segmentation-offload": "feature-tso",
           "tcp6-segmentation-offload": "feature-tx-tcp6-segmentation",
           "generic-segmentation-offload": "feature-gso",
           "generic-receive-offload": "feature-gro",
           "large-receive-offload": "feature-lro"}  # fmt: skip
# route scopes: NM takes the kernel's number
SCOPES = {"global": 0, "link": 253, "host": 254}
# the route types NM (1.42) can write; anycast, broadcast, multicast, nat, xresolve not
ROUTE_TYPES = ("unicast", "local", "blackhole", "unreachable", "prohibit", "throw")


def connection_uuid(name: str) -> str:
    """Derived from the interface name, so a second apply writes the same file."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"vmtailor:network:{name}"))


def _nm_list(values: list[str]) -> str:
    return "".join(f"{v};" for v in values)


def _connection(dev: Device) -> list[Section]:
    nm_type = dev.kind  # ethernet, bond, bridge, vlan: NM's names too
    con: list[tuple[str, object]] = [
        ("id", dev.name),
        ("uuid", connection_uuid(dev.name)),
        ("type", nm_type),
    ]
    match: list[tuple[str, object]] = []
    if dev.is_glob and not dev.set_name:
        match.append(("interface-name", _nm_list([str(dev.match_name)])))
    elif dev.kind != "ethernet" or dev.set_name or dev.match_name or not dev.mac:
        # NM renames nothing: a set-name NIC gets its name from the udev rule we add
        con.append(("interface-name", dev.name))
    if dev.driver:
        match.append(("driver", _nm_list([dev.driver])))
    con.append(("autoconnect-priority", PRIORITY))
    if dev.bond_master:
        # master=/slave-type=, not 1.46's controller=/port-type=: every NM reads these
        # (1.46+ keeps them as aliases of the same property), while NM < 1.46 (EL 9.0-9.3,
        # Debian 12, Ubuntu 22.04) would ignore controller= and leave the NIC out of the bond
        con += [("master", connection_uuid(dev.bond_master)), ("slave-type", "bond")]
    elif dev.bridge_master:
        con += [("master", connection_uuid(dev.bridge_master)), ("slave-type", "bridge")]
    ether = [
        ("wake-on-lan", 64 if dev.wakeonlan else None),  # NM's flag for magic packets
        ("mac-address", dev.mac.upper() if dev.mac else None),
        ("cloned-mac-address", dev.set_mac.upper() if dev.set_mac else None),
        ("mtu", dev.mtu),
    ]
    return [("connection", con), ("match", match), ("ethernet", ether)]


def _route(route: Route) -> str:
    via = str(route.via) if route.via else ""
    value = route.network()
    if route.metric is not None:
        return f"{value},{via},{route.metric}"
    return f"{value},{via}" if via else value


def _dhcp(dev: Device, version: int) -> list[tuple[str, object]]:
    """dhcp4-/dhcp6-overrides in NM's terms; use-ntp and use-hostname need none (NM takes
    neither NTP servers nor, with the hostname set, a hostname from DHCP)."""
    o = dev.dhcp4_overrides if version == 4 else dev.dhcp6_overrides
    routes = o.get("use-routes") is False
    return [
        ("dhcp-client-id", dev.dhcp_identifier if version == 4 else None),
        ("dhcp-send-hostname", o.get("send-hostname")),
        ("dhcp-hostname", o.get("hostname")),
        ("ignore-auto-dns", True if o.get("use-dns") is False else None),
        ("ignore-auto-routes", True if routes else None),
        ("never-default", True if routes else None),
        ("route-metric", o.get("route-metric")),
    ]


def _route_options(route: Route) -> str:
    options = [
        ("onlink", "true" if route.on_link else None),
        ("table", route.table),
        ("src", route.source),
        ("mtu", route.mtu),
        ("type", route.type),
        ("scope", SCOPES[route.scope] if route.scope else None),
        ("initcwnd", route.congestion_window),
        ("initrwnd", route.receive_window),
    ]
    return ",".join(f"{k}={v}" for k, v in options if v is not None)


def _rule(rule: Rule) -> str:
    """A routing rule in NM's (ip rule's) syntax; check() made sure it has a priority."""
    words = [
        ("priority", rule.priority),
        ("from", rule.source),
        ("to", rule.to),
        ("fwmark", rule.mark),
        ("tos", f"0x{rule.tos:02x}" if rule.tos is not None else None),
        ("table", rule.table),
    ]
    return " ".join(f"{k} {v}" for k, v in words if v is not None)


def _method(dev: Device, version: int) -> str:
    addresses, routes = dev.addresses_v(version), dev.routes_v(version)
    dns = [a for a in dev.dns if a.version == version]
    if version == 4:
        # a v4 DNS server with no v4 config would be unreachable: NM refuses dns= here
        return "auto" if dev.dhcp4 else "manual" if addresses or routes else "disabled"
    if dev.dhcp6 or dev.accept_ra:
        return "auto"
    if addresses or routes:
        return "manual"  # no SLAAC address next to the static one
    if dns or dev.accept_ra is False:
        # DNS alone asks for no address: SLAAC stays off, as in netplan and cloud-init
        # (the servers go to the global DNS drop-in, see global_dns)
        return "link-local"
    # no IPv6 config: leave IPv6 to the kernel, as netplan's NM backend does
    return "ignore"


def _ip(dev: Device, version: int, method: str, search: bool) -> list[tuple[str, object]]:
    addresses = dev.addresses_v(version)
    items: list[tuple[str, object]] = [("method", method)]
    items += [(f"address{i}", str(a)) for i, a in enumerate(addresses, 1)]
    gateway = dev.gateway(version)
    if gateway and (gateway.via is None or gateway.metric is not None or gateway.on_link
                    or gateway.options or not addresses):  # fmt: skip
        gateway = None  # NM's gateway= needs an address and has no metric: use a route
    if gateway:
        items.append(("gateway", str(gateway.via)))
    routes = [r for r in dev.routes_v(version) if r is not gateway]
    for i, route in enumerate(routes, 1):
        items.append((f"route{i}", _route(route)))
        items.append((f"route{i}_options", _route_options(route) or None))
    rules = [r for r in dev.rules if r.version == version]
    items += [(f"routing-rule{i}", _rule(rule)) for i, rule in enumerate(rules, 1)]
    if method == "auto":
        items += _dhcp(dev, version)
    if version == 6 and dev.ipv6_privacy:
        items.append(("ip6-privacy", 2))  # temporary addresses, preferred (netplan's)
    if method in CARRIES_DNS:  # NM rejects the whole profile otherwise
        dns = [str(a) for a in dev.dns if a.version == version]
        items.append(("dns", _nm_list(dns) or None))
        if search and dev.search:
            items.append(("dns-search", _nm_list(list(dev.search))))
    return items


def _value(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def keyfile(dev: Device, state: NetworkState) -> str:
    sections = _connection(dev)
    if dev.kind == "bond":
        sections.append(("bond", bond.kernel_options(dev, state)))
    if dev.offload:
        sections.append(("ethtool", [(ETHTOOL[k], v) for k, v in dev.offload.items()]))
    if dev.kind == "bridge":  # NM's names, and its unit (seconds), are netplan's
        sections.append(("bridge", list(dev.bridge_params.items())))
    if dev.bridge_master:
        sections.append(("bridge-port", [("path-cost", dev.port_cost),
                                         ("priority", dev.port_priority)]))  # fmt: skip
    if dev.kind == "vlan":
        assert dev.vlan_link is not None
        # the parent by its connection UUID: found even when its NIC name isn't known
        sections.append(("vlan", [("id", dev.vlan_id), ("parent", connection_uuid(dev.vlan_link))]))
    if not dev.is_port:  # a bond member or bridge port carries no IP config of its own
        v4, v6 = _method(dev, 4), _method(dev, 6)
        sections.append(("ipv4", _ip(dev, 4, v4, search=True)))
        sections.append(("ipv6", _ip(dev, 6, v6, search=v4 not in CARRIES_DNS)))
    chunks = [HEADER]
    for name, items in sections:
        lines = [f"{k}={_value(v)}" for k, v in items if v is not None]
        if lines or (name == "ethernet" and dev.kind == "ethernet"):  # as NM writes it
            chunks.append("\n".join([f"[{name}]", *lines]) + "\n")
    return "\n".join(chunks)


def _strands_dns(dev: Device) -> bool:
    """Does the device have DNS that no family of its profile can carry? (A family with
    no address, DHCP or router adverts: libnm refuses dns= under link-local/disabled.)"""
    if dev.is_port:
        return False
    carried = {v for v in (4, 6) if _method(dev, v) in CARRIES_DNS}
    return any(a.version not in carried for a in dev.dns) or bool(dev.search and not carried)


def global_dns(state: NetworkState) -> File | None:
    """NM's global DNS, when some device's DNS can't sit in its profile: netplan puts it
    under method=link-local, which libnm rejects, losing the whole profile. Global DNS
    replaces every profile's DNS, so it holds all of the config's servers and domains."""
    if not any(_strands_dns(dev) for dev in state.devices):
        return None
    lines = [HEADER.rstrip("\n"), "[global-dns]"]
    if state.search:
        lines.append("searches=" + ",".join(state.search))
    lines.append("\n[global-dns-domain-*]")  # NM wants the default domain declared
    if state.dns:
        lines.append("servers=" + ",".join(str(a) for a in state.dns))
    return File("\n".join(lines) + "\n")


@register
class NetworkManager(Renderer):
    name = "networkmanager"
    summary = "NetworkManager keyfiles in /etc/NetworkManager/system-connections"
    policy_routing = True
    extras = ("dhcp4-overrides", "dhcp6-overrides", "dhcp-identifier", "ipv6-privacy",
              "wakeonlan", *ETHTOOL)  # fmt: skip

    def check(self, state: NetworkState, facts: GuestFacts) -> None:
        super().check(state, facts)
        for dev in state.devices:
            where = f"network.{dev.kind}s.{dev.key}"
            if "primary" in dev.bond_params and dev.bond_params.get("mode") != "active-backup":
                raise PlanError(  # libnm (1.42) refuses the profile
                    f"{where}.parameters.primary: NetworkManager takes primary in "
                    "active-backup bonds only"
                )
            for key, o in (("dhcp4-overrides", dev.dhcp4_overrides),
                           ("dhcp6-overrides", dev.dhcp6_overrides)):  # fmt: skip
                if o.get("use-mtu") is False:
                    raise PlanError(
                        f"{where}.{key}.use-mtu: NetworkManager has no switch to ignore the "
                        "MTU DHCP offers",
                        hint="set mtu: on the interface instead",
                    )
                if {o.get("use-dns", True), o.get("use-domains", True)} == {True, False}:
                    raise PlanError(
                        f"{where}.{key}: NetworkManager takes DHCP's DNS servers and domains "
                        "together: use-dns and use-domains must agree"
                    )
            for i, route in enumerate(dev.routes):
                if route.type not in (None, *ROUTE_TYPES):
                    raise PlanError(
                        f"{where}.routes[{i}].type: NetworkManager has no {route.type} routes "
                        f"(it has {', '.join(ROUTE_TYPES)})"
                    )
            for i, rule in enumerate(dev.rules):
                if rule.priority is None:
                    raise PlanError(
                        f"{where}.routing-policy[{i}]: NetworkManager needs a priority on "
                        "every routing rule",
                        hint="add priority: (lower is looked at first)",
                    )

    def render(self, state: NetworkState, facts: GuestFacts) -> dict[str, File]:
        files = {
            f"{DIR}/{PREFIX}{dev.name}.nmconnection": File(keyfile(dev, state), 0o600)
            for dev in state.devices
        }
        if rules := naming.udev_rules(state):
            files[rules[0]] = rules[1]
        if (dns := global_dns(state)) is not None:
            files[GLOBAL_DNS] = dns
        return files

    def warnings(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> list[str]:
        if global_dns(state) is None or not any(d.dhcp4 or d.dhcp6 for d in state.devices):
            return []
        return [
            "network: NetworkManager keeps DNS only on a profile with an address of that "
            "family, so the config's nameservers are NetworkManager's global DNS: the DNS "
            "servers DHCP offers are not used"
        ]

    def clean_stale(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> None:
        """Remove the template's profiles for the NICs this config owns or for MACs the
        clone won't have (keyfiles, and ifcfg files NM's ifcfg-rh plugin would load), and
        their ports and VLANs; and stop cloud-init making new ones at first boot."""
        ours = set(self.render(state, facts))
        names = {d.name for d in state.devices}
        gone: set[str] = set()  # UUIDs and interface names of removed profiles
        kept: list[tuple[str, configparser.ConfigParser]] = []
        for name in plan.listdir(DIR) if plan.is_dir(DIR) else []:
            path = posixpath.join(DIR, name)
            if path in ours:
                continue
            if name.startswith(PREFIX) and name.endswith(".nmconnection"):
                plan.delete(path)  # ours from an earlier config that no longer has it
                continue
            kf = _parse(plan.read_text(path))
            if kf is None:
                continue  # not a keyfile we can read: not ours to judge
            ifname = kf.get("connection", "interface-name", fallback=None)
            if _mac(kf) or ifname in names or _name_matches(state, ifname):
                gone.update(v for v in (kf.get("connection", "uuid", fallback=None), ifname) if v)
                plan.delete(path)
            else:
                kept.append((path, kf))
        for path, kf in kept:  # ports and VLANs of removed profiles would dangle
            if _parents(kf) & gone:
                plan.delete(path)
        _clean_ifcfg(plan, state)
        if GLOBAL_DNS not in ours and plan.is_file(GLOBAL_DNS):
            plan.delete(GLOBAL_DNS)  # an earlier config's
        text = plan.read_text(CLOUD_INIT_CONF) if plan.is_file(CLOUD_INIT_CONF) else None
        kf = _parse(text)
        if kf is not None and kf.get("main", "dns", fallback="").strip() == "none":
            plan.delete(CLOUD_INIT_CONF)


def _parse(text: str | None) -> configparser.ConfigParser | None:
    if text is None:
        return None
    kf = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        kf.read_string(text)
    except configparser.Error:
        return None
    return kf


def _mac(kf: configparser.ConfigParser) -> str | None:
    for section in ("ethernet", "802-3-ethernet"):
        value = kf.get(section, "mac-address", fallback="").strip()
        if value:
            return value
    return None


def _parents(kf: configparser.ConfigParser) -> set[str]:
    """What a port or VLAN profile hangs off: its controller's (or parent's) UUID or name."""
    refs = [kf.get("connection", k, fallback="") for k in ("master", "controller")]
    return {r for r in [*refs, kf.get("vlan", "parent", fallback="")] if r}


def _name_matches(state: NetworkState, ifname: str | None) -> bool:
    if not ifname:
        return False
    return any(state.matches(d, ifname, None) for d in state.by_kind("ethernet") if not d.mac)


def _clean_ifcfg(plan: Plan, state: NetworkState) -> None:
    """ifcfg-<name> (with route-/route6-<name>) pinned by HWADDR or naming a NIC we
    configure: RHEL 9's NM still loads them through its ifcfg-rh plugin."""
    if not plan.is_dir(IFCFG):
        return
    names = {d.name for d in state.devices}
    for name in plan.listdir(IFCFG):
        if not name.startswith("ifcfg-") or name == "ifcfg-lo":
            continue
        values = _shell_vars(plan.read_text(posixpath.join(IFCFG, name)) or "")
        device = values.get("DEVICE") or name[len("ifcfg-") :]
        if values.get("HWADDR") or device in names or _name_matches(state, device):
            suffix = name[len("ifcfg-") :]
            for stale in (name, f"route-{suffix}", f"route6-{suffix}"):
                plan.delete(posixpath.join(IFCFG, stale))


def _shell_vars(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip().strip("\"'")
    return out
