"""The libvirt driver and `vmtailor deploy` against a real libvirtd (domains type='qemu',
TCG): boot order and media come back exactly as the original XML — for `<os><boot dev>`
domains and per-device `<boot order>` ones — whatever goes wrong on the way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import assert_same_bytes, vmtailor
from tests.integration import libvirt_fixture as lf
from vmtailor import hypervisors
from vmtailor.hypervisors import flow
from vmtailor.hypervisors import state as st
from vmtailor.hypervisors.base import VM, ConnectError, Connection, DriverError, Media, VMNotFound
from vmtailor.hypervisors.libvirt_xml import canonical, customization_xml, serial_log

LibvirtDriver = hypervisors.load("libvirt")
CONFIG = "hostname: '{{ hostname }}'\n"
RUN = "5eed" * 8  # the run token the stand-in ISO's record carries


@pytest.fixture(scope="session")
def env():
    """libvirtd up, a scratch folder QEMU can read, the stand-in and never-ending ISOs."""
    lf.ensure_libvirtd()
    scratch = lf.scratch_dir()
    yield {
        "scratch": scratch,
        "standin": lf.standin_iso(scratch / "standin.iso"),
        "standin_run": lf.standin_iso(scratch / "standin-run.iso", RUN),
        "hang": lf.data_iso(scratch / "hang.iso", "VMTAILOR"),
        "config": lf.data_iso(scratch / "config.iso", "VMTCONFIG"),
    }
    conn = lf.connect()
    for dom in conn.listAllDomains():
        if dom.name().startswith(lf.PREFIX) and dom.name().endswith(scratch.name[-8:]):
            lf.undefine(conn, dom.name())
    conn.close()
    subprocess.run(["rm", "-rf", str(scratch)])


@pytest.fixture
def conn(env):
    c = lf.connect()
    yield c
    c.close()


@pytest.fixture
def domain(env, conn):
    """domain(style='os', machine='pc') -> name of a fresh defined (off) domain."""
    made = []

    def make(style: str = "os", machine: str = "pc", acpi: bool = True) -> str:
        name = f"{lf.PREFIX}{uuid.uuid4().hex[:6]}-{env['scratch'].name[-8:]}"
        disk = lf.empty_disk(env["scratch"] / f"{name}.qcow2")
        conn.defineXML(lf.domain_xml(name, disk, style=style, machine=machine, acpi=acpi))
        made.append(name)
        return name

    yield make
    for name in made:
        lf.undefine(conn, name)


@pytest.fixture
def driver(env):
    d = LibvirtDriver(Connection("libvirt", lf.URI))
    d.connect()
    yield d
    d.close()


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(tmp_path / "state"))
    with st.StateFile.for_inventory(str(tmp_path / "inventory.yaml")) as s:
        yield s


def _quiet(_vm, _what):
    pass


def _boot_orders(xml: str) -> dict[str, str]:
    """alias or target dev -> boot order, and 'os' -> the legacy boot devs."""
    root = ET.fromstring(xml)
    out = {"os": ",".join(b.get("dev") for b in root.findall("os/boot"))}
    for el in root.find("devices"):
        boot = el.find("boot")
        if boot is not None:
            alias, target = el.find("alias"), el.find("target")
            key = alias.get("name") if alias is not None else el.tag
            if target is not None and target.get("dev") and alias is None:
                key = target.get("dev")
            out[key] = boot.get("order")
    return out


# --- the XML edits, no daemon needed --------------------------------------------------


def test_legacy_boot_dev_becomes_per_device_order_after_the_cd():
    xml = lf.domain_xml("x", Path("/d.qcow2"), style="os")
    log = serial_log(xml, "/log")
    out = customization_xml(xml, "/a.iso", "/c.iso", "iso", log)
    assert _boot_orders(out) == {"os": "", "ua-vmtailor-iso": "1", "hda": "2", "interface": "3"}
    assert '<log file="/log" append="off"' in out


def test_per_device_orders_shift_down_by_one():
    xml = lf.domain_xml("x", Path("/d.qcow2"), style="order", machine="q35")
    out = customization_xml(xml, "/a.iso", "/c.iso", "iso", serial_log(xml, "/log"))
    assert _boot_orders(out) == {"os": "", "ua-vmtailor-iso": "1", "sda": "2", "interface": "3"}
    targets = [t.get("bus") for t in ET.fromstring(out).iter("target") if t.get("bus")]
    assert targets.count("sata") == 3  # the disk and vmtailor's two CD-ROMs


def test_cds_take_free_ide_slots_and_refuse_when_there_are_none():
    extra = "".join(
        f"<disk type='file' device='cdrom'><target dev='hd{c}' bus='ide'/></disk>" for c in "bc"
    )
    xml = lf.domain_xml("x", Path("/d.qcow2"), extra=extra)
    with pytest.raises(DriverError, match="no free ide slot"):
        customization_xml(xml, "/a.iso", "/c.iso", "iso", serial_log(xml, "/log"))


def test_a_reboot_or_a_power_off_stops_the_customization_boot():
    # a domain that restarts on either would boot vmtailor's ISO again; restore puts the
    # saved XML back whole, these actions with it
    xml = lf.domain_xml("x", Path("/d.qcow2")).replace(
        "<on_poweroff>destroy</on_poweroff>",
        "<on_poweroff>restart</on_poweroff><on_reboot>restart</on_reboot>",
    )
    out = ET.fromstring(customization_xml(xml, "/a.iso", "/c.iso", "iso", serial_log(xml, "/l")))
    assert (out.findtext("on_poweroff"), out.findtext("on_reboot")) == ("destroy", "destroy")
    assert len(out.findall("on_reboot")) == 1
    # hand-written XML without them: added before <devices>
    bare = lf.domain_xml("x", Path("/d.qcow2")).replace("<on_poweroff>destroy</on_poweroff>", "")
    out = ET.fromstring(customization_xml(bare, "/a.iso", "/c.iso", "iso", None))
    tags = [el.tag for el in out]
    assert tags.index("on_reboot") < tags.index("devices")
    assert out.findtext("on_reboot") == "destroy"


def test_an_existing_serial_log_is_used_not_replaced():
    xml = lf.domain_xml("x", Path("/d.qcow2")).replace(
        "<target port='0'/></serial>",
        "<log file='/own.log' append='on'/><target port='0'/></serial>",
    )
    log = serial_log(xml, "/log")
    assert (log.path, log.existing, log.appends) == ("/own.log", True, True)
    # without append='on' libvirt empties it at every start: this boot's output is all of it
    truncated = serial_log(xml.replace(" append='on'", ""), "/log")
    assert (truncated.path, truncated.existing, truncated.appends) == ("/own.log", True, False)
    assert "/log" not in customization_xml(xml, "/a.iso", "/c.iso", "iso", log).replace(
        "/own.log", ""
    )


def test_a_missing_sdk_is_one_line_with_the_install_command(monkeypatch):
    info = hypervisors.DriverInfo(
        "libvirt", "x", "vmtailor_no_such_sdk", "apt-get install it", None
    )
    monkeypatch.setitem(hypervisors.DRIVERS, "libvirt", info)
    with pytest.raises(hypervisors.SDKMissing) as exc:
        hypervisors.load("libvirt")
    assert str(exc.value) == (
        "the libvirt driver needs the vmtailor_no_such_sdk module, which is not installed"
        " — apt-get install it"
    )
    with pytest.raises(DriverError, match="unknown hypervisor driver 'nope'"):
        hypervisors.load("nope")


# --- the driver on real domains -------------------------------------------------------


@pytest.mark.parametrize("style,machine", [("os", "pc"), ("order", "q35"), ("none", "pc"),
                                           ("noserial", "q35")])  # fmt: skip
def test_attach_then_restore_gives_back_the_exact_xml(driver, domain, conn, env, style, machine):
    name = domain(style, machine)
    original = lf.inactive_xml(conn, name)
    vm = VM(name)
    saved = driver.snapshot(vm)
    placed = driver.upload(vm, Media(str(env["standin"]), str(env["config"])))
    driver.attach(vm, placed, saved)
    attached = lf.inactive_xml(conn, name)
    orders = _boot_orders(attached)
    assert orders["os"] == "" and orders["ua-vmtailor-iso"] == "1"
    assert str(env["standin"]) in attached and str(env["config"]) in attached
    with pytest.raises(DriverError, match="interrupted deploy"):
        driver.snapshot(vm)  # never save a changed VM as the original
    driver.restore(vm, saved)
    driver.restore(vm, saved)  # idempotent
    after = lf.inactive_xml(conn, name)
    assert canonical(after) == canonical(original)
    assert "passwd='s3cret'" in after  # secrets survive the round trip


@pytest.mark.parametrize("style,machine,serial", [("os", "pc", "file"), ("order", "q35", "console"),
                                                  ("noserial", "pc", "file")])  # fmt: skip
def test_customization_boot_reads_the_result_and_restores(domain, conn, env, state,
                                                          style, machine, serial):  # fmt: skip
    # serial 'file': a log virtlogd writes on this host; 'console': the console stream
    # read over the connection, as for a remote hypervisor
    name = domain(style, machine)
    original = lf.inactive_xml(conn, name)
    media = Media(str(env["standin"]), str(env["config"]))
    with LibvirtDriver(Connection("libvirt", lf.URI, options={"serial": serial})) as driver:
        outcome = flow.customize(driver, VM(name), media, state, flow.Options(timeout=240), _quiet)
    assert outcome.status == "ok", outcome.reason
    assert outcome.result["hostname"] == "standin"
    assert "console=ttyS0" in Path(outcome.serial_log).read_text()
    assert not conn.lookupByName(name).isActive()
    assert canonical(lf.inactive_xml(conn, name)) == canonical(original)
    assert state.phase(name) == st.DONE


@pytest.mark.parametrize("serial", ["file", "console"])
def test_a_guest_without_acpi_ends_on_its_result_record(domain, conn, env, state, serial):
    # it halts instead of powering off: this run's record, read live from the log file or
    # the console stream, ends the wait; after the grace the domain is stopped
    name = domain(acpi=False)
    original = lf.inactive_xml(conn, name)
    media = Media(str(env["standin_run"]), str(env["config"]))
    seen = []
    started = time.monotonic()
    with LibvirtDriver(Connection("libvirt", lf.URI, options={"serial": serial})) as driver:
        outcome = flow.customize(driver, VM(name), media, state,
                                 flow.Options(timeout=90, grace=2),
                                 lambda _vm, what: seen.append(what), RUN)  # fmt: skip
    seconds = time.monotonic() - started
    assert outcome.status == "ok", outcome.reason
    assert outcome.result["run"] == RUN
    assert seconds < 60, seconds
    assert "still running after its result: stopping it" in seen
    assert "System halted" in Path(outcome.serial_log).read_text()
    assert not conn.lookupByName(name).isActive()
    assert canonical(lf.inactive_xml(conn, name)) == canonical(original)


def test_a_serial_log_libvirt_empties_at_start_is_read_from_its_start(driver, conn, env, state):
    # the domain's own log without append='on': virtlogd truncates it when the domain
    # starts, so what it held before (here more than the boot prints) is no offset
    name = f"{lf.PREFIX}{uuid.uuid4().hex[:6]}-{env['scratch'].name[-8:]}"
    log = env["scratch"] / f"{name}.log"
    log.write_text("an earlier boot of the guest's own OS\n" * 50000)
    disk = lf.empty_disk(env["scratch"] / f"{name}.qcow2")
    conn.defineXML(lf.domain_xml(name, disk).replace(
        "<target port='0'/></serial>", f"<log file='{log}'/><target port='0'/></serial>"))  # fmt: skip
    try:
        media = Media(str(env["standin"]), str(env["config"]))
        outcome = flow.customize(driver, VM(name), media, state, flow.Options(timeout=240), _quiet)
    finally:
        lf.undefine(conn, name)
    assert outcome.status == "ok", outcome.reason
    assert outcome.result["hostname"] == "standin"
    assert "an earlier boot" not in Path(outcome.serial_log).read_text()


def test_a_guest_that_never_powers_off_is_stopped_restored_and_failed(driver, domain, conn, env,
                                                                      state):  # fmt: skip
    name = domain()
    original = lf.inactive_xml(conn, name)
    media = Media(str(env["hang"]), str(env["config"]))
    outcome = flow.customize(driver, VM(name), media, state, flow.Options(timeout=8), _quiet)
    assert outcome.status == "failed"
    assert "did not power off within 8 s" in outcome.reason
    assert not conn.lookupByName(name).isActive()
    assert canonical(lf.inactive_xml(conn, name)) == canonical(original)
    assert state.phase(name) == st.FAILED


def test_a_running_vm_is_refused_and_shutdown_is_bounded(driver, domain, conn, env, state):
    name = domain()
    dom = conn.lookupByName(name)
    dom.create()  # no bootable disk: SeaBIOS waits forever, and ignores ACPI
    try:
        original = lf.inactive_xml(conn, name)
        media = Media(str(env["standin"]), str(env["config"]))
        out = flow.customize(driver, VM(name), media, state, flow.Options(), _quiet)
        assert out.status == "failed" and "is running" in out.reason and "--shutdown" in out.reason
        opts = flow.Options(shutdown=True, shutdown_timeout=3)
        out = flow.customize(driver, VM(name), media, state, opts, _quiet)
        assert out.status == "failed" and "did not shut down within 3 s" in out.reason
        assert dom.isActive()  # a guest that won't shut down is left running, not killed
        assert canonical(lf.inactive_xml(conn, name)) == canonical(original)
    finally:
        dom.destroy()


def test_a_missing_vm_is_reported(driver, state, env):
    with pytest.raises(VMNotFound, match="no such domain"):
        driver.power_state(VM("vmtailor-test-does-not-exist"))
    media = Media(str(env["standin"]), str(env["config"]))
    out = flow.customize(
        driver, VM("vmtailor-test-does-not-exist"), media, state, flow.Options(), _quiet
    )
    assert out.status == "failed" and "no such domain" in out.reason


def test_an_unreadable_iso_fails_before_anything_changes(driver, domain, conn, env, state):
    name = domain()
    original = lf.inactive_xml(conn, name)
    media = Media(str(env["scratch"] / "missing.iso"), str(env["config"]))
    out = flow.customize(driver, VM(name), media, state, flow.Options(), _quiet)
    assert out.status == "failed" and "cannot read" in out.reason and "missing.iso" in out.reason
    assert lf.inactive_xml(conn, name) == original


def test_pool_upload_attach_restore_discard(env, domain, conn):
    pool_dir = env["scratch"] / f"pool-{uuid.uuid4().hex[:6]}"
    pool_dir.mkdir(mode=0o755)
    pool_name = f"{lf.PREFIX}{pool_dir.name}"
    pool = conn.storagePoolCreateXML(
        f"<pool type='dir'><name>{pool_name}</name><target><path>{pool_dir}</path></target></pool>",
        0,
    )
    try:
        driver = LibvirtDriver(Connection("libvirt", lf.URI, options={"pool": pool_name}))
        with driver:
            name = domain()
            original = lf.inactive_xml(conn, name)
            vm = VM(name)
            saved = driver.snapshot(vm)
            placed = driver.upload(vm, Media(str(env["standin"]), str(env["config"])))
            assert placed.iso.startswith(f"volume:{pool_name}/")
            pool.refresh(0)
            assert len(pool.listVolumes()) == 2
            assert_same_bytes(pool_dir / placed.iso.rpartition("/")[2], env["standin"])
            driver.attach(vm, placed, saved)
            assert f"pool='{pool_name}'" in lf.inactive_xml(conn, name)
            driver.restore(vm, saved)
            driver.discard(vm, placed.to_dict())
            pool.refresh(0)
            assert pool.listVolumes() == []
            assert canonical(lf.inactive_xml(conn, name)) == canonical(original)
            bad = LibvirtDriver(Connection("libvirt", lf.URI, options={"pool": "no-such-pool"}))
            with bad, pytest.raises(DriverError, match="storage pool 'no-such-pool'"):
                bad.upload(vm, Media(str(env["standin"]), str(env["config"])))
    finally:
        pool.destroy()


def test_bad_uri_and_bad_credentials(tmp_path):
    with pytest.raises(ConnectError, match="cannot connect to qemu\\+tcp://127.0.0.1:1/system"):
        LibvirtDriver(Connection("libvirt", "qemu+tcp://127.0.0.1:1/system")).connect()
    # libvirt's test driver asks for credentials when its node file says so
    node = tmp_path / "node.xml"
    node.write_text("<node><auth><user password='right'>admin</user></auth></node>")
    uri = f"test://{node}"
    for user, password in (("admin", "wrong"), ("nobody", "right"), ("admin", None)):
        with pytest.raises(ConnectError, match="cannot connect"):
            LibvirtDriver(Connection("libvirt", uri, username=user, password=password)).connect()
    with LibvirtDriver(Connection("libvirt", uri, username="admin", password="right")):
        pass


# --- vmtailor deploy, the command -------------------------------------------------------


def _inventory(tmp_path: Path, vms: list[str], iso: Path, extra: str = "") -> Path:
    (tmp_path / "config.yaml").write_text(CONFIG)
    lines = [f'hypervisor: {{driver: libvirt, uri: "{lf.URI}"{extra}}}', "config: config.yaml",
             f"iso: {iso}", "vms:"]  # fmt: skip
    lines += [f"  - {{name: {vm}, vars: {{hostname: h-{i}}}}}" for i, vm in enumerate(vms)]
    path = tmp_path / "inventory.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _wait_for_phase(folder: Path, name: str, phase: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in folder.glob("*/state.json"):
            try:
                if json.loads(path.read_text())["vms"].get(name, {}).get("phase") == phase:
                    return
            except ValueError:
                pass
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached phase {phase}")


def test_deploy_killed_midway_then_restore_then_resume(tmp_path, monkeypatch, env, domain, conn):
    state_dir = env["scratch"] / f"state-{uuid.uuid4().hex[:6]}"  # QEMU reads the media there
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(state_dir))
    name = domain()
    original = lf.inactive_xml(conn, name)
    iso = env["scratch"] / f"iso-{name}.iso"
    iso.write_bytes(env["hang"].read_bytes())
    inv = _inventory(tmp_path, [name], iso)
    proc = subprocess.Popen([sys.executable, "-m", "vmtailor", "deploy", str(inv), "--timeout", "600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        _wait_for_phase(state_dir, name, st.BOOTED)
        time.sleep(1)
        # while it runs, a second deploy of the same inventory is refused
        second = vmtailor("deploy", str(inv))
        assert second.returncode == 1 and "another vmtailor deploy" in second.stderr
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    dom = conn.lookupByName(name)
    assert dom.isActive() and str(iso) in lf.inactive_xml(conn, name)  # left changed
    result = vmtailor("deploy", str(inv), "--restore", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["vms"][0]["status"] == "restored"
    assert not dom.isActive()
    assert canonical(lf.inactive_xml(conn, name)) == canonical(original)
    again = vmtailor("deploy", str(inv), "--restore")
    assert again.returncode == 0 and "nothing to restore" in again.stdout
    # a second deploy resumes: the VM runs again, and this time the ISO powers off
    iso.write_bytes(env["standin"].read_bytes())
    result = vmtailor("deploy", str(inv), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["vms"][0]["status"] == "ok"
    result = vmtailor("deploy", str(inv))
    assert result.returncode == 0 and "already customized" in result.stdout
    assert canonical(lf.inactive_xml(conn, name)) == canonical(original)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_restores_the_vm_in_progress(tmp_path, monkeypatch, env, domain, conn,
                                                       sig):  # fmt: skip
    state_dir = env["scratch"] / f"state-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(state_dir))
    name = domain("order", "q35")
    original = lf.inactive_xml(conn, name)
    inv = _inventory(tmp_path, [name], env["hang"])
    proc = subprocess.Popen([sys.executable, "-m", "vmtailor", "deploy", str(inv), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_for_phase(state_dir, name, st.BOOTED)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert "interrupted: restoring" in err
    vm = json.loads(out)["vms"][0]
    assert vm["status"] == "failed" and "interrupted" in vm["reason"]
    assert not conn.lookupByName(name).isActive()
    assert canonical(lf.inactive_xml(conn, name)) == canonical(original)


def test_deploy_reports_a_missing_vm_and_bad_connection(tmp_path, monkeypatch, env):
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(tmp_path / "state"))
    inv = _inventory(tmp_path, ["vmtailor-test-nope"], env["standin"])
    result = vmtailor("deploy", str(inv), "--json")
    assert result.returncode == 1
    vm = json.loads(result.stdout)["vms"][0]
    assert vm["status"] == "failed" and "no such domain" in vm["reason"]
    inv.write_text(inv.read_text().replace(lf.URI, "qemu+tcp://127.0.0.1:1/system"))
    result = vmtailor("deploy", str(inv))
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to qemu+tcp://127.0.0.1:1/system")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("text,message", [
    ("hypervisor: {driver: libvirt}\nconfig: config.yaml\nvms: []\n",
     "inventory.yaml: error at vms: line 3: expected a list of VMs"),
    ("hypervisor: {driver: nope}\nconfig: config.yaml\nvms: [{name: a}]\n",
     "error at hypervisor.driver: line 1: unknown hypervisor driver 'nope'"),
    ("hypervisor:\n  driver: libvirt\n  password: x\nconfig: config.yaml\nvms: [{name: a}]\n",
     "error at hypervisor.password: line 3: unknown key 'password' — a password never goes"),
    ("hypervisor: {driver: libvirt, password_env: VMTAILOR_TEST_UNSET}\nconfig: config.yaml\n"
     "vms: [{name: a}]\n", "line 1: environment variable VMTAILOR_TEST_UNSET is not set"),
    ("hypervisor: {driver: libvirt}\nconfig: config.yaml\nvms:\n  - {name: a}\n  - {name: a}\n",
     "error at vms[1].name: line 5: VM 'a' is listed twice"),
    ("hypervisor: {driver: libvirt, pool: 3}\nconfig: config.yaml\nvms: [{name: a}]\n",
     "libvirt: pool: expected the name of a storage pool"),
    ("hypervisor: {driver: libvirt}\nconfig: config.yaml\nvms: [{name: a, vars: {}}]\n",
     "with the vars of vms[0] a"),
])  # fmt: skip
def test_inventory_errors_are_located_one_liners(tmp_path, text, message):
    (tmp_path / "config.yaml").write_text("hostname: '{{ hostname }}'\n")
    (tmp_path / "inventory.yaml").write_text(text)
    result = vmtailor("deploy", str(tmp_path / "inventory.yaml"))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
