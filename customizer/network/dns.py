"""DNS in the place that owns it: a plain /etc/resolv.conf stays a plain file; a symlinked
one belongs to systemd-resolved, NetworkManager or resolvconf and is never written through
(it would land in /run, which the guest empties at boot)."""

from __future__ import annotations

from .renderers.base import File
from .state import NetworkState

HEADER = "# Written by vmtailor from the config's network key.\n"


def resolv_conf(state: NetworkState) -> File | None:
    if not state.dns and not state.search:
        return None
    lines = [HEADER.rstrip("\n")]
    if state.search:
        lines.append("search " + " ".join(state.search))
    lines.extend(f"nameserver {a}" for a in state.dns[:3])  # the resolver reads three
    return File("\n".join(lines) + "\n")


def resolved_dropin(state: NetworkState) -> tuple[str, File] | None:
    """A resolved.conf drop-in for stacks that can't hand DNS to systemd-resolved."""
    if not state.dns and not state.search:
        return None
    lines = [HEADER.rstrip("\n"), "[Resolve]"]
    if state.dns:
        lines.append("DNS=" + " ".join(str(a) for a in state.dns))
    if state.search:
        lines.append("Domains=" + " ".join(state.search))
    return "/etc/systemd/resolved.conf.d/90-vmtailor.conf", File("\n".join(lines) + "\n")
