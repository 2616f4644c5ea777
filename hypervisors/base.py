"""The one interface every hypervisor driver implements.

A driver knows how to do the hypervisor-specific steps for one VM; the order they run in,
the state file and the error handling live in one place (hypervisors/flow.py), the same for
every driver:

    state = driver.power_state(vm)            # refuse RUNNING unless --shutdown:
    driver.shutdown(vm, timeout)              #   then a clean (ACPI) shutdown, bounded
    saved = driver.snapshot(vm)               # -> state file, BEFORE anything changes
    placed = driver.upload(vm, media)         # -> state file (so uploads can be removed)
    driver.attach(vm, placed, saved)          # ISO + config media attached, CD first
    driver.power_on(vm)
    driver.wait_off(vm, timeout)              # events where the API has them, else polling,
    driver.read_console(vm, saved)            #   in slices: this run's result record on the
                                              #   console ends the wait too (+ a grace)
    driver.power_off(vm)                      # when the guest did not power off by itself
    text = driver.read_result(vm, saved)      # the serial console, where there is one
    driver.restore(vm, saved)                 # (finally) media detached, boot order exact
    driver.discard(vm, placed)                # (finally) uploaded copies removed
    driver.power_on(vm)                       # only with --power-on

`saved` and `placed` go through the state file as JSON, and `restore`/`discard` may be
called by a *later process* (`vmtailor deploy --restore`) with only what that file holds,
on a VM in any phase of the flow — so they must be idempotent and need nothing else.

Every method raises DriverError (or a subclass) with a one-line message naming the VM; a
driver never prints. One driver instance serves one thread: `deploy --jobs N` opens N.
"""

from __future__ import annotations

import enum
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from ..customizer.errors import VmtailorError


class DriverError(VmtailorError):
    """A hypervisor operation failed; the message names the VM and what was being done."""


class ConnectError(DriverError):
    """Cannot reach or log in to the hypervisor (bad URI, host, credentials, TLS)."""


class VMNotFound(DriverError):
    """No VM of that name on this hypervisor."""


class SDKMissing(DriverError):
    """The driver's SDK isn't installed; the message carries the install command."""


class PowerState(enum.StrEnum):
    OFF = "off"
    RUNNING = "running"  # anything that isn't off: running, paused, suspended, booting


@dataclass(frozen=True)
class VM:
    """One VM of the inventory. `settings` are the driver-specific keys of its entry
    (e.g. the qemu driver's `qemu:` arguments), already validated by the driver."""

    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Media:
    """The two files a VM boots from: the customization ISO and its config media.

    Before upload(): local paths on the host running vmtailor. After: whatever names the
    hypervisor uses for them (a datastore path, a volume key, a URL…)."""

    iso: str
    config: str
    config_format: str = "iso"  # "iso" (a second CD-ROM), "floppy" or "vfat" (a disk)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Media:
        return cls(**data)


@dataclass(frozen=True)
class Connection:
    """The inventory's `hypervisor:` mapping, with credentials already resolved from the
    environment or a credentials file (never from the command line).

    `uri` is the driver's address (libvirt URI, https://vcenter, host:port…); `options`
    holds every other key of the mapping, for the driver to validate in check_options."""

    driver: str
    uri: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_tls: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)
    base_dir: str = "."  # the inventory's folder: relative paths in options resolve here

    def path(self, value: str) -> str:
        return os.path.normpath(os.path.join(self.base_dir, os.path.expanduser(value)))


class Driver(ABC):
    """One open connection to one hypervisor. See the module docstring for the flow."""

    NAME: ClassVar[str]  # registry name, as written in the inventory: "libvirt"
    SUMMARY: ClassVar[str] = ""  # one line for `vmtailor deploy --help`
    # the config media format this hypervisor attaches most easily (see Media)
    CONFIG_FORMAT: ClassVar[str] = "iso"
    # the keys a driver accepts (in `hypervisor:` and in VM entries) are declared in the
    # registry, hypervisors/__init__.py: its help must work without importing the SDK
    # whether wait_off sees the guest's power-off as it happens (events) or polls for it
    HAS_EVENTS: ClassVar[bool] = False
    # whether read_result can return the guest's serial console
    HAS_SERIAL_LOG: ClassVar[bool] = False
    # whether the customization boot ends (the VM stops) when the guest reboots, as it
    # does when it powers off: the initrd then reboots where it can't power off (no ACPI)
    REBOOT_STOPS: ClassVar[bool] = False
    # seconds between power_state() calls of the default wait_off
    poll: float = 2.0

    def __init__(self, connection: Connection):
        self.connection = connection

    # --- connection -------------------------------------------------------------------
    @classmethod
    def check_options(cls, connection: Connection) -> None:
        """Validate driver-specific options before anything connects; raise DriverError.
        Called once per inventory, in the main thread."""
        return

    @classmethod
    def check_vm_settings(cls, settings: Mapping[str, Any]) -> None:
        """Validate one VM entry's driver-specific keys; raise DriverError."""
        return

    @abstractmethod
    def connect(self) -> None:
        """Open the connection; ConnectError on a bad address or credentials."""

    def close(self) -> None:
        """Close the connection; never raises."""
        return

    def __enter__(self) -> Driver:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- power --------------------------------------------------------------------------
    @abstractmethod
    def power_state(self, vm: VM) -> PowerState:
        """VMNotFound when there is no such VM."""

    @abstractmethod
    def shutdown(self, vm: VM, timeout: float) -> None:
        """Ask the guest to shut down cleanly (ACPI) and wait until it is off; DriverError
        if it isn't within `timeout` seconds (the VM is then left running)."""

    @abstractmethod
    def power_off(self, vm: VM) -> None:
        """Hard power off. Only ever used on a VM that is running vmtailor's own initrd
        (after a timeout, or by --restore), never on a guest's own OS."""

    @abstractmethod
    def power_on(self, vm: VM) -> None:
        """Start the VM from its current (persistent) configuration."""

    def wait_off(self, vm: VM, timeout: float) -> bool:
        """Block until the VM is off; False when `timeout` seconds passed first.
        Default: power_state() every `poll` seconds; drivers with events override it."""
        deadline = time.monotonic() + timeout
        while True:
            if self.power_state(vm) == PowerState.OFF:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(self.poll, max(0.0, deadline - time.monotonic())))

    # --- configuration ------------------------------------------------------------------
    @abstractmethod
    def snapshot(self, vm: VM) -> dict[str, Any]:
        """Everything restore() needs to put back the boot order and media exactly, as a
        JSON-serialisable dict. Reads only: the VM is unchanged."""

    def upload(self, vm: VM, media: Media) -> Media:
        """Put the media where the hypervisor can reach them, and return their names
        there. Default: the hypervisor reads the host's local files."""
        return media

    @abstractmethod
    def attach(self, vm: VM, placed: Media, saved: Mapping[str, Any]) -> None:
        """Attach the ISO (and the config media) and make that CD first in the boot order.
        The VM is off; change its persistent configuration only."""

    def read_result(self, vm: VM, saved: Mapping[str, Any]) -> str | None:
        """The serial console text of the customization boot (it holds the result record);
        None where the hypervisor keeps no serial log."""
        return None

    def read_console(self, vm: VM, saved: Mapping[str, Any]) -> str | None:
        """The serial console text of the customization boot so far, while it runs —
        cheap, called every few seconds, and it must not end the capture read_result
        returns. None where it can't be read live: then only power-off ends the wait."""
        return None

    @abstractmethod
    def restore(self, vm: VM, saved: Mapping[str, Any]) -> None:
        """Detach vmtailor's media and put the boot order and media back exactly as in
        `saved`. Idempotent; works whether or not attach() ran or finished. The VM is off."""

    def discard(self, vm: VM, placed: Mapping[str, Any]) -> None:
        """Remove what upload() put on the hypervisor (`placed` is Media.to_dict()).
        Idempotent. Default: nothing was uploaded."""
        return
