"""Everything vmtailor knows about one network stack, in one record: how detection tells
it is installed and running, where it stands when several are, which renderer module
writes for it and how it handles DNS. detect.py, network/select.py, the renderer
registry and the network operation all read this table; it imports nothing, so the
config, the state and the renderers can all import it without a cycle."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stack:
    name: str  # network.renderer's value
    families: tuple[str, ...]  # OS families the stack can appear in ("" for any)
    markers: tuple[str, ...]  # any of these present: installed
    units: tuple[str, ...] = ()  # systemd units that, enabled, mean it runs
    sysv: str | None = None  # SysV/OpenRC service name that, enabled, means it runs
    preference: int = 0  # when several are enabled, the lowest owns the NICs
    module: str = ""  # the renderer's module in network/renderers/
    resolved_dns: bool = False  # hands per-link DNS to systemd-resolved itself


# in detection order (what `vmtailor inspect` lists); preference decides between them:
# netplan generates NetworkManager's or networkd's config, NetworkManager wins over
# networkd, and so on
STACKS = (
    Stack("networkmanager", ("",), ("/usr/sbin/NetworkManager",), ("NetworkManager.service",),
          "NetworkManager", 1, "networkmanager", resolved_dns=True),
    Stack("netplan", ("",), ("/usr/sbin/netplan",), preference=0, module="netplan",
          resolved_dns=True),
    Stack("networkd", ("",),
          ("/lib/systemd/systemd-networkd", "/usr/lib/systemd/systemd-networkd"),
          ("systemd-networkd.service",), None, 2, "networkd", resolved_dns=True),
    # wicked, and before it SLES 11's sysconfig ifup: both read the same ifcfg files
    Stack("wicked", ("suse",), ("/usr/sbin/wicked", "/etc/sysconfig/network/config"),
          ("wicked.service", "network.service"), "network", 3, "wicked"),
    Stack("network-scripts", ("rhel", "fedora"),
          ("/etc/sysconfig/network-scripts/ifup-eth", "/etc/rc.d/init.d/network"),
          ("network.service",), "network", 4, "network_scripts"),
    Stack("ifupdown", ("debian", "ubuntu"), ("/sbin/ifup", "/usr/sbin/ifup"),
          ("networking.service",), "networking", 5, "ifupdown"),
    Stack("alpine", ("alpine",), ("/etc/network/interfaces",), (), "networking", 6, "alpine"),
)  # fmt: skip
BY_NAME = {s.name: s for s in STACKS}
PREFERENCE = tuple(s.name for s in sorted(STACKS, key=lambda s: s.preference))
