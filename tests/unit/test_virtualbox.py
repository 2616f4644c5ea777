"""The virtualbox driver without VirtualBox: a small stateful stand-in for VBoxManage
answers the commands, the commands of a whole flow are compared with a golden file, and
canned `showvminfo --machinereadable` output is parsed. README says it: this driver is not
run against a live VirtualBox here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fakes.flow import run_flow, write_media
from vmtailor.customizer.run import CommandError
from vmtailor.hypervisors import virtualbox
from vmtailor.hypervisors.base import VM, Connection, DriverError, Media, PowerState, VMNotFound
from vmtailor.hypervisors.virtualbox import (
    VirtualBoxDriver,
    boot_with_dvd_first,
    free_slots,
    parse_machinereadable,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "hypervisors"
UPDATE = os.environ.get("VMTAILOR_UPDATE_GOLDEN") == "1"
RESULT = "vmtailor: result ok\n"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FakeVBoxManage:
    """VBoxManage for one VM: its showvminfo keys change as the commands say; a started VM
    powers off (writing the serial log, as the initrd would) after `runs_for` polls."""

    def __init__(self, vmdir: Path, runs_for: int | None = 2):
        text = (GOLDEN / "virtualbox-showvminfo.txt").read_text().replace("@VMDIR@", str(vmdir))
        self.info = parse_machinereadable(text)
        self.vmdir, self.runs_for, self.polls = vmdir, runs_for, 0
        self.commands: list[list[str]] = []

    def __call__(self, argv, **kwargs):
        argv = [str(a) for a in argv]
        self.commands.append(argv)
        cmd, args = argv[1], argv[2:]
        if cmd == "--version":
            return self.done("7.0.14r161095\n")
        if cmd not in ("closemedium",) and args and args[0] != self.info["name"]:
            msg = f"VBoxManage: error: Could not find a registered machine named '{args[0]}'\n"
            raise CommandError(argv, 1, msg)
        getattr(self, cmd)(args[1:])
        if cmd == "showvminfo":
            return self.done("".join(f"{_quote(k)}={_quote(v)}\n" for k, v in self.info.items()))
        return self.done("")

    @staticmethod
    def done(out: str):
        return subprocess.CompletedProcess([], 0, out.encode(), b"")

    def showvminfo(self, args):
        if self.info["VMState"] == "running" and self.runs_for is not None:
            self.polls += 1
            if self.polls > self.runs_for:
                if self.info.get("uartmode1", "").startswith("file,"):
                    Path(self.info["uartmode1"][5:]).write_text(RESULT)
                self.info["VMState"] = "poweroff"

    def storageattach(self, args):
        opts = dict(zip(args[::2], args[1::2], strict=True))
        key = f"{opts['--storagectl']}-{opts['--port']}-{opts['--device']}"
        self.info[key] = opts["--medium"]

    def modifyvm(self, args):
        i = 0
        while i < len(args):
            opt = args[i]
            if opt == "--uart1" and args[i + 1] != "off":
                self.info["uart1"] = f"0x{int(args[i + 1], 16):04x},{args[i + 2]}"
                i += 3
            elif opt == "--uart1":
                self.info["uart1"] = "off"
                self.info.pop("uartmode1", None)
                i += 2
            elif opt == "--uartmode1" and args[i + 1] == "file":
                self.info["uartmode1"] = f"file,{args[i + 2]}"
                i += 3
            elif opt == "--uartmode1":
                self.info["uartmode1"] = args[i + 1]
                i += 2
            else:
                self.info[opt.removeprefix("--")] = args[i + 1]
                i += 2

    def startvm(self, args):
        self.info["VMState"], self.polls = "running", 0

    def controlvm(self, args):
        self.info["VMState"] = "poweroff"

    def closemedium(self, args):
        pass


@pytest.fixture
def vbox(tmp_path, monkeypatch):
    fake = FakeVBoxManage(tmp_path)
    monkeypatch.setattr(virtualbox, "run", fake)
    return fake


@pytest.fixture
def driver(vbox):
    conn = Connection(driver="virtualbox", options={"poll_interval": 0.001})
    with VirtualBoxDriver(conn) as d:
        yield d


@pytest.fixture
def media(tmp_path) -> Media:
    return write_media(tmp_path, b"iso", b"cfg")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs (VMTAILOR_UPDATE_GOLDEN=1 to accept)"


def test_flow_commands_match_the_golden_file(vbox, driver, media, tmp_path):
    before = dict(vbox.info)
    ran = run_flow(driver, VM("web01"), media)
    off, result = ran.off, ran.text
    assert off and result == RESULT
    assert vbox.info == before  # slots empty again, boot order and uart exact
    assert not (tmp_path / virtualbox.SERIAL_LOG).exists()
    lines = [" ".join(c).replace(str(tmp_path), "$TMP") for c in vbox.commands]
    check_golden("virtualbox-flow.txt", "\n".join(lines) + "\n")


def test_timeout_powers_off_and_restores(tmp_path, monkeypatch, media):
    fake = FakeVBoxManage(tmp_path, runs_for=None)
    monkeypatch.setattr(virtualbox, "run", fake)
    before = dict(fake.info)
    conn = Connection(driver="virtualbox", options={"poll_interval": 0.001})
    with VirtualBoxDriver(conn) as driver:
        ran = run_flow(driver, VM("web01"), media, timeout=0.05)
        off, result = ran.off, ran.text
    assert not off and result is None
    assert ["VBoxManage", "controlvm", "web01", "poweroff"] in fake.commands
    assert fake.info == before


def test_restore_twice_sends_no_more_changes(vbox, driver, media):
    saved = driver.snapshot(VM("web01"))
    driver.attach(VM("web01"), driver.upload(VM("web01"), media), saved)
    driver.restore(VM("web01"), saved)
    n = len(vbox.commands)
    driver.restore(VM("web01"), saved)
    assert [c[1] for c in vbox.commands[n:]] == ["showvminfo"]


def test_vm_not_found(driver):
    with pytest.raises(VMNotFound, match="nope"):
        driver.power_state(VM("nope"))


def test_parse_canned_showvminfo(tmp_path):
    info = parse_machinereadable((GOLDEN / "virtualbox-showvminfo.txt").read_text())
    assert info["VMState"] == "poweroff"
    assert info["SATA-0-0"] == "@VMDIR@/web01.vdi"
    assert info["IDE-1-0"] == "emptydrive"
    assert info["description"] == 'clone of "debian-12" \\ master'
    assert info["memory"] == "1024"
    assert "Encryption:     disabled" not in info  # a human-readable line, not a key
    # the emptydrive slot is the VM's own DVD drive: never ours to use
    assert free_slots(info) == [("IDE", 0, 0), ("IDE", 0, 1), ("IDE", 1, 1)]


def test_snapshot_of_canned_output(driver, tmp_path):
    saved = driver.snapshot(VM("web01"))
    assert saved == {
        "boot": ["disk", "net", "none", "none"],
        "slots": [["IDE", 0, 0], ["IDE", 0, 1]],
        "serial_log": str(tmp_path / virtualbox.SERIAL_LOG),
        "serial_offset": 0,
        "serial_added": True,
    }
    assert driver.power_state(VM("web01")) == PowerState.OFF


def test_no_free_slot_is_refused(vbox, driver):
    for key in ("IDE-0-0", "IDE-0-1", "IDE-1-1"):
        vbox.info[key] = "/x.vdi"
    with pytest.raises(DriverError, match="two empty storage slots"):
        driver.snapshot(VM("web01"))


@pytest.mark.parametrize(
    ("boot", "expected"),
    [
        (["disk", "net", "none", "none"], ["dvd", "disk", "net", "none"]),
        (["dvd", "disk", "none", "none"], ["dvd", "disk", "none", "none"]),
        (["floppy", "disk", "net", "dvd"], ["dvd", "floppy", "disk", "net"]),
    ],
)
def test_boot_with_dvd_first(boot, expected):
    assert boot_with_dvd_first(boot) == expected
