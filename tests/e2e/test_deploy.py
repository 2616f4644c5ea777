"""End to end on a real libvirtd: two clones of the Debian fixture disk (qcow2 overlays)
defined as libvirt domains; `vmtailor deploy --jobs 2` boots both from the real
customization ISO. Afterwards each disk holds its own hostname and address, each domain's
XML equals its original, and a normal boot shows the new hostname on the serial console.
The qemu driver too, as `make demo` drives it: QEMU's own `pc` machine, whose empty IDE CD
drive the initrd must look past."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from guest_disks import image as guest_image  # scripts/, on sys.path via tests/conftest.py
from guest_disks.disk import attached

from tests.conftest import vmtailor
from tests.e2e.conftest import build_cached, iso_in
from tests.integration import libvirt_fixture as lf
from vmtailor.hypervisors.libvirt_xml import canonical

CONFIG = """\
hostname: "{{ hostname }}"
domain: example.com
network:
  version: 2
  ethernets:
    lan0:
      match: {macaddress: "{{ mac }}"}
      addresses: ["{{ ip }}"]
files:
  - {path: /etc/motd, content: "{{ hostname }}: customized by vmtailor deploy\\n"}
"""
ROOT_PARTITION = 4  # scripts/guest_disks/debian.py: bios, esp, boot, root


def _clone_xml(name: str, disk: Path, mac: str, console: Path) -> str:
    xml = lf.domain_xml(name, disk, style="os")
    xml = xml.replace("<memory unit='MiB'>256</memory>", "<memory unit='MiB'>512</memory>")
    xml = xml.replace("<target dev='hda' bus='ide'/>", "<target dev='vda' bus='virtio'/>")
    xml = xml.replace("<model type='e1000'/>", f"<mac address='{mac}'/><model type='virtio'/>")
    # the domain's own console log: vmtailor reads the customization boot from it, the
    # test reads the normal boot after it
    return xml.replace(
        "<serial type='pty'><target port='0'/>",
        f"<serial type='pty'><log file='{console}' append='on'/><target port='0'/>",
    )


@pytest.fixture(scope="module")
def clones():
    lf.ensure_libvirtd()
    scratch = lf.scratch_dir()
    iso = iso_in(scratch)
    base = scratch / "debian.raw"
    subprocess.run(["cp", "--sparse=always", str(guest_image("debian")), str(base)], check=True)
    base.chmod(0o644)
    conn = lf.connect()
    tag = uuid.uuid4().hex[:6]
    vms = []
    for i in (1, 2):
        name = f"{lf.PREFIX}deb{i}-{tag}"
        disk = scratch / f"{name}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base),
                        str(disk)], check=True)  # fmt: skip
        disk.chmod(0o644)
        vm = {"name": name, "disk": disk, "console": scratch / f"{name}.console.log",
              "mac": f"52:54:00:00:7e:0{i}", "hostname": f"clone-{i}", "ip": f"192.0.2.{10 + i}/24"}  # fmt: skip
        conn.defineXML(_clone_xml(name, disk, vm["mac"], vm["console"]))
        vms.append(vm)
    yield {"scratch": scratch, "iso": iso, "vms": vms, "conn": conn}
    for vm in vms:
        lf.undefine(conn, vm["name"])
    conn.close()
    subprocess.run(["rm", "-rf", str(scratch)])


def _guest_file(disk: Path, scratch: Path, path: str) -> str:
    """A file from the clone's root filesystem, read with debugfs (no mount: both clones
    carry the same filesystem UUID)."""
    raw = scratch / f"{disk.stem}.raw"
    if not raw.exists():
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk), str(raw)], check=True)
    with attached(str(raw), readonly=True) as loop:
        out = subprocess.run(["debugfs", "-R", f"cat {path}", loop.part(ROOT_PARTITION)],
                             capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout


def _wait_for_text(path: Path, offset: int, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        if path.exists():
            with open(path, "rb") as f:
                f.seek(offset)
                seen = f.read().decode("utf-8", errors="replace")
            if text in seen:
                return seen
        time.sleep(1)
    raise AssertionError(f"{text!r} never appeared on the console:\n{seen[-3000:]}")


def test_deploy_two_clones_then_boot_one(clones, tmp_path, monkeypatch):
    scratch, conn, vms = clones["scratch"], clones["conn"], clones["vms"]
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(scratch / "state"))
    originals = {vm["name"]: lf.inactive_xml(conn, vm["name"]) for vm in vms}
    (tmp_path / "config.yaml").write_text(CONFIG)
    inventory = tmp_path / "site.yaml"
    inventory.write_text(json.dumps({
        "hypervisor": {"driver": "libvirt", "uri": lf.URI},
        "config": "config.yaml",
        "iso": str(clones["iso"]),
        "vms": [{"name": vm["name"], "vars": {k: vm[k] for k in ("hostname", "mac", "ip")}}
                for vm in vms],
    }))  # fmt: skip

    started = time.monotonic()
    result = vmtailor("deploy", str(inventory), "--jobs", "2", "--json", "--timeout", "600")
    print(f"deploy of two clones: {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [v["status"] for v in report["vms"]] == ["ok", "ok"], report

    for vm, entry in zip(vms, report["vms"], strict=True):
        assert not conn.lookupByName(vm["name"]).isActive()
        assert canonical(lf.inactive_xml(conn, vm["name"])) == canonical(originals[vm["name"]])
        assert _guest_file(vm["disk"], scratch, "/etc/hostname").strip() == vm["hostname"]
        assert f"{vm['hostname']}: customized" in _guest_file(vm["disk"], scratch, "/etc/motd")
        network = [c["path"] for c in entry["result"]["changes"] if "network" in c["path"]]
        assert network, entry["result"]["changes"]
        assert any(vm["ip"] in _guest_file(vm["disk"], scratch, p) for p in network), network
        os.unlink(scratch / f"{vm['disk'].stem}.raw")

    # a normal boot of the restored domain: from its own disk, with its new name
    first = vms[0]
    offset = first["console"].stat().st_size
    dom = conn.lookupByName(first["name"])
    dom.create()
    try:
        console = _wait_for_text(first["console"], offset, f"{first['hostname']} login:", 300)
    finally:
        dom.destroy()
    assert "VMTAILOR RESULT" not in console  # the guest's own OS, not the ISO


def qemu_clone(tmp_path: Path, vm: dict, machine: str = "pc") -> tuple[Path, Path]:
    """(inventory, disk): a clone of the Debian fixture as the qemu driver's VM `q1`, with
    CONFIG rendered from `vm` (hostname, mac, ip), state in tmp_path."""
    disk = tmp_path / "q1.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                    "-b", str(guest_image("debian")), str(disk)], check=True)  # fmt: skip
    (tmp_path / "config.yaml").write_text(CONFIG)
    inventory = tmp_path / "site.yaml"
    inventory.write_text(json.dumps({
        "hypervisor": {"driver": "qemu", "run_dir": str(tmp_path / "run")},
        "config": "config.yaml",
        "iso": build_cached().iso,
        # no -nodefaults: the machine keeps its empty IDE CD drive, as in make demo
        "vms": [{"name": "q1", "vars": vm,
                 "qemu": ["-machine", machine, "-accel", "tcg", "-m", "512", "-display", "none",
                          "-drive", f"file={disk},if=none,id=d0,format=qcow2",
                          "-device", "virtio-blk-pci,drive=d0,bootindex=0",
                          "-nic", f"user,model=virtio-net-pci,mac={vm['mac']}"]}],
    }))  # fmt: skip
    return inventory, disk


def test_deploy_with_the_qemu_driver_customizes_a_real_clone(tmp_path, monkeypatch):
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(tmp_path / "state"))
    vm = {"hostname": "qclone", "mac": "52:54:00:00:7e:09", "ip": "192.0.2.19/24"}
    inventory, disk = qemu_clone(tmp_path, vm)

    result = vmtailor("deploy", str(inventory), "--json", "--timeout", "600")
    assert result.returncode == 0, result.stdout + result.stderr
    (entry,) = json.loads(result.stdout)["vms"]
    assert entry["status"] == "ok", entry
    assert _guest_file(disk, tmp_path, "/etc/hostname").strip() == vm["hostname"]
    assert f"{vm['hostname']}: customized" in _guest_file(disk, tmp_path, "/etc/motd")
