"""systemd-networkd: .network / .netdev / .link files in /etc/systemd/network."""

from __future__ import annotations

import posixpath

from ...errors import PlanError
from ...plan import Plan
from .. import bond, unitfile
from ..state import Device, NetworkState
from . import register
from .base import File, GuestFacts, Renderer

DIR = "/etc/systemd/network"
PREFIX = "10-vmtailor-"
HEADER = "# Written by vmtailor from the config's network key.\n"
NAME_POLICY = "keep kernel database onboard slot path"
OFFLOAD = {"receive-checksum-offload": "ReceiveChecksumOffload",
           "transmit-checksum-offload": "TransmitChecksumOffload",
           "tcp-segmentation-offload": "TCPSegmentationOffload",
           "tcp6-segmentation-offload": "TCP6SegmentationOffload",
           "generic-segmentation-offload": "GenericSegmentationOffload",
           "generic-receive-offload": "GenericReceiveOffload",
           "large-receive-offload": "LargeReceiveOffload"}  # fmt: skip
# netplan's dhcp4-overrides -> [DHCPv4] keys
DHCP4 = {"use-dns": "UseDNS", "use-ntp": "UseNTP", "send-hostname": "SendHostname",
         "use-hostname": "UseHostname", "use-mtu": "UseMTU", "hostname": "Hostname",
         "use-routes": "UseRoutes", "route-metric": "RouteMetric",
         "use-domains": "UseDomains"}  # fmt: skip
DHCP6 = {"use-dns": "UseDNS", "use-ntp": "UseNTP", "send-hostname": "SendHostname",
         "use-hostname": "UseHostname", "use-domains": "UseDomains"}  # fmt: skip
# netplan's bridge parameters -> [Bridge] keys of a .netdev (times in seconds, as both)
BRIDGE = {"ageing-time": "AgeingTimeSec", "priority": "Priority",
          "forward-delay": "ForwardDelaySec", "hello-time": "HelloTimeSec",
          "max-age": "MaxAgeSec", "stp": "STP"}  # fmt: skip


def _dhcp(dev: Device) -> str:
    return {(True, True): "yes", (True, False): "ipv4", (False, True): "ipv6"}.get(
        (dev.dhcp4, dev.dhcp6), "no"
    )


def _match(dev: Device) -> list[tuple[str, object]]:
    if dev.kind != "ethernet":
        return [("Name", dev.name)]
    items: list[tuple[str, object]] = []
    if dev.mac:
        # a bond takes its first member's MAC: match members by their permanent one
        key = "PermanentMACAddress" if dev.bond_master else "MACAddress"
        items.append((key, dev.mac))
    elif dev.match_name:
        items.append(("Name", dev.match_name))
    else:
        items.append(("Name", dev.name))
    if dev.driver:
        items.append(("Driver", dev.driver))
    return items


def _is_primary(member: Device, state: NetworkState) -> bool:
    master = next(d for d in state.by_kind("bond") if d.name == member.bond_master)
    return master.bond_params.get("primary") == member.key  # the config names it by key


def _network(dev: Device, state: NetworkState) -> str:
    net: list[tuple[str, object]] = []
    if dev.is_port:
        # a port has no addresses of its own, not even IPv6 link-local (as netplan)
        net.append(("LinkLocalAddressing", "no"))
    if dev.bond_master:
        net.append(("Bond", dev.bond_master))
        # the bond's primary is a member's setting in networkd, not the bond's
        if _is_primary(dev, state):
            net.append(("PrimarySlave", True))
    if dev.bridge_master:
        net.append(("Bridge", dev.bridge_master))
    if not dev.is_port:
        net.append(("DHCP", _dhcp(dev)))
        net.extend(("Address", str(a)) for a in dev.addresses)
        net.extend(("DNS", str(a)) for a in dev.dns)
        if dev.search:
            net.append(("Domains", " ".join(dev.search)))
        if dev.accept_ra is not None:
            net.append(("IPv6AcceptRA", dev.accept_ra))
        elif dev.addresses_v(6) and not dev.dhcp6:
            net.append(("IPv6AcceptRA", False))
        if dev.link_local is not None:
            families = set(dev.link_local)
            net.append(("LinkLocalAddressing", {frozenset(): "no", frozenset({"ipv4"}): "ipv4",
                        frozenset({"ipv6"}): "ipv6"}.get(frozenset(families), "yes")))  # fmt: skip
        if dev.ipv6_privacy:
            net.append(("IPv6PrivacyExtensions", True))
        net.append(("IPv6MTUBytes", dev.ipv6_mtu))
    for vlan in state.by_kind("vlan"):
        if vlan.vlan_link == dev.name:
            net.append(("VLAN", vlan.name))
    link: list[tuple[str, object]] = [("MTUBytes", dev.mtu), ("MACAddress", dev.set_mac)]
    if dev.optional:
        link.append(("RequiredForOnline", False))
    sections: list[tuple[str, list[tuple[str, object]]]] = [
        ("Match", _match(dev)),
        ("Link", link),
        ("Network", net),
    ]
    if dev.bridge_master:
        sections.append(("Bridge", [("Cost", dev.port_cost), ("Priority", dev.port_priority)]))
    if dev.dhcp4 and not dev.is_port:
        # netplan's defaults, which mean its DHCP routes and MTU (networkd: 1024, no)
        overrides = {"route-metric": 100, "use-mtu": True, **dev.dhcp4_overrides}
        dhcp = [(DHCP4[k], v) for k, v in overrides.items()]
        sections.append(("DHCPv4", [("ClientIdentifier", dev.dhcp_identifier), *dhcp]))
    six = dev.dhcp6_overrides
    sections.append(("DHCPv6", [(DHCP6[k], v) for k, v in six.items() if k in DHCP6]))
    # IPv6 routes and MTU come from router advertisements, not from DHCPv6
    routes = six.get("use-routes")
    sections.append(("IPv6AcceptRA", [("RouteMetric", six.get("route-metric")),
                                      ("UseGateway", routes), ("UseRoutePrefix", routes),
                                      ("UseMTU", six.get("use-mtu"))]))  # fmt: skip
    for route in dev.routes:
        sections.append(
            (
                "Route",
                [
                    ("Destination", None if route.is_default else route.network()),
                    ("Gateway", str(route.via) if route.via else None),
                    ("GatewayOnLink", True if route.on_link else None),
                    ("Metric", route.metric),
                    ("PreferredSource", route.source),
                    ("Table", route.table),
                    ("Scope", route.scope),
                    ("Type", route.type),
                    ("MTUBytes", route.mtu),
                    ("InitialCongestionWindow", route.congestion_window),
                    ("InitialAdvertisedReceiveWindow", route.receive_window),
                ],
            )
        )
    for rule in dev.rules:
        sections.append(
            (
                "RoutingPolicyRule",
                [("From", rule.source), ("To", rule.to), ("Table", rule.table),
                 ("Priority", rule.priority), ("FirewallMark", rule.mark),
                 ("TypeOfService", rule.tos)],
            )
        )  # fmt: skip
    return unitfile.render(sections, HEADER)


def _netdev(dev: Device) -> str | None:
    if dev.kind == "bond":
        return unitfile.render(
            [("NetDev", [("Name", dev.name), ("Kind", "bond"), ("MTUBytes", dev.mtu)]),
             ("Bond", bond.networkd_options(dev))],
            HEADER,
        )  # fmt: skip
    if dev.kind == "bridge":
        p = dev.bridge_params
        bridge = [(name, p.get(key)) for key, name in BRIDGE.items()]
        return unitfile.render(
            [("NetDev", [("Name", dev.name), ("Kind", "bridge"), ("MTUBytes", dev.mtu)]),
             ("Bridge", bridge)],
            HEADER,
        )  # fmt: skip
    if dev.kind == "vlan":
        return unitfile.render(
            [("NetDev", [("Name", dev.name), ("Kind", "vlan"), ("MTUBytes", dev.mtu)]),
             ("VLAN", [("Id", dev.vlan_id)])],
            HEADER,
        )  # fmt: skip
    return None


def _link(dev: Device) -> str | None:
    """Renaming a NIC matched by MAC (set-name) and wake-on-LAN are a .link file's job."""
    if dev.kind != "ethernet" or not (dev.set_name or dev.wakeonlan or dev.offload):
        return None
    if dev.mac:
        match = ("MACAddress", dev.mac)
    else:
        match = ("OriginalName", dev.match_name or dev.name)
    # the first .link that matches is the only one: without a Name, keep the naming
    # policy of systemd's 99-default.link, or the NIC would keep its kernel name
    link: list[tuple[str, object]] = (
        [("Name", dev.name)] if dev.set_name else [("NamePolicy", NAME_POLICY)]
    )
    if dev.wakeonlan:
        link.append(("WakeOnLan", "magic"))
    link += [(OFFLOAD[k], v) for k, v in dev.offload.items()]
    return unitfile.render([("Match", [match]), ("Link", link)], HEADER)


@register
class Networkd(Renderer):
    name = "networkd"
    summary = "systemd-networkd .network/.netdev/.link files"
    policy_routing = True
    extras = ("dhcp4-overrides", "dhcp6-overrides", "dhcp-identifier", "link-local",
              "ipv6-privacy", "ipv6-mtu", "wakeonlan", *OFFLOAD)  # fmt: skip

    def check(self, state: NetworkState, facts: GuestFacts) -> None:
        super().check(state, facts)
        for dev in state.devices:
            if "hostname" in dev.dhcp6_overrides:
                raise PlanError(
                    f"network.{dev.kind}s.{dev.key}.dhcp6-overrides.hostname: networkd's "
                    "DHCPv6 client sends the machine's hostname, no other"
                )

    def render(self, state: NetworkState, facts: GuestFacts) -> dict[str, File]:
        files: dict[str, File] = {}
        for dev in state.devices:
            base = f"{DIR}/{PREFIX}{dev.name}"
            files[f"{base}.network"] = File(_network(dev, state))
            if (netdev := _netdev(dev)) is not None:
                files[f"{base}.netdev"] = File(netdev)
            if (link := _link(dev)) is not None:
                files[f"{base}.link"] = File(link)
        return files

    def clean_stale(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> None:
        """Remove the template's .network files for physical NICs: the config now
        describes them, and a stale one would configure a NIC twice or pin a dead MAC."""
        for d in (DIR, "/run/systemd/network"):
            if not plan.is_dir(d):
                continue
            for name in plan.listdir(d):
                path = posixpath.join(d, name)
                if name.startswith(PREFIX) or not name.endswith((".network", ".link")):
                    continue
                text = plan.read_text(path)
                if text is None or not _matches_physical(text):
                    continue
                plan.delete(path)


def _matches_physical(text: str) -> bool:
    """A [Match] by MAC, by an ethernet-looking name, or by Type=ether."""
    names = unitfile.values(text, "Match", "Name")
    macs = unitfile.values(text, "Match", "MACAddress") + unitfile.values(
        text, "Match", "PermanentMACAddress"
    )
    types = unitfile.values(text, "Match", "Type")
    physical = ("e", "en", "eth", "ens", "enp", "eno", "enx", "*")
    return bool(macs) or "ether" in types or any(n.startswith(physical) for n in names)
