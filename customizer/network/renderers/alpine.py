"""Alpine: /etc/network/interfaces for ifupdown-ng (Alpine's default since 3.13), written
whole as Alpine's own setup-interfaces does, in the family syntax (`iface X inet static`)
that busybox ifupdown also reads for plain DHCP and static NICs; bonds and VLANs use
ifupdown-ng's keywords (warnings() says so on a guest with busybox ifupdown only).

NICs matched by MAC: Alpine's default device manager is mdev, which names no network
interfaces, so a udev rule would work only on guests switched to eudev. busybox `nameif`
is in every Alpine and renames a NIC found by MAC while it is down: each such NIC's stanza
runs it as a pre-up command, before ifupdown brings the link up (`hwaddress` would not do:
it *sets* the MAC). DNS is a plain /etc/resolv.conf; /etc/hostname is the hostname op's."""

from __future__ import annotations

import re

from ...errors import PlanError
from ...plan import Plan
from .. import dns, eni
from ..state import Device, NetworkState
from . import register
from .base import File, GuestFacts, Renderer
from .ifupdown import ADDRESSING, bond_options, bridge_options

INTERFACES = "/etc/network/interfaces"
MACTAB = "/etc/mactab"  # nameif's table: the template's MAC pins
NG = "/sbin/ifupdown"  # ifupdown-ng's one binary; busybox's ifup is a busybox applet
DHCPCD = ("/sbin/dhcpcd", "/usr/sbin/dhcpcd")


def _renamed(dev: Device) -> bool:
    return dev.kind == "ethernet" and dev.mac is not None and (dev.set_name or dev.name_unknown)


def _block(dev: Device, state: NetworkState) -> eni.Block:
    if dev.is_port:  # ifupdown-ng brings ports up before the bond or bridge listing them
        stanzas = [eni.Stanza(dev.name, "inet", "manual")]
    else:
        # ifupdown-ng's one `metric` covers the gateways of both families: metric'd
        # default routes become commands; DHCPv6 has no executor (see warnings)
        stanzas = eni.address_stanzas(dev, dhcp6="auto", gateway_metric=False)
    first = stanzas[0]
    head: list[tuple[str, str]] = []
    if _renamed(dev):
        head.append(("pre-up", f"nameif {dev.name} {dev.mac}"))
    if dev.kind == "bond":
        head.append(("use", "bond"))
        head.append(("bond-members", " ".join(dev.bond_members)))
        head.extend(bond_options(dev, state))
    elif dev.kind == "bridge":
        head.append(("use", "bridge"))
        head.extend(bridge_options(dev, state, stp=("yes", "no")))
    elif dev.kind == "vlan":
        head.append(("vlan-raw-device", str(dev.vlan_link)))
        head.append(("vlan-id", str(dev.vlan_id)))
    if dev.set_mac:
        head.append(("hwaddress", dev.set_mac))
    if dev.mtu:
        head.append(("mtu", str(dev.mtu)))  # ifupdown-ng's link executor, any method
    addressing = [o for o in first.options if o[0] in ADDRESSING]
    first.options = addressing + head + [o for o in first.options if o[0] not in ADDRESSING]
    return eni.Block(dev.name, stanzas)


@register
class Alpine(Renderer):
    name = "alpine"
    summary = "Alpine ifupdown-ng: /etc/network/interfaces"

    def check(self, state: NetworkState, facts: GuestFacts) -> None:
        super().check(state, facts)
        for dev in state.devices:
            if dev.port_cost is not None or dev.port_priority is not None:
                # its bridge executor sets them on the bridge device, not on a port
                raise PlanError(
                    f"network.bridges.{dev.bridge_master}.parameters: ifupdown-ng (alpine "
                    "stack) can't set a port's path-cost or port-priority"
                )

    def render(self, state: NetworkState, facts: GuestFacts) -> dict[str, File]:
        lo = eni.Block("lo", [eni.Stanza("lo", "inet", "loopback")])
        blocks = [lo, *(_block(dev, state) for dev in state.devices)]
        files = {INTERFACES: File(eni.render(blocks))}
        if (resolv := dns.resolv_conf(state)) is not None:
            files["/etc/resolv.conf"] = resolv
        return files

    def clean_stale(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> None:
        """/etc/network/interfaces is rewritten whole; what's left of the template's NICs
        is nameif's table, which would pin its MACs to names."""
        if plan.is_file(MACTAB):
            plan.delete(MACTAB)

    def warnings(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> list[str]:
        out = []
        if not plan.exists(NG) and (state.by_kind("bond") or state.by_kind("vlan")):
            out.append(
                "network: the guest has busybox ifupdown, not ifupdown-ng: bonds and VLANs "
                "need ifupdown-ng (apk add ifupdown-ng)"
            )
        if any(d.dhcp6 for d in state.devices) and not any(plan.exists(p) for p in DHCPCD):
            out.append(
                "network: dhcp6 on Alpine: ifupdown-ng's DHCP client is udhcpc, IPv4 only, "
                "so IPv6 comes from router advertisements (SLAAC) alone; install dhcpcd "
                "for stateful DHCPv6"
            )
        for dev in state.devices:
            if dev.is_glob:
                out.append(
                    f"network.ethernets.{dev.key}: ifupdown-ng can't match NICs by pattern "
                    f"({dev.match_name!r}); name the NIC or match it by macaddress"
                )
            if dev.kind == "vlan" and (implied := _implied_vlan_id(dev.name)) is not None:
                if implied != dev.vlan_id:
                    out.append(
                        f"network.vlans.{dev.key}: ifupdown-ng takes the VLAN id from the "
                        f"name {dev.name!r} ({implied}), not id {dev.vlan_id}: rename it"
                    )
        return out


def _implied_vlan_id(name: str) -> int | None:
    """The id ifupdown-ng's link executor reads from a VLAN's name (vlan10, eth0.10)."""
    m = re.fullmatch(r"vlan(\d+)", name) or re.fullmatch(r"[^.]+\.(\d+)", name)
    return int(m.group(1)) if m else None
