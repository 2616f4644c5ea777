"""VirtualBox through VBoxManage on this host, every command through run().

Not run against a live VirtualBox here: the tests check the generated commands (golden
files) and the parsing of canned `showvminfo --machinereadable` output.

VirtualBox reads the media from this host's files, so nothing is uploaded. Both are put
into storage slots that are empty ("none") on the VM's controllers, as DVD drives, so
restore empties exactly those slots again; boot order is --boot1..4 with dvd first. For the
result, a VM without a serial port gets uart1 logging to a file beside its .vbox file
(the guest's ttyS0), read after power-off; a VM whose uart1 already logs to a file has the
part written during this boot read from there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from ..customizer.run import CommandError, run
from .base import VM, Driver, DriverError, Media, PowerState, VMNotFound

VBOXMANAGE = "VBoxManage"
OFF_STATES = {"poweroff", "aborted"}
SERIAL_LOG = "vmtailor-serial.log"

_LINE = re.compile(r'^(?:"((?:[^"\\]|\\.)*)"|([^=]+))=(.*)$')


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_machinereadable(text: str) -> dict[str, str]:
    """`VBoxManage showvminfo --machinereadable` -> {key: value}, quotes removed."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            key = re.sub(r"\\(.)", r"\1", m.group(1)) if m.group(1) is not None else m.group(2)
            info[key] = _unquote(m.group(3))
    return info


def free_slots(info: Mapping[str, str]) -> list[tuple[str, int, int]]:
    """(controller, port, device) of every empty storage slot, controllers in order."""
    slots = []
    n = 0
    while f"storagecontrollername{n}" in info:
        name = info[f"storagecontrollername{n}"]
        pattern = re.compile(re.escape(name) + r"-(\d+)-(\d+)")
        for key, value in info.items():
            m = pattern.fullmatch(key)
            if m and value == "none":
                slots.append((name, int(m.group(1)), int(m.group(2))))
        n += 1
    return slots


def boot_with_dvd_first(boot: list[str]) -> list[str]:
    rest = [b for b in boot if b not in ("dvd", "none")]
    return (["dvd", *rest] + ["none"] * 4)[:4]


class VirtualBoxDriver(Driver):
    NAME = "virtualbox"
    SUMMARY = "VirtualBox via VBoxManage on this host (no uri)"
    CONFIG_FORMAT = "iso"
    HAS_SERIAL_LOG = True

    def connect(self) -> None:
        self.vboxmanage = self.connection.options.get("vboxmanage", VBOXMANAGE)
        self.poll = float(self.connection.options.get("poll_interval", 2))
        self._vbox("--version", what="VirtualBox")

    def _vbox(self, *args: str, what: str) -> str:
        try:
            return run([self.vboxmanage, *args]).stdout.decode("utf-8", errors="replace")
        except CommandError as exc:
            stderr = exc.stderr.strip().splitlines()
            if any("Could not find a registered machine" in line for line in stderr):
                raise VMNotFound(f"{what}: no such VM in VirtualBox") from None
            last = stderr[-1] if stderr else f"exit {exc.returncode}"
            raise DriverError(f"{what}: VBoxManage {args[0]}: {last}") from None

    def info(self, vm: VM) -> dict[str, str]:
        text = self._vbox("showvminfo", vm.name, "--machinereadable", what=vm.name)
        return parse_machinereadable(text)

    # --- power ----------------------------------------------------------------------
    def power_state(self, vm: VM) -> PowerState:
        state = self.info(vm).get("VMState")
        return PowerState.OFF if state in OFF_STATES else PowerState.RUNNING

    def power_on(self, vm: VM) -> None:
        self._vbox("startvm", vm.name, "--type", "headless", what=vm.name)

    def power_off(self, vm: VM) -> None:
        if self.power_state(vm) != PowerState.OFF:
            self._vbox("controlvm", vm.name, "poweroff", what=vm.name)

    def shutdown(self, vm: VM, timeout: float) -> None:
        self._vbox("controlvm", vm.name, "acpipowerbutton", what=vm.name)
        if not self.wait_off(vm, timeout):
            raise DriverError(f"{vm.name}: still running {timeout:g} s after the ACPI button")

    # --- configuration --------------------------------------------------------------
    def snapshot(self, vm: VM) -> dict[str, Any]:
        info = self.info(vm)
        slots = free_slots(info)
        if len(slots) < 2:
            raise DriverError(f"{vm.name}: needs two empty storage slots for DVD drives")
        saved: dict[str, Any] = {
            "boot": [info.get(f"boot{n}", "none") for n in range(1, 5)],
            "slots": [list(s) for s in slots[:2]],
            "serial_log": None,
            "serial_offset": 0,
            "serial_added": False,
        }
        mode = info.get("uartmode1", "")
        if info.get("uart1", "off") == "off":
            folder = os.path.dirname(info.get("CfgFile", "")) or "."
            saved["serial_log"] = os.path.join(folder, SERIAL_LOG)
            saved["serial_added"] = True
        elif mode.startswith("file,"):
            saved["serial_log"] = mode.removeprefix("file,")
            try:  # only what this boot appends is ours to read
                saved["serial_offset"] = os.path.getsize(saved["serial_log"])
            except OSError:
                pass
        return saved

    def upload(self, vm: VM, media: Media) -> Media:
        if media.config_format != "iso":
            raise DriverError(f"{vm.name}: virtualbox attaches config media as an ISO only")
        return Media(os.path.abspath(media.iso), os.path.abspath(media.config), "iso")

    def _slot(self, vm: VM, slot, medium: str, *extra: str) -> None:
        controller, port, device = slot
        self._vbox(
            "storageattach",
            vm.name,
            "--storagectl",
            controller,
            "--port",
            str(port),
            "--device",
            str(device),
            *extra,
            "--medium",
            medium,
            what=vm.name,
        )

    def attach(self, vm: VM, placed: Media, saved: Mapping[str, Any]) -> None:
        for slot, path in zip(saved["slots"], (placed.iso, placed.config), strict=True):
            self._slot(vm, slot, path, "--type", "dvddrive")
        args = []
        for n, dev in enumerate(boot_with_dvd_first(saved["boot"]), start=1):
            args += [f"--boot{n}", dev]
        if saved["serial_added"]:
            if os.path.exists(saved["serial_log"]):
                os.unlink(saved["serial_log"])  # a log left by an earlier run isn't ours
            args += ["--uart1", "0x3F8", "4", "--uartmode1", "file", saved["serial_log"]]
        self._vbox("modifyvm", vm.name, *args, what=vm.name)

    def read_result(self, vm: VM, saved: Mapping[str, Any]) -> str | None:
        path = saved.get("serial_log")
        if not path:
            return None
        try:
            with open(path, "rb") as f:
                f.seek(int(saved.get("serial_offset", 0)))
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None

    def restore(self, vm: VM, saved: Mapping[str, Any]) -> None:
        info = self.info(vm)
        for controller, port, device in saved["slots"]:
            if info.get(f"{controller}-{port}-{device}", "none") != "none":
                self._slot(vm, (controller, port, device), "none")
        args = []
        if [info.get(f"boot{n}", "none") for n in range(1, 5)] != saved["boot"]:
            for n, dev in enumerate(saved["boot"], start=1):
                args += [f"--boot{n}", dev]
        if saved["serial_added"] and info.get("uart1", "off") != "off":
            args += ["--uartmode1", "disconnected", "--uart1", "off"]
        if args:  # already as saved: restore is idempotent
            self._vbox("modifyvm", vm.name, *args, what=vm.name)
        if saved["serial_added"] and saved["serial_log"] and os.path.exists(saved["serial_log"]):
            os.unlink(saved["serial_log"])

    def discard(self, vm: VM, placed: Mapping[str, Any]) -> None:
        # attaching registered the images in VirtualBox's media registry: unregister them
        # (the files are vmtailor's own, on this host, and stay)
        for path in (placed["iso"], placed["config"]):
            try:
                run([self.vboxmanage, "closemedium", "dvd", path])
            except CommandError:
                pass  # not registered (any more): discard is idempotent


DRIVER = VirtualBoxDriver
