"""cloud-init on a clone: it sees a new instance id at first boot and renders the network
again from its datasource (or its DHCP fallback), writing over the config we just wrote
(50-cloud-init.yaml, 'cloud-init eth0.nmconnection'). Its documented switch turns that off."""

from __future__ import annotations

from ..plan import Plan

MARKERS = ("/usr/bin/cloud-init", "/etc/cloud/cloud.cfg")
DROPIN = "/etc/cloud/cloud.cfg.d/99-vmtailor-disable-network-config.cfg"
TEXT = (
    "# Written by vmtailor: the network config comes from vmtailor's network key, so\n"
    "# cloud-init must not render its own over it at first boot.\n"
    "network: {config: disabled}\n"
)


def disable_network_config(plan: Plan) -> bool:
    """Stage the drop-in when cloud-init is installed; True if it is."""
    if not any(plan.exists(m) for m in MARKERS):
        return False
    plan.mkdir("/etc/cloud/cloud.cfg.d")
    plan.write(DROPIN, TEXT, 0o644, 0, 0)
    return True
