"""Debian's ifupdown (Debian, Ubuntu before netplan): our own stanzas in
/etc/network/interfaces.d/90-vmtailor, and the template's stanzas for its NICs taken out of
/etc/network/interfaces (and of the files it sources), everything else kept byte for byte.

Why a file of our own rather than rewriting /etc/network/interfaces: the template may
configure more than its NICs there (lo, a bridge, a tunnel, hook options), and a whole
rewrite would lose them. When interfaces doesn't already source our file (wheezy's has no
`source` line; Ubuntu's used `source /etc/network/interfaces.d/*.cfg`, which misses a file
without the .cfg suffix, while `source-directory` skips one *with* a dot), clean_stale
appends a `source` line for exactly that file. ifupdown 0.6 (Debian 6, Ubuntu before 14.04)
knows neither `source` nor CIDR addresses: there the whole file is written, with `netmask`."""

from __future__ import annotations

import fnmatch
import posixpath
import re

from ...plan import Plan
from .. import bond, dns, eni, naming
from ..state import Device, NetworkState
from . import register
from .base import File, GuestFacts, Renderer

INTERFACES = "/etc/network/interfaces"
OURS = "/etc/network/interfaces.d/90-vmtailor"
SOURCE_LINE = f"# Added by vmtailor: the config's network key\nsource {OURS}\n"
IFENSLAVE = ("/etc/network/if-pre-up.d/ifenslave", "/sbin/ifenslave", "/usr/sbin/ifenslave")
ADDRESSING = ("address", "netmask", "gateway", "metric")
DHCLIENT = ("/sbin/dhclient", "/usr/sbin/dhclient")
BRIDGE_UTILS = ("/lib/bridge-utils/ifupdown.sh", "/etc/network/if-pre-up.d/bridge")
BRIDGE_OPTIONS = {"ageing-time": "bridge-ageing", "priority": "bridge-bridgeprio",
                  "forward-delay": "bridge-fd", "hello-time": "bridge-hello",
                  "max-age": "bridge-maxage", "stp": "bridge-stp"}  # fmt: skip


def _version(facts: GuestFacts) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", facts.version)[:2])


def legacy(facts: GuestFacts) -> bool:
    """ifupdown 0.6: no `source`, no `address a/prefix`, one stanza per family. Debian 7's
    0.7.8 has all three (its inet.defn derives the netmask: `address compute_v4_mask`)."""
    v = _version(facts)
    if not v:
        return False
    return (facts.family == "debian" and v < (7,)) or (facts.family == "ubuntu" and v < (14,))


def has_patterns(facts: GuestFacts) -> bool:
    """ifupdown ≥ 0.8.20 (Debian 10, Ubuntu 20.04) matches interfaces by glob on auto lines."""
    v = _version(facts)
    if not v or facts.family not in ("debian", "ubuntu"):
        return True
    return v >= ((10,) if facts.family == "debian" else (20, 4))


def bond_options(dev: Device, state: NetworkState) -> list[tuple[str, str]]:
    """bond-* options: the driver's sysfs names, as ifenslave and ifupdown-ng read them."""
    return [
        (f"bond-{name.replace('_', '-')}", value)
        for name, value in bond.kernel_options(dev, state, list_sep=" ")
    ]


def bridge_options(
    dev: Device, state: NetworkState, stp: tuple[str, str] = ("on", "off")
) -> list[tuple[str, str]]:
    """bridge-* options, as bridge-utils (and ifupdown-ng, whose stp wants yes/no) read
    them."""
    out = [("bridge-ports", " ".join(dev.bridge_members) or "none")]
    for key, value in dev.bridge_params.items():
        value = stp[0 if value else 1] if isinstance(value, bool) else value
        out.append((BRIDGE_OPTIONS[key], str(value)))
    ports = [d for d in state.devices if d.bridge_master == dev.name]
    for option, attr in (("bridge-pathcost", "port_cost"), ("bridge-portprio", "port_priority")):
        pairs = [f"{d.name} {getattr(d, attr)}" for d in ports if getattr(d, attr) is not None]
        if pairs:
            out.append((option, " ".join(pairs)))
    return out


def _block(dev: Device, state: NetworkState, facts: GuestFacts) -> eni.Block:
    if dev.bond_master:
        member = eni.Stanza(dev.name, "inet", "manual", [("bond-master", dev.bond_master)])
        member.options.extend(bond_options(dev, state))
        return eni.Block(dev.name, [member], _start(dev))
    if dev.bridge_master:  # bridge-utils puts the port in its bridge; no IP of its own
        stanzas = [eni.Stanza(dev.name, "inet", "manual")]
    else:
        stanzas = eni.address_stanzas(dev, legacy=legacy(facts))
        _ipv6_ra(dev, stanzas)
    first = stanzas[0]
    head: list[tuple[str, str]] = []
    if dev.kind == "bond":
        head.append(("bond-slaves", "none"))  # members name their master: hotplug-safe
        head.extend(bond_options(dev, state))
    elif dev.kind == "bridge":
        head.extend(bridge_options(dev, state))
    elif dev.kind == "vlan":
        # iproute2 makes the VLAN whatever its name; the vlan package knows only vlanN, X.N
        head.append(("vlan-raw-device", str(dev.vlan_link)))
        create = f"ip link add link {dev.vlan_link} name {dev.name} type vlan id {dev.vlan_id}"
        head.append(("pre-up", f"[ -d /sys/class/net/{dev.name} ] || {create}"))
        head.append(("post-down", f"ip link delete dev {dev.name} 2>/dev/null || true"))
    if dev.set_mac:
        head.append(("hwaddress", dev.set_mac))
    if dev.mtu and first.method == "static":
        head.append(("mtu", str(dev.mtu)))
    elif dev.mtu:  # only static (and 0.8's manual) take `mtu`; this works for every method
        first.add("up", f"ip link set dev {dev.name} mtu {dev.mtu}")
    if dev.dns:
        head.append(("dns-nameservers", " ".join(str(a) for a in dev.dns)))
    if dev.search:
        head.append(("dns-search", " ".join(dev.search)))
    # addressing first, then the rest, then the commands: the order people write them in
    addressing = [o for o in first.options if o[0] in ADDRESSING]
    first.options = addressing + head + [o for o in first.options if o[0] not in ADDRESSING]
    if not dev.is_glob:
        return eni.Block(dev.name, stanzas, _start(dev))
    # a glob: the stanza is a logical name that ifupdown maps each matching NIC to, and
    # commands must name the NIC itself, which ifupdown passes as $IFACE
    own = re.compile(rf"\bdev {re.escape(dev.name)}(?=\s|$)")
    for stanza in stanzas:
        stanza.options = [(k, own.sub("dev $IFACE", v)) for k, v in stanza.options]
    return eni.Block(f"/{dev.match_name}={dev.name}", stanzas, _start(dev))


def _start(dev: Device) -> str:
    # `auto` makes boot (network-online) wait for the NIC; optional ones come as they appear
    return "allow-hotplug" if dev.optional else "auto"


def _ipv6_ra(dev: Device, stanzas: list[eni.Stanza]) -> None:
    """ifupdown turns router advertisements off for inet6 static: say so when asked for."""
    six = [s for s in stanzas if s.family == "inet6"]
    if dev.accept_ra and not six:
        stanzas.append(eni.Stanza(dev.name, "inet6", "auto"))
    for stanza in six:
        if dev.accept_ra is not None:
            stanza.add("accept_ra", 1 if dev.accept_ra else 0)
        if dev.accept_ra and stanza.method == "static":
            stanza.add("autoconf", 1)


@register
class Ifupdown(Renderer):
    name = "ifupdown"
    summary = "Debian ifupdown: /etc/network/interfaces.d/90-vmtailor"

    def render(self, state: NetworkState, facts: GuestFacts) -> dict[str, File]:
        blocks = [_block(dev, state, facts) for dev in _bring_up_order(state)]
        files: dict[str, File] = {}
        if legacy(facts):
            lo = eni.Block("lo", [eni.Stanza("lo", "inet", "loopback")])
            files[INTERFACES] = File(eni.render([lo, *blocks]))
        else:
            files[OURS] = File(eni.render(blocks))
        # ifupdown configures NICs by name: pin the names of those matched by MAC
        if (rules := naming.udev_rules(state, all_macs=True)) is not None:
            files[rules[0]] = rules[1]
        if (resolv := dns.resolv_conf(state)) is not None:
            files["/etc/resolv.conf"] = resolv
        return files

    def clean_stale(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> None:
        """Take the template's stanzas for physical NICs (and for every name the config
        now defines) out of /etc/network/interfaces and the files it sources, and make
        sure it sources our file."""
        if legacy(facts):
            return  # render() writes the whole file
        owned = {d.name for d in state.devices}

        def stale(name: str) -> bool:
            return name != "lo" and (name in owned or eni.is_physical(name))

        original = plan.read_text(INTERFACES)
        text = original if original is not None else "auto lo\niface lo inet loopback\n"
        for path in sourced_files(plan, text):
            old = plan.read_text(path)
            if path == OURS or old is None:
                continue
            new = eni.strip(old, stale)
            if not eni.has_stanzas(new):
                plan.delete(path)
            elif new != old:
                plan.write(path, new)
        new = eni.strip(text, stale)
        if not covers(new, OURS):
            new = new.rstrip("\n") + "\n\n" + SOURCE_LINE
        if original is None:
            if not plan.is_dir("/etc/network"):
                plan.mkdir("/etc/network")
            plan.write(INTERFACES, new, 0o644, 0, 0)
        elif new != original:
            plan.write(INTERFACES, new)

    def warnings(self, plan: Plan, state: NetworkState, facts: GuestFacts) -> list[str]:
        out = []
        bonds = [d.name for d in state.by_kind("bond")]
        if bonds and not any(plan.exists(p) for p in IFENSLAVE):
            out.append(
                f"network: bond {', '.join(bonds)} needs the ifenslave package, which the "
                "guest lacks (no /etc/network/if-pre-up.d/ifenslave): install it, or the "
                "bond won't come up"
            )
        bridges = [d.name for d in state.by_kind("bridge")]
        if bridges and not any(plan.exists(p) for p in BRIDGE_UTILS):
            out.append(
                f"network: bridge {', '.join(bridges)} needs the bridge-utils package, which "
                "the guest lacks (no /lib/bridge-utils/ifupdown.sh): install it, or the "
                "bridge won't come up"
            )
        if any(d.dhcp6 for d in state.devices) and not any(plan.exists(p) for p in DHCLIENT):
            out.append(
                "network: dhcp6 with ifupdown runs `dhclient -6`, and the guest has no "
                "dhclient (isc-dhcp-client): install it, or IPv6 only comes from router "
                "advertisements"
            )
        for dev in state.by_kind("ethernet"):
            if dev.is_glob and not has_patterns(facts):
                out.append(
                    f"network.ethernets.{dev.key}: the guest's ifupdown is older than 0.8.20 "
                    f"and can't match {dev.match_name!r} by pattern; name the NIC or match "
                    "it by macaddress"
                )
        return out


def _bring_up_order(state: NetworkState) -> list[Device]:
    """ifupdown brings `auto` interfaces up in file order, and bridge-utils can only add
    a port that exists: VLAN ports before their bridge, VLANs on a bridge after it."""
    bridges = {d.name for d in state.by_kind("bridge")}

    def rank(dev: Device) -> int:
        if dev.kind == "bridge":
            return 1
        return 2 if dev.kind == "vlan" and dev.vlan_link in bridges else 0

    return sorted(state.devices, key=rank)


def covers(text: str, path: str) -> bool:
    """Does a source / source-directory line of /etc/network/interfaces include `path`?"""
    for keyword, arg in eni.sources(text):
        arg = posixpath.join("/etc/network", arg)
        if keyword == "source" and fnmatch.fnmatchcase(path, arg):
            return True
        # source-directory takes only run-parts names: no dot, so not *.cfg or *.dpkg-old
        if keyword == "source-directory" and posixpath.dirname(path) == arg.rstrip("/"):
            if re.fullmatch(r"[a-zA-Z0-9_-]+", posixpath.basename(path)):
                return True
    return False


def sourced_files(plan: Plan, text: str) -> list[str]:
    """The files /etc/network/interfaces pulls in (one level: the template's own)."""
    out: list[str] = []
    for keyword, arg in eni.sources(text):
        arg = posixpath.join("/etc/network", arg)
        folder = arg.rstrip("/") if keyword == "source-directory" else posixpath.dirname(arg)
        if not plan.is_dir(folder) or any(c in folder for c in "*?["):
            continue
        for name in plan.listdir(folder):
            path = posixpath.join(folder, name)
            if covers(f"{keyword} {arg}\n", path) and plan.is_file(path) and path not in out:
                out.append(path)
    return out
