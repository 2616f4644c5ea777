"""QEMU without a management layer: vmtailor starts QEMU itself and drives it over QMP.

A VM is its QEMU arguments (the inventory entry's `qemu:`, without the binary), e.g.

    vms:
      - name: web01
        qemu: [-machine, q35, -m, "1024", -display, none,
               -drive, "file=web01.qcow2,if=virtio,format=qcow2"]

Its persistent configuration *is* those arguments, which vmtailor never changes. For the
customization boot vmtailor starts them with `-S -no-shutdown` (paused, and still there
after the guest powers off), a QMP socket, the first serial port logged to a file and a
virtio-scsi controller of its own; then over QMP: the ISO and config media are added as
SCSI CD-ROMs (IDE can't be hot-added), every existing `bootindex` is moved down one
(qom-set) and the ISO's CD gets bootindex 0; system_reset makes the firmware re-read the
boot order, `set-action reboot=shutdown` (what -no-reboot does, set only after that
reset, which it would turn into a shutdown) makes a guest reboot end the boot like a
power-off, and `cont` starts the guest. The SHUTDOWN event says it is done. Restore
removes the CD-ROMs, sets every bootindex back (and checks it) and quits that QEMU; with
--power-on the VM then starts afresh from its own arguments (plus -no-shutdown and QMP).

Library: qemu.qmp, the QEMU project's own client (greeting, capability negotiation,
event buffering, error classes done right), run on a private asyncio loop per driver so
the driver stays synchronous like every other. QMP sockets, pid files and serial logs
live in `run_dir` (hypervisor option; default /run/vmtailor/qemu)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shlex
import time
from collections.abc import Mapping
from typing import Any

from qemu.qmp import EventListener, QMPClient, QMPError

from ..customizer.errors import VmtailorError
from ..customizer.run import run
from .base import VM, Driver, DriverError, Media, PowerState

CONTROLLER = "vmtailor-scsi"
PERIPHERALS = ("/machine/peripheral", "/machine/peripheral-anon")
OFF_STATES = {"shutdown", "prelaunch", "guest-panicked"}
# qemu.qmp logs a failed connect (e.g. to the stale socket of a QEMU that has quit) at
# ERROR before raising; every such failure reaches us as an exception and is handled
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
log = logging.getLogger("vmtailor.deploy")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


class Monitor:
    """A synchronous face on qemu.qmp's asyncio QMPClient, with SHUTDOWN events kept."""

    def __init__(self, socket_path: str, timeout: float = 10.0):
        self.loop = asyncio.new_event_loop()
        self.client = QMPClient("vmtailor")
        self.shutdowns = EventListener(("SHUTDOWN",))
        self.client.register_listener(self.shutdowns)
        try:
            self._run(asyncio.wait_for(self.client.connect(socket_path), timeout))
        except BaseException:
            self.loop.close()
            raise

    def _run(self, coro):
        return self.loop.run_until_complete(coro)

    def cmd(self, name: str, **arguments: Any) -> Any:
        return self._run(self.client.execute(name, arguments or None))

    def wait_shutdown(self, timeout: float) -> bool:
        try:
            self._run(asyncio.wait_for(self.shutdowns.get(), timeout))
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self.client.disconnect())
        self.loop.close()


class QemuDriver(Driver):
    NAME = "qemu"
    SUMMARY = "QEMU started by vmtailor, driven over QMP (VMs given as `qemu:` arguments)"
    CONFIG_FORMAT = "iso"
    HAS_EVENTS = True
    HAS_SERIAL_LOG = True
    REBOOT_STOPS = True

    def __init__(self, connection):
        super().__init__(connection)
        self.monitors: dict[str, Monitor] = {}

    @classmethod
    def check_vm_settings(cls, settings: Mapping[str, Any]) -> None:
        args = settings.get("qemu")
        if isinstance(args, str):
            args = shlex.split(args)
        if (
            not isinstance(args, list)
            or not args
            or not all(isinstance(a, str | int) for a in args)
        ):
            raise DriverError("qemu: expected the VM's QEMU arguments (a list, or one string)")

    @property
    def binary(self) -> str:
        return self.connection.options.get("binary", "qemu-system-x86_64")

    @property
    def run_dir(self) -> str:
        return self.connection.options.get("run_dir") or "/run/vmtailor/qemu"

    def _path(self, vm: VM, suffix: str) -> str:
        return os.path.join(self.run_dir, f"{_safe(vm.name)}.{suffix}")

    def _args(self, vm: VM) -> list[str]:
        args = vm.settings.get("qemu")
        if isinstance(args, str):
            args = shlex.split(args)
        if not args:
            raise DriverError(f"{vm.name}: no `qemu:` arguments in its inventory entry")
        return [str(a) for a in args]

    # --- connection: there is none to open; one QMP monitor per running VM --------------
    def connect(self) -> None:
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)

    def close(self) -> None:
        for monitor in self.monitors.values():
            monitor.close()
        self.monitors.clear()

    def _monitor(self, vm: VM) -> Monitor | None:
        """The QMP monitor of this VM's QEMU, or None when no QEMU runs for it."""
        monitor = self.monitors.get(vm.name)
        if monitor is not None:
            if monitor.client.runstate.name == "RUNNING":
                return monitor
            monitor.close()
            del self.monitors[vm.name]
        if not os.path.exists(self._path(vm, "qmp")):
            return None
        try:
            monitor = Monitor(self._path(vm, "qmp"))
        except (TimeoutError, OSError, QMPError):
            return None  # a stale socket of a QEMU that is gone
        self.monitors[vm.name] = monitor
        return monitor

    def _qmp(self, vm: VM, what: str, name: str, **arguments: Any) -> Any:
        monitor = self._monitor(vm)
        if monitor is None:
            raise DriverError(f"{vm.name}: cannot {what}: its QEMU is not running")
        try:
            return monitor.cmd(name, **arguments)
        except QMPError as exc:
            raise DriverError(f"{vm.name}: cannot {what}: {exc}") from None

    def _status(self, vm: VM) -> str | None:
        return (
            self._qmp(vm, "read its state", "query-status")["status"] if self._monitor(vm) else None
        )

    # --- power --------------------------------------------------------------------------
    def power_state(self, vm: VM) -> PowerState:
        self._args(vm)
        return PowerState.RUNNING if self._status(vm) not in OFF_STATES | {None} else PowerState.OFF

    def power_on(self, vm: VM) -> None:
        if self._monitor(vm) is None:
            self._launch(vm, paused=False)
        elif self._status(vm) in OFF_STATES:
            # the firmware reads the boot order (fw_cfg) again only on a reset
            self._qmp(vm, "reset it", "system_reset")
            try:
                self._qmp(vm, "make a reboot stop it", "set-action", reboot="shutdown")
            except DriverError as exc:
                # QEMU < 6.0 has no set-action: a guest without ACPI that reboots (the
                # initrd's fallback) boots the ISO again, until its first result record
                # and the grace make the flow stop it
                log.warning("%s", exc)
            self._qmp(vm, "start it", "cont")

    def power_off(self, vm: VM) -> None:
        if self._monitor(vm) is not None:
            with contextlib.suppress(DriverError):
                self._qmp(vm, "quit QEMU", "quit")
            self.monitors.pop(vm.name).close()
        self._wait_gone(vm, 10.0)

    def shutdown(self, vm: VM, timeout: float) -> None:
        if self._monitor(vm) is None:
            return
        if self._status(vm) not in OFF_STATES:
            self._qmp(vm, "ask it to shut down", "system_powerdown")
            if not self.wait_off(vm, timeout):
                raise DriverError(
                    f"{vm.name}: did not shut down within {timeout:g} s (left running)"
                )
        self.power_off(vm)

    def wait_off(self, vm: VM, timeout: float) -> bool:
        monitor = self._monitor(vm)
        if monitor is None or self._status(vm) in OFF_STATES:
            return True
        if monitor.wait_shutdown(timeout):
            return True
        return self._status(vm) in OFF_STATES | {None}

    def _wait_gone(self, vm: VM, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while os.path.exists(self._path(vm, "qmp")) and time.monotonic() < deadline:
            if self._monitor(vm) is None:
                break
            time.sleep(0.1)
        for suffix in ("qmp", "pid"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(vm, suffix))

    def _launch(self, vm: VM, *, paused: bool, extra: list[str] = ()) -> None:
        argv = [self.binary, *(["-S"] if paused else []), "-no-shutdown", "-daemonize",
                "-pidfile", self._path(vm, "pid"),
                "-qmp", f"unix:{self._path(vm, 'qmp')},server=on,wait=off",
                *extra, *self._args(vm)]  # fmt: skip
        try:
            run(argv, timeout=60)
        except VmtailorError as exc:
            raise DriverError(f"{vm.name}: QEMU did not start: {exc}") from None

    # --- configuration ------------------------------------------------------------------
    def snapshot(self, vm: VM) -> dict[str, Any]:
        if self._monitor(vm) is not None and self._status(vm) == "shutdown":
            self.power_off(vm)  # a powered-off guest's QEMU, kept by -no-shutdown
        if self._monitor(vm) is not None:
            raise DriverError(
                f"{vm.name}: a QEMU of vmtailor's already runs for it ({self._path(vm, 'qmp')})",
                hint="run `vmtailor deploy INVENTORY --restore`, or quit that QEMU",
            )
        return {"args": self._args(vm), "serial_log": self._path(vm, "serial.log")}

    def upload(self, vm: VM, media: Media) -> Media:
        for path in (media.iso, media.config):
            if not os.access(path, os.R_OK) or not os.path.isfile(path):
                raise DriverError(f"{vm.name}: cannot read {path}")
        return Media(os.path.abspath(media.iso), os.path.abspath(media.config), media.config_format)

    def _bootindexes(self, vm: VM) -> dict[str, int]:
        """QOM path -> bootindex of every device that has one set (-1 means unset)."""
        out = {}
        for parent in PERIPHERALS:
            for child in self._qmp(vm, "list its devices", "qom-list", path=parent):
                if not child["type"].startswith("child<"):
                    continue
                path = f"{parent}/{child['name']}"
                props = {p["name"] for p in self._qmp(vm, "list properties", "qom-list", path=path)}
                if "bootindex" in props:
                    value = self._qmp(
                        vm, "read a bootindex", "qom-get", path=path, property="bootindex"
                    )
                    if value >= 0:
                        out[path] = value
        return out

    def attach(self, vm: VM, placed: Media, saved: Mapping[str, Any]) -> None:
        serial = f"file,id=vmtailor-serial,path={saved['serial_log']}"
        self._launch(vm, paused=True, extra=["-chardev", serial, "-serial", "chardev:vmtailor-serial",
                                             "-device", f"virtio-scsi-pci,id={CONTROLLER}"])  # fmt: skip
        original = self._bootindexes(vm)
        with open(self._path(vm, "bootindex.json"), "w") as f:
            json.dump(original, f)  # restore() needs it: the VM keeps its own record
        for path, index in sorted(original.items(), key=lambda kv: -kv[1]):
            self._qmp(
                vm,
                "move a boot device down",
                "qom-set",
                path=path,
                property="bootindex",
                value=index + 1,
            )
        for role, location, boot in (("iso", placed.iso, 0), ("config", placed.config, None)):
            self._qmp(vm, f"add the {role} media", "blockdev-add", driver="raw",
                      **{"node-name": f"vmtailor-{role}", "read-only": True},
                      file={"driver": "file", "filename": location, "read-only": True})  # fmt: skip
            device = {"driver": "scsi-cd", "id": f"vmtailor-{role}-cd", "bus": f"{CONTROLLER}.0",
                      "drive": f"vmtailor-{role}"}  # fmt: skip
            if boot is not None:
                device["bootindex"] = boot
            self._qmp(vm, f"add the {role} CD-ROM", "device_add", **device)

    def read_result(self, vm: VM, saved: Mapping[str, Any]) -> str | None:
        try:
            with open(saved["serial_log"], "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return None

    read_console = read_result  # a file QEMU writes as the guest prints: readable any time

    def restore(self, vm: VM, saved: Mapping[str, Any]) -> None:
        if self._monitor(vm) is None:
            return  # no QEMU, nothing attached: the arguments were never changed
        devices = {
            d["qdev"] for d in self._qmp(vm, "list block devices", "query-block") if d.get("qdev")
        }
        for role in ("iso", "config"):
            if any(d.endswith(f"vmtailor-{role}-cd") for d in devices):
                self._qmp(vm, f"remove the {role} CD-ROM", "device_del", id=f"vmtailor-{role}-cd")
        self._wait_devices_gone(vm)
        for role in ("iso", "config"):
            with contextlib.suppress(DriverError):
                self._qmp(
                    vm,
                    f"remove the {role} media",
                    "blockdev-del",
                    **{"node-name": f"vmtailor-{role}"},
                )
        try:
            with open(self._path(vm, "bootindex.json")) as f:
                original = json.load(f)
        except FileNotFoundError:
            original = {}
        for path, index in sorted(original.items(), key=lambda kv: kv[1]):
            self._qmp(
                vm, "restore a bootindex", "qom-set", path=path, property="bootindex", value=index
            )
        if self._bootindexes(vm) != original:
            raise DriverError(f"{vm.name}: boot order after restore differs from the original")
        os.unlink(self._path(vm, "bootindex.json"))
        # this QEMU has vmtailor's serial log and controller: a normal boot (--power-on)
        # starts the VM's own arguments afresh
        self.power_off(vm)

    def _wait_devices_gone(self, vm: VM, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            blocks = self._qmp(vm, "list block devices", "query-block")
            if not any("vmtailor-" in (d.get("qdev") or "") for d in blocks):
                return
            time.sleep(0.1)
        raise DriverError(f"{vm.name}: vmtailor's CD-ROMs were not removed within {timeout:g} s")


DRIVER = QemuDriver
