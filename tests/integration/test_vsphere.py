"""The vsphere driver against vcsim (govmomi's simulator, built from Debian's package):
the whole flow for two VMs with the exact API effects — devices added then removed, boot
order restored exactly, extraConfig cleaned, datastore files uploaded then removed — and
the fault cases. vcsim has no guest: a VM stays on until someone powers it off, so the
tests play the guest (write the serial log, power off) from a thread."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.fakes import vcsim
from tests.fakes.flow import run_flow, write_media
from vmtailor.hypervisors.base import VM, ConnectError, Connection, DriverError, Media, VMNotFound
from vmtailor.hypervisors.vsphere import SAVED_KEY, VSphereDriver

SERIAL = "vmtailor: result ok hostname=web01\n"


@pytest.fixture(scope="module")
def sim():
    with vcsim.running(vms_per_host=4) as url:
        yield urllib.parse.urlsplit(url)


@pytest.fixture(scope="module")
def admin(sim):
    """A second session, the test's own view of vCenter (and the guest's power button)."""
    si = SmartConnect(
        host=sim.hostname,
        port=sim.port,
        user=sim.username,
        pwd=sim.password,
        disableSslCertValidation=True,
    )
    yield si.RetrieveContent()
    Disconnect(si)


def connection(sim, password=None, **options) -> Connection:
    return Connection(
        driver="vsphere",
        uri=f"https://{sim.hostname}:{sim.port}",
        username=sim.username,
        password=password or sim.password,
        verify_tls=False,
        options=options,
    )


@pytest.fixture
def driver(sim):
    with VSphereDriver(connection(sim)) as d:
        yield d


@pytest.fixture
def media(tmp_path) -> Media:
    return write_media(tmp_path, b"ISO" * 5000, b"{config}")


def find(content, name):
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next(vm for vm in view.view if vm.name == name)
    finally:
        view.Destroy()


def state(obj) -> dict:
    """Everything vmtailor may touch: devices (key, type, backing file), boot order,
    vmtailor's extraConfig key (last entry wins: vcsim appends updates), power state."""
    devices = []
    for d in obj.config.hardware.device:
        backing = getattr(d.backing, "fileName", None) if d.backing else None
        devices.append((d.key, type(d).__name__.rsplit(".", 1)[-1], backing))
    order = [
        (type(b).__name__.rsplit(".", 1)[-1], getattr(b, "deviceKey", None))
        for b in obj.config.bootOptions.bootOrder or []
    ]
    extra = {o.key: o.value for o in obj.config.extraConfig or []}
    return {
        "devices": sorted(devices),
        "boot": order,
        "saved": extra.get(SAVED_KEY) or None,
        "power": obj.runtime.powerState,
    }


def datastore_dir(obj) -> Path:
    return Path(obj.datastore[0].info.url)  # vcsim keeps each datastore in a local folder


def set_boot_order(obj, order) -> None:
    spec = vim.vm.ConfigSpec(bootOptions=vim.vm.BootOptions(bootOrder=order))
    task = obj.ReconfigVM_Task(spec)
    while task.info.state not in ("success", "error"):
        time.sleep(0.01)
    assert task.info.state == "success"


def guest(content, name, serial_path: Path | None, delay=0.3, text=SERIAL):
    """Play the customization initrd: once the VM runs, log the result on the serial
    port (the file ESXi would write) and power off."""

    def run():
        obj = find(content, name)
        deadline = time.monotonic() + 30
        while obj.runtime.powerState != "poweredOn" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        if serial_path is not None:
            serial_path.parent.mkdir(parents=True, exist_ok=True)
            with open(serial_path, "a") as f:
                f.write(text)
        obj.PowerOffVM_Task()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_flow_for_two_vms_restores_everything(driver, admin, media):
    names = ["DC0_H0_VM0", "DC0_C0_RP0_VM0"]
    objs = [find(admin, n) for n in names]
    # the first VM has an explicit boot order (disk, then NIC), the second none at all
    disk = next(
        d for d in objs[0].config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)
    )
    nic = next(
        d
        for d in objs[0].config.hardware.device
        if isinstance(d, vim.vm.device.VirtualEthernetCard)
    )
    set_boot_order(
        objs[0],
        [
            vim.vm.BootOptions.BootableDiskDevice(deviceKey=disk.key),
            vim.vm.BootOptions.BootableEthernetDevice(deviceKey=nic.key),
        ],
    )
    before = [state(o) for o in objs]
    ds = datastore_dir(objs[0])

    seen = {}
    real_power_on = driver.power_on

    def power_on_and_look(vm):
        # the moment between attach and boot: what did attach do to the VM?
        obj = find(admin, vm.name)
        seen[vm.name] = state(obj)
        seen[vm.name + "/files"] = sorted(p.name for p in (ds / "vmtailor" / vm.name).iterdir())
        seen[vm.name + "/iso"] = (ds / "vmtailor" / vm.name / "vmtailor.iso").read_bytes()
        real_power_on(vm)

    driver.power_on = power_on_and_look
    for name, obj, orig in zip(names, objs, before, strict=True):
        guest(admin, name, ds / "vmtailor" / name / "serial.log")
        ran = run_flow(driver, VM(name), media)
        off, text, saved, placed = ran.off, ran.text, ran.saved, ran.placed
        assert off and text == SERIAL

        assert placed.iso == f"[LocalDS_0] vmtailor/{name}/vmtailor.iso"
        assert placed.config == f"[LocalDS_0] vmtailor/{name}/config.iso"
        during = seen[name]
        added = sorted(set(during["devices"]) - set(orig["devices"]))
        assert sorted((t, f) for _, t, f in added) == sorted(
            [
                ("VirtualCdrom", placed.iso),
                ("VirtualCdrom", placed.config),
                ("VirtualSerialPort", f"[LocalDS_0] vmtailor/{name}/serial.log"),
            ]
        )
        assert set(orig["devices"]) <= set(during["devices"])  # nothing of the VM's removed
        assert during["boot"][0] == ("BootableCdromDevice", None)
        assert json.loads(during["saved"]) == saved
        assert seen[name + "/files"] == ["config.iso", "vmtailor.iso"]
        assert seen[name + "/iso"] == Path(media.iso).read_bytes()

        assert state(obj) == orig  # devices, exact boot order, extraConfig, powered off
        assert not (ds / "vmtailor" / name).exists()
    assert before[0]["boot"] == [
        ("BootableDiskDevice", disk.key),
        ("BootableEthernetDevice", nic.key),
    ]


def test_through_the_deploy_flow_with_its_state_file(sim, admin, media, tmp_path):
    """hypervisors/flow.py drives the driver: result read from the serial log, the state
    file says done, and the VM is exactly as before."""
    from vmtailor.hypervisors import flow
    from vmtailor.hypervisors import state as st
    from vmtailor.initrd.result import format_result

    name = "DC0_C0_RP0_VM2"
    obj = find(admin, name)
    before = state(obj)
    record = {"status": "ok", "hostname": "web01"}
    guest(
        admin,
        name,
        datastore_dir(obj) / "vmtailor" / name / "serial.log",
        text=format_result(record),
    )
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("")
    with (
        VSphereDriver(connection(sim)) as driver,
        st.StateFile(str(tmp_path / "state"), str(inventory)) as sf,
    ):
        outcome = flow.customize(
            driver, VM(name), media, sf, flow.Options(timeout=30), lambda *a: None
        )
        assert outcome.status == "ok", outcome.reason
        assert outcome.result["hostname"] == "web01"
        assert sf.vm(name)["phase"] == st.DONE
    assert state(obj) == before
    assert not (datastore_dir(obj) / "vmtailor" / name).exists()


def test_timeout_detaches_and_restores(driver, admin, media):
    name = "DC0_H0_VM1"
    obj = find(admin, name)
    before = state(obj)
    started = time.monotonic()
    ran = run_flow(driver, VM(name), media, timeout=2)  # nobody powers it off
    off, text = ran.off, ran.text
    assert not off and text is None
    assert 2 <= time.monotonic() - started < 20
    assert state(obj) == before


def test_floppy_config_media(driver, admin, tmp_path):
    name = "DC0_H0_VM2"
    obj = find(admin, name)
    before = state(obj)
    (tmp_path / "a.iso").write_bytes(b"iso")
    (tmp_path / "c.img").write_bytes(b"\0" * 1474560)
    media = Media(str(tmp_path / "a.iso"), str(tmp_path / "c.img"), "floppy")
    guest(admin, name, datastore_dir(obj) / "vmtailor" / name / "serial.log")
    attached = []
    real_attach = driver.attach

    def attach_and_look(vm, placed, saved):
        real_attach(vm, placed, saved)
        attached.extend(d for d in state(obj)["devices"] if d not in before["devices"])

    driver.attach = attach_and_look
    ran = run_flow(driver, VM(name), media)
    off, text, placed = ran.off, ran.text, ran.placed
    assert off and text == SERIAL
    assert ("VirtualFloppy", placed.config) in [(t, f) for _, t, f in attached]
    assert placed.config == f"[LocalDS_0] vmtailor/{name}/config.flp"
    assert state(obj) == before


def test_interrupted_run_is_restored_from_extra_config(sim, admin, media):
    """A process that dies after attach leaves the record on the VM: a new process's
    snapshot returns the original, and restore from it puts everything back."""
    name = "DC0_H0_VM3"
    obj = find(admin, name)
    before = state(obj)
    with VSphereDriver(connection(sim)) as first:
        saved = first.snapshot(VM(name))
        placed = first.upload(VM(name), media)
        first.attach(VM(name), placed, saved)
    with VSphereDriver(connection(sim)) as second:
        again = second.snapshot(VM(name))
        assert again == saved
        second.attach(VM(name), second.upload(VM(name), media), again)  # no duplicates
        assert len(state(obj)["devices"]) == len(before["devices"]) + 3
        second.restore(VM(name), again)
        second.restore(VM(name), again)  # idempotent
        second.discard(VM(name), placed.to_dict())
        second.discard(VM(name), placed.to_dict())
    assert state(obj) == before


def test_vm_not_found(driver):
    with pytest.raises(VMNotFound, match="no-such-vm"):
        driver.power_state(VM("no-such-vm"))


def test_bad_credentials(sim):
    with pytest.raises(ConnectError, match="login failed"):
        VSphereDriver(connection(sim, password="wrong")).connect()


def test_unreachable_host():
    conn = Connection(driver="vsphere", uri="https://127.0.0.1:1", username="u", password="p")
    with pytest.raises(ConnectError, match="127.0.0.1:1"):
        VSphereDriver(conn).connect()


def test_upload_failure_leaves_the_vm_unchanged(sim, admin, media):
    name = "DC0_C0_RP0_VM1"
    obj = find(admin, name)
    before = state(obj)
    (datastore_dir(obj) / "blocked").write_text("a file where the upload folder should go")
    with VSphereDriver(connection(sim, folder="blocked")) as driver:
        with pytest.raises(DriverError, match=r"upload \[LocalDS_0\] blocked/.*HTTP 500"):
            run_flow(driver, VM(name), media)
    assert state(obj) == before
