"""The proxmox driver against a stateful fake Proxmox VE API: the exact requests of the
flow, and a final state equal to the first (media detached, boot order restored, uploads
removed), plus the fault cases."""

from __future__ import annotations

import pytest

from tests.fakes.flow import run_flow, write_media
from tests.fakes.proxmox import FakeProxmox
from vmtailor.hypervisors.base import VM, ConnectError, Connection, DriverError, Media, VMNotFound
from vmtailor.hypervisors.proxmox import ProxmoxDriver, boot_with_cd_first

# the fake's certificate is self-signed: verify_tls=False is deliberate here
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

CONFIG_101 = {
    "name": "web01",
    "scsi0": "local-lvm:vm-101-disk-0,size=8G",
    "ide2": "none,media=cdrom",
    "net0": "virtio=52:54:00:12:34:56,bridge=vmbr0",
    "boot": "order=scsi0;ide2;net0",
}
CONFIG_102 = {  # legacy boot string, no CD-ROM at all
    "name": "web02",
    "virtio0": "local-lvm:vm-102-disk-0,size=8G",
    "boot": "c",
    "bootdisk": "virtio0",
}


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tls")


@pytest.fixture
def fake(tls_dir):
    with FakeProxmox(tls_dir) as server:
        server.add_vm(101, "web01", CONFIG_101)
        server.add_vm(102, "web02", CONFIG_102)
        server.add_vm(103, "stuck", CONFIG_101, off_after_polls=None)
        yield server


def connection(fake, password="secret") -> Connection:
    return Connection(
        driver="proxmox",
        uri=f"https://127.0.0.1:{fake.port}",
        username="root@pam",
        password=password,
        verify_tls=False,
        options={"poll_interval": 0.01},
    )


@pytest.fixture
def media(tmp_path) -> Media:
    return write_media(tmp_path)


def test_flow_for_two_vms_sends_exactly_these_requests(fake, media):
    before = fake.vm_state()
    with ProxmoxDriver(connection(fake)) as driver:
        for name in ("web01", "web02"):
            ran = run_flow(driver, VM(name), media)
            off, result = ran.off, ran.text
            assert off and result is None  # no serial log on Proxmox
    assert fake.vm_state() == before

    q1, q2 = "/nodes/pve1/qemu/101", "/nodes/pve1/qemu/102"
    store = "/nodes/pve1/storage/local"
    digest1 = _digest(CONFIG_101)
    digest2 = _digest(CONFIG_102)
    task = ("GET", "/nodes/pve1/tasks/{}/status", None)
    expected = [
        ("GET", "/cluster/resources", None),
        ("GET", f"{q1}/config", None),
        (
            "POST",
            f"{store}/upload",
            {"content": "iso", "filename": "vmtailor-101.iso", "file": ("vmtailor.iso", 4096)},
        ),
        task,
        (
            "POST",
            f"{store}/upload",
            {"content": "iso", "filename": "vmtailor-101-config.iso", "file": ("config.iso", 2048)},
        ),
        task,
        (
            "PUT",
            f"{q1}/config",
            {
                "ide2": "local:iso/vmtailor-101.iso,media=cdrom",
                "ide3": "local:iso/vmtailor-101-config.iso,media=cdrom",
                "boot": "order=ide2;scsi0;net0",
                "digest": digest1,
            },
        ),
        ("POST", f"{q1}/status/start", None),
        task,
        ("GET", f"{q1}/status/current", None),
        ("GET", f"{q1}/status/current", None),
        ("GET", f"{q1}/status/current", None),
        ("GET", f"{q1}/config", None),
        (
            "PUT",
            f"{q1}/config",
            {"ide2": "none,media=cdrom", "boot": "order=scsi0;ide2;net0", "delete": "ide3"},
        ),
        ("GET", f"{store}/content", None),
        ("DELETE", f"{store}/content/local:iso/vmtailor-101.iso", None),
        ("DELETE", f"{store}/content/local:iso/vmtailor-101-config.iso", None),
        ("GET", "/cluster/resources", None),
        ("GET", f"{q2}/config", None),
        (
            "POST",
            f"{store}/upload",
            {"content": "iso", "filename": "vmtailor-102.iso", "file": ("vmtailor.iso", 4096)},
        ),
        task,
        (
            "POST",
            f"{store}/upload",
            {"content": "iso", "filename": "vmtailor-102-config.iso", "file": ("config.iso", 2048)},
        ),
        task,
        (
            "PUT",
            f"{q2}/config",
            {
                "ide2": "local:iso/vmtailor-102.iso,media=cdrom",
                "ide3": "local:iso/vmtailor-102-config.iso,media=cdrom",
                "boot": "order=ide2;virtio0",
                "digest": digest2,
            },
        ),
        ("POST", f"{q2}/status/start", None),
        task,
        ("GET", f"{q2}/status/current", None),
        ("GET", f"{q2}/status/current", None),
        ("GET", f"{q2}/status/current", None),
        ("GET", f"{q2}/config", None),
        ("PUT", f"{q2}/config", {"boot": "c", "delete": "ide2,ide3"}),
        ("GET", f"{store}/content", None),
        ("DELETE", f"{store}/content/local:iso/vmtailor-102.iso", None),
        ("DELETE", f"{store}/content/local:iso/vmtailor-102-config.iso", None),
    ]
    got = [
        ("GET", "/nodes/pve1/tasks/{}/status", None) if "/tasks/" in path else (m, path, body)
        for m, path, body in fake.api_requests()
    ]
    assert got == expected


def _digest(config):
    from tests.fakes.proxmox import _digest as digest

    return digest(config)


def test_timeout_stops_restores_and_cleans_up(fake, media):
    before = fake.vm_state()
    with ProxmoxDriver(connection(fake)) as driver:
        ran = run_flow(driver, VM("stuck"), media, timeout=0.2)
        off = ran.off
    assert not off
    assert ("POST", "/nodes/pve1/qemu/103/status/stop", None) in fake.api_requests()
    assert fake.vm_state() == before


def test_restore_is_idempotent_and_sends_nothing_when_clean(fake, media):
    with ProxmoxDriver(connection(fake)) as driver:
        saved = driver.snapshot(VM("web01"))
        driver.restore(VM("web01"), saved)
    assert [m for m, *_ in fake.api_requests()] == ["GET", "GET", "GET"]


def test_a_vm_edited_since_the_snapshot_is_refused(fake, media):
    before = fake.vm_state()
    with ProxmoxDriver(connection(fake)) as driver:
        saved = driver.snapshot(VM("web01"))
        fake.vms[101]["config"]["memory"] = "4096"
        with pytest.raises(DriverError, match="modified configuration"):
            driver.attach(VM("web01"), driver.upload(VM("web01"), media), saved)
    assert fake.vm_state()["vms"][101][0] == {**before["vms"][101][0], "memory": "4096"}


def test_vm_not_found(fake):
    with ProxmoxDriver(connection(fake)) as driver, pytest.raises(VMNotFound, match="nope"):
        driver.power_state(VM("nope"))


def test_bad_credentials(fake):
    with pytest.raises(ConnectError, match="login failed"):
        ProxmoxDriver(connection(fake, password="wrong")).connect()


def test_upload_failure_leaves_the_vm_unchanged(fake, media):
    before = fake.vm_state()
    fake.fail_upload = True
    with ProxmoxDriver(connection(fake)) as driver:
        with pytest.raises(DriverError, match="upload vmtailor-101.iso.*no space left"):
            run_flow(driver, VM("web01"), media)
    assert fake.vm_state() == before


def test_a_half_upload_is_removed(fake, media):
    before = fake.vm_state()
    fake.fail_after_uploads = 1  # the ISO arrives, the config media doesn't
    with ProxmoxDriver(connection(fake)) as driver:
        with pytest.raises(DriverError, match="upload vmtailor-101-config.iso"):
            driver.upload(VM("web01"), media)
    assert ("DELETE", "/nodes/pve1/storage/local/content/local:iso/vmtailor-101.iso", None) in (
        fake.api_requests()
    )
    assert fake.vm_state() == before


@pytest.mark.parametrize(
    ("boot", "bootdisk", "expected"),
    [
        ("order=scsi0;ide2;net0", None, "order=ide2;scsi0;net0"),
        ("order=ide3;scsi0", None, "order=ide2;scsi0"),
        ("cdn", "scsi0", "order=ide2;scsi0"),
        (None, None, "order=ide2"),
    ],
)
def test_boot_order_with_cd_first(boot, bootdisk, expected):
    assert boot_with_cd_first(boot, "ide2", {"ide2", "ide3"}, bootdisk) == expected
