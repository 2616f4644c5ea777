"""The `network` key: netplan / cloud-init v2 format, as typed models with full checks
(addresses, gateways inside a subnet, duplicate MACs, links that exist)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields
from typing import Literal

from .errors import ConfigError, Path
from .netchecks import check_network
from .schema import spec

MAC = r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}"
IFNAME = r"[A-Za-z0-9_.:-]{1,15}"
BOND_MODES = (
    "balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb",
    "balance-alb",
)  # fmt: skip


def _out_of_scope(what: str, keys: tuple[str, ...]) -> dict[str, str]:
    """Keys netplan knows that describe no VM guest's network: refused by name, so a
    user reads why (not 'unknown key') before anything is touched."""
    return dict.fromkeys(
        keys,
        f"{what} are out of vmtailor's scope (a VM guest's network: ethernets, "
        "bonds, bridges and VLANs)",
    )


# netplan sections and per-NIC keys for hardware and overlays a VM guest doesn't have
NETWORK_OUT_OF_SCOPE = {
    **_out_of_scope("Wi-Fi networks", ("wifis",)),
    **_out_of_scope("mobile broadband modems", ("modems",)),
    **_out_of_scope("tunnels (GRE, SIT, VXLAN, WireGuard, ...)", ("tunnels",)),
    **_out_of_scope("VRFs", ("vrfs",)),
    **_out_of_scope("Open vSwitch settings", ("openvswitch",)),
    **_out_of_scope("NetworkManager pass-through devices", ("nm-devices",)),
    **_out_of_scope("dummy and veth devices", ("dummy-devices", "virtual-ethernets")),
}
NIC_OUT_OF_SCOPE = {
    **_out_of_scope("Open vSwitch settings", ("openvswitch",)),
    **_out_of_scope("802.1X authentication settings", ("auth",)),
    **_out_of_scope("InfiniBand settings", ("infiniband-mode",)),
    **_out_of_scope("SR-IOV settings", ("link", "virtual-function-count",
                                         "embedded-switch-mode", "delay-virtual-functions-rebind")),
}  # fmt: skip


def _renderers() -> list[str]:
    from ..network.stacks import BY_NAME

    # netplan spells two of them its own way; both are accepted
    return sorted({*BY_NAME, "NetworkManager"})


def _cidr(value: str) -> str | None:
    if "/" not in value:
        return f"{value!r} needs a prefix length, e.g. {value}/24"
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return f"{value!r} is not an IPv4 or IPv6 address with prefix (CIDR)"
    return None


def _ip(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"{value!r} is not an IPv4 or IPv6 address"
    return None


def _route_to(value: str) -> str | None:
    if value == "default":
        return None
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is not 'default' or a network in CIDR form"
    return None


@dataclass(kw_only=True)
class Match:
    """Which NIC a config applies to: by MAC (survives renaming), by name (globs allowed)."""

    macaddress: str | None = spec("MAC address of the NIC", default=None, pattern=MAC)
    name: str | None = spec("kernel name, globs allowed (en*)", default=None)
    driver: str | None = spec("kernel driver name, e.g. virtio_net", default=None)


ROUTE_TYPES = ("unicast", "anycast", "blackhole", "broadcast", "local", "multicast", "nat",
               "prohibit", "throw", "unreachable", "xresolve")  # fmt: skip


@dataclass(kw_only=True)
class Route:
    """A static route; `to: default` is the default route."""

    to: str = spec("destination: 'default' or a CIDR network", check=_route_to)
    via: str | None = spec("gateway address", default=None, check=_ip)
    metric: int | None = spec(
        "route metric (lower wins)", default=None, minimum=0, maximum=2**32 - 1
    )
    on_link: bool = spec("gateway is reachable without a subnet", default=False, key="on-link")
    from_: str | None = spec("preferred source address", default=None, key="from", check=_ip)
    table: int | None = spec("routing table number (default: main)", default=None,
                             minimum=1, maximum=2**32 - 1)  # fmt: skip
    scope: Literal["global", "link", "host"] | None = spec("route scope", default=None)
    type: Literal[ROUTE_TYPES] | None = spec("route type (default: unicast)",  # type: ignore[valid-type]
                                             default=None)  # fmt: skip
    mtu: int | None = spec("MTU along this route", default=None, minimum=68, maximum=65535)
    congestion_window: int | None = spec("initial congestion window", default=None,
                                         key="congestion-window", minimum=0,
                                         maximum=2**32 - 1)  # fmt: skip
    advertised_receive_window: int | None = spec(
        "initial advertised receive window", default=None, key="advertised-receive-window",
        minimum=0, maximum=2**32 - 1)  # fmt: skip

    @property
    def main_table(self) -> bool:
        return self.table in (None, 254)


@dataclass(kw_only=True)
class RoutingRule:
    """A policy routing rule (ip rule): which traffic looks up which table."""

    from_: str | None = spec("source network (CIDR) or address", default=None, key="from",
                             check=_route_to)  # fmt: skip
    to: str | None = spec("destination network (CIDR) or address", default=None,
                          check=_route_to)  # fmt: skip
    table: int | None = spec("routing table to look up", default=None, minimum=1, maximum=2**32 - 1)
    priority: int | None = spec(
        "rule priority (lower first)", default=None, minimum=0, maximum=2**32 - 1
    )
    mark: int | None = spec("firewall mark to match", default=None, minimum=0, maximum=2**32 - 1)
    type_of_service: int | None = spec("TOS value to match", default=None,
                                       key="type-of-service", minimum=0, maximum=255)  # fmt: skip

    def validate(self, path: Path) -> None:
        if self.from_ is None and self.to is None:
            raise ConfigError(path, "a routing-policy rule needs from or to")
        if "default" in (self.from_, self.to):
            raise ConfigError(path, "routing-policy takes networks, not 'default'")


@dataclass(kw_only=True)
class Nameservers:
    """DNS servers and search domains."""

    addresses: list[str] = spec("DNS server addresses", factory=list, check=_ip)
    search: list[str] = spec("DNS search domains", factory=list)


@dataclass(kw_only=True)
class DhcpOverrides:
    """What to take from the DHCP server (netplan's dhcp4-overrides)."""

    use_dns: bool | None = spec("use the DNS servers DHCP offers", default=None,
                                key="use-dns")  # fmt: skip
    use_ntp: bool | None = spec("use the NTP servers DHCP offers", default=None,
                                key="use-ntp")  # fmt: skip
    send_hostname: bool | None = spec("send the hostname to the DHCP server", default=None,
                                      key="send-hostname")  # fmt: skip
    use_hostname: bool | None = spec("take the hostname DHCP offers", default=None,
                                     key="use-hostname")  # fmt: skip
    use_mtu: bool | None = spec("take the MTU DHCP offers (netplan's default: yes)",
                                default=None, key="use-mtu")  # fmt: skip
    hostname: str | None = spec("hostname to send instead of the machine's", default=None)
    use_routes: bool | None = spec("install the routes DHCP offers (the default route too)",
                                   default=None, key="use-routes")  # fmt: skip
    route_metric: int | None = spec("metric of the routes DHCP offers", default=None,
                                    key="route-metric", minimum=0,
                                    maximum=2**32 - 1)  # fmt: skip
    use_domains: bool | None = spec("use the search domains DHCP offers", default=None,
                                    key="use-domains")  # fmt: skip

    def values(self) -> dict[str, object]:
        """Set overrides by netplan's name."""
        out = {f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in out.items() if v is not None}


@dataclass(kw_only=True)
class Interface:
    """What every kind of interface can have."""

    __rejected_keys__ = _out_of_scope("Open vSwitch settings", ("openvswitch",))

    dhcp4: bool = spec("get an IPv4 address by DHCP", default=False)
    dhcp6: bool = spec("get an IPv6 address by DHCPv6", default=False)
    addresses: list[str] = spec("static addresses in CIDR form", factory=list, check=_cidr)
    routes: list[Route] = spec("static routes", factory=list)
    routing_policy: list[RoutingRule] = spec("policy routing rules", factory=list,
                                             key="routing-policy")  # fmt: skip
    gateway4: str | None = spec("deprecated: use routes with to: default", default=None,
                                check=_ip)  # fmt: skip
    gateway6: str | None = spec("deprecated: use routes with to: default", default=None,
                                check=_ip)  # fmt: skip
    nameservers: Nameservers | None = spec("DNS for this interface", default=None)
    mtu: int | None = spec("MTU in bytes", default=None, minimum=68, maximum=65535)
    macaddress: str | None = spec("set this MAC address on the device", default=None,
                                  pattern=MAC)  # fmt: skip
    optional: bool = spec("boot does not wait for this interface", default=False)
    accept_ra: bool | None = spec("accept IPv6 router advertisements", default=None,
                                  key="accept-ra")  # fmt: skip
    dhcp4_overrides: DhcpOverrides | None = spec("what to take from the DHCPv4 server",
                                                 default=None, key="dhcp4-overrides")  # fmt: skip
    dhcp6_overrides: DhcpOverrides | None = spec("what to take from DHCPv6 and router "
                                                 "advertisements", default=None,
                                                 key="dhcp6-overrides")  # fmt: skip
    dhcp_identifier: Literal["duid", "mac"] | None = spec(
        "DHCP client identifier: duid (the default) or mac", default=None,
        key="dhcp-identifier")  # fmt: skip
    link_local: list[Literal["ipv4", "ipv6"]] | None = spec(
        "link-local addressing families (netplan's default: [ipv6])", default=None,
        key="link-local")  # fmt: skip
    ipv6_privacy: bool | None = spec("IPv6 privacy (temporary) addresses", default=None,
                                     key="ipv6-privacy")  # fmt: skip
    ipv6_mtu: int | None = spec("IPv6 MTU in bytes", default=None, key="ipv6-mtu",
                                minimum=1280, maximum=65535)  # fmt: skip


@dataclass(kw_only=True)
class Ethernet(Interface):
    """A physical NIC."""

    __rejected_keys__ = NIC_OUT_OF_SCOPE

    match: Match | None = spec("select the NIC by MAC or name (default: by the key)",
                               default=None)  # fmt: skip
    set_name: str | None = spec("rename the matched NIC to this", default=None, key="set-name",
                                pattern=IFNAME)  # fmt: skip
    wakeonlan: bool | None = spec("wake on LAN (magic packet)", default=None)
    receive_checksum_offload: bool | None = spec("checksum offload, receive", default=None,
                                                 key="receive-checksum-offload")  # fmt: skip
    transmit_checksum_offload: bool | None = spec("checksum offload, transmit", default=None,
                                                  key="transmit-checksum-offload")  # fmt: skip
    tcp_segmentation_offload: bool | None = spec("TCP segmentation offload (TSO)",
                                                 default=None,
                                                 key="tcp-segmentation-offload")  # fmt: skip
    tcp6_segmentation_offload: bool | None = spec("TCP6 segmentation offload", default=None,
                                                  key="tcp6-segmentation-offload")  # fmt: skip
    generic_segmentation_offload: bool | None = spec(
        "generic segmentation offload (GSO)", default=None,
        key="generic-segmentation-offload")  # fmt: skip
    generic_receive_offload: bool | None = spec("generic receive offload (GRO)", default=None,
                                                key="generic-receive-offload")  # fmt: skip
    large_receive_offload: bool | None = spec("large receive offload (LRO)", default=None,
                                              key="large-receive-offload")  # fmt: skip

    def offload(self) -> dict[str, bool]:
        """The offload settings given, by netplan's name."""
        values = {f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in values.items() if k.endswith("-offload") and v is not None}


@dataclass(kw_only=True)
class BondParameters:
    """Bonding driver options, as netplan spells them; intervals in milliseconds."""

    mode: Literal[BOND_MODES] | None = spec(  # type: ignore[valid-type]
        "bonding mode (the kernel's default: balance-rr)", default=None)  # fmt: skip
    lacp_rate: Literal["slow", "fast"] | None = spec("802.3ad LACP rate", default=None,
                                                     key="lacp-rate")  # fmt: skip
    mii_monitor_interval: int | None = spec("link check interval in ms", default=None,
                                            key="mii-monitor-interval", minimum=0,
                                            maximum=2**31 - 1)  # fmt: skip
    min_links: int | None = spec("members up before the bond is up", default=None,
                                 key="min-links", minimum=0, maximum=2**31 - 1)  # fmt: skip
    transmit_hash_policy: str | None = spec(
        "hash policy for balance-xor/802.3ad/balance-tlb (layer2, layer3+4, ...)",
        default=None, key="transmit-hash-policy")  # fmt: skip
    ad_select: Literal["stable", "bandwidth", "count"] | None = spec(
        "802.3ad aggregator selection", default=None, key="ad-select")  # fmt: skip
    all_members_active: bool | None = spec("deliver frames received on inactive members",
                                           default=None, key="all-members-active")  # fmt: skip
    all_slaves_active: bool | None = spec("older name of all-members-active", default=None,
                                          key="all-slaves-active")  # fmt: skip
    arp_interval: int | None = spec("ARP link check interval in ms", default=None,
                                    key="arp-interval", minimum=0, maximum=2**31 - 1)  # fmt: skip
    arp_ip_targets: list[str] = spec("addresses to ARP for the link check", factory=list,
                                     key="arp-ip-targets", check=_ip)  # fmt: skip
    arp_validate: Literal["none", "active", "backup", "all"] | None = spec(
        "which ARP replies validate a member", default=None, key="arp-validate")  # fmt: skip
    arp_all_targets: Literal["any", "all"] | None = spec(
        "ARP targets that must answer", default=None, key="arp-all-targets")  # fmt: skip
    up_delay: int | None = spec("ms before a member that came up is used", default=None,
                                key="up-delay", minimum=0, maximum=2**31 - 1)  # fmt: skip
    down_delay: int | None = spec("ms before a member that went down is dropped",
                                  default=None, key="down-delay", minimum=0,
                                  maximum=2**31 - 1)  # fmt: skip
    fail_over_mac_policy: Literal["none", "active", "follow"] | None = spec(
        "MAC address on failover (active-backup)", default=None,
        key="fail-over-mac-policy")  # fmt: skip
    gratuitous_arp: int | None = spec("gratuitous ARPs sent after failover", default=None,
                                      key="gratuitous-arp", minimum=1, maximum=255)  # fmt: skip
    gratuitious_arp: int | None = spec("netplan's misspelling of gratuitous-arp",
                                       default=None, key="gratuitious-arp", minimum=1,
                                       maximum=255)  # fmt: skip
    packets_per_member: int | None = spec("packets per member (balance-rr)", default=None,
                                          key="packets-per-member", minimum=0,
                                          maximum=65535)  # fmt: skip
    packets_per_slave: int | None = spec("older name of packets-per-member", default=None,
                                         key="packets-per-slave", minimum=0,
                                         maximum=65535)  # fmt: skip
    primary_reselect_policy: Literal["always", "better", "failure"] | None = spec(
        "when the primary becomes active again", default=None,
        key="primary-reselect-policy")  # fmt: skip
    resend_igmp: int | None = spec("IGMP reports sent after failover", default=None,
                                   key="resend-igmp", minimum=0, maximum=255)  # fmt: skip
    learn_packet_interval: int | None = spec("seconds between learning packets (balance-alb)",
                                             default=None, key="learn-packet-interval",
                                             minimum=1, maximum=2**31 - 1)  # fmt: skip
    primary: str | None = spec("preferred member (active-backup)", default=None)

    def validate(self, path: Path) -> None:
        for new, old in SPELLINGS.items():
            if getattr(self, new) is not None and getattr(self, old) is not None:
                raise ConfigError(
                    (*path, old.replace("_", "-")),
                    f"{old.replace('_', '-')} and {new.replace('_', '-')} are the same "
                    "option: give one",
                )

    def values(self) -> dict[str, object]:
        """Set options by netplan's current name (older spellings folded in)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SPELLINGS.values() or value is None or value == []:
                continue
            out[f.name] = value
        for new, old in SPELLINGS.items():
            if getattr(self, old) is not None:
                out[new] = getattr(self, old)
        return {k.replace("_", "-"): v for k, v in out.items()}


# netplan's current name -> the other spelling it accepts (older, or its own typo)
SPELLINGS = {"all_members_active": "all_slaves_active", "packets_per_member": "packets_per_slave",
             "gratuitous_arp": "gratuitious_arp"}  # fmt: skip


@dataclass(kw_only=True)
class Bond(Interface):
    """A bond of ethernets."""

    interfaces: list[str] = spec("member ethernets (their keys under ethernets)",
                                 factory=list)  # fmt: skip
    parameters: BondParameters | None = spec("bonding options", default=None)


@dataclass(kw_only=True)
class BridgeParameters:
    """Bridge options, as netplan spells them; times in seconds."""

    ageing_time: int | None = spec("seconds a learned MAC address is kept", default=None,
                                   key="ageing-time", minimum=0, maximum=2**31 - 1)  # fmt: skip
    priority: int | None = spec("bridge priority in root election (lower wins)", default=None,
                                minimum=0, maximum=65535)  # fmt: skip
    port_priority: dict[str, int] = spec("per member: port priority (0-63)", factory=dict,
                                         key="port-priority", minimum=0,
                                         maximum=63)  # fmt: skip
    forward_delay: int | None = spec("seconds in listening and learning states (STP)",
                                     default=None, key="forward-delay", minimum=0,
                                     maximum=2**31 - 1)  # fmt: skip
    hello_time: int | None = spec("seconds between hello packets (STP)", default=None,
                                  key="hello-time", minimum=0, maximum=2**31 - 1)  # fmt: skip
    max_age: int | None = spec("seconds a hello packet is valid (STP)", default=None,
                               key="max-age", minimum=0, maximum=2**31 - 1)  # fmt: skip
    path_cost: dict[str, int] = spec("per member: STP path cost", factory=dict,
                                     key="path-cost", minimum=1,
                                     maximum=2**32 - 1)  # fmt: skip
    stp: bool | None = spec("run the spanning tree protocol", default=None)


@dataclass(kw_only=True)
class Bridge(Interface):
    """A bridge over ethernets, bonds or VLANs."""

    interfaces: list[str] = spec("member interfaces (their keys)", factory=list)
    parameters: BridgeParameters | None = spec("bridge options", default=None)


@dataclass(kw_only=True)
class Vlan(Interface):
    """An 802.1Q VLAN on top of another interface."""

    id: int = spec("VLAN id", minimum=0, maximum=4094)
    link: str = spec("the interface (key) the VLAN sits on")


@dataclass(kw_only=True)
class Network:
    """Network configuration in netplan / cloud-init v2 format."""

    __rejected_keys__ = NETWORK_OUT_OF_SCOPE

    version: Literal[2] = spec(
        "format version: 2 (netplan); 1 (cloud-init network-config v1) is converted to 2",
        default=2,
    )
    renderer: str | None = spec(
        "network stack to write for, instead of the one detected in the guest",
        default=None,
        choices=_renderers,
    )
    ethernets: dict[str, Ethernet] = spec("physical NICs by logical name", factory=dict)
    bonds: dict[str, Bond] = spec("bonded interfaces by name", factory=dict)
    bridges: dict[str, Bridge] = spec("bridges by name", factory=dict)
    vlans: dict[str, Vlan] = spec("VLAN interfaces by name", factory=dict)

    @classmethod
    def __convert__(cls, value: object, path: Path) -> Network | None:
        """cloud-init's v1 converted and loaded as v2 (errors name the v1 key); None for
        v2, which loads as it is."""
        version = value.get("version", 2) if isinstance(value, dict) else 2
        if version == 2 and type(version) is int:
            return None
        if version != 1 or type(version) is not int:
            raise ConfigError(
                (*path, "version"),
                f"network version {version!r}: versions 1 (cloud-init network-config v1) "
                "and 2 (netplan) are accepted",
            )
        from . import netv1
        from .schema import load

        assert isinstance(value, dict)
        v2, conv = netv1.convert(value, path)
        try:
            return load(cls, v2, path)
        except ConfigError as exc:
            for error in exc.errors:
                error.path = conv.v1_path(error.path)
            exc.path = exc.errors[0].path
            raise

    def all(self) -> list[tuple[str, str, Interface]]:
        """(section, key, interface) for every interface, in config order."""
        return [
            *(("ethernets", k, v) for k, v in self.ethernets.items()),
            *(("bonds", k, v) for k, v in self.bonds.items()),
            *(("bridges", k, v) for k, v in self.bridges.items()),
            *(("vlans", k, v) for k, v in self.vlans.items()),
        ]

    def validate(self, path: Path) -> None:
        check_network(self, path)
