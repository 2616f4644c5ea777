"""network: accepted and validated as netplan v2; rendering per network stack comes next
(see the network issue). Until then apply says so instead of silently doing nothing."""

from ..context import Context
from .registry import operation


@operation("network", ("network",), 20, "network configuration (netplan v2 format)")
def plan(ctx: Context) -> None:
    ctx.warnings.append(
        "network: this vmtailor validates the network key but does not write network "
        "configuration yet; the guest's network files are unchanged"
    )
