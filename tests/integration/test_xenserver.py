"""The xenserver driver against a stateful fake XenAPI host: the exact XenAPI calls of
the flow, a final state equal to the first (original disc back in the CD drive, our CD
drive and VDIs gone, HVM boot order exact), and the fault cases."""

from __future__ import annotations

import pytest

from tests.fakes.flow import run_flow, write_media
from tests.fakes.xenapi import SESSION, FakeXen
from vmtailor.hypervisors.base import VM, ConnectError, Connection, DriverError, Media, VMNotFound
from vmtailor.hypervisors.xenserver import XenServerDriver, order_with_cd_first


@pytest.fixture
def fake():
    with FakeXen() as server:
        library_iso = server.add_iso("debian-12.iso")
        server.add_vm("web01", "cn", cd_vdi=library_iso)  # a disc left in the drive
        server.add_vm("web02", None, cd_vdi=None)  # no order set, empty drive
        server.add_vm("stuck", "c", cd_vdi=None, runs_for=None)
        yield server


def connection(fake, password="secret") -> Connection:
    return Connection(driver="xenserver", uri=fake.url, username="root", password=password)


@pytest.fixture
def media(tmp_path) -> Media:
    return write_media(tmp_path)


def test_flow_for_two_vms_makes_exactly_these_calls(fake, media):
    before = fake.vm_state()
    seen = {}
    with XenServerDriver(connection(fake)) as driver:
        real_power_on = driver.power_on

        def look_then_power_on(vm):
            seen[vm.name] = fake.vm_state()
            real_power_on(vm)

        driver.power_on = look_then_power_on
        for name in ("web01", "web02"):
            ran = run_flow(driver, VM(name), media)
            off, result = ran.off, ran.text
            assert off and result is None
    assert fake.vm_state() == before

    # while attached: the ISO in web01's first CD drive, d first in the boot order
    during = seen["web01"]
    vm1 = "OpaqueRef:vm-web01"
    assert during["vms"][vm1]["HVM_boot_params"]["order"] == "dcn"
    cds = sorted(
        (b["userdevice"], during["vdis"][b["VDI"]]["name_label"], b["bootable"])
        for b in during["vbds"].values()
        if b["VM"] == vm1 and b["type"] == "CD"
    )
    assert cds == [("1", "vmtailor-web01-config", False), ("3", "vmtailor-web01-iso", False)]
    assert during["vdis"]["OpaqueRef:vdi-11"]["data"] == b"I" * 4096

    calls = [c for c in fake.calls if c[0] != "event.from"]
    assert calls[0] == ("session.login_with_password", "root", "***", "2.0", "vmtailor")
    web01 = calls[1 : calls.index(("VM.get_by_name_label", "web02"))]
    assert web01 == [
        ("VM.get_by_name_label", "web01"),
        ("VM.get_is_a_template", vm1),
        ("VM.get_is_control_domain", vm1),
        ("VM.get_HVM_boot_params", vm1),
        ("VM.get_VBDs", vm1),
        ("VBD.get_record", "OpaqueRef:vbd-3"),
        ("VBD.get_record", "OpaqueRef:vbd-4"),
        ("SR.get_by_name_label", "ISOs"),
        ("VDI.create", vdi_record("web01", "iso", 4096)),
        ("VDI.get_uuid", "OpaqueRef:vdi-11"),
        ("PUT /import_raw_vdi", "OpaqueRef:vdi-11", 4096),
        ("VDI.create", vdi_record("web01", "config", 2048)),
        ("VDI.get_uuid", "OpaqueRef:vdi-12"),
        ("PUT /import_raw_vdi", "OpaqueRef:vdi-12", 2048),
        ("VDI.get_by_uuid", "vdi-uuid-11"),
        ("VDI.get_by_uuid", "vdi-uuid-12"),
        ("VBD.eject", "OpaqueRef:vbd-4"),
        ("VBD.insert", "OpaqueRef:vbd-4", "OpaqueRef:vdi-11"),
        ("VBD.create", vbd_record(vm1, "OpaqueRef:vdi-12", "1")),
        ("VM.remove_from_HVM_boot_params", vm1, "order"),
        ("VM.add_to_HVM_boot_params", vm1, "order", "dcn"),
        ("VM.start", vm1, False, False),
        ("VM.get_power_state", vm1),
        ("VM.get_power_state", vm1),
        ("VM.get_VBDs", vm1),
        ("VBD.get_record", "OpaqueRef:vbd-3"),
        ("VBD.get_record", "OpaqueRef:vbd-4"),
        ("VBD.get_record", "OpaqueRef:vbd-13"),
        ("VBD.eject", "OpaqueRef:vbd-4"),
        ("VBD.insert", "OpaqueRef:vbd-4", "OpaqueRef:vdi-1"),  # the library disc back
        ("VBD.destroy", "OpaqueRef:vbd-13"),
        ("VM.get_HVM_boot_params", vm1),
        ("VM.remove_from_HVM_boot_params", vm1, "order"),
        ("VM.add_to_HVM_boot_params", vm1, "order", "cn"),
        ("VDI.get_by_uuid", "vdi-uuid-11"),
        ("VDI.destroy", "OpaqueRef:vdi-11"),
        ("VDI.get_by_uuid", "vdi-uuid-12"),
        ("VDI.destroy", "OpaqueRef:vdi-12"),
    ]
    # web02 had no order: it gets "dc", and restore removes the key again
    assert ("VM.add_to_HVM_boot_params", "OpaqueRef:vm-web02", "order", "dc") in calls
    assert calls[-6:] == [
        ("VM.remove_from_HVM_boot_params", "OpaqueRef:vm-web02", "order"),
        ("VDI.get_by_uuid", "vdi-uuid-14"),
        ("VDI.destroy", "OpaqueRef:vdi-14"),
        ("VDI.get_by_uuid", "vdi-uuid-15"),
        ("VDI.destroy", "OpaqueRef:vdi-15"),
        ("session.logout",),
    ]
    # power-off is awaited with events, each bounded
    events = [c for c in fake.calls if c[0] == "event.from"]
    assert events and all(
        c[1] == [f"vm/{vm1}"] or c[1] == ["vm/OpaqueRef:vm-web02"] for c in events
    )


def vdi_record(vm, label, size):
    return {
        "name_label": f"vmtailor-{vm}-{label}",
        "name_description": "vmtailor customization media",
        "SR": "OpaqueRef:sr-iso",
        "virtual_size": str(size),
        "type": "user",
        "sharable": False,
        "read_only": False,
        "other_config": {},
        "xenstore_data": {},
        "sm_config": {},
        "tags": [],
    }


def vbd_record(vm, vdi, userdevice):
    return {
        "VM": vm,
        "VDI": vdi,
        "userdevice": userdevice,
        "bootable": False,
        "mode": "RO",
        "type": "CD",
        "empty": False,
        "unpluggable": True,
        "other_config": {},
        "qos_algorithm_type": "",
        "qos_algorithm_params": {},
    }


def test_timeout_halts_restores_and_cleans_up(fake, media):
    before = fake.vm_state()
    with XenServerDriver(connection(fake)) as driver:
        ran = run_flow(driver, VM("stuck"), media, timeout=0.3)
        off = ran.off
    assert not off
    assert ("VM.hard_shutdown", "OpaqueRef:vm-stuck") in fake.calls
    assert fake.vm_state() == before


def test_restore_twice_changes_nothing_more(fake, media):
    with XenServerDriver(connection(fake)) as driver:
        saved = driver.snapshot(VM("web01"))
        placed = driver.upload(VM("web01"), media)
        driver.attach(VM("web01"), placed, saved)
        driver.restore(VM("web01"), saved)
        once = fake.vm_state()
        n = len(fake.calls)
        driver.restore(VM("web01"), saved)
        assert [c[0] for c in fake.calls[n:]].count("VBD.destroy") == 0
        assert fake.vm_state() == once
        driver.discard(VM("web01"), placed.to_dict())
        driver.discard(VM("web01"), placed.to_dict())


def test_vm_not_found(fake):
    with XenServerDriver(connection(fake)) as driver, pytest.raises(VMNotFound, match="nope"):
        driver.power_state(VM("nope"))


def test_bad_credentials(fake):
    with pytest.raises(ConnectError, match="login failed for user 'root'"):
        XenServerDriver(connection(fake, password="wrong")).connect()


def test_upload_failure_removes_the_half_made_vdi(fake, media):
    before = fake.vm_state()
    fake.fail_import = True
    with XenServerDriver(connection(fake)) as driver:
        with pytest.raises(DriverError, match="upload .*vmtailor.iso: .*HTTP 500"):
            run_flow(driver, VM("web01"), media)
    assert fake.vm_state() == before
    assert ("VDI.destroy", "OpaqueRef:vdi-11") in fake.calls  # the half-imported VDI


@pytest.mark.parametrize(("order", "expected"), [("cn", "dcn"), ("ncd", "dnc"), (None, "dc")])
def test_order_with_cd_first(order, expected):
    assert order_with_cd_first(order) == expected


def test_session_is_what_the_fake_issued(fake):
    with XenServerDriver(connection(fake)) as driver:
        assert driver.session.handle == SESSION
