"""Hypervisor drivers for `vmtailor deploy`: one module per hypervisor behind the one
interface in base.py, picked by name from the registry below.

A driver's module — and so its SDK — is imported only when an inventory names it, so that
vmtailor runs without any SDK installed; a missing SDK is one line with the command that
installs it. Each driver module exposes its Driver subclass as `DRIVER`."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .base import Driver, DriverError, SDKMissing


@dataclass(frozen=True)
class DriverInfo:
    name: str  # as written in an inventory's `hypervisor: {driver: …}`
    summary: str
    sdk: str | None  # the module the SDK provides; None when the driver needs none
    install: str  # how to get the SDK, shown when it is missing


DRIVERS: dict[str, DriverInfo] = {
    d.name: d
    for d in (
        DriverInfo(
            "libvirt",
            "KVM/QEMU (and Xen) through libvirt",
            "libvirt",
            "apt-get install python3-libvirt (or pip install libvirt-python)",
        ),
        DriverInfo(
            "qemu",
            "QEMU started by vmtailor, driven over QMP",
            "qemu.qmp",
            "pip install 'vmtailor[qemu]'",
        ),
        DriverInfo(
            "vsphere",
            "VMware vSphere / ESXi (pyVmomi)",
            "pyVmomi",
            "pip install 'vmtailor[vsphere]'",
        ),
        DriverInfo(
            "proxmox", "Proxmox VE (proxmoxer)", "proxmoxer", "pip install 'vmtailor[proxmox]'"
        ),
        DriverInfo(
            "xenserver",
            "XenServer / XCP-ng (XenAPI)",
            "XenAPI",
            "pip install 'vmtailor[xenserver]'",
        ),
        DriverInfo(
            "ovirt", "oVirt / RHV (ovirtsdk4)", "ovirtsdk4", "pip install 'vmtailor[ovirt]'"
        ),
        DriverInfo(
            "hyperv", "Hyper-V (PowerShell over WinRM)", "winrm", "pip install 'vmtailor[hyperv]'"
        ),
        DriverInfo("virtualbox", "VirtualBox (VBoxManage)", None, "install VirtualBox"),
    )
}


def lookup(name: str) -> DriverInfo:
    try:
        return DRIVERS[name]
    except KeyError:
        known = ", ".join(DRIVERS)
        raise DriverError(f"unknown hypervisor driver {name!r} (known: {known})") from None


def load(name: str) -> type[Driver]:
    """The Driver class registered as `name`, importing its SDK now."""
    info = lookup(name)
    if info.sdk:
        try:
            importlib.import_module(info.sdk)
        except ImportError:
            raise SDKMissing(
                f"the {name} driver needs the {info.sdk} module, which is not installed",
                hint=info.install,
            ) from None
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise DriverError(f"the {name} driver is not part of this vmtailor") from None
    return module.DRIVER
