"""netplan: one YAML file in /etc/netplan that sorts after the image's own, for the
backend (networkd or NetworkManager) the guest has enabled."""

from __future__ import annotations

import json
import posixpath
import re

from ...errors import PlanError
from ...plan import Plan
from ..state import OFFLOAD, Device, NetworkState
from . import register
from .base import File, GuestFacts, Renderer

DIR = "/etc/netplan"
# netplan reads /run, /etc and /lib, merging files in name order; a name in /etc shadows
# the same name in /lib (and /run shadows both, but /run is empty in an offline guest)
VENDOR = "/lib/netplan"
NAME = "90-vmtailor.yaml"
HEADER = "# Written by vmtailor from the config's network key.\n"
# keys whose devices are wired NICs or built on them: the template's were for its NICs
WIRED = re.compile(r"""(?:^|[\s{,])["']?(ethernets|bonds|bridges|vlans)["']?\s*:""", re.M)
PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
# YAML 1.1 reads these as booleans or null when left unquoted
RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if PLAIN.fullmatch(text) and text.lower() not in RESERVED:
        return text
    # a MAC is a base-60 integer to YAML 1.1 and "::" starts odd tokens: quote the rest
    return json.dumps(text)


def _yaml(mapping: dict, indent: int = 0) -> list[str]:
    """Block-style YAML for nested dicts, lists and scalars (None values left out)."""
    pad = "  " * indent
    lines = []
    for name, value in mapping.items():
        if value is None:
            continue
        key = _scalar(name)  # interface keys may be "10" or "eth0:1"
        if isinstance(value, dict):
            # a NIC with nothing set (a bond member, a VLAN's parent) must still be a
            # mapping: `enp3s0:` alone is null, and netplan then rejects the whole file
            value = {k: v for k, v in value.items() if v is not None}
            lines.append(f"{pad}{key}:" + ("" if value else " {}"))
            lines.extend(_yaml(value, indent + 1))
        elif isinstance(value, list):
            lines.append(f"{pad}{key}:" + ("" if value else " []"))
            for item in value:
                if isinstance(item, dict):
                    body = _yaml(item, indent + 2)
                    lines.append(f"{pad}  - {body[0].lstrip()}")
                    lines.extend(body[1:])
                else:
                    lines.append(f"{pad}  - {_scalar(item)}")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return lines


def _keys(state: NetworkState) -> dict[str, str]:
    """Kernel name -> config key: netplan refers to other interfaces by their key."""
    return {dev.name: dev.key for dev in state.devices}


def _match(dev: Device) -> dict | None:
    match = {"macaddress": dev.mac, "name": dev.match_name, "driver": dev.driver}
    match = {k: v for k, v in match.items() if v}
    if not match and dev.set_name:
        match = {"name": dev.key}  # set-name needs a match: the NIC the key names
    return match or None


def _interface(dev: Device) -> dict:
    accept_ra = dev.accept_ra
    if accept_ra is None and dev.addresses_v(6) and not dev.dhcp6:
        # static IPv6 only: no extra SLAAC address from router adverts (as networkd/NM do)
        accept_ra = False
    ns: dict = {"addresses": [str(a) for a in dev.dns], "search": list(dev.search)}
    return {
        "dhcp4": True if dev.dhcp4 else None,
        "dhcp6": True if dev.dhcp6 else None,
        "accept-ra": accept_ra,
        "addresses": [str(a) for a in dev.addresses] or None,
        "routes": [
            {
                "to": "default" if r.is_default else r.network(),
                "via": str(r.via) if r.via else None,
                "metric": r.metric,
                "on-link": True if r.on_link else None,
                **{k: str(v) if k == "from" else v for k, v in r.options.items()},
            }
            for r in dev.routes
        ]
        or None,
        "routing-policy": [
            {
                "from": r.source,
                "to": r.to,
                "table": r.table,
                "priority": r.priority,
                "mark": r.mark,
                "type-of-service": r.tos,
            }
            for r in dev.rules
        ]
        or None,
        "nameservers": {k: v for k, v in ns.items() if v} or None,
        "mtu": dev.mtu,
        "macaddress": dev.set_mac,
        "optional": True if dev.optional else None,
        "dhcp4-overrides": dict(dev.dhcp4_overrides) or None,
        "dhcp6-overrides": dict(dev.dhcp6_overrides) or None,
        "dhcp-identifier": dev.dhcp_identifier,
        "link-local": list(dev.link_local) if dev.link_local is not None else None,
        "ipv6-privacy": dev.ipv6_privacy,
        "ipv6-mtu": dev.ipv6_mtu,
        "wakeonlan": dev.wakeonlan,
        **dev.offload,
    }


def _bridge_params(bridge: Device, state: NetworkState) -> dict:
    """The bridge's own parameters, and its ports' (by key, as netplan names them)."""
    ports = [d for d in state.devices if d.bridge_master == bridge.name]
    cost = {d.key: d.port_cost for d in ports if d.port_cost is not None}
    priority = {d.key: d.port_priority for d in ports if d.port_priority is not None}
    out = {**bridge.bridge_params, "path-cost": cost, "port-priority": priority}
    return {k: v for k, v in out.items() if v or v is False}


def _network(state: NetworkState, facts: GuestFacts) -> dict:
    keys = _keys(state)
    ethernets: dict[str, dict] = {}
    bonds: dict[str, dict] = {}
    bridges: dict[str, dict] = {}
    vlans: dict[str, dict] = {}
    for dev in state.devices:
        if dev.kind == "ethernet":
            if dev.driver and facts.netplan_backend == "NetworkManager":
                # netplan generate would fail at every boot, leaving the guest offline
                raise PlanError(
                    f"network.ethernets.{dev.key}: netplan's NetworkManager backend cannot "
                    "match a NIC by driver",
                    hint="match it by macaddress or name instead",
                )
            ethernets[dev.key] = {
                "match": _match(dev),
                "set-name": dev.set_name,
                **_interface(dev),
            }
        elif dev.kind == "bond":
            bonds[dev.key] = {
                "interfaces": [keys[m] for m in dev.bond_members],
                "parameters": dict(dev.bond_params),  # primary is a key, as here
                **_interface(dev),
            }
        elif dev.kind == "bridge":
            bridges[dev.key] = {
                "interfaces": [keys[m] for m in dev.bridge_members],
                "parameters": _bridge_params(dev, state) or None,
                **_interface(dev),
            }
        elif dev.kind == "vlan":
            assert dev.vlan_link is not None
            vlans[dev.key] = {"id": dev.vlan_id, "link": keys[dev.vlan_link], **_interface(dev)}
    return {
        "version": 2,
        "renderer": facts.netplan_backend,
        "ethernets": ethernets or None,
        "bonds": bonds or None,
        "bridges": bridges or None,
        "vlans": vlans or None,
    }


def configures_wired(text: str) -> bool:
    """Does a netplan file define wired interfaces (at any nesting, in block or flow
    style)? Comment lines are skipped; no YAML parser needed (nor shipped)."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return WIRED.search(body) is not None


@register
class Netplan(Renderer):
    name = "netplan"
    summary = "netplan YAML in /etc/netplan (Ubuntu >= 18.04)"
    policy_routing = True
    extras = ("dhcp4-overrides", "dhcp6-overrides", "dhcp-identifier", "link-local",
              "ipv6-privacy", "ipv6-mtu", "wakeonlan", *OFFLOAD)  # fmt: skip

    def check(self, state: NetworkState, facts: GuestFacts) -> None:
        """netplan's NetworkManager backend (0.106) refuses routes that aren't unicast,
        failing `netplan generate` at every boot, and drops routing-policy and scope."""
        super().check(state, facts)
        if facts.netplan_backend != "NetworkManager":
            return
        for dev in state.devices:
            where = f"network.{dev.kind}s.{dev.key}"
            if dev.ipv6_mtu:
                raise PlanError(f"{where}.ipv6-mtu: netplan's NetworkManager backend has none")
            if dev.rules:
                raise PlanError(
                    f"{where}.routing-policy: netplan's NetworkManager backend drops it"
                )
            for i, route in enumerate(dev.routes):
                if route.type not in (None, "unicast") or route.scope:
                    what = "scope" if route.scope else f"{route.type} routes"
                    raise PlanError(
                        f"{where}.routes[{i}]: netplan's NetworkManager backend has no {what}"
                    )

    def render(self, state: NetworkState, facts: GuestFacts) -> dict[str, File]:
        text = "\n".join(_yaml({"network": _network(state, facts)})) + "\n"
        # netplan warns about config others can read (it may hold Wi-Fi and VPN secrets)
        return {f"{DIR}/{NAME}": File(HEADER + text, 0o600)}

    def clean_stale(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> None:
        """Netplan merges every file, so the template's own wired config (cloud-init's
        50-cloud-init.yaml pinned to the template's MAC) would still configure a NIC:
        remove it from /etc, shadow it in /lib, and stop cloud-init writing it again."""
        if plan.is_dir(DIR):
            for name in plan.listdir(DIR):
                path = posixpath.join(DIR, name)
                if name == NAME or not name.endswith(".yaml"):
                    continue
                if configures_wired(plan.read_text(path) or ""):
                    plan.delete(path)
        if plan.is_dir(VENDOR):
            # vendor files stay untouched: an empty file of the same name in /etc hides one
            for name in plan.listdir(VENDOR):
                text = plan.read_text(posixpath.join(VENDOR, name)) or ""
                if name.endswith(".yaml") and configures_wired(text):
                    plan.mkdir(DIR)
                    masked = f"{HEADER}# hides {VENDOR}/{name}\nnetwork: {{version: 2}}\n"
                    plan.write(posixpath.join(DIR, name), masked, 0o600, 0, 0)
        # the backend's own config for the same NICs would compete with netplan's output
        from . import RENDERERS

        backend = "networkmanager" if facts.netplan_backend == "NetworkManager" else "networkd"
        RENDERERS[backend].clean_stale(plan, state, facts)
