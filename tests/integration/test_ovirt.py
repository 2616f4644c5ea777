"""The ovirt driver (ovirtsdk4) against a stateful fake engine: the exact REST requests
of the flow, a final state equal to the first (original ISO back in the CD-ROM, config
disk detached, uploaded disks removed, boot devices exact), and the fault cases."""

from __future__ import annotations

import pytest

from tests.fakes.flow import run_flow, write_media
from tests.fakes.ovirt import FakeOvirt, canon
from vmtailor.hypervisors.base import VM, ConnectError, Connection, DriverError, Media, VMNotFound
from vmtailor.hypervisors.ovirt import OvirtDriver


@pytest.fixture
def fake():
    with FakeOvirt() as server:
        server.add_vm("web01", ["hd", "network"], cd_file="disk-sys")
        server.add_vm("web02", [], cd_file=None)
        server.add_vm("stuck", ["hd"], cd_file=None, off_after_polls=None)
        yield server


def connection(fake, password="secret") -> Connection:
    return Connection(
        driver="ovirt",
        uri=f"{fake.url}/ovirt-engine/api",
        username="admin@internal",
        password=password,
        options={"storage_domain": "data", "poll_interval": 0.01},
    )


@pytest.fixture
def media(tmp_path) -> Media:
    return write_media(tmp_path, b"I" * 4096, b"V" * 2048, "config.img", "vfat")


def disk_xml(name, content, size):
    return (
        f"<disk><content_type>{content}</content_type><format>raw</format><name>{name}</name>"
        f"<provisioned_size>{size}</provisioned_size><storage_domains><storage_domain>"
        "<name>data</name></storage_domain></storage_domains></disk>"
    )


def canonical(requests):
    return [(m, p, q, canon(b) if isinstance(b, str) else b) for m, p, q, b in requests]


def upload_requests(vm, label, content, size, disk, transfer):
    return [
        ("POST", "/disks", None, disk_xml(f"vmtailor-{vm}-{label}", content, size)),
        ("GET", f"/disks/{disk}", None, None),
        (
            "POST",
            "/imagetransfers",
            None,
            f'<image_transfer><direction>upload</direction><disk id="{disk}"/></image_transfer>',
        ),
        ("PUT", f"/images/{transfer}", None, size),
        ("POST", f"/imagetransfers/{transfer}/finalize", None, "<action/>"),
        ("GET", f"/imagetransfers/{transfer}", None, None),
        ("GET", f"/disks/{disk}", None, None),
    ]


def test_flow_for_two_vms_sends_exactly_these_requests(fake, media):
    before = fake.vm_state()
    seen = {}
    with OvirtDriver(connection(fake)) as driver:
        real_power_on = driver.power_on

        def look_then_power_on(vm):
            seen[vm.name] = fake.vm_state()
            real_power_on(vm)

        driver.power_on = look_then_power_on
        for name in ("web01", "web02"):
            ran = run_flow(driver, VM(name), media)
            off, result = ran.off, ran.text
            assert off and result is None  # no serial log through the engine
    assert fake.vm_state() == before

    during = seen["web01"]["vms"]["vm-web01"]
    assert during == {
        "status": "down",
        "boot": ["cdrom", "hd", "network"],
        "cdrom": "disk-1",
        "attachments": ["disk-sys", "disk-3"],
    }
    assert seen["web01"]["disks"]["disk-1"]["data"] == b"I" * 4096

    v = "/vms/vm-web01"
    requests = fake.api_requests()
    got = requests[: requests.index(("GET", "/vms", {"search": "name=web02"}, None))]
    assert got == canonical(
        [
            ("GET", "/vms", {"search": "name=web01"}, None),
            ("GET", v, None, None),
            ("GET", f"{v}/cdroms", None, None),
            ("GET", f"{v}/diskattachments", None, None),
            *upload_requests("web01", "iso", "iso", 4096, "disk-1", "transfer-2"),
            *upload_requests("web01", "config", "data", 2048, "disk-3", "transfer-4"),
            ("PUT", f"{v}/cdroms/cd0", {"current": "false"}, '<cdrom><file id="disk-1"/></cdrom>'),
            (
                "POST",
                f"{v}/diskattachments",
                None,
                "<disk_attachment><active>true</active><bootable>false</bootable>"
                '<interface>virtio_scsi</interface><disk id="disk-3"/></disk_attachment>',
            ),
            (
                "PUT",
                v,
                None,
                "<vm><os><boot><devices><device>cdrom</device><device>hd</device>"
                "<device>network</device></devices></boot></os></vm>",
            ),
            ("POST", f"{v}/start", None, "<action><use_cloud_init>false</use_cloud_init></action>"),
            ("GET", v, None, None),
            ("GET", v, None, None),
            ("GET", v, None, None),
            ("GET", v, None, None),
            ("GET", f"{v}/cdroms", None, None),
            ("GET", f"{v}/diskattachments", None, None),
            (
                "PUT",
                f"{v}/cdroms/cd0",
                {"current": "false"},
                '<cdrom><file id="disk-sys"/></cdrom>',
            ),
            ("DELETE", f"{v}/diskattachments/disk-3", {"detach_only": "true"}, None),
            (
                "PUT",
                v,
                None,
                "<vm><os><boot><devices><device>hd</device><device>network</device></devices>"
                "</boot></os></vm>",
            ),
            ("DELETE", "/disks/disk-1", None, None),
            ("DELETE", "/disks/disk-3", None, None),
        ]
    )


def test_timeout_stops_restores_and_cleans_up(fake, media):
    before = fake.vm_state()
    with OvirtDriver(connection(fake)) as driver:
        ran = run_flow(driver, VM("stuck"), media, timeout=0.2)
        off = ran.off
    assert not off
    assert any(r[:2] == ("POST", "/vms/vm-stuck/stop") for r in fake.api_requests())
    assert fake.vm_state() == before


def test_restore_and_discard_are_idempotent(fake, media):
    with OvirtDriver(connection(fake)) as driver:
        saved = driver.snapshot(VM("web01"))
        placed = driver.upload(VM("web01"), media)
        driver.attach(VM("web01"), placed, saved)
        for _ in range(2):
            driver.restore(VM("web01"), saved)
            driver.discard(VM("web01"), placed.to_dict())
    assert fake.vm_state()["vms"]["vm-web01"]["boot"] == ["hd", "network"]
    assert sorted(fake.disks) == ["disk-sys"]


def test_vm_not_found(fake):
    with OvirtDriver(connection(fake)) as driver, pytest.raises(VMNotFound, match="nope"):
        driver.power_state(VM("nope"))


def test_bad_credentials(fake):
    with pytest.raises(ConnectError, match="login failed.*Cannot authenticate user"):
        OvirtDriver(connection(fake, password="wrong")).connect()


def test_upload_failure_removes_the_new_disk_and_leaves_the_vm(fake, media):
    before = fake.vm_state()
    fake.fail_upload = True
    with OvirtDriver(connection(fake)) as driver:
        with pytest.raises(DriverError, match="upload .*vmtailor.iso: HTTP 500"):
            run_flow(driver, VM("web01"), media)
    assert fake.vm_state() == before
    cancel = ("POST", "/imagetransfers/transfer-2/cancel", None, canon("<action/>"))
    assert cancel in fake.api_requests()
