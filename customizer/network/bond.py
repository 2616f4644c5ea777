"""Bond parameters: netplan's names and what each stack calls them, in one table that
the config's keys, the network state and every renderer read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the config's v1 reader imports the table: no cycle through the state
    from .state import Device, NetworkState


@dataclass(frozen=True)
class Param:
    netplan: str
    networkd: str  # key in a .netdev's [Bond]
    kernel: str  # the bonding driver's sysfs name: NM's, ifcfg's and ifenslave's too
    unit: str = ""  # networkd time spans: netplan gives ms (s for learn-packet-interval)


PARAMS = (
    Param("mode", "Mode", "mode"),
    Param("lacp-rate", "LACPTransmitRate", "lacp_rate"),
    Param("mii-monitor-interval", "MIIMonitorSec", "miimon", "ms"),
    Param("min-links", "MinLinks", "min_links"),
    Param("transmit-hash-policy", "TransmitHashPolicy", "xmit_hash_policy"),
    Param("ad-select", "AdSelect", "ad_select"),
    Param("all-members-active", "AllSlavesActive", "all_slaves_active"),
    Param("arp-interval", "ARPIntervalSec", "arp_interval", "ms"),
    Param("arp-ip-targets", "ARPIPTargets", "arp_ip_target"),
    Param("arp-validate", "ARPValidate", "arp_validate"),
    Param("arp-all-targets", "ARPAllTargets", "arp_all_targets"),
    Param("up-delay", "UpDelaySec", "updelay", "ms"),
    Param("down-delay", "DownDelaySec", "downdelay", "ms"),
    Param("fail-over-mac-policy", "FailOverMACPolicy", "fail_over_mac"),
    Param("gratuitous-arp", "GratuitousARP", "num_grat_arp"),
    Param("packets-per-member", "PacketsPerSlave", "packets_per_slave"),
    Param("primary-reselect-policy", "PrimaryReselectPolicy", "primary_reselect"),
    Param("resend-igmp", "ResendIGMP", "resend_igmp"),
    Param("learn-packet-interval", "LearnPacketIntervalSec", "lp_interval", "s"),
    # networkd sets it on the member (PrimarySlave=true), not in the .netdev
    Param("primary", "", "primary"),
)
BY_NETPLAN = {p.netplan: p for p in PARAMS}


def _bond(dev: Device, state: NetworkState) -> Device:
    """The bond itself, for a bond or one of its members."""
    return next(d for d in state.devices if d.name == (dev.bond_master or dev.name))


def kernel_options(dev: Device, state: NetworkState, list_sep: str = ",") -> list[tuple[str, str]]:
    """(driver option, value) of a bond (or a member's bond): `primary` names a member by
    its config key, the driver wants its NIC name; booleans are 1/0."""
    names = {d.key: d.name for d in state.devices}
    out = []
    for key, value in _bond(dev, state).bond_params.items():
        if key == "primary":
            value = names.get(str(value), value)
        out.append((BY_NETPLAN[key].kernel, _text(value, list_sep)))
        if key == "gratuitous-arp":
            # one setting since Linux 3.0 (ARP and IPv6 NA alike), two names to NM, which
            # would otherwise set the kernel's value from whichever it writes last
            out.append(("num_unsol_na", _text(value, list_sep)))
    return out


def networkd_options(dev: Device) -> list[tuple[str, str]]:
    """[Bond] keys of a bond's .netdev."""
    out = []
    for key, value in dev.bond_params.items():
        param = BY_NETPLAN[key]
        if not param.networkd:
            continue
        text = _text(value, " ")
        out.append((param.networkd, f"{text}{param.unit}" if param.unit else text))
    return out


def _text(value: object, list_sep: str) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return list_sep.join(str(v) for v in value)
    return str(value)
