"""The interfaces(5) format read by Debian's ifupdown and Alpine's ifupdown-ng: stanzas
built from a device's addresses and routes, written out as text; and the template's
stanzas for NICs taken out of an existing file, with every other line kept as it was."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .state import Device, Route

INDENT = "    "
HEADER = "# Written by vmtailor from the config's network key.\n"


@dataclass
class Stanza:
    """One iface stanza of /etc/network/interfaces, as written."""

    name: str
    family: str  # "inet" or "inet6"
    method: str  # "static", "dhcp", "manual", "auto", "loopback"
    options: list[tuple[str, str]] = field(default_factory=list)

    def add(self, key: str, value: object) -> None:
        if value is not None:
            self.options.append((key, str(value)))

    def text(self) -> str:
        lines = [f"iface {self.name} {self.family} {self.method}"]
        lines.extend(f"{INDENT}{key} {value}" for key, value in self.options)
        return "\n".join(lines) + "\n"


@dataclass
class Block:
    """One interface: the line that starts it at boot, then its stanzas."""

    name: str
    stanzas: list[Stanza]
    start: str = "auto"  # or "allow-hotplug"

    def text(self) -> str:
        return f"{self.start} {self.name}\n" + "\n".join(s.text() for s in self.stanzas)


def render(blocks: list[Block], header: str = HEADER) -> str:
    return header + "".join("\n" + b.text() for b in blocks)


def route_command(route: Route, dev: str) -> str:
    """An idempotent `ip route` for an up line: `replace` doesn't fail when an earlier
    ifup already added the route, where `add` would abort the interface."""
    words = ["ip -6" if route.version == 6 else "ip", "route replace"]
    words.append("default" if route.is_default else route.network())
    if route.via is not None:
        words.append(f"via {route.via}")
    if route.metric is not None:
        words.append(f"metric {route.metric}")
    words.append(f"dev {dev}")
    if route.on_link:
        words.append("onlink")
    return " ".join(words)


def address_stanzas(
    dev: Device, *, legacy: bool = False, dhcp6: str = "dhcp", gateway_metric: bool = True
) -> list[Stanza]:
    """inet/inet6 stanzas for the device's DHCP, addresses and routes; `iface X inet manual`
    when it has none. Static before DHCP per family: ifupdown applies them in file order,
    and the inet6 dhcp stanza must be the one that leaves router advertisements on.

    legacy: ifupdown 0.6 wants the prefix as `netmask` and one stanza per family.
    dhcp6: the method that stands for DHCPv6 (ifupdown-ng has no DHCPv6 of its own).
    gateway_metric: the stack's `metric` option is per family (false for ifupdown-ng,
    where one `metric` applies to the gateways of both families)."""
    out: list[Stanza] = []
    orphans: list[str] = []  # routes of a family the device has no stanza for
    for version, family in ((4, "inet"), (6, "inet6")):
        stanzas: list[Stanza] = []
        routes = list(dev.routes_v(version))
        addresses = dev.addresses_v(version)
        gw = _gateway(routes, gateway_metric) if addresses else None
        # the gateway goes with the address whose subnet holds it (ifupdown 0.7 adds the
        # route without `onlink`), else with the first; legacy's one stanza adds the other
        # addresses after its gateway, so there such a gateway becomes a route command
        home = next((a for a in addresses if gw and gw.via in a.network), None)
        home = home or (addresses[0] if addresses else None)
        if legacy and addresses and home != addresses[0]:
            gw = None
        for address in addresses:
            if stanzas and legacy:
                stanzas[0].add("up", f"ip addr add {address} dev {dev.name}")
                continue
            stanza = Stanza(dev.name, family, "static")
            if legacy:
                stanza.add("address", address.ip)
                mask = address.netmask if version == 4 else address.network.prefixlen
                stanza.add("netmask", mask)
            else:
                stanza.add("address", address)
            if gw is not None and address == home:
                routes.remove(gw)
                stanza.add("gateway", gw.via)
                stanza.add("metric", gw.metric)
            stanzas.append(stanza)
        if dev.dhcp4 if version == 4 else dev.dhcp6:
            stanzas.append(Stanza(dev.name, family, "dhcp" if version == 4 else dhcp6))
        # routes last: after every address of the family, their gateways are reachable
        commands = [route_command(r, dev.name) for r in routes]
        if stanzas:
            stanzas[-1].options.extend(("up", c) for c in commands)
        else:
            orphans.extend(commands)
        out.extend(stanzas)
    if not out:
        out.append(Stanza(dev.name, "inet", "manual"))
    out[0].options.extend(("up", c) for c in orphans)
    return out


def _gateway(routes: list[Route], with_metric: bool) -> Route | None:
    for route in routes:
        if route.is_default and route.via and not route.on_link:
            if route.metric is None or with_metric:
                return route
    return None


# -- taking the template's stanzas out -------------------------------------------------
STARTS = ("iface", "mapping", "template", "auto", "source", "source-directory", "rename",
          "no-auto-down", "no-scripts")  # fmt: skip
STANZAS = ("iface", "mapping", "template")
# options naming other interfaces: a bond over stale NICs, a VLAN on one, a bridge port
REFERENCES = ("bond-slaves", "bond-members", "slaves", "bond-master", "vlan-raw-device",
              "bridge_ports", "bridge-ports", "requires")  # fmt: skip
# names the kernel, udev or biosdevname give ethernet NICs (eth0, ens3, enp0s3, em1, p1p1)
PHYSICAL = re.compile(r"^(eth\d+|en[a-z0-9]+|em\d+|p\d+p\d+\S*)$")


def is_physical(name: str) -> bool:
    return bool(PHYSICAL.match(name))


@dataclass
class _Line:
    """One logical line of an interfaces file, as read."""

    raw: str  # one logical line, continuations included, with its newline
    kind: str  # "start", "option", "comment", "blank"
    words: list[str]
    indented: bool


def _lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    raw = ""
    for physical in text.splitlines(keepends=True):
        raw += physical
        if physical.rstrip("\n").endswith("\\"):
            continue  # a continued line: ifupdown joins it with the next
        stripped = raw.strip()
        words = stripped.replace("\\\n", " ").split()
        indented = raw[:1].isspace() and bool(stripped)
        if not stripped:
            kind = "blank"
        elif stripped.startswith("#"):
            kind = "comment"
        elif words[0] in STARTS or words[0].startswith("allow-"):
            kind = "start"
        else:
            kind = "option"
        out.append(_Line(raw, kind, words, indented))
        raw = ""
    if raw:
        out.append(_Line(raw, "option", raw.split(), True))
    return out


def strip(text: str, stale: Callable[[str], bool]) -> str:
    """The file without the stanzas (and the names on auto/allow- lines) of interfaces
    `stale` picks, of their VLANs and aliases, and of bonds, bridges and VLANs built on
    them. A comment heading a removed stanza goes with it; all else stays byte for byte."""
    lines = _lines(text)
    gone = _stale_stanzas(lines, stale)

    def stale_word(word: str) -> bool:
        base = re.split(r"[.:=]", word)[0]
        return word in gone or base in gone or stale(word) or stale(base)

    out: list[str | None] = []  # None marks where something was taken out
    dropping = False
    for line in lines:
        if line.kind == "start":
            keyword, names = line.words[0], line.words[1:]
            dropping = False
            if keyword in STANZAS:
                dropping = any(stale_word(n) for n in names[:1])
                if not dropping:
                    out.append(line.raw)
                    continue
                _drop_heading(out)
                out.append(None)
            elif keyword in ("source", "source-directory"):
                out.append(line.raw)
            else:
                keep = [n for n in names if not any(stale_word(p) for p in n.split("="))]
                if len(keep) == len(names):
                    out.append(line.raw)
                elif keep:
                    out.append(" ".join([keyword, *keep]) + "\n")
                else:
                    _drop_heading(out)
                    out.append(None)
        elif line.kind == "option" or (line.kind == "comment" and line.indented):
            if not dropping:
                out.append(line.raw)
        else:
            out.append(line.raw)
    return _join(out)


def _stale_stanzas(lines: list[_Line], stale: Callable[[str], bool]) -> set[str]:
    """Stanza names to remove: those `stale` picks, and (until nothing changes) those whose
    options name a removed interface — a bond of the template's NICs, a VLAN on one."""
    refs: dict[str, set[str]] = {}
    current: str | None = None
    for line in lines:
        if line.kind == "start":
            current = line.words[1] if line.words[0] in STANZAS and len(line.words) > 1 else None
            if current is not None:
                refs.setdefault(current, set())
        elif line.kind == "option" and current is not None and line.words[0] in REFERENCES:
            refs[current].update(line.words[1:])
    gone = {n for n in refs if stale(n) or stale(re.split(r"[.:]", n)[0])}
    changed = True
    while changed:
        changed = False
        for name, names in refs.items():
            if name not in gone and any(n in gone or stale(n) for n in names):
                gone.add(name)
                changed = True
    return gone


def _drop_heading(out: list[str | None]) -> None:
    """Take back the comment lines directly above a removed line: they describe it."""
    while out and out[-1] is not None and out[-1][:1] == "#":
        out.pop()


def _join(out: list[str | None]) -> str:
    """Lines back to text, with no doubled or trailing blank lines where a stanza went."""
    lines: list[str] = []
    after_removal = False
    for line in out:
        if line is None:
            after_removal = True
            continue
        blank = not line.strip()
        if after_removal and blank and (not lines or not lines[-1].strip()):
            continue
        if not blank:
            after_removal = False
        lines.append(line)
    if after_removal:
        while lines and not lines[-1].strip():
            lines.pop()
    text = "".join(lines)
    return text if not text or text.endswith("\n") else text + "\n"


def has_stanzas(text: str) -> bool:
    """Does the file still configure anything (not just comments and blank lines)?"""
    return any(line.kind in ("start", "option") for line in _lines(text))


def sources(text: str) -> list[tuple[str, str]]:
    """(keyword, argument) of each `source` / `source-directory` line."""
    return [
        (line.words[0], line.words[1])
        for line in _lines(text)
        if line.kind == "start"
        and line.words[0] in ("source", "source-directory")
        and len(line.words) > 1
    ]
