"""Which network stack to write for: the one the *guest* has enabled (never the host's),
or the one the config names."""

from __future__ import annotations

from ..detect import Guest
from ..errors import PlanError
from .stacks import PREFERENCE

SPELLINGS = {"NetworkManager": "networkmanager", "NM": "networkmanager"}


def _major(version: str) -> int:
    head = version.split(".")[0]
    return int(head) if head.isdigit() else 0


def choose(guest: Guest, requested: str | None) -> tuple[str, str]:
    """(renderer name, why) for this guest."""
    if requested:
        return SPELLINGS.get(requested, requested), "network.renderer in the config"
    enabled = {n["stack"]: n for n in guest.network if n["enabled"]}
    installed = {n["stack"]: n for n in guest.network}
    if guest.family.name == "rhel" and 0 < _major(guest.version) < 9:
        # EL ≤ 8 keeps ifcfg files; NetworkManager (EL 7/8) reads them with ifcfg-rh
        if "network-scripts" in installed or "networkmanager" in enabled:
            return "network-scripts", f"{guest.pretty_name}: ifcfg files (EL < 9)"
    for name in PREFERENCE:
        if name in enabled:
            return name, f"{name} is enabled in the guest ({enabled[name]['evidence']})"
    looked = (
        "netplan, NetworkManager, systemd-networkd, wicked, network-scripts, ifupdown, "
        "Alpine ifupdown-ng"
    )
    found = ", ".join(f"{n['stack']} (not enabled)" for n in guest.network) or "none installed"
    raise PlanError(
        f"cannot tell which network stack the guest uses: looked for {looked}; found {found}",
        hint="name one with network.renderer",
    )
