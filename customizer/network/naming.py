"""NIC names: pinning a MAC-matched NIC to its config name for stacks that configure
NICs by name, and spotting names that won't exist on the guest."""

from __future__ import annotations

import re

from .renderers.base import File
from .state import NetworkState

RULES = "/etc/udev/rules.d/70-vmtailor-net.rules"


def udev_rules(state: NetworkState, *, all_macs: bool = False) -> tuple[str, File] | None:
    """udev rules naming each MAC-matched NIC: those given set-name, and (for stacks that
    need a name) those whose kernel name can't be known offline."""
    lines = []
    for dev in state.by_kind("ethernet"):
        if dev.mac and (dev.set_name or (all_macs and dev.name_unknown)):
            # DRIVERS: only a device with a driver, the NIC itself. A VLAN (or macvlan) on
            # it shares its MAC, and udev would try to give it the NIC's name: the rename
            # fails, and udev drops the device (no .device unit; nothing waiting on it runs)
            lines.append(
                f'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", '
                f'ATTR{{address}}=="{dev.mac}", NAME="{dev.name}"'
            )
    if not lines:
        return None
    text = "# Written by vmtailor: NIC names from the config's network key.\n"
    return RULES, File(text + "\n".join(lines) + "\n")


CLASSIC = re.compile(r"^eth\d+$")
PREDICTABLE = re.compile(r"^(en|wl|ww)[a-z]\S*$")


def name_warnings(state: NetworkState, predictable: bool) -> list[str]:
    """Warnings for NICs matched by a literal name that the guest's naming scheme won't
    produce (eth0 on a guest with predictable names, ens3 on one without)."""
    out = []
    for dev in state.by_kind("ethernet"):
        if dev.mac or dev.is_glob:
            continue
        name = dev.match_name or dev.name
        if predictable and CLASSIC.match(name):
            out.append(
                f"network.ethernets.{dev.key}: the guest names NICs predictably (ens3, "
                f"enp0s3, …) so {name!r} may not exist; match by macaddress instead"
            )
        elif not predictable and PREDICTABLE.match(name):
            out.append(
                f"network.ethernets.{dev.key}: the guest uses classic NIC names (eth0, …) "
                f"so {name!r} may not exist; match by macaddress instead"
            )
    return out
