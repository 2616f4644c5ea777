"""The network stack vmtailor writes, brought up for real: the Debian fixture (ifupdown,
ifenslave, bridge-utils) customized with two NICs in an active-backup bond, a VLAN on
the bond and a bridge over the VLAN, then booted on its own with both NICs. What the
guest reports on its serial console once up is what ifupdown made of the config: links,
masters, the bonding driver's own view, addresses.

Boots: the customization ISO once (SeaBIOS), then the guest on its own once."""

from __future__ import annotations

import re

from tests.e2e.qemu import boot
from tests.e2e.test_customize_boot import REPORT, check_customized, config, customize, self_poweroff

MAC1, MAC2 = "52:54:00:e2:e0:11", "52:54:00:e2:e0:12"
NETWORK = {
    "version": 2,
    "ethernets": {
        "nic1": {"match": {"macaddress": MAC1}},
        "nic2": {"match": {"macaddress": MAC2}},
    },
    "bonds": {
        "bond0": {
            "interfaces": ["nic1", "nic2"],
            "addresses": ["192.0.2.10/24"],
            "parameters": {
                "mode": "active-backup",
                "primary": "nic1",
                "mii-monitor-interval": 100,
            },
        }
    },
    "vlans": {"vlan100": {"id": 100, "link": "bond0"}},
    "bridges": {
        "br0": {
            "interfaces": ["vlan100"],
            "addresses": ["198.51.100.10/24"],
            "parameters": {"stp": False},
        }
    },
}
# networking.service (ifup -a) is done before multi-user.target, but a bridge's address
# may still be settling: wait for it (bounded), then say what is up, and how
NET_REPORT = (
    """\
i=0
while [ $i -lt 30 ] && ! ip -4 -o addr show dev br0 2>/dev/null | grep -q 198.51.100.10/; do
    sleep 1; i=$((i + 1))
done
echo "VMT-WAITED $i"
"""
    + REPORT
    + """\
ip -o link show | sed "s/^/VMT-LINK /"
ip -o -d link show dev vlan100 | sed "s/^/VMT-VLAN /"
sed "s/^/VMT-BOND /" /proc/net/bonding/bond0
systemctl is-active networking.service | sed "s/^/VMT-NETWORKING /"
# udev must have taken every link (systemd's .device unit is its proof), and said nothing
for dev in nic1 nic2 bond0 vlan100 br0; do
    echo "VMT-UNIT $dev $(systemctl is-active sys-subsystem-net-devices-$dev.device)"
done
journalctl -b -u systemd-udevd.service -p warning -o cat --no-pager | sed "s/^/VMT-UDEV /"
journalctl -b -u networking.service --no-pager | tail -n 40 | sed "s/^/VMT-NETLOG /"
"""
)


def links(log: str) -> dict[str, dict]:
    """`ip -o link show` lines: name -> {"flags", "master", "state"}."""
    out = {}
    for m in re.finditer(r"VMT-LINK \d+: ([^:@\s]+)(?:@\S+)?: <([^>]*)>([^\r\n]*)", log):
        rest = m[3]
        master = re.search(r" master (\S+)", rest)
        state = re.search(r" state (\S+)", rest)
        out[m[1]] = {
            "flags": set(m[2].split(",")),
            "master": master[1] if master else None,
            "state": state[1] if state else None,
        }
    return out


def test_bond_vlan_bridge_come_up(customization_iso, tmp_path):
    cfg = config("net01", self_poweroff(NET_REPORT), NETWORK)
    image, vm = customize(customization_iso, "debian", "bios", "iso", tmp_path, cfg)
    check_customized(image, vm, "debian", "net01")
    # the fixture has what the stack needs: vmtailor had nothing to warn about
    assert not [w for w in vm.result["warnings"] if w.startswith("network")], vm.result

    own = boot(None, firmware="bios", disks=[str(image)], nics=[MAC1, MAC2], timeout=600)
    print(f"debian bios, own boot with bond, VLAN and bridge to power-off: {own.seconds:.1f} s")
    assert own.powered_off, own.log[-6000:]
    log = own.log
    assert "VMT-BOOTED net01" in log, log[-6000:]
    addresses = re.findall(r"VMT-ADDR \d+: (\S+)\s+inet (\S+)", log)
    assert sorted(a for a in addresses if a[0] != "lo") == [
        ("bond0", "192.0.2.10/24"),
        ("br0", "198.51.100.10/24"),
    ], log[-6000:]

    up = links(log)
    for nic in ("nic1", "nic2"):  # both NICs, named by MAC, enslaved to the bond
        assert up[nic]["master"] == "bond0", up
        assert {"SLAVE", "UP", "LOWER_UP"} <= up[nic]["flags"], up
    assert "MASTER" in up["bond0"]["flags"] and up["bond0"]["state"] == "UP", up
    assert up["vlan100"]["master"] == "br0" and up["vlan100"]["state"] == "UP", up
    assert up["br0"]["state"] == "UP", up
    assert re.search(r"VMT-VLAN \d+: vlan100@bond0: .* vlan protocol 802\.1Q id 100 ", log)

    bonding = re.findall(r"VMT-BOND ([^\r\n]*)", log)
    assert "Bonding Mode: fault-tolerance (active-backup)" in bonding, bonding
    assert "Primary Slave: nic1 (primary_reselect always)" in bonding, bonding
    assert "Currently Active Slave: nic1" in bonding, bonding
    assert "MII Polling Interval (ms): 100" in bonding, bonding
    assert [b for b in bonding if b.startswith("Slave Interface:")] == [
        "Slave Interface: nic1",
        "Slave Interface: nic2",
    ], bonding
    assert "VMT-NETWORKING active" in log, log[-6000:]
    # the VLAN shares nic1's MAC: a naming rule that matched it too would rename it
    units = dict(re.findall(r"VMT-UNIT (\S+) (\S+)", log))
    assert units == dict.fromkeys(["nic1", "nic2", "bond0", "vlan100", "br0"], "active"), units
    assert not re.findall(r"VMT-UDEV ([^\r\n]*)", log), log[-6000:]
