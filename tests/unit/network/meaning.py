"""What a stack's network files *mean*, read into one model, so that vmtailor's output can
be compared with what netplan itself generates from the same v2 document.

Both sides are read by the same parser (networkd units, NetworkManager keyfiles), so a
difference in the model is a difference in meaning, not in spelling. Deliberately not
compared, with the reason:
- what netplan adds to every link of its own accord and vmtailor leaves to the stack's
  default: networkd LinkLocalAddressing=ipv6 (networkd's default too),
  ConfigureWithoutCarrier on virtual links, .link WakeOnLan=off, NM wake-on-lan=0 and
  ip6-privacy=0;
- NM ipv4 method link-local versus disabled on a link without IPv4 config (netplan's NM
  backend turns IPv4LL on there, its networkd backend doesn't; vmtailor follows networkd);
- NM ipv6 method ignore versus link-local on a link without IPv6 config;
- which link a DNS server sits on: DNS is compared as the network's servers and domains
  (NM's global DNS holds those a profile can't, see the networkmanager renderer).
"""

from __future__ import annotations

import configparser
import ipaddress
import re
from dataclasses import dataclass, field, replace

from vmtailor.customizer.network import unitfile

TRUE = {"yes", "true", "1", "on"}


@dataclass(frozen=True)
class Route:
    to: str  # "default" or a network
    via: str | None = None
    metric: int | None = None
    on_link: bool = False
    table: int | None = None
    scope: str | None = None
    type: str | None = None
    mtu: int | None = None
    source: str | None = None
    cwnd: int | None = None
    rwnd: int | None = None


@dataclass(frozen=True)
class Rule:
    source: str | None = None
    to: str | None = None
    table: int | None = None
    priority: int | None = None
    mark: int | None = None
    tos: int | None = None


@dataclass(frozen=True)
class Link:
    kind: str = "ethernet"
    match: frozenset = frozenset()  # {("name", glob) | ("mac", mac) | ("driver", name)}
    rename: str | None = None
    dhcp4: bool = False
    dhcp6: bool = False  # networkd: DHCPv6; NM: ipv6 method=auto (SLAAC and DHCPv6)
    addresses: frozenset = frozenset()
    routes: frozenset = frozenset()
    rules: frozenset = frozenset()
    mtu: int | None = None
    set_mac: str | None = None
    master: str | None = None  # the bond or bridge this link is a port of
    primary: bool = False
    params: frozenset = frozenset()  # bond/bridge parameters, in the stack's own names
    port: frozenset = frozenset()  # a bridge port's cost and priority
    vlan: tuple | None = None  # (id, parent link)
    accept_ra: bool | None = None
    dhcp_overrides: frozenset = frozenset()
    extra: frozenset = frozenset()  # link-local, IPv6 privacy and MTU, wake-on-LAN


@dataclass
class Meaning:
    links: dict[str, Link] = field(default_factory=dict)
    dns: set[str] = field(default_factory=set)
    search: set[str] = field(default_factory=set)


def _bool(value: str) -> bool:
    return value.strip().lower() in TRUE


def _net(value: str) -> str:
    if value in ("default", "0.0.0.0/0", "::/0", "0.0.0.0", "::"):
        return "default"
    return str(ipaddress.ip_network(value, strict=False))


def _stem(path: str, prefix: str) -> str:
    name = path.rsplit("/", 1)[1]
    return name.split(".", 1)[0].removeprefix(prefix) if "." in name else name


OFFLOAD = {"ReceiveChecksumOffload": "rx", "TransmitChecksumOffload": "tx",
           "TCPSegmentationOffload": "tso", "TCP6SegmentationOffload": "tx-tcp6-segmentation",
           "GenericSegmentationOffload": "gso", "GenericReceiveOffload": "gro",
           "LargeReceiveOffload": "lro"}  # fmt: skip


def _link_extra(link: dict[str, str]) -> set:
    """What a .link sets beyond the name: wake-on-LAN (off is the default) and offload
    features by ethtool's short names (NM's feature-* names)."""
    out = {("offload", OFFLOAD[k], _param(v)) for k, v in link.items() if k in OFFLOAD}
    if link.get("WakeOnLan", "off") != "off":
        out.add(("wakeonlan", link["WakeOnLan"]))
    return out


def _param(value: str) -> str:
    """A parameter's value with booleans spelled one way (networkd yes/no, NM true/false)."""
    low = value.strip().lower()
    return {"yes": "true", "no": "false"}.get(low, low)


def _ms(value: str) -> str:
    """systemd time span to milliseconds (100ms, 0.1s, 1s, 2min)."""
    m = re.fullmatch(r"([\d.]+)\s*(ms|s|sec|min|us)?", value.strip())
    assert m, value
    scale = {"ms": 1, None: 1000, "s": 1000, "sec": 1000, "min": 60000, "us": 0.001}
    return f"{float(m.group(1)) * scale[m.group(2)]:g}"


# -- systemd-networkd ---------------------------------------------------------------------
NETDEV_TIMES = ("MIIMonitorSec", "UpDelaySec", "DownDelaySec", "ARPIntervalSec",
                "LearnPacketIntervalSec", "ForwardDelaySec", "HelloTimeSec", "MaxAgeSec",
                "AgeingTimeSec")  # fmt: skip


def networkd(files: dict[str, str], prefix: str) -> Meaning:
    """Read .network/.netdev/.link files (path -> text) whose names start with prefix."""
    out = Meaning()
    renames: dict[str, str] = {}  # MAC or original name -> new name
    wol: dict[str, set] = {}  # MAC or original name -> wake-on-LAN and offload set there
    netdevs: dict[str, dict] = {}
    for path, text in files.items():
        if path.endswith(".link"):
            sections = dict(unitfile.parse(text))
            match = dict(sections.get("Match", []))
            name = dict(sections.get("Link", [])).get("Name")
            key = match.get("PermanentMACAddress") or match.get("MACAddress")
            key = key.lower() if key else match.get("OriginalName")
            if name and key:
                renames[key] = name
            if key:
                wol[key] = _link_extra(dict(sections.get("Link", [])))
        elif path.endswith(".netdev"):
            sections = dict(unitfile.parse(text))
            nd = dict(sections["NetDev"])
            params = []
            for sec in ("Bond", "Bridge"):
                for k, v in sections.get(sec, []):
                    params.append((k, _ms(v) if k in NETDEV_TIMES else _param(v)))
            netdevs[nd["Name"]] = {
                "kind": nd["Kind"],
                "mtu": int(nd["MTUBytes"]) if "MTUBytes" in nd else None,
                "params": frozenset(params),
                "vlan": dict(sections.get("VLAN", [])).get("Id"),
            }
    vlan_parent: dict[str, str] = {}
    for path, text in files.items():
        if not path.endswith(".network"):
            continue
        key = _stem(path, prefix)
        link, parents = _network_file(text, renames, out)
        ids = [v for k, v in link.match if k in ("mac", "name")] + [key]
        if extra := next((wol[i] for i in ids if i in wol), None):
            link = replace(link, extra=link.extra | extra)
        for vlan in parents:
            vlan_parent[vlan] = key
        out.links[key] = link
    for key, link in list(out.links.items()):
        nd = netdevs.get(key)
        if nd is None:
            continue
        kind = {"bond": "bond", "vlan": "vlan", "bridge": "bridge"}[nd["kind"]]
        vlan = (int(nd["vlan"]), vlan_parent.get(key)) if nd["vlan"] else None
        mtu = link.mtu or nd["mtu"]
        out.links[key] = replace(link, kind=kind, params=nd["params"], vlan=vlan, mtu=mtu)
    return out


def _network_file(text: str, renames: dict[str, str], out: Meaning) -> tuple[Link, list[str]]:
    sections = unitfile.parse(text)
    match: set[tuple[str, str]] = set()
    rename = None
    net: list[tuple[str, str]] = []
    link: dict[str, str] = {}
    routes, rules, overrides, port = set(), set(), set(), set()
    for name, items in sections:
        if name == "Match":
            for k, v in items:
                if k in ("MACAddress", "PermanentMACAddress"):
                    match.add(("mac", v.lower()))
                elif k in ("Name", "OriginalName"):
                    match.add(("name", v))
                elif k == "Driver":
                    match.add(("driver", v))
        elif name == "Link":
            link.update(items)
        elif name == "Network":
            net.extend(items)
        elif name == "Bridge":
            port.update((k, v) for k, v in items)
        elif name == "Route":
            routes.add(_nd_route(dict(items)))
        elif name == "RoutingPolicyRule":
            r = dict(items)
            rules.add(Rule(r.get("From"), r.get("To"), _int(r.get("Table")),
                           _int(r.get("Priority")), _int(r.get("FirewallMark")),
                           _int(r.get("TypeOfService"))))  # fmt: skip
        elif name in ("DHCP", "DHCPv4", "DHCPv6", "IPv6AcceptRA"):
            fam = {"DHCPv6": "6", "IPv6AcceptRA": "6ra"}.get(name, "4")
            overrides.update((fam, k, _param(v)) for k, v in items)
    macs = [v for k, v in match if k == "mac"]
    if macs and macs[0] in renames:
        rename = renames[macs[0]]
        match.discard(("name", rename))  # netplan also matches the new name: the same NIC
    values: dict[str, list[str]] = {}
    for k, v in net:
        values.setdefault(k, []).append(v)
    dhcp = (values.get("DHCP") or ["no"])[-1].lower()
    ra = values.get("IPv6AcceptRA")
    out.dns.update(v for x in values.get("DNS", []) for v in x.split())
    out.search.update(v for x in values.get("Domains", []) for v in x.split())
    master = (values.get("Bond") or values.get("Bridge") or [None])[-1]
    extra = {
        (k, v[-1]) for k, v in values.items() if k in ("IPv6PrivacyExtensions", "IPv6MTUBytes")
    }
    ll = (values.get("LinkLocalAddressing") or ["ipv6"])[-1]
    if ll != "ipv6":  # networkd's default
        extra.add(("LinkLocalAddressing", ll))
    result = Link(
        match=frozenset(match),
        rename=rename,
        dhcp4=dhcp in ("yes", "true", "ipv4", "both"),
        dhcp6=dhcp in ("yes", "true", "ipv6", "both"),
        addresses=frozenset(str(ipaddress.ip_interface(a)) for a in values.get("Address", [])),
        routes=frozenset(routes),
        rules=frozenset(rules),
        mtu=int(link["MTUBytes"]) if "MTUBytes" in link else None,
        set_mac=link["MACAddress"].lower() if "MACAddress" in link else None,
        master=master,
        primary=_bool((values.get("PrimarySlave") or ["no"])[-1]),
        port=frozenset(("priority" if k == "Priority" else "cost", v) for k, v in port),
        accept_ra=_bool(ra[-1]) if ra and not master else None,
        # [DHCP] (DHCPv4's, since systemd 244) means nothing where DHCPv4 is off
        dhcp_overrides=frozenset(o for o in overrides if o[0] != "4" or dhcp in DHCP4_ON),
        extra=frozenset(extra),
    )
    return result, values.get("VLAN", [])


DHCP4_ON = ("yes", "true", "ipv4", "both")


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _nd_route(r: dict[str, str]) -> Route:
    gw = r.get("Gateway")
    return Route(
        to=_net(r.get("Destination", "default")),
        via=gw,
        metric=_int(r.get("Metric")),
        on_link=_bool(r.get("GatewayOnLink", "no")),
        table=_int(r.get("Table")),
        scope=r.get("Scope"),
        type=r.get("Type"),
        mtu=_int(r.get("MTUBytes")),
        source=r.get("PreferredSource"),
        cwnd=_int(r.get("InitialCongestionWindow")),
        rwnd=_int(r.get("InitialAdvertisedReceiveWindow")),
    )


# -- NetworkManager keyfiles --------------------------------------------------------------
def networkmanager(files: dict[str, str], prefix: str) -> Meaning:
    """Read keyfiles (path -> text; .nmconnection files whose names start with prefix) and
    NM's global DNS from any conf.d file."""
    out = Meaning()
    parsed: dict[str, configparser.ConfigParser] = {}
    for path, text in files.items():
        kf = configparser.ConfigParser(interpolation=None, strict=False)
        kf.read_string(text)
        if path.endswith(".nmconnection"):
            parsed[_stem(path, prefix)] = kf
        elif "/conf.d/" in path:
            out.search.update(_items(kf.get("global-dns", "searches", fallback="")))
            out.dns.update(_items(kf.get("global-dns-domain-*", "servers", fallback="")))
    # ports and VLANs name their controller/parent by UUID or by interface name
    ref = {}
    for key, kf in parsed.items():
        for opt in ("uuid", "interface-name", "id"):
            if v := kf.get("connection", opt, fallback=None):
                ref[v] = key
    links = {}  # .link files (udev applies them whatever the stack): netplan's offload
    for path, text in files.items():
        if path.endswith(".link"):
            sections = dict(unitfile.parse(text))
            match = dict(sections.get("Match", []))
            key = match.get("OriginalName") or match.get("PermanentMACAddress", "").lower()
            links[key] = _link_extra(dict(sections.get("Link", [])))
    for key, kf in parsed.items():
        link = _keyfile(kf, ref, out)
        ids = [key] + [v for k, v in link.match if k in ("mac", "name")]
        extra = next((links[i] for i in ids if i in links), set())
        # netplan's NM backend leaves wake-on-LAN to the keyfile
        extra = {e for e in extra if e[0] != "wakeonlan"}
        out.links[key] = replace(link, extra=link.extra | extra)
    return out


def _items(value: str) -> list[str]:
    return [v for v in re.split(r"[;,]\s*", value.strip()) if v]


def _keyfile(kf: configparser.ConfigParser, ref: dict[str, str], out: Meaning) -> Link:
    con = kf["connection"]
    kind = {"802-3-ethernet": "ethernet"}.get(con["type"], con["type"])
    match: set[tuple[str, str]] = set()
    eth = kf["ethernet"] if kf.has_section("ethernet") else {}
    if mac := eth.get("mac-address"):
        match.add(("mac", mac.lower()))
    if name := con.get("interface-name"):
        # a name next to the MAC is a set-name NIC, renamed by udev before NM sees it:
        # netplan matches it by the name alone, vmtailor by both; the same one NIC
        match = {("name", name)}
    if kf.has_section("match"):
        match.update(("name", n) for n in _items(kf["match"].get("interface-name", "")))
        match.update(("driver", n) for n in _items(kf["match"].get("driver", "")))
    master = con.get("master") or con.get("controller")
    link = Link(
        kind=kind,
        match=frozenset(match),
        mtu=_int(eth.get("mtu")),
        set_mac=(eth.get("cloned-mac-address") or "").lower() or None,
        master=ref.get(master, master) if master else None,
        params=frozenset((k, _param(v)) for k, v in kf["bond"].items())
        if kf.has_section("bond")
        else frozenset(),
    )
    if kf.has_section("bridge"):
        link = replace(link, params=frozenset((k, _param(v)) for k, v in kf["bridge"].items()))
    if kf.has_section("bridge-port"):
        names = {"path-cost": "cost", "priority": "priority"}
        link = replace(link, port=frozenset((names[k], v) for k, v in kf["bridge-port"].items()))
    if kf.has_section("vlan"):
        parent = kf["vlan"].get("parent")
        link = replace(link, vlan=(int(kf["vlan"]["id"]), ref.get(parent, parent)))
    if link.master:
        return link  # a port: NM ignores its IP settings
    addresses, routes, rules, overrides = set(), set(), set(), set()
    extra = set()
    if eth.get("wake-on-lan", "1") not in ("0", "1"):
        extra.add(("wakeonlan", {"64": "magic"}.get(eth["wake-on-lan"], eth["wake-on-lan"])))
    if kf.has_section("ethtool"):
        extra |= {("offload", k.removeprefix("feature-"), _param(v))
                  for k, v in kf["ethtool"].items()}  # fmt: skip
    methods = {}
    for fam in ("ipv4", "ipv6"):
        if not kf.has_section(fam):
            continue
        sec = kf[fam]
        methods[fam] = sec.get("method", "auto")
        for k, v in sec.items():
            if re.fullmatch(r"addresses?\d*", k):
                for a in _items(v):
                    addresses.add(str(ipaddress.ip_interface(a.split(",")[0])))
            elif re.fullmatch(r"routes?\d*", k):
                routes.add(_nm_route(v, sec.get(f"{k}_options", "")))
            elif re.fullmatch(r"routing-rule\d+", k):
                rules.add(_nm_rule(v))
        if gw := sec.get("gateway"):
            routes.add(Route("default", gw))
        fam_ = fam[-1]
        for k in NM_DHCP:
            if k in sec:
                overrides.add((fam_, k, sec[k]))
        if fam == "ipv6" and sec.get("ip6-privacy", "0") not in ("0", "-1"):
            extra.add(("ip6-privacy", sec["ip6-privacy"]))
        out.dns.update(_items(sec.get("dns", "")))
        out.search.update(_items(sec.get("dns-search", "")))
    return replace(
        link,
        dhcp4=methods.get("ipv4") == "auto",
        dhcp6=methods.get("ipv6") == "auto",
        addresses=frozenset(addresses),
        routes=frozenset(routes),
        rules=frozenset(rules),
        dhcp_overrides=frozenset(overrides),
        extra=frozenset(extra),
    )


NM_DHCP = ("dhcp-client-id", "dhcp-send-hostname", "dhcp-hostname", "ignore-auto-dns",
           "ignore-auto-routes", "never-default", "route-metric")  # fmt: skip


def _nm_route(value: str, options: str) -> Route:
    dest, via, metric = ([*value.split(","), "", ""])[:3]
    opts = dict(o.split("=", 1) for o in _items(options) if "=" in o)
    return Route(
        to=_net(dest),
        via=via or None,
        metric=_int(metric),
        on_link=_bool(opts.get("onlink", "false")),
        table=_int(opts.get("table")),
        scope={"0": "global", "253": "link", "254": "host"}.get(opts.get("scope", "")),
        type=opts.get("type"),
        mtu=_int(opts.get("mtu")),
        source=opts.get("src"),
        cwnd=_int(opts.get("initcwnd")),
        rwnd=_int(opts.get("initrwnd")),
    )


def _nm_rule(value: str) -> Rule:
    words = value.split()
    w = dict(zip(words[::2], words[1::2], strict=False))
    tos = w.get("tos")
    return Rule(w.get("from"), w.get("to"), _int(w.get("table")), _int(w.get("priority")),
                _int(w.get("fwmark")), int(tos, 0) if tos else None)  # fmt: skip
