"""The per-VM flow, the same for every driver: save, attach, boot, wait, read, restore.

Every change is announced in the state file *before* the driver makes it, and undone in a
`finally`, so a VM is never left with the customization ISO attached or its boot order
changed — and when even the `finally` can't run (SIGKILL, power cut), the state file says
what to undo (`restore_vm`, run by `deploy --restore` and before a VM is deployed again).

The customization boot ends when the VM powers off — or, where the driver reads the
console live, when this run's result record is on it: the initrd prints it once the
guest's disks are unmounted and synced, so after a short grace for the power-off the VM
is stopped and the record counts. A guest that can't power off (no ACPI: the kernel
halts instead) then costs seconds, not the whole timeout. Only a record carrying the run
token of this run's config media may do that (vmtailor.initrd.result).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..customizer.errors import VmtailorError
from ..initrd import result
from . import state as st
from .base import VM, Driver, DriverError, Media, PowerState, VMNotFound

log = logging.getLogger("vmtailor.deploy")

SLICE = 2.0  # wait for power-off in slices this long, so Ctrl-C is noticed promptly


class Cancelled(VmtailorError):
    """The deploy was interrupted; the VM has been (or will be) restored."""


@dataclass
class Options:
    timeout: float = 900.0  # the whole customization boot, power-on to power-off
    shutdown: bool = False  # shut a running VM down cleanly first, instead of refusing it
    shutdown_timeout: float = 300.0
    grace: float = 10.0  # after this run's result record: seconds left to power off
    power_on: bool = False  # start the VM normally afterwards
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class Outcome:
    vm: str
    status: str  # "ok", "failed", "skipped", "restored"
    reason: str = ""
    result: dict[str, Any] | None = None
    seconds: float = 0.0
    serial_log: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"vm": self.vm, "status": self.status, "reason": self.reason,
                "result": self.result, "seconds": round(self.seconds, 1),
                "serial_log": self.serial_log}  # fmt: skip


Progress = Callable[[str, str], None]  # (vm name, what is happening now)


def parse_result(
    text: str | None, run: str | None = None, *, powered_off: bool = True
) -> dict[str, Any] | None:
    """The last result record in the serial log when it is this run's, else None.

    With a `run` token the record must carry it — except, once the VM powered off by
    itself, a record with no token at all: from an ISO older than run tokens, or /init's
    failure record before the media was read. Neither is believed while the VM runs."""
    if not text:
        return None
    try:
        record = result.parse_result(text)
    except result.NoResult:
        return None
    if run is None or record.get(result.RUN) == run:
        return record
    return record if powered_off and result.RUN not in record else None


def _wait_off(driver: Driver, vm: VM, timeout: float, cancel: threading.Event) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if driver.wait_off(vm, max(0.0, min(remaining, SLICE))):
            return True
        if cancel.is_set():
            raise Cancelled(f"{vm.name}: interrupted")
        if remaining <= SLICE:
            return False


OFF, RECORD, TIMEOUT = "off", "record", "timeout"  # how the customization boot ended


def _wait_end(driver, vm, saved, run: str | None, opts: Options, progress: Progress) -> str:
    """Until the VM is off (OFF), or this run's record is on its console and the grace
    passed without a power-off (RECORD), or the timeout (TIMEOUT)."""
    deadline = time.monotonic() + opts.timeout
    while True:
        remaining = deadline - time.monotonic()
        if driver.wait_off(vm, max(0.0, min(remaining, SLICE))):
            return OFF
        if opts.cancel.is_set():
            raise Cancelled(f"{vm.name}: interrupted")
        if run and result.run_record(driver.read_console(vm, saved) or "", run) is not None:
            progress(vm.name, f"result on its console; {opts.grace:g} s to power off")
            return OFF if _wait_off(driver, vm, opts.grace, opts.cancel) else RECORD
        if remaining <= SLICE:
            return TIMEOUT


def restore_vm(driver: Driver, vm: VM, state: st.StateFile, progress: Progress) -> None:
    """Undo whatever the state file says was done to `vm`: power off vmtailor's boot,
    restore media and boot order, remove uploads. Idempotent; for any phase."""
    record = state.vm(vm.name)
    phase = record.get("phase", st.PENDING)
    if phase not in st.DIRTY:
        return
    saved, placed = record.get("saved"), record.get("placed")
    try:
        if phase in (st.ATTACHED, st.BOOTED, st.RESTORED) and saved:
            if driver.power_state(vm) is PowerState.RUNNING:
                if phase == st.BOOTED:
                    progress(vm.name, "powering off vmtailor's boot")
                    driver.power_off(vm)  # it runs vmtailor's initrd, not the guest's OS
                else:
                    raise DriverError(f"{vm.name}: is running; can't restore its boot order")
            progress(vm.name, "restoring media and boot order")
            driver.restore(vm, saved)
        state.update(vm.name, phase=st.RESTORED)
        if placed:
            driver.discard(vm, placed)
    except VMNotFound:
        log.warning("%s: gone from the hypervisor; nothing to restore", vm.name)
    final = st.DONE if record.get("status") == "ok" else st.FAILED
    state.update(vm.name, phase=final)


def customize(
    driver: Driver,
    vm: VM,
    media: Media,
    state: st.StateFile,
    opts: Options,
    progress: Progress,
    run: str | None = None,
) -> Outcome:
    """One VM through the whole flow; never leaves it changed. Raises only Cancelled.
    `run`: the token on `media` (initrd.image.RUN_PATH), None when it holds none."""
    started = time.monotonic()
    outcome = Outcome(vm.name, "failed")
    try:
        restore_vm(driver, vm, state, progress)  # leftovers of an interrupted run first
        _run(driver, vm, media, state, opts, progress, outcome, run)
    except Cancelled:
        outcome.reason = "interrupted"
        raise
    except VmtailorError as exc:
        outcome.reason = str(exc)
    finally:
        try:
            state.update(vm.name, status=outcome.status, reason=outcome.reason,
                         result=outcome.result)  # fmt: skip
            restore_vm(driver, vm, state, progress)
        except VmtailorError as exc:
            outcome.status = "failed"
            outcome.reason = f"{outcome.reason + '; ' if outcome.reason else ''}{exc}"
            state.update(vm.name, status="failed", reason=outcome.reason)
        outcome.seconds = time.monotonic() - started
    if outcome.status == "ok" and opts.power_on:
        try:
            progress(vm.name, "powering on")
            driver.power_on(vm)
        except VmtailorError as exc:
            outcome.reason = f"customized, but not powered on: {exc}"
    return outcome


def _run(driver, vm, media, state, opts, progress, outcome: Outcome, run) -> None:
    if driver.power_state(vm) is PowerState.RUNNING:
        if not opts.shutdown:
            raise DriverError(f"{vm.name}: is running", hint="shut it down, or pass --shutdown")
        progress(vm.name, "shutting down")
        driver.shutdown(vm, opts.shutdown_timeout)
    progress(vm.name, "saving boot order and media")
    saved = driver.snapshot(vm)
    state.update(vm.name, phase=st.SAVED, saved=saved, placed=None, status=None, result=None)
    progress(vm.name, "uploading media")
    placed = driver.upload(vm, media)
    state.update(vm.name, phase=st.PLACED, placed=placed.to_dict())
    progress(vm.name, "attaching media, CD first")
    state.update(vm.name, phase=st.ATTACHED)
    driver.attach(vm, placed, saved)
    if opts.cancel.is_set():
        raise Cancelled(f"{vm.name}: interrupted")
    progress(vm.name, "booting the customization ISO")
    state.update(vm.name, phase=st.BOOTED)
    driver.power_on(vm)
    ended = _wait_end(driver, vm, saved, run, opts, progress)
    if ended != OFF:
        if ended == RECORD:
            progress(vm.name, "still running after its result: stopping it")
        driver.power_off(vm)  # vmtailor's initrd: unmounted and synced, or out of time
    text = driver.read_result(vm, saved)
    if text is not None:
        path = os.path.join(state.subdir("logs"), f"{vm.name}.serial.log")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        outcome.serial_log = path
    outcome.result = parse_result(text, run, powered_off=ended == OFF)
    if ended == TIMEOUT:
        raise DriverError(f"{vm.name}: did not power off within {opts.timeout:g} s (powered off)")
    if outcome.result is None:
        why = "no result record on its serial console" if text is not None else "no serial log"
        raise DriverError(f"{vm.name}: powered off, but {why}")
    if outcome.result.get("status") != "ok":
        reason = outcome.result.get("reason") or outcome.result.get("error") or "no reason given"
        raise DriverError(f"{vm.name}: customization failed: {reason}")
    outcome.status = "ok"
