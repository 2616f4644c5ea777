"""Debian ifupdown: the stanzas read back for meaning (by a small parser here, and by
Debian's own ifquery / `ifup --no-act` where installed), the template's stanzas taken out of
/etc/network/interfaces, and fixture guests through the real engine."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import required, tree_digest
from tests.unit.network.cases import CASES, MAC1, MAC2, MAC3, state
from vmtailor.customizer import config, engine
from vmtailor.customizer.detect import detect
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.network import eni
from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts
from vmtailor.customizer.network.renderers.ifupdown import OURS, covers
from vmtailor.customizer.network.select import choose
from vmtailor.customizer.network.state import build_state

RULES = "/etc/udev/rules.d/70-vmtailor-net.rules"


def parse(text: str) -> tuple[list[str], dict[str, list[tuple[str, str, dict[str, list[str]]]]]]:
    """(names on auto/allow- lines, {iface: [(family, method, {option: [values]})]})."""
    autos: list[str] = []
    ifaces: dict[str, list[tuple[str, str, dict[str, list[str]]]]] = {}
    options: dict[str, list[str]] | None = None
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "auto" or words[0].startswith("allow-"):
            autos.extend(words[1:])
            options = None
        elif words[0] == "iface":
            options = {}
            ifaces.setdefault(words[1], []).append((words[2], words[3], options))
        elif words[0] in ("source", "source-directory"):
            options = None
        else:
            assert options is not None, f"option outside a stanza: {line!r}"
            options.setdefault(words[0], []).append(" ".join(words[1:]))
    return autos, ifaces


def render(case: str, facts: GuestFacts | None = None) -> dict[str, str]:
    files = RENDERERS["ifupdown"].render(state(case), facts or GuestFacts())
    return {p: f.content for p, f in files.items()}


def stanzas(case: str) -> dict[str, list[tuple[str, str, dict[str, list[str]]]]]:
    autos, ifaces = parse(render(case)[OURS])
    assert autos == list(ifaces), "every interface starts at boot, in config order"
    return ifaces


def test_static_v4_meaning():
    files = render("static4")
    [(family, method, opts)] = stanzas("static4")["lan0"]
    assert (family, method) == ("inet", "static")
    assert opts["address"] == ["192.0.2.10/24"] and opts["gateway"] == ["192.0.2.1"]
    assert opts["mtu"] == ["9000"]
    assert opts["dns-nameservers"] == ["192.0.2.53 2001:db8::53"]
    assert opts["dns-search"] == ["example.com"]
    assert opts["up"] == ["ip route replace 198.51.100.0/24 via 192.0.2.254 metric 50 dev lan0"]
    # ifupdown configures by name: the MAC-matched NIC gets its name from udev
    assert f'ATTR{{address}}=="{MAC1}", NAME="lan0"' in files[RULES]
    assert "nameserver 192.0.2.53\n" in files["/etc/resolv.conf"]


def test_dhcp_static6_dualstack():
    assert [(f, m) for f, m, _ in stanzas("dhcp")["lan0"]] == [("inet", "dhcp")]
    assert f'"{MAC1}", NAME="lan0"' in render("dhcp")[RULES]  # matched by MAC, name unknown
    [(family, method, opts)] = stanzas("static6")["ens3"]
    assert (family, method, opts["gateway"]) == ("inet6", "static", ["2001:db8::1"])
    assert RULES not in render("static6"), "a NIC matched by name needs no pin"
    # static before dhcp: ifupdown applies them in order, and dhcp leaves RAs on
    lan0 = stanzas("dualstack")["lan0"]
    assert [f"{f} {m}" for f, m, _ in lan0] == ["inet static", "inet6 static", "inet6 dhcp"]
    six = lan0[1][2]
    assert six["address"] == ["2001:db8::10/64"] and six["gateway"] == ["2001:db8::1"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_gateway_only_on_the_default_route_device(case):
    ifaces = stanzas(case)
    with_gateway = {n for n, st in ifaces.items() for _, _, o in st if "gateway" in o}
    expected = {d.name for d in state(case).devices if d.gateway(4) or d.gateway(6)}
    assert with_gateway == expected


def test_two_nics_route_stays_on_its_nic():
    ifaces = stanzas("two-nics")
    assert ifaces["back"][0][2]["up"] == ["ip route replace 10.0.0.0/8 via 10.20.0.1 dev back"]
    assert "up" not in ifaces["front"][0][2]
    rules = render("two-nics")[RULES]
    assert f'"{MAC1}", NAME="front"' in rules and f'"{MAC2}", NAME="back"' in rules


def test_bond_topology():
    ifaces = stanzas("bond")
    for nic, mac in (("nic1", MAC2), ("nic2", MAC3)):
        [(_, method, opts)] = ifaces[nic]
        assert (method, opts["bond-master"]) == ("manual", ["bond0"])
        assert "address" not in opts
        assert f'"{mac}", NAME="{nic}"' in render("bond")[RULES]
    [(_family, method, opts)] = ifaces["bond0"]
    assert opts["bond-slaves"] == ["none"]  # the members name their master (hotplug-safe)
    assert opts["bond-mode"] == ["active-backup"] and opts["bond-miimon"] == ["100"]
    assert opts["bond-primary"] == ["nic1"] and opts["address"] == ["192.0.2.10/24"]


def test_vlan_topology():
    ifaces = stanzas("vlan")
    assert [(f, m) for f, m, _ in ifaces["trunk"]] == [("inet", "dhcp")]
    [(_family, _method, opts)] = ifaces["vlan10"]
    assert opts["vlan-raw-device"] == ["trunk"]
    assert opts["pre-up"] == [
        "[ -d /sys/class/net/vlan10 ] || ip link add link trunk name vlan10 type vlan id 10"
    ]
    assert opts["address"] == ["10.10.0.5/24"]
    # vlan10 has trunk's MAC: the pin must name only the NIC (a device with a driver), or
    # udev renames the VLAN to trunk, fails, and drops it (seen booting: test_network_boot)
    [rule] = [line for line in render("vlan")[RULES].splitlines() if "NAME=" in line]
    assert 'DRIVERS=="?*"' in rule and f'ATTR{{address}}=="{MAC1}"' in rule


def test_ifupdown_0_6_gets_the_whole_file_with_netmasks():
    files = render("two-nics", GuestFacts(family="debian", version="6.0.10"))
    assert OURS not in files
    autos, ifaces = parse(files["/etc/network/interfaces"])
    assert autos[0] == "lo" and ifaces["lo"] == [("inet", "loopback", {})]
    opts = ifaces["back"][0][2]
    assert opts["address"] == ["10.20.0.10"] and opts["netmask"] == ["255.255.0.0"]


def test_glob_match_uses_an_ifupdown_pattern():
    cfg = config.parse({"network": {"ethernets": {"lan": {
        "match": {"name": "en*"}, "dhcp4": True, "mtu": 1400}}}})  # fmt: skip
    assert cfg.network is not None
    text = RENDERERS["ifupdown"].render(build_state(cfg.network), GuestFacts())[OURS].content
    assert "auto /en*=lan\niface lan inet dhcp\n" in text
    assert "up ip link set dev $IFACE mtu 1400" in text


def test_gateway_sits_with_its_subnet_and_routes_come_last():
    cfg = config.parse({"network": {"ethernets": {"eth0": {
        "addresses": ["10.0.0.5/24", "192.0.2.10/24"],
        "routes": [{"to": "default", "via": "192.0.2.1"},
                   {"to": "172.16.0.0/12", "via": "10.0.0.1"}]}}}})  # fmt: skip
    assert cfg.network is not None
    net = build_state(cfg.network)
    _, ifaces = parse(RENDERERS["ifupdown"].render(net, GuestFacts())[OURS].content)
    first, second = (opts for _, _, opts in ifaces["eth0"])
    assert "gateway" not in first and second["gateway"] == ["192.0.2.1"]
    assert second["up"] == ["ip route replace 172.16.0.0/12 via 10.0.0.1 dev eth0"]
    # ifupdown 0.6: one stanza, other addresses added by command, and then the routes
    old = RENDERERS["ifupdown"].render(net, GuestFacts(family="debian", version="6"))
    _, ifaces = parse(old["/etc/network/interfaces"].content)
    [(_, _, opts)] = ifaces["eth0"]
    assert "gateway" not in opts and opts["up"] == [
        "ip addr add 192.0.2.10/24 dev eth0",
        "ip route replace default via 192.0.2.1 dev eth0",
        "ip route replace 172.16.0.0/12 via 10.0.0.1 dev eth0",
    ]


# -- taking the template's stanzas out ---------------------------------------------------
DEBIAN = """\
# The loopback network interface
auto lo eth1
iface lo inet loopback

source /etc/network/interfaces.d/*

# The primary network interface
allow-hotplug eth0
iface eth0 inet static
    address 10.0.0.5/24
    # a comment inside
    up ip route add 10.1.0.0/16 \\
        via 10.0.0.1

iface eth0.10 inet manual

auto bond0
iface bond0 inet dhcp
    bond-slaves eth1 eth2

# wireless, not ours
iface wlan0 inet dhcp
    wpa-conf /etc/wpa.conf
"""


def stale(name):
    return name != "lo" and eni.is_physical(name)


def test_strip_keeps_everything_but_the_nic_stanzas():
    assert eni.strip(DEBIAN, stale) == (
        "# The loopback network interface\n"
        "auto lo\n"
        "iface lo inet loopback\n"
        "\n"
        "source /etc/network/interfaces.d/*\n"
        "\n"
        "# wireless, not ours\n"
        "iface wlan0 inet dhcp\n"
        "    wpa-conf /etc/wpa.conf\n"
    )
    assert eni.strip(DEBIAN, lambda n: False) == DEBIAN


def test_strip_of_only_nic_stanzas_leaves_nothing_configured():
    left = eni.strip("# cloud-init\nauto eth0\niface eth0 inet dhcp\n", stale)
    assert not eni.has_stanzas(left)


@pytest.mark.parametrize(
    ("line", "included"),
    [
        ("source /etc/network/interfaces.d/*", True),
        ("source interfaces.d/*", True),
        ("source /etc/network/interfaces.d/*.cfg", False),  # Ubuntu's cloud images
        ("source-directory /etc/network/interfaces.d", True),
        ("source-directory interfaces.d/", True),
        ("# source /etc/network/interfaces.d/*", False),
        ("", False),
    ],
)
def test_sourcing_our_file(line, included):
    assert covers(f"auto lo\n{line}\n", OURS) is included


# -- the real ifupdown reads what we wrote -------------------------------------------------
def _debian_ifquery() -> str | None:
    path = shutil.which("ifquery")
    if path is None:
        return None
    out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    return path if out.startswith("ifquery version 0.") else None  # not ifupdown-ng's


IFQUERY = _debian_ifquery()
needs_ifupdown = required(IFQUERY is None, "Debian's ifupdown")


def ifupdown(tmp_path, text: str, *args: str, tool: str = "ifquery") -> str:
    path = tmp_path / "interfaces"
    path.write_text(text)
    cmd = [shutil.which(tool) or tool, "-i", str(path), *args]
    if tool == "ifup":
        cmd[1:1] = ["--no-act", "--verbose", "--state-dir", str(tmp_path / "state")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@needs_ifupdown
@pytest.mark.parametrize("case", sorted(CASES))
def test_debian_ifquery_reads_every_case(tmp_path, case):
    text = render(case)[OURS]
    listed = ifupdown(tmp_path, text, "--list").split()
    assert listed == ["lo", *(d.name for d in state(case).devices)]
    for dev in state(case).devices:
        ifupdown(tmp_path, text, dev.name)  # exits 0 only for a well-formed stanza


@needs_ifupdown
def test_debian_ifup_would_run_what_the_config_says(tmp_path):
    out = ifupdown(tmp_path, render("static4")[OURS], "lan0", tool="ifup")
    assert "ip addr add 192.0.2.10/255.255.255.0" in out
    assert "mtu 9000" in out
    assert "ip route add default via 192.0.2.1  dev lan0 onlink" in out
    assert "ip route replace 198.51.100.0/24 via 192.0.2.254 metric 50 dev lan0" in out
    out = ifupdown(tmp_path, render("dualstack")[OURS], "lan0", tool="ifup")
    assert "ip -6 addr add 2001:db8::10/64" in out and "dhclient -6" in out
    assert out.rindex("accept_ra=1") > out.rindex("accept_ra=0"), "RAs stay on for dhcp6"
    out = ifupdown(tmp_path, render("vlan")[OURS], "vlan10", tool="ifup")
    assert "ip link add link trunk name vlan10 type vlan id 10" in out


@needs_ifupdown
def test_debian_ifquery_reads_the_0_6_netmask_form(tmp_path):
    text = render("static4", GuestFacts(family="debian", version="6"))["/etc/network/interfaces"]
    out = ifupdown(tmp_path, text, "lan0")
    assert "address: 192.0.2.10\n" in out and "netmask: 255.255.255.0\n" in out


BRIDGED = {"version": 2,
           "ethernets": {"nic1": {}, "nic2": {}, "eth0": {}},
           "bonds": {"bond0": {"interfaces": ["nic1", "nic2"],
                               "parameters": {"mode": "active-backup", "primary": "nic1"}}},
           "vlans": {"vlan15": {"id": 15, "link": "eth0"},
                     "vlan20": {"id": 20, "link": "br0", "addresses": ["10.20.0.5/24"]}},
           "bridges": {"br0": {"interfaces": ["bond0", "vlan15"], "addresses": ["192.0.2.10/24"],
                               "parameters": {"stp": False, "forward-delay": 4,
                                              "path-cost": {"bond0": 50}}}}}  # fmt: skip


@needs_ifupdown
def test_debian_ifquery_reads_a_bridge_over_a_bond_and_a_vlan(tmp_path):
    net = config.parse({"network": BRIDGED}).network
    text = RENDERERS["ifupdown"].render(build_state(net), GuestFacts())[OURS].content
    listed = ifupdown(tmp_path, text, "--list").split()
    # the ports exist before bridge-utils adds them; a VLAN on the bridge comes after it
    assert listed.index("vlan15") < listed.index("br0") < listed.index("vlan20")
    br0 = ifupdown(tmp_path, text, "br0")
    for line in (
        "bridge-ports: bond0 vlan15",
        "bridge-stp: off",
        "bridge-fd: 4",
        "bridge-pathcost: bond0 50",
        "address: 192.0.2.10",
        "netmask: 255.255.255.0",
    ):
        assert line in br0.splitlines(), br0
    bond0 = ifupdown(tmp_path, text, "bond0")
    assert "address" not in bond0 and "bond-mode: active-backup" in bond0.splitlines()
    out = ifupdown(tmp_path, text, "vlan15", tool="ifup")
    assert "ip link add link eth0 name vlan15 type vlan id 15" in out


def test_a_guest_without_bridge_utils_is_told(make_root):
    from vmtailor.customizer.plan import Plan

    net = config.parse({"network": BRIDGED}).network
    plan = Plan(LocalRoot(str(make_root("debian-12"))))
    said = RENDERERS["ifupdown"].warnings(plan, build_state(net), GuestFacts())
    assert any("needs the bridge-utils package" in w for w in said)


# -- fixture guests through the engine -------------------------------------------------
NET = {"version": 2, "ethernets": {"lan0": {
    "match": {"macaddress": MAC1}, "addresses": ["192.0.2.10/24"], "gateway4": "192.0.2.1",
    "nameservers": {"addresses": ["192.0.2.53"], "search": ["example.com"]}}}}  # fmt: skip
LO = "# The loopback network interface\nauto lo\niface lo inet loopback\n"


@pytest.mark.parametrize("name", ["debian-12", "debian-7"])
def test_fixture_gets_ifupdown_and_revert_restores(make_root, name):
    top = make_root(name)
    assert choose(detect(LocalRoot(str(top))), None)[0] == "ifupdown"
    before = tree_digest(top)
    template = (top / "etc/network/interfaces").read_text()
    result = engine.apply(config.parse({"network": NET}), LocalRoot(str(top)))
    assert (top / OURS.lstrip("/")).is_file(), "ifupdown chosen"
    interfaces = (top / "etc/network/interfaces").read_text()
    assert "eth0" not in interfaces and "# The primary network interface" not in interfaces
    kept = template.split("# The primary")[0].rstrip("\n") + "\n"  # byte for byte
    assert LO in interfaces and interfaces.startswith(kept)
    assert covers(interfaces, OURS)
    assert interfaces.count("source ") == 1  # debian-12's glob covers it; wheezy gets one
    autos, ifaces = parse((top / OURS.lstrip("/")).read_text())
    assert autos == ["lan0"] and ifaces["lan0"][0][2]["address"] == ["192.0.2.10/24"]
    resolv = (top / "etc/resolv.conf").read_text()
    assert resolv.endswith("search example.com\nnameserver 192.0.2.53\n")
    assert f'"{MAC1}", NAME="lan0"' in (top / RULES.lstrip("/")).read_text()
    assert not (top / "etc/udev/rules.d/70-persistent-net.rules").exists()
    assert result.warnings == []
    assert engine.apply(config.parse({"network": NET}), LocalRoot(str(top))).changes == []
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_template_files_in_interfaces_d_lose_their_nic_stanzas(make_root):
    top = make_root("debian-12")
    d = top / "etc/network/interfaces.d"
    (d / "50-cloud-init").write_text("auto eth0\niface eth0 inet dhcp\n")
    (d / "60-bridge").write_text("auto br0\niface br0 inet manual\n    bridge_ports none\n")
    engine.apply(config.parse({"network": NET}), LocalRoot(str(top)))
    assert sorted(p.name for p in d.iterdir()) == ["60-bridge", "90-vmtailor"]


def test_bond_without_ifenslave_warns(make_root):
    top = make_root("debian-12")
    cfg = config.parse({"network": {"version": 2, **CASES["bond"]}})
    result = engine.apply(cfg, LocalRoot(str(top)))
    assert any("ifenslave" in w for w in result.warnings)


@pytest.mark.parametrize("resolved", [True, False])
def test_symlinked_resolv_conf_is_left_to_its_owner(make_root, resolved):
    top = make_root("debian-12")
    (top / "etc/resolv.conf").unlink()
    if resolved:  # systemd-resolved's stub; the op adds a resolved.conf drop-in
        (top / "etc/resolv.conf").symlink_to("../run/systemd/resolve/stub-resolv.conf")
        wants = top / "etc/systemd/system/multi-user.target.wants"
        wants.joinpath("systemd-resolved.service").symlink_to("/lib/systemd/system/x")
    else:  # resolvconf's: it reads the dns-* options of the stanzas
        (top / "etc/resolv.conf").symlink_to("../run/resolvconf/resolv.conf")
    engine.apply(config.parse({"network": NET}), LocalRoot(str(top)))
    assert (top / "etc/resolv.conf").is_symlink()
    assert not (top / "run").exists() or not any((top / "run").rglob("resolv.conf"))
    dropin = top / "etc/systemd/resolved.conf.d/90-vmtailor.conf"
    assert dropin.exists() is resolved
    _, ifaces = parse((top / OURS.lstrip("/")).read_text())
    assert ifaces["lan0"][0][2]["dns-nameservers"] == ["192.0.2.53"]
