"""A guest that cannot power itself off, on a real libvirtd with the real customization
ISO: a domain without <acpi/> (hand-written XML, old templates), whose kernel can only
halt once the initrd is done. The deploy must end in about the time of a normal one:

- through `vmtailor deploy`: the customization boot's on_reboot=destroy lets the initrd
  reboot instead, and the domain stops by itself;
- where the initrd isn't told a reboot stops the VM (no reboot_stops on the media), it
  halts: this run's result record on the console ends the wait, the grace passes, the
  domain is stopped, and the record counts.

Both with a 120 s timeout: code that waits for power-off alone fails them."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from guest_disks import image as guest_image  # scripts/, on sys.path via tests/conftest.py

from tests.conftest import vmtailor
from tests.e2e.conftest import iso_in
from tests.e2e.test_deploy import CONFIG, _clone_xml, _guest_file, qemu_clone
from tests.integration import libvirt_fixture as lf
from vmtailor.builder.media import write_media
from vmtailor.customizer import config as configmod
from vmtailor.hypervisors import flow
from vmtailor.hypervisors import state as st
from vmtailor.hypervisors.base import VM, Connection, Media
from vmtailor.hypervisors.libvirt import LibvirtDriver
from vmtailor.hypervisors.libvirt_xml import canonical

ACPI = "<features><acpi/></features>"
TIMEOUT = 120  # a boot takes ~15-30 s under TCG; power-off-only code waits this out


@pytest.fixture(scope="module")
def site():
    lf.ensure_libvirtd()
    scratch = lf.scratch_dir()
    iso = iso_in(scratch)
    conn = lf.connect()
    made = []

    def clone(tag: str, *, acpi: bool) -> dict:
        name = f"{lf.PREFIX}{tag}-{uuid.uuid4().hex[:6]}"
        disk = scratch / f"{name}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                        "-b", str(guest_image("debian")), str(disk)], check=True)  # fmt: skip
        disk.chmod(0o644)
        vm = {"name": name, "disk": disk, "console": scratch / f"{name}.console.log",
              "mac": "52:54:00:00:7e:31", "hostname": tag, "ip": "192.0.2.31/24"}  # fmt: skip
        xml = _clone_xml(name, disk, vm["mac"], vm["console"])
        assert ACPI in xml
        conn.defineXML(xml if acpi else xml.replace(ACPI, "<features/>"))
        made.append(name)
        return vm

    yield {"scratch": scratch, "iso": iso, "conn": conn, "clone": clone}
    for name in made:
        lf.undefine(conn, name)
    conn.close()
    subprocess.run(["rm", "-rf", str(scratch)])


def _deploy(site, tmp_path, vm) -> tuple[dict, float]:
    (tmp_path / "config.yaml").write_text(CONFIG)
    inventory = tmp_path / f"{vm['hostname']}.yaml"
    inventory.write_text(json.dumps({
        "hypervisor": {"driver": "libvirt", "uri": lf.URI},
        "config": "config.yaml",
        "iso": str(site["iso"]),
        "vms": [{"name": vm["name"], "vars": {k: vm[k] for k in ("hostname", "mac", "ip")}}],
    }))  # fmt: skip
    started = time.monotonic()
    result = vmtailor("deploy", str(inventory), "--json", "--timeout", str(TIMEOUT))
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    (entry,) = json.loads(result.stdout)["vms"]
    return entry, seconds


def test_deploy_without_acpi_ends_as_fast_as_with_it(site, tmp_path, monkeypatch):
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(site["scratch"] / "state"))  # QEMU reads media
    conn = site["conn"]
    with_acpi = site["clone"]("acpi", acpi=True)
    without = site["clone"]("noacpi", acpi=False)
    original = lf.inactive_xml(conn, without["name"])
    assert "<acpi/>" not in original

    entry, seconds_acpi = _deploy(site, tmp_path, with_acpi)
    assert entry["status"] == "ok", entry
    entry, seconds_no_acpi = _deploy(site, tmp_path, without)
    print(f"deploy with ACPI: {seconds_acpi:.1f} s, without: {seconds_no_acpi:.1f} s")
    assert entry["status"] == "ok", entry
    assert seconds_no_acpi < seconds_acpi + 30, (seconds_acpi, seconds_no_acpi)

    # it ended by itself: the initrd rebooted (on_reboot=destroy), nobody had to stop it
    console = Path(entry["serial_log"]).read_text()
    assert console.rindex("END VMTAILOR RESULT") < console.rindex("reboot: Restarting system")
    assert "System halted" not in console
    assert console.count("Linux version") == 1  # the reboot did not boot the ISO again
    assert _guest_file(without["disk"], site["scratch"], "/etc/hostname").strip() == "noacpi"
    assert not conn.lookupByName(without["name"]).isActive()
    assert canonical(lf.inactive_xml(conn, without["name"])) == canonical(original)


def test_a_halted_guest_ends_on_its_result_record_and_the_grace(site, tmp_path, monkeypatch):
    # media that don't let the initrd reboot: it halts, as on a hypervisor where a reboot
    # would boot the ISO again
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(site["scratch"] / "state"))  # QEMU reads media
    conn = site["conn"]
    vm = site["clone"]("halts", acpi=False)
    original = lf.inactive_xml(conn, vm["name"])
    config = configmod.parse({"hostname": "halts"}, {})
    run = secrets.token_hex(16)
    media = site["scratch"] / "halts.config.iso"
    write_media(config, lambda _n: b"", str(media), "iso",
                run={"run": run, "reboot_stops": False})  # fmt: skip
    media.chmod(0o644)
    seen = []
    opts = flow.Options(timeout=TIMEOUT, grace=5.0)
    with (
        LibvirtDriver(Connection("libvirt", lf.URI)) as driver,
        st.StateFile.for_inventory(str(tmp_path / "halts.yaml")) as state,
    ):
        started = time.monotonic()
        outcome = flow.customize(driver, VM(vm["name"]), Media(str(site["iso"]), str(media)),
                                 state, opts, lambda _vm, what: seen.append(what), run)  # fmt: skip
        seconds = time.monotonic() - started
    print(f"deploy of a halting guest: {seconds:.1f} s")
    assert outcome.status == "ok", outcome.reason
    assert outcome.result["run"] == run
    assert seconds < TIMEOUT - 30
    assert "still running after its result: stopping it" in seen
    console = Path(outcome.serial_log).read_text()
    assert "reboot: System halted" in console
    assert _guest_file(vm["disk"], site["scratch"], "/etc/hostname").strip() == "halts"
    # the token goes to the console only, never into the guest
    in_guest = _guest_file(vm["disk"], site["scratch"], "/var/lib/vmtailor/result.json")
    assert json.loads(in_guest)["status"] == "ok"
    assert run not in in_guest
    assert canonical(lf.inactive_xml(conn, vm["name"])) == canonical(original)


def test_the_qemu_driver_makes_a_reboot_end_the_boot(tmp_path, monkeypatch):
    # QEMU's pc machine with acpi=off: the initrd reboots, set-action turns that into a
    # shutdown, the SHUTDOWN event ends the wait
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(tmp_path / "state"))
    vm = {"hostname": "qnoacpi", "mac": "52:54:00:00:7e:39", "ip": "192.0.2.39/24"}
    inventory, disk = qemu_clone(tmp_path, vm, machine="pc,acpi=off")
    started = time.monotonic()
    result = vmtailor("deploy", str(inventory), "--json", "--timeout", str(TIMEOUT))
    print(f"qemu deploy without ACPI: {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stdout + result.stderr
    (entry,) = json.loads(result.stdout)["vms"]
    assert entry["status"] == "ok", entry
    console = Path(entry["serial_log"]).read_text()
    assert console.rindex("END VMTAILOR RESULT") < console.rindex("reboot: Restarting system")
    assert console.count("Linux version") == 1  # the reboot did not boot the ISO again
    assert _guest_file(disk, tmp_path, "/etc/hostname").strip() == "qnoacpi"
