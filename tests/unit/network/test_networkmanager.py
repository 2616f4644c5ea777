"""NetworkManager keyfiles read back (configparser, and libnm's own keyfile reader when the
host has it), then on the Rocky 9 and Fedora 40 fixture roots through the real engine."""

from __future__ import annotations

import configparser
import ipaddress
import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import required, tree_digest
from tests.unit.network.cases import CASES, MAC1, MAC2, state
from vmtailor.customizer import config, engine
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.network import cloudinit
from vmtailor.customizer.network.renderers import RENDERERS, GuestFacts
from vmtailor.customizer.network.renderers.networkmanager import (
    DIR,
    GLOBAL_DNS,
    connection_uuid,
)
from vmtailor.customizer.network.state import Device, Route, build_state


def keyfiles(case: str) -> dict[str, configparser.ConfigParser]:
    out = {}
    for path, f in RENDERERS["networkmanager"].render(state(case), GuestFacts()).items():
        if path.startswith(DIR):
            assert f.mode == 0o600
            kf = configparser.ConfigParser(interpolation=None)
            kf.read_string(f.content)
            out[path.rsplit("/", 1)[1]] = kf
    return out


def _list(kf, section, key) -> list[str]:
    return [v for v in kf.get(section, key, fallback="").split(";") if v]


def _routes(kf, section) -> set[Route]:
    out = set()
    if gw := kf.get(section, "gateway", fallback=None):
        out.add(Route("default", ipaddress.ip_address(gw)))
    for key, value in kf.items(section):
        if key.startswith("route") and not key.endswith("_options"):
            dest, via, metric = (value.split(",") + ["", ""])[:3]
            is_default = dest in ("0.0.0.0/0", "::/0")
            onlink = kf.get(section, f"{key}_options", fallback="") == "onlink=true"
            out.add(Route("default" if is_default else dest,
                          ipaddress.ip_address(via) if via else None,
                          int(metric) if metric else None, onlink))  # fmt: skip
    return out


def carried(dev: Device, kf: configparser.ConfigParser, family: int) -> list[str]:
    """The device's DNS servers of a family its profile can hold (an address, DHCP or RA
    of that family); the others are in NM's global DNS (see test_dns_without_address)."""
    method = kf.get(f"ipv{family}", "method", fallback="")
    return [str(a) for a in dev.dns if a.version == family and method in ("auto", "manual")]


def check_meaning(dev: Device, kf: configparser.ConfigParser) -> None:
    con = kf["connection"]
    assert con["uuid"] == connection_uuid(dev.name)
    assert con["type"] == dev.kind
    assert kf.get("ethernet", "mac-address", fallback=None) == (
        dev.mac.upper() if dev.mac else None
    )
    assert kf.get("ethernet", "mtu", fallback=None) == (str(dev.mtu) if dev.mtu else None)
    if dev.bond_master:
        assert (con["master"], con["slave-type"]) == (connection_uuid(dev.bond_master), "bond")
        assert not kf.has_section("ipv4") and not kf.has_section("ipv6")
        return
    assert (kf["ipv4"]["method"] == "auto") == dev.dhcp4
    assert kf["ipv6"]["method"] == ("auto" if dev.dhcp6 else kf["ipv6"]["method"])
    addresses = [kf[s][k] for s in ("ipv4", "ipv6") for k in kf[s] if k.startswith("address")]
    assert addresses == [str(a) for a in dev.addresses]
    routes = {r for s in ("ipv4", "ipv6") for r in _routes(kf, s)}
    want = {Route(r.to if r.is_default else r.network(), r.via, r.metric, r.on_link)
            for r in dev.routes}  # fmt: skip
    assert routes == want
    for family, section in ((4, "ipv4"), (6, "ipv6")):
        assert _list(kf, section, "dns") == carried(dev, kf, family)
    search = _list(kf, "ipv4", "dns-search") + _list(kf, "ipv6", "dns-search")
    assert search == list(dev.search)


@pytest.mark.parametrize("case", sorted(CASES))
def test_keyfiles_mean_what_the_config_says(case):
    files = keyfiles(case)
    devices = state(case).devices
    assert sorted(files) == sorted(f"vmtailor-{d.name}.nmconnection" for d in devices)
    stranded = False
    for dev in devices:
        kf = files[f"vmtailor-{dev.name}.nmconnection"]
        check_meaning(dev, kf)
        stranded |= any(str(a) not in carried(dev, kf, a.version) for a in dev.dns)
    rendered = RENDERERS["networkmanager"].render(state(case), GuestFacts())
    if stranded:  # every server is in the global DNS, which replaces the profiles' DNS
        text = rendered[GLOBAL_DNS].content
        assert f"servers={','.join(str(a) for a in state(case).dns)}\n" in text
    else:
        assert GLOBAL_DNS not in rendered


def test_names_bonds_and_vlans():
    dhcp = keyfiles("dhcp")["vmtailor-lan0.nmconnection"]
    # matched by MAC only: whatever the hypervisor names the NIC
    assert not dhcp.has_option("connection", "interface-name")
    assert dhcp["connection"]["autoconnect-priority"] == "200"
    static6 = keyfiles("static6")["vmtailor-ens3.nmconnection"]
    assert static6["connection"]["interface-name"] == "ens3"
    assert (static6["ipv4"]["method"], static6["ipv6"]["method"]) == ("disabled", "manual")
    bond = keyfiles("bond")["vmtailor-bond0.nmconnection"]
    assert dict(bond["bond"]) == {"mode": "active-backup", "miimon": "100", "primary": "nic1"}
    assert bond["connection"]["interface-name"] == "bond0"
    vlan = keyfiles("vlan")["vmtailor-vlan10.nmconnection"]
    assert dict(vlan["vlan"]) == {"id": "10", "parent": connection_uuid("trunk")}
    rules = RENDERERS["networkmanager"].render(state("static4"), GuestFacts())
    assert 'NAME="lan0"' in rules["/etc/udev/rules.d/70-vmtailor-net.rules"].content


def test_globs_drivers_on_link_and_cloned_mac():
    from tests.unit.network.test_netplan import extras_state

    files = RENDERERS["networkmanager"].render(extras_state(), GuestFacts())
    kf = configparser.ConfigParser(interpolation=None)
    kf.read_string(files[f"{DIR}/vmtailor-uplink.nmconnection"].content)
    assert dict(kf["match"]) == {"interface-name": "en*;", "driver": "virtio_net;"}
    assert not kf.has_option("connection", "interface-name")
    assert kf["ethernet"]["cloned-mac-address"] == "02:00:00:00:00:01"
    assert kf["ethernet"]["mtu"] == "1400"
    # NM's gateway= has neither metric nor on-link: the default route is a route entry
    assert not kf.has_option("ipv4", "gateway")
    assert kf["ipv4"]["route1"] == "0.0.0.0/0,203.0.113.1,10"
    assert kf["ipv4"]["route1_options"] == "onlink=true"
    assert kf["ipv6"]["method"] == "auto"  # accept-ra: true


def test_uuids_are_stable():
    assert connection_uuid("lan0") == connection_uuid("lan0") != connection_uuid("lan1")


# -- libnm's own reader: the keyfile parser NetworkManager itself uses ----------------------
LIBNM = """
import json, sys, gi
gi.require_version("NM", "1.0")
from gi.repository import GLib, NM
out = {}
for path in sys.argv[1:]:
    kf = GLib.KeyFile.new()
    kf.load_from_file(path, GLib.KeyFileFlags.NONE)
    c = NM.keyfile_read(kf, "/etc/NetworkManager/system-connections",
                        NM.KeyfileHandlerFlags.NONE, None, None)
    c.normalize()
    c.verify()
    s = c.get_setting_connection()
    d = {"id": s.get_id(), "uuid": s.get_uuid(), "type": s.get_connection_type(),
         "ifname": s.get_interface_name(), "master": s.get_master(),
         "slave_type": s.get_slave_type()}
    w = c.get_setting_wired()
    d["mac"] = w.get_mac_address() if w else None
    for fam, ip in (("4", c.get_setting_ip4_config()), ("6", c.get_setting_ip6_config())):
        if ip is None:
            continue
        d["method" + fam] = ip.get_method()
        d["addresses" + fam] = ["%s/%d" % (a.get_address(), a.get_prefix())
                                for a in (ip.get_address(i) for i in range(ip.get_num_addresses()))]
        d["gateway" + fam] = ip.get_gateway()
        d["routes" + fam] = [[r.get_dest(), r.get_prefix(), r.get_next_hop(), r.get_metric()]
                             for r in (ip.get_route(i) for i in range(ip.get_num_routes()))]
        d["dns" + fam] = [ip.get_dns(i) for i in range(ip.get_num_dns())]
        d["rules" + fam] = [ip.get_routing_rule(i).to_string(0, None)
                            for i in range(ip.get_num_routing_rules())]
        d["attrs" + fam] = [{n: str(r.get_attribute(n)) for n in r.get_attribute_names()}
                            for r in (ip.get_route(i) for i in range(ip.get_num_routes()))]
    b = c.get_setting_bond()
    if b:
        d["bond"] = {b.get_option(i)[1]: b.get_option(i)[2] for i in range(b.get_num_options())}
    v = c.get_setting_vlan()
    if v:
        d["vlan"] = [v.get_id(), v.get_parent()]
    out[path.rsplit("/", 1)[1]] = d
print(json.dumps(out))
"""


def _has_libnm() -> bool:
    python = shutil.which("python3", path="/usr/bin")
    if python is None:
        return False
    probe = "import gi; gi.require_version('NM', '1.0'); from gi.repository import NM"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


needs_libnm = required(not _has_libnm(), "libnm (python3-gi, gir1.2-nm-1.0)")


def libnm_read(files: dict, tmp_path) -> dict:
    paths = []
    for path, f in files.items():
        if path.startswith(DIR):
            dest = tmp_path / path.rsplit("/", 1)[1]
            dest.write_text(f.content)
            paths.append(str(dest))
    run = subprocess.run(["/usr/bin/python3", "-c", LIBNM, *paths],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@needs_libnm
def test_libnm_reads_globs_drivers_and_on_link(tmp_path):
    from tests.unit.network.test_netplan import extras_state

    files = RENDERERS["networkmanager"].render(extras_state(), GuestFacts())
    got = libnm_read(files, tmp_path)["vmtailor-uplink.nmconnection"]
    assert got["routes4"] == [["0.0.0.0", 0, "203.0.113.1", 10]]
    assert (got["method4"], got["method6"], got["ifname"]) == ("manual", "auto", None)


@needs_libnm
@pytest.mark.parametrize("case", sorted(CASES))
def test_libnm_reads_and_verifies_every_keyfile(case, tmp_path):
    read = libnm_read(RENDERERS["networkmanager"].render(state(case), GuestFacts()), tmp_path)
    for dev in state(case).devices:
        got = read[f"vmtailor-{dev.name}.nmconnection"]
        assert got["uuid"] == connection_uuid(dev.name)
        assert (got["mac"] or "").lower() == (dev.mac or "")
        if dev.bond_master:
            assert (got["master"], got["slave_type"]) == (connection_uuid(dev.bond_master), "bond")
            continue
        for v in (4, 6):
            assert got[f"addresses{v}"] == [str(a) for a in dev.addresses_v(v)]
            carries = got[f"method{v}"] in ("auto", "manual")
            assert got[f"dns{v}"] == [str(a) for a in dev.dns if a.version == v and carries]
            gw = dev.gateway(v)
            if gw and got[f"gateway{v}"]:
                assert got[f"gateway{v}"] == str(gw.via)
            assert len(got[f"routes{v}"]) + bool(got[f"gateway{v}"]) == len(dev.routes_v(v))
        if dev.kind == "bond":
            assert got["bond"] == {"mode": "active-backup", "miimon": "100", "primary": "nic1"}
        if dev.kind == "vlan":
            assert got["vlan"] == [10, connection_uuid("trunk")]


# -- the fixture roots: Rocky 9 (plain resolv.conf) and Fedora 40 (resolved stub) ----------
CONFIG = {"network": {"version": 2, "ethernets": {"lan0": {
    "match": {"macaddress": MAC1}, "addresses": ["192.0.2.10/24"], "gateway4": "192.0.2.1",
    "nameservers": {"addresses": ["192.0.2.53"], "search": ["example.com"]}}}}}  # fmt: skip
OURS = f"{DIR}/vmtailor-lan0.nmconnection"
TEMPLATE = {"rocky-9": "System eth0.nmconnection", "fedora-40": "cloud-init-eth0.nmconnection"}


def apply(top, cfg=CONFIG):
    return engine.apply(config.parse(cfg), LocalRoot(str(top)))


@pytest.mark.parametrize("name", sorted(TEMPLATE))
def test_on_nm_templates_stale_profile_goes_and_revert_restores(make_root, name):
    top = make_root(name)
    resolv = top / "etc/resolv.conf"
    link = os.readlink(resolv) if resolv.is_symlink() else None
    text = None if link else resolv.read_text()
    before = tree_digest(top)
    result = apply(top)
    changes = {(c.action, c.path) for c in result.changes}
    assert ("create", OURS) in changes
    assert ("delete", f"{DIR}/{TEMPLATE[name]}") in changes
    assert os.listdir(top / DIR.lstrip("/")) == ["vmtailor-lan0.nmconnection"]
    st = (top / OURS.lstrip("/")).stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o600, 0, 0)
    kf = configparser.ConfigParser(interpolation=None)
    kf.read_string((top / OURS.lstrip("/")).read_text())
    assert kf["ethernet"]["mac-address"] == MAC1.upper()
    assert (kf["ipv4"]["address1"], kf["ipv4"]["gateway"]) == ("192.0.2.10/24", "192.0.2.1")
    assert kf["ipv4"]["dns"] == "192.0.2.53;"
    assert (
        (top / cloudinit.DROPIN.lstrip("/")).read_text().endswith("network: {config: disabled}\n")
    )
    # NM writes resolv.conf (a plain file) or hands DNS to resolved (the stub symlink)
    if link:
        assert os.readlink(resolv) == link and not (top / "run/systemd/resolve").exists()
    else:
        assert resolv.read_text() == text
    assert not (top / "etc/systemd/resolved.conf.d").exists()
    assert apply(top).changes == []
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_ifcfg_files_ports_and_cloud_init_dns_none_go_too(make_root):
    top = make_root("rocky-9")
    scripts = top / "etc/sysconfig/network-scripts"
    (scripts / "ifcfg-eth0").write_text('DEVICE=eth0\nHWADDR="52:54:00:1f:9a:c2"\n')
    (scripts / "route-eth0").write_text("10.0.0.0/8 via 10.0.0.1\n")
    (scripts / "ifcfg-lo").write_text("DEVICE=lo\n")
    conns = top / DIR.lstrip("/")
    (conns / "bond-port.nmconnection").write_text(
        "[connection]\nid=port\ntype=ethernet\ninterface-name=eth1\n"
        "master=5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03\nslave-type=bond\n"
    )
    (conns / "home-wifi.nmconnection").write_text(
        "[connection]\nid=home\ntype=wifi\n\n[wifi]\nssid=home\n"
    )
    (conns / "not-a-keyfile").write_text("garbage without a section\n")
    conf = top / "etc/NetworkManager/conf.d/99-cloud-init.conf"
    conf.write_text("# Created by cloud-init on instance boot automatically, do not edit.\n"
                    "#\n[main]\ndns = none\n")  # fmt: skip
    before = tree_digest(top)
    deleted = {c.path for c in apply(top).changes if c.action == "delete"}
    assert deleted == {
        f"{DIR}/System eth0.nmconnection",
        f"{DIR}/bond-port.nmconnection",  # a port of the removed profile
        "/etc/sysconfig/network-scripts/ifcfg-eth0",
        "/etc/sysconfig/network-scripts/route-eth0",
        "/etc/NetworkManager/conf.d/99-cloud-init.conf",
    }
    engine.revert(LocalRoot(str(top)))
    assert tree_digest(top) == before


def test_profiles_by_name_and_our_old_files(make_root):
    top = make_root("fedora-40")
    conns = top / DIR.lstrip("/")
    (conns / "ens3.nmconnection").write_text(
        "[connection]\nid=ens3\ntype=ethernet\ninterface-name=ens3\n"
    )
    (conns / "ens4.nmconnection").write_text(
        "[connection]\nid=ens4\ntype=ethernet\ninterface-name=ens4\n"
    )
    cfg = {"network": {"version": 2, "ethernets": {"ens3": {"dhcp4": True}}}}
    deleted = {c.path for c in apply(top, cfg).changes if c.action == "delete"}
    assert f"{DIR}/ens3.nmconnection" in deleted and f"{DIR}/ens4.nmconnection" not in deleted
    # a later config that no longer has ens3: our own old profile goes as well
    cfg = {"network": {"version": 2, "ethernets": {"back": {"match": {"macaddress": MAC2},
                                                            "dhcp4": True}}}}  # fmt: skip
    changes = {(c.action, c.path) for c in apply(top, cfg).changes}
    assert ("delete", f"{DIR}/vmtailor-ens3.nmconnection") in changes
    assert ("create", f"{DIR}/vmtailor-back.nmconnection") in changes


@needs_libnm
@pytest.mark.parametrize("case", ["dns-only", "dns6-on-v4"])
def test_dns_without_address_loads_in_libnm_and_goes_global(case, tmp_path):
    """libnm (1.42) refuses dns= under ipv4 method=link-local or ipv6 manual without an
    address (what netplan writes): such servers go to NM's global DNS instead, and the
    profile neither drops them silently nor turns SLAAC on to hold them."""
    from tests.unit.network.test_netplan_oracle import OWN

    net = config.parse({"network": {"version": 2, **OWN[case]}}).network
    files = RENDERERS["networkmanager"].render(build_state(net), GuestFacts())
    got = libnm_read(files, tmp_path)["vmtailor-eth0.nmconnection"]
    assert got["method6"] == "link-local"
    dns = OWN[case]["ethernets"]["eth0"]["nameservers"]["addresses"]
    assert f"servers={','.join(dns)}\n" in files[GLOBAL_DNS].content


@needs_libnm
def test_route_options_and_rules_load_in_libnm(tmp_path):
    """What netplan's NM backend can't write (it drops rules and scope, refuses types),
    read back by NM's own keyfile reader."""
    from tests.unit.network.test_netplan_oracle import OWN

    net = config.parse({"network": {"version": 2, **OWN["routing"]}}).network
    files = RENDERERS["networkmanager"].render(build_state(net), GuestFacts())
    got = libnm_read(files, tmp_path)["vmtailor-eth0.nmconnection"]
    assert got["rules4"] == [
        "priority 10 from 192.0.2.0/24 table 101",
        "priority 11 to 198.51.100.0/24 tos 0x08 fwmark 0x5 table 101",
    ]
    assert got["rules6"] == ["priority 12 from 2001:db8::/64 table 102"]
    assert got["attrs4"] == [
        {"table": "uint32 101", "src": "'192.0.2.10'", "mtu": "uint32 1400",
         "initcwnd": "uint32 10", "initrwnd": "uint32 20"},
        {"table": "uint32 101"},
        {"scope": "byte 0xfd"},
        {"type": "'blackhole'"},
        {"type": "'unreachable'"},
    ]  # fmt: skip
    assert got["attrs6"] == [{"table": "uint32 102"}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"priority": None}, r"routing-policy\[0\]: NetworkManager needs a priority"),
        ({"type": "nat"}, r"routes\[0\]\.type: NetworkManager has no nat routes"),
    ],
)
def test_what_networkmanager_cant_do_is_refused_by_key(change, message):
    from vmtailor.customizer.errors import PlanError

    route = {"to": "10.9.0.0/16", **({"type": change["type"]} if "type" in change else {})}
    rule = {"from": "192.0.2.0/24", "table": 5, "priority": 1}
    if "priority" in change:
        del rule["priority"]
    eth = {"addresses": ["192.0.2.10/24"], "routes": [route], "routing-policy": [rule]}
    net = config.parse({"network": {"version": 2, "ethernets": {"eth0": eth}}}).network
    with pytest.raises(PlanError, match=rf"^network\.ethernets\.eth0\.{message}"):
        RENDERERS["networkmanager"].check(build_state(net), GuestFacts())


@needs_libnm
def test_dhcp_overrides_load_in_libnm(tmp_path):
    eth = {"dhcp4": True, "dhcp-identifier": "mac", "wakeonlan": True, "ipv6-privacy": True,
           "large-receive-offload": False, "tcp6-segmentation-offload": True,
           "dhcp4-overrides": {"use-dns": False, "use-domains": False, "use-routes": False,
                               "route-metric": 50, "send-hostname": False, "hostname": "foo"}}  # fmt: skip
    net = config.parse({"network": {"version": 2, "ethernets": {"eth0": eth}}}).network
    files = RENDERERS["networkmanager"].render(build_state(net), GuestFacts())
    libnm_read(files, tmp_path)  # verify() passes
    kf = configparser.ConfigParser(interpolation=None)
    kf.read_string(files[f"{DIR}/vmtailor-eth0.nmconnection"].content)
    assert dict(kf["ipv4"]) == {
        "method": "auto", "dhcp-client-id": "mac", "dhcp-send-hostname": "false",
        "dhcp-hostname": "foo", "ignore-auto-dns": "true", "ignore-auto-routes": "true",
        "never-default": "true", "route-metric": "50"}  # fmt: skip
    assert kf["ipv6"]["ip6-privacy"] == "2"
    assert kf["ethernet"]["wake-on-lan"] == "64"
    assert dict(kf["ethtool"]) == {"feature-lro": "false", "feature-tx-tcp6-segmentation": "true"}
