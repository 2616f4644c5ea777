"""The qemu driver: real QEMU (TCG) started by vmtailor with -no-shutdown, driven over QMP
(qemu.qmp): CD-ROMs hot-added on a SCSI bus, bootindex moved and put back exactly, the
SHUTDOWN event, the serial log — and a guest that never powers off."""

from __future__ import annotations

import json

import pytest

from tests.conftest import vmtailor
from tests.integration import libvirt_fixture as lf
from vmtailor import hypervisors
from vmtailor.hypervisors import flow
from vmtailor.hypervisors import state as st
from vmtailor.hypervisors.base import VM, Connection, DriverError, Media, PowerState

QemuDriver = hypervisors.load("qemu")


@pytest.fixture(scope="module")
def isos(tmp_path_factory):
    top = tmp_path_factory.mktemp("isos")
    return {
        "standin": lf.standin_iso(top / "standin.iso"),
        "hang": lf.data_iso(top / "hang.iso", "VMTAILOR"),
        "config": lf.data_iso(top / "config.iso", "VMTCONFIG"),
    }


@pytest.fixture
def vm(tmp_path):
    disk = lf.empty_disk(tmp_path / "disk.qcow2")
    # the disk and the NIC carry bootindexes of their own, to be moved and put back
    args = ["-machine", "pc", "-accel", "tcg", "-m", "256", "-display", "none",
            "-drive", f"file={disk},if=none,id=d0,format=qcow2",
            "-device", "virtio-blk-pci,drive=d0,id=disk0,bootindex=0",
            "-nic", "user,model=e1000,id=n0"]  # fmt: skip
    return VM("qmp-guest", {"qemu": args})


@pytest.fixture
def driver(tmp_path):
    d = QemuDriver(Connection("qemu", options={"run_dir": str(tmp_path / "run")}))
    d.connect()
    yield d
    for name in list(d.monitors):
        d.power_off(VM(name))
    d.close()


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(tmp_path / "state"))
    with st.StateFile.for_inventory(str(tmp_path / "inventory.yaml")) as s:
        yield s


def _quiet(_vm, _what):
    pass


def test_attach_moves_bootindex_and_restore_puts_it_back(driver, vm, isos):
    saved = driver.snapshot(vm)
    placed = driver.upload(vm, Media(str(isos["standin"]), str(isos["config"])))
    driver.attach(vm, placed, saved)
    orders = driver._bootindexes(vm)
    assert orders == {"/machine/peripheral/disk0": 1, "/machine/peripheral/vmtailor-iso-cd": 0}
    blocks = [b.get("qdev") or "" for b in driver._qmp(vm, "list", "query-block")]
    assert sum("vmtailor-" in b for b in blocks) == 2  # the ISO's and the config's CD-ROMs
    assert driver.power_state(vm) is PowerState.OFF  # paused before the firmware ran
    with pytest.raises(DriverError, match="already runs"):
        driver.snapshot(vm)
    driver.restore(vm, saved)  # checks every bootindex is back, then quits QEMU
    assert driver._monitor(vm) is None
    driver.restore(vm, saved)  # idempotent


def test_customization_boot_reads_the_result_from_the_serial_log(driver, vm, isos, state):
    media = Media(str(isos["standin"]), str(isos["config"]))
    outcome = flow.customize(driver, vm, media, state, flow.Options(timeout=240), _quiet)
    assert outcome.status == "ok", outcome.reason
    assert outcome.result["hostname"] == "standin"
    assert driver._monitor(vm) is None  # restored and gone
    assert state.phase(vm.name) == st.DONE


def test_power_on_afterwards_boots_the_vms_own_arguments(driver, vm, isos, state):
    media = Media(str(isos["standin"]), str(isos["config"]))
    opts = flow.Options(timeout=240, power_on=True)
    outcome = flow.customize(driver, vm, media, state, opts, _quiet)
    assert outcome.status == "ok", outcome.reason
    assert driver.power_state(vm) is PowerState.RUNNING
    assert driver._bootindexes(vm) == {"/machine/peripheral/disk0": 0}
    names = {b["device"] or b["qdev"] for b in driver._qmp(vm, "list", "query-block")}
    assert not any("vmtailor" in n for n in names)
    with pytest.raises(DriverError, match="did not shut down within 2 s"):
        driver.shutdown(vm, 2)  # SeaBIOS with nothing to boot ignores ACPI
    driver.power_off(vm)
    assert driver.power_state(vm) is PowerState.OFF


def test_a_guest_that_never_powers_off_times_out_and_is_cleaned_up(driver, vm, isos, state):
    media = Media(str(isos["hang"]), str(isos["config"]))
    outcome = flow.customize(driver, vm, media, state, flow.Options(timeout=5), _quiet)
    assert outcome.status == "failed" and "did not power off within 5 s" in outcome.reason
    assert driver._monitor(vm) is None
    assert state.phase(vm.name) == st.FAILED


def test_bad_arguments_and_unreadable_media_are_one_line_failures(driver, vm, isos, state):
    bad = VM("bad", {"qemu": ["-no-such-option"]})
    media = Media(str(isos["standin"]), str(isos["config"]))
    out = flow.customize(driver, bad, media, state, flow.Options(), _quiet)
    assert out.status == "failed" and "QEMU did not start" in out.reason
    out = flow.customize(driver, vm, Media("/nonexistent.iso", str(isos["config"])), state,
                         flow.Options(), _quiet)  # fmt: skip
    assert out.status == "failed" and "cannot read /nonexistent.iso" in out.reason


def test_deploy_with_the_qemu_driver(tmp_path, monkeypatch, vm, isos):
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "config.yaml").write_text("hostname: '{{ hostname }}'\n")
    inv = tmp_path / "inventory.yaml"
    inv.write_text(json.dumps({
        "hypervisor": {"driver": "qemu", "run_dir": str(tmp_path / "run")},
        "config": "config.yaml",
        "iso": str(isos["standin"]),
        "vms": [{"name": "q1", "vars": {"hostname": "q1"}, "qemu": vm.settings["qemu"]}],
    }))  # fmt: skip
    result = vmtailor("deploy", str(inv), "--json", "--timeout", "240")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["vms"][0]["status"] == "ok"
    inv.write_text(inv.read_text().replace('"qemu": [', '"qemu": 3, "x": ['))
    result = vmtailor("deploy", str(inv))
    assert result.returncode == 2 and "unknown key 'x'" in result.stderr
