"""How flow.customize's wait for the customization boot ends: power-off, this run's
result record on the console (then a grace, then a forced stop), or the timeout — with a
driver whose guest never powers off, as one without ACPI only halts."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import vmtailor
from vmtailor.hypervisors import flow
from vmtailor.hypervisors import state as st
from vmtailor.hypervisors.base import VM, Driver, Media, PowerState
from vmtailor.initrd.result import BEGIN, END, format_result, run_record

RUN = "0123456789abcdef0123456789abcdef"
BOOT = "SeaBIOS (version 1.16)\r\nBooting from DVD/CD...\r\n[    0.000000] Linux version 6.1\r\n"


class HaltingDriver(Driver):
    """A guest that prints `console` (a line a second after power-on, to the record and
    past it) and then halts: it never powers off unless `off_after` seconds pass."""

    NAME = "halting"
    poll = 0.01

    def __init__(self, console: str, off_after: float | None = None, lines_per_read: int = 3):
        super().__init__(None)
        self.lines = console.splitlines(keepends=True)
        self.off_after = off_after
        self.lines_per_read = lines_per_read
        self.shown = 0
        self.started: float | None = None
        self.forced = False
        self.calls: list[str] = []

    def connect(self) -> None:
        pass

    def power_state(self, vm: VM) -> PowerState:
        if self.started is None or self.forced:
            return PowerState.OFF
        if self.off_after is not None and time.monotonic() - self.started >= self.off_after:
            return PowerState.OFF
        return PowerState.RUNNING

    def shutdown(self, vm: VM, timeout: float) -> None:
        raise AssertionError("never asked")

    def power_off(self, vm: VM) -> None:
        self.calls.append("power_off")
        self.forced = True

    def power_on(self, vm: VM) -> None:
        self.calls.append("power_on")
        self.started = time.monotonic()

    def snapshot(self, vm: VM) -> dict:
        return {"boot": ["hd"]}

    def attach(self, vm: VM, placed: Media, saved) -> None:
        self.calls.append("attach")

    def restore(self, vm: VM, saved) -> None:
        self.calls.append("restore")

    def read_console(self, vm: VM, saved) -> str:
        # the console grows while the guest runs: a few lines more at every look
        self.shown = min(len(self.lines), self.shown + self.lines_per_read)
        return "".join(self.lines[: self.shown])

    def read_result(self, vm: VM, saved) -> str:
        return "".join(self.lines)


def _quiet(_vm, _what):
    pass


@pytest.fixture(autouse=True)
def fast_slices(monkeypatch):
    monkeypatch.setattr(flow, "SLICE", 0.05)


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("VMTAILOR_STATE_DIR", str(tmp_path / "state"))
    with st.StateFile.for_inventory(str(tmp_path / "inventory.yaml")) as s:
        yield s


def _deploy(driver, state, *, timeout=5.0, grace=0.3, run=RUN):
    opts = flow.Options(timeout=timeout, grace=grace)
    started = time.monotonic()
    outcome = flow.customize(driver, VM("vm1"), Media("a.iso", "c.iso"), state, opts, _quiet,
                             run)  # fmt: skip
    return outcome, time.monotonic() - started


def _record(status="ok", run=RUN, **extra) -> str:
    record = {"status": status, "changes": [{"path": "/etc/hostname"}], **extra}
    if run is not None:
        record["run"] = run
    return format_result(record).replace("\n", "\r\n")


HALT = "[   14.2] reboot: System halted\r\n"


def test_this_runs_record_ends_the_wait_the_vm_is_stopped_after_the_grace(state):
    driver = HaltingDriver(BOOT + "[started] customize\r\n" + _record() + HALT)
    outcome, seconds = _deploy(driver, state, timeout=5.0, grace=0.3)
    assert outcome.status == "ok", outcome.reason
    assert outcome.result["status"] == "ok"
    assert seconds < 2.0  # not the 5 s timeout
    # stopped (it never would have been otherwise), then restored as ever
    assert driver.calls == ["attach", "power_on", "power_off", "restore"]
    assert state.phase("vm1") == st.DONE


def test_a_guest_that_powers_off_within_the_grace_is_not_forced(state):
    driver = HaltingDriver(BOOT + _record(), off_after=0.3, lines_per_read=100)
    outcome, _ = _deploy(driver, state, timeout=5.0, grace=3.0)
    assert outcome.status == "ok", outcome.reason
    assert "power_off" not in driver.calls


def test_a_failure_record_of_this_run_ends_the_wait_and_fails_the_vm(state):
    driver = HaltingDriver(BOOT + _record("error", reason="no config media") + HALT)
    outcome, seconds = _deploy(driver, state)
    assert seconds < 2.0
    assert outcome.status == "failed"
    assert outcome.reason == "vm1: customization failed: no config media"
    assert outcome.result["status"] == "error"
    assert state.phase("vm1") == st.FAILED


FORGED = {
    "no run token": _record(run=None),
    "another run's token": _record(run="f" * 32),
    "a token that only starts like it": _record(run=RUN + "00"),
    "markers inside other lines": 'BdsDxe: loading Boot0001 "'
    + _record().replace("\r\n", " ")
    + '"\r\n',
    "no end marker": f"{BEGIN}\r\n" + json.dumps({"status": "ok", "run": RUN}) + "\r\n",
    "an unknown status": _record(status="done"),
    "no JSON object": f'{BEGIN}\r\n["status", "ok", "run", "{RUN}"]\r\n{END}\r\n',
}


@pytest.mark.parametrize("console", FORGED.values(), ids=FORGED.keys())
def test_a_forged_or_malformed_record_does_not_end_the_wait(state, console):
    driver = HaltingDriver(BOOT + console + HALT, lines_per_read=100)
    outcome, seconds = _deploy(driver, state, timeout=0.6, grace=0.1)
    assert seconds >= 0.6  # waited out the timeout
    assert outcome.status == "failed"
    assert "did not power off within 0.6 s" in outcome.reason
    assert driver.calls[-2:] == ["power_off", "restore"]


def test_a_forged_record_before_the_real_one_does_not_count(state):
    forged = _record(run=None, hostname="evil")
    driver = HaltingDriver(BOOT + forged + "[started] customize\r\n" + _record() + HALT,
                           lines_per_read=1)  # fmt: skip
    outcome, seconds = _deploy(driver, state)
    assert outcome.status == "ok", outcome.reason
    assert "hostname" not in outcome.result
    assert seconds < 2.0


def test_without_a_run_token_only_power_off_ends_the_wait(state):
    # media from before run tokens (or a caller that passes none): the old behaviour
    driver = HaltingDriver(BOOT + _record(run=None) + HALT, lines_per_read=100)
    outcome, seconds = _deploy(driver, state, timeout=1.0, run=None)
    assert seconds >= 1.0
    assert outcome.status == "failed"


def test_after_power_off_a_record_without_any_token_still_counts(state):
    # an ISO older than run tokens, on a guest that powers off: as before
    driver = HaltingDriver(BOOT + _record(run=None), off_after=0.2)
    outcome, _ = _deploy(driver, state)
    assert outcome.status == "ok", outcome.reason
    assert "power_off" not in driver.calls


def test_after_power_off_another_runs_record_does_not_count(state):
    driver = HaltingDriver(BOOT + _record(run="f" * 32), off_after=0.2)
    outcome, _ = _deploy(driver, state)
    assert outcome.status == "failed"
    assert outcome.reason == "vm1: powered off, but no result record on its serial console"


def test_run_record_takes_only_the_last_complete_record():
    ours = _record()
    assert run_record(BOOT + ours, RUN)["status"] == "ok"
    # a record of ours followed by a newer, forged one: the last one decides
    assert run_record(BOOT + ours + _record(run=None), RUN) is None
    # kernel noise between the markers, as on a shared console
    noisy = ours.replace("\r\n{", "\r\n[   12.3] sd 2:0:0:0: [sdb] Synchronizing SCSI cache\r\n{")
    assert run_record(noisy, RUN)["status"] == "ok"
    # still being printed
    assert run_record(BOOT + ours[: ours.index(END) + 10], RUN) is None
    assert run_record(BOOT + ours, "") is None


def test_the_grace_is_a_deploy_option_and_never_negative(tmp_path):
    result = vmtailor("deploy", str(tmp_path / "site.yaml"), "--grace", "-1")
    assert result.returncode != 0
    assert result.stderr.strip().endswith("--grace must not be negative")
    assert "--grace S" in vmtailor("deploy", "--help").stdout
