"""Alpine: /etc/network/interfaces read back for meaning (by the small parser of
test_ifupdown, and by ifupdown-ng's own ifquery where it can be found), and the Alpine
fixture through the real engine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import required, tree_digest
from tests.unit.network.cases import CASES, MAC1, MAC2, MAC3, state
from tests.unit.network.test_ifupdown import parse
from vmtailor.customizer import config, engine
from vmtailor.customizer.detect import detect
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts
from vmtailor.customizer.network.select import choose
from vmtailor.customizer.network.state import build_state

INTERFACES = "/etc/network/interfaces"


def render(case: str) -> dict[str, str]:
    files = RENDERERS["alpine"].render(state(case), GuestFacts(family="alpine"))
    return {p: f.content for p, f in files.items()}


def stanzas(case: str) -> dict[str, list[tuple[str, str, dict[str, list[str]]]]]:
    autos, ifaces = parse(render(case)[INTERFACES])
    assert autos == list(ifaces) == ["lo", *(d.name for d in state(case).devices)]
    assert ifaces["lo"] == [("inet", "loopback", {})]
    return ifaces


def test_static_v4_meaning():
    [(family, method, opts)] = stanzas("static4")["lan0"]
    assert (family, method) == ("inet", "static")
    assert opts["address"] == ["192.0.2.10/24"] and opts["gateway"] == ["192.0.2.1"]
    assert opts["mtu"] == ["9000"]
    # mdev names no NICs: busybox nameif renames the one with this MAC before link-up
    assert opts["pre-up"] == [f"nameif lan0 {MAC1}"]
    assert opts["up"] == ["ip route replace 198.51.100.0/24 via 192.0.2.254 metric 50 dev lan0"]
    files = render("static4")
    assert "nameserver 192.0.2.53\n" in files["/etc/resolv.conf"]
    assert not any("udev" in p for p in files)


def test_dhcp_static6_dualstack():
    assert [(f, m) for f, m, _ in stanzas("dhcp")["lan0"]] == [("inet", "dhcp")]
    [(family, method, opts)] = stanzas("static6")["ens3"]
    assert (family, method, opts["gateway"]) == ("inet6", "static", ["2001:db8::1"])
    assert "pre-up" not in opts, "a NIC matched by name is not renamed"
    lan0 = stanzas("dualstack")["lan0"]
    # ifupdown-ng has no DHCPv6 executor (`inet6 dhcp` would run udhcpc, IPv4): SLAAC
    assert [f"{f} {m}" for f, m, _ in lan0] == ["inet static", "inet6 static", "inet6 auto"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_gateway_only_on_the_default_route_device(case):
    ifaces = stanzas(case)
    with_gateway = {n for n, st in ifaces.items() for _, _, o in st if "gateway" in o}
    expected = {d.name for d in state(case).devices if d.gateway(4) or d.gateway(6)}
    assert with_gateway == expected


def test_bond_and_vlan_topology():
    ifaces = stanzas("bond")
    for nic, mac in (("nic1", MAC2), ("nic2", MAC3)):
        assert ifaces[nic] == [("inet", "manual", {"pre-up": [f"nameif {nic} {mac}"]})]
    [(_, _method, opts)] = ifaces["bond0"]
    assert opts["use"] == ["bond"] and opts["bond-members"] == ["nic1 nic2"]
    assert opts["bond-mode"] == ["active-backup"] and opts["bond-miimon"] == ["100"]
    assert opts["bond-primary"] == ["nic1"] and opts["address"] == ["192.0.2.10/24"]
    ifaces = stanzas("vlan")
    [(_, _, opts)] = ifaces["vlan10"]
    assert opts["vlan-raw-device"] == ["trunk"] and opts["vlan-id"] == ["10"]
    assert opts["up"] == ["ip route replace 10.0.0.0/8 via 10.10.0.1 dev vlan10"]


def test_metric_on_a_default_route_becomes_a_command():
    # ifupdown-ng's one `metric` option would apply to the gateways of both families
    cfg = config.parse({"network": {"ethernets": {"eth0": {
        "addresses": ["192.0.2.10/24", "2001:db8::10/64"],
        "routes": [{"to": "default", "via": "192.0.2.1", "metric": 200},
                   {"to": "default", "via": "2001:db8::1"}]}}}})  # fmt: skip
    assert cfg.network is not None
    files = RENDERERS["alpine"].render(build_state(cfg.network), GuestFacts())
    _, ifaces = parse(files[INTERFACES].content)
    four, six = ifaces["eth0"]
    assert "gateway" not in four[2] and "metric" not in four[2]
    assert four[2]["up"] == ["ip route replace default via 192.0.2.1 metric 200 dev eth0"]
    assert six[2]["gateway"] == ["2001:db8::1"]


# -- ifupdown-ng reads what we wrote -------------------------------------------------------
def _ifupdown_ng() -> tuple[str, str] | None:
    """(ifquery, executor dir) of an ifupdown-ng: $VMTAILOR_IFUPDOWN_NG (a root it was
    unpacked into, e.g. `dpkg -x ifupdown-ng_*.deb DIR`), or one installed on the host."""
    for top in (os.environ.get("VMTAILOR_IFUPDOWN_NG"), "/opt/ifupdown-ng", "/"):
        if not top:
            continue
        ifquery = Path(top, "sbin/ifquery")
        executors = Path(top, "usr/libexec/ifupdown-ng")
        if ifquery.exists() and executors.is_dir():
            return str(ifquery), str(executors)
    return None


NG = _ifupdown_ng()
needs_ng = required(NG is None, "ifupdown-ng (unpacked in /opt/ifupdown-ng)")


def ifquery(tmp_path, text: str, *names: str) -> dict[str, dict[str, list[str]]]:
    """ifupdown-ng's own reading: {iface: {option: [values]}}, dependencies included."""
    assert NG is not None
    path = tmp_path / "interfaces"
    path.write_text(text)
    done = subprocess.run(
        [NG[0], "-i", str(path), "-E", NG[1], "-S", str(tmp_path / "state"), *names],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        words = line.split()
        if words[:1] == ["iface"]:
            current = out.setdefault(words[1], {})
        elif words and words[0] != "auto":
            current.setdefault(words[0], []).append(" ".join(words[1:]))
    return out


@needs_ng
@pytest.mark.parametrize("case", sorted(CASES))
def test_ifupdown_ng_reads_every_case(tmp_path, case):
    names = [d.name for d in state(case).devices]
    read = ifquery(tmp_path, render(case)[INTERFACES], *names)
    assert sorted(read) == sorted(names)
    for dev in state(case).devices:
        assert read[dev.name].get("address", []) == [str(a) for a in dev.addresses]


@needs_ng
def test_ifupdown_ng_sees_the_topology(tmp_path):
    read = ifquery(tmp_path, render("bond")[INTERFACES], "bond0", "nic1")
    assert read["bond0"]["requires"] == ["nic1 nic2"], "members come up before the bond"
    assert "bond" in read["bond0"]["use"] and "static" in read["bond0"]["use"]
    read = ifquery(tmp_path, render("vlan")[INTERFACES], "vlan10", "trunk")
    assert read["vlan10"]["requires"] == ["trunk"] and read["vlan10"]["vlan-id"] == ["10"]
    assert "dhcp" in read["trunk"]["use"]
    read = ifquery(tmp_path, render("dualstack")[INTERFACES], "lan0")
    assert read["lan0"]["gateway"] == ["192.0.2.1", "2001:db8::1"]
    assert "dhcp" not in read["lan0"]["use"], "no DHCPv4 client for a dhcp6-only config"


# -- the fixture through the engine ---------------------------------------------------------
NET = {"version": 2, "ethernets": {"lan0": {
    "match": {"macaddress": MAC1}, "addresses": ["192.0.2.10/24"], "gateway4": "192.0.2.1",
    "nameservers": {"addresses": ["192.0.2.53"], "search": ["example.com"]}}}}  # fmt: skip


def test_alpine_fixture_gets_ifupdown_ng_and_revert_restores(make_root):
    top = make_root("alpine-3.20")
    assert choose(detect(LocalRoot(str(top))), None)[0] == "alpine"
    (top / "etc/mactab").write_text(f"eth0 {MAC2}\n")  # a template's nameif pin
    before = tree_digest(top)
    result = engine.apply(config.parse({"network": NET}), LocalRoot(str(top)))
    autos, ifaces = parse((top / "etc/network/interfaces").read_text())
    assert autos == ["lo", "lan0"], "the template's eth0 is gone, lo stays"
    assert ifaces["lan0"][0][2]["pre-up"] == [f"nameif lan0 {MAC1}"]
    resolv = (top / "etc/resolv.conf").read_text()
    assert resolv.endswith("search example.com\nnameserver 192.0.2.53\n")
    assert not (top / "etc/mactab").exists()
    assert not (top / "etc/udev").exists()
    assert result.warnings == []
    assert engine.apply(config.parse({"network": NET}), LocalRoot(str(top))).changes == []
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_alpine_warnings(make_root):
    top = make_root("alpine-3.20")
    cfg = config.parse({"network": {"version": 2, "ethernets": {
        "eth0": {"dhcp6": True}, "en": {"match": {"name": "en*"}, "dhcp4": True}},
        "vlans": {"vlan10": {"id": 20, "link": "eth0"}}}})  # fmt: skip
    warnings = engine.apply(cfg, LocalRoot(str(top))).warnings
    assert any("dhcpcd" in w for w in warnings)
    assert any("network.ethernets.en" in w and "pattern" in w for w in warnings)
    assert any("network.vlans.vlan10" in w and "(10)" in w for w in warnings)


def test_busybox_ifupdown_is_told_about_bonds(make_root):
    top = make_root("alpine-3.20")
    for name in ("ifup", "ifdown", "ifquery"):
        (top / "sbin" / name).unlink()
        (top / "sbin" / name).symlink_to("/bin/busybox")
    (top / "sbin/ifupdown").unlink()
    cfg = config.parse({"network": {"version": 2, **CASES["bond"]}})
    warnings = engine.apply(cfg, LocalRoot(str(top))).warnings
    assert any("ifupdown-ng" in w for w in warnings)
