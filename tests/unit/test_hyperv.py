"""The hyperv driver without Hyper-V: a stand-in WinRM session answers the PowerShell
steps with canned JSON; the scripts of a whole flow are compared with golden files (one
per VM generation) and canned Get-VMFirmware / Get-VMBios output is parsed. README says
it: this driver is not run against a live Hyper-V host here."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.fakes.flow import run_flow, write_media
from vmtailor.hypervisors import hyperv
from vmtailor.hypervisors.base import VM, ConnectError, Connection, DriverError, Media, VMNotFound
from vmtailor.hypervisors.hyperv import HyperVDriver, parse_snapshot, ps_quote

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "hypervisors"
UPDATE = os.environ.get("VMTAILOR_UPDATE_GOLDEN") == "1"


class FakeSession:
    """Answers run_ps like a Hyper-V host would for one VM; records every script."""

    def __init__(self, generation: int, runs_for: int | None = 2, password_ok=True):
        self.snapshot = (GOLDEN / f"hyperv-snapshot-gen{generation}.json").read_text()
        self.state, self.runs_for, self.polls = "Off", runs_for, 0
        self.password_ok = password_ok
        self.scripts: list[str] = []

    def run_ps(self, script: str):
        if not self.password_ok:
            raise RuntimeError("the specified credentials were rejected by the server")
        self.scripts.append(script)
        return SimpleNamespace(status_code=0, std_out=self.answer(script).encode(), std_err=b"")

    def answer(self, script: str) -> str:
        if "$PSVersionTable" in script:
            return "5"
        if "Get-VM -Name 'web01'" not in script:
            return '{"error":"notfound"}'
        if "Get-VMFirmware -VM $vm).BootOrder | Select-Object" in script:
            return self.snapshot
        if "Start-VM" in script:
            self.state, self.polls = "Running", 0
        elif "Stop-VM" in script:
            self.state = "Off"
        elif "$out = @{ State" in script:
            if self.state == "Running" and self.runs_for is not None:
                self.polls += 1
                if self.polls > self.runs_for:
                    self.state = "Off"
            return json.dumps({"State": self.state})
        elif "Add-VMDvdDrive -VM $vm -Path '\\\\files\\fail" in script:
            return '{"error":"Failed to add device \'Virtual CD/DVD Disk\'."}'
        return '{"ok":true}'


def connection(tmp_path, remote="\\\\files\\vmtailor") -> Connection:
    return Connection(
        driver="hyperv",
        uri="https://hv01.example.com:5986/wsman",
        username="EXAMPLE\\ops",
        password="secret",
        options={
            "share_local": str(tmp_path / "share"),
            "share_remote": remote,
            "poll_interval": 0.001,
        },
    )


def open_driver(monkeypatch, tmp_path, session, remote="\\\\files\\vmtailor"):
    winrm = SimpleNamespace(Session=lambda *a, **k: session)
    monkeypatch.setattr(hyperv, "_sdk", lambda: winrm)
    driver = HyperVDriver(connection(tmp_path, remote))
    driver.connect()
    return driver


@pytest.fixture
def media(tmp_path) -> Media:
    return write_media(tmp_path, b"iso", b"cfg")


def check_golden(name: str, scripts: list[str]) -> None:
    text = "".join(f"# --- step {n} ---\n{s}\n" for n, s in enumerate(scripts, start=1))
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs (VMTAILOR_UPDATE_GOLDEN=1 to accept)"


@pytest.mark.parametrize("generation", [2, 1])
def test_flow_scripts_match_the_golden_file(monkeypatch, tmp_path, media, generation):
    session = FakeSession(generation)
    driver = open_driver(monkeypatch, tmp_path, session)
    ran = run_flow(driver, VM("web01"), media)
    off, result, placed = ran.off, ran.text, ran.placed
    assert off and result is None  # a COM port's named pipe can't be read over WinRM
    assert placed.iso == "\\\\files\\vmtailor\\vmtailor\\web01\\vmtailor.iso"
    assert not (tmp_path / "share" / "vmtailor" / "web01").exists()  # discarded
    check_golden(f"hyperv-gen{generation}-flow.ps1", session.scripts)


def test_upload_copies_the_media_into_the_share(monkeypatch, tmp_path, media):
    driver = open_driver(monkeypatch, tmp_path, FakeSession(2))
    driver.upload(VM("web01"), media)
    folder = tmp_path / "share" / "vmtailor" / "web01"
    assert sorted(p.name for p in folder.iterdir()) == ["config.iso", "vmtailor.iso"]
    assert (folder / "vmtailor.iso").read_bytes() == b"iso"


def test_timeout_turns_the_vm_off_then_restores(monkeypatch, tmp_path, media):
    session = FakeSession(2, runs_for=None)
    driver = open_driver(monkeypatch, tmp_path, session)
    ran = run_flow(driver, VM("web01"), media, timeout=0.05)
    off = ran.off
    assert not off
    steps = [s for s in session.scripts if "Stop-VM" in s or "Remove-VMDvdDrive" in s]
    assert ["TurnOff" in s for s in steps] == [True, False]  # turned off, then restored


def test_parse_gen2_firmware_json():
    saved = parse_snapshot(json.loads((GOLDEN / "hyperv-snapshot-gen2.json").read_text()))
    assert saved["generation"] == 2
    assert saved["dvd"] == ["SCSI:0:1"]
    assert [p.rsplit("\\", 1)[-1] for p in saved["boot"]] == [
        "Scsi(0,0)",
        "Scsi(0,1)",
        "MAC(00155D010203)",
    ]


def test_parse_gen1_bios_json_with_a_bare_element():
    # ConvertTo-Json may write a one-element array as the element itself
    saved = parse_snapshot(json.loads((GOLDEN / "hyperv-snapshot-gen1.json").read_text()))
    assert saved == {
        "generation": 1,
        "dvd": ["IDE:1:0"],
        "boot": ["IDE", "CD", "LegacyNetworkAdapter", "Floppy"],
    }


def test_vm_not_found(monkeypatch, tmp_path):
    driver = open_driver(monkeypatch, tmp_path, FakeSession(2))
    with pytest.raises(VMNotFound, match="nope"):
        driver.power_state(VM("nope"))


def test_bad_credentials(monkeypatch, tmp_path):
    with pytest.raises(ConnectError, match="credentials were rejected"):
        open_driver(monkeypatch, tmp_path, FakeSession(2, password_ok=False))


def test_attach_failure_is_one_line(monkeypatch, tmp_path, media):
    driver = open_driver(monkeypatch, tmp_path, FakeSession(2), remote="\\\\files\\fail")
    saved = driver.snapshot(VM("web01"))
    with pytest.raises(DriverError, match="web01: attach media: Failed to add device"):
        driver.attach(VM("web01"), driver.upload(VM("web01"), media), saved)


def test_values_are_single_quoted_literals():
    assert ps_quote("it's $(rm -r C:\\)") == "'it''s $(rm -r C:\\)'"


def test_share_options_are_required():
    conn = Connection(driver="hyperv", uri="https://hv01:5986/wsman", options={})
    with pytest.raises(DriverError, match="share_local"):
        HyperVDriver.check_options(conn)
