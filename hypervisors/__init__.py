"""Hypervisor drivers for `vmtailor deploy`: one module per hypervisor behind the one
interface in base.py, picked by name from the registry below.

A driver's module — and so its SDK — is imported only when an inventory names it, so that
vmtailor runs without any SDK installed; a missing SDK is one line with the command that
installs it. Each driver module exposes its Driver subclass as `DRIVER`."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .base import Driver, DriverError, SDKMissing
from .keys import COMMON_KEYS, VM_COMMON_KEYS, Key, names


@dataclass(frozen=True)
class DriverInfo:
    """Everything about one driver that is known without importing it (and its SDK)."""

    name: str  # as written in an inventory's `hypervisor: {driver: …}`
    summary: str
    sdk: str | None  # the module the SDK provides; None when the driver needs none
    install: str  # how to get the SDK, shown when it is missing
    uri: str | None  # what `uri:` is for this driver; None: not used
    # the driver's own keys in `hypervisor:` and in each VM entry: the loader accepts
    # exactly these (plus keys.COMMON_KEYS), --help-driver and the README list them
    keys: tuple[Key, ...] = ()
    vm_keys: tuple[Key, ...] = ()
    example: str = ""  # an inventory using this driver, shown by --help-driver

    def accepted(self) -> list[str]:
        return names(COMMON_KEYS + self.keys)

    def accepted_vm(self) -> list[str]:
        return names(VM_COMMON_KEYS + self.vm_keys)


_POLL = Key("poll_interval", "seconds between power-state polls (2)")
_TAIL = """config: web.yaml
vms:
  - {name: web01, vars: {hostname: web01}}"""

DRIVERS: dict[str, DriverInfo] = {
    d.name: d
    for d in (
        DriverInfo(
            "libvirt",
            "KVM/QEMU (and Xen) through libvirt",
            "libvirt",
            "apt-get install python3-libvirt (or pip install libvirt-python)",
            "a libvirt URI (qemu:///system, the default; qemu+ssh://host/system)",
            keys=(
                Key(
                    "pool",
                    "a storage pool to upload the media into (remote URIs); "
                    "default: read where they are",
                ),
                Key(
                    "serial",
                    "where the result is read: file (a log on this host) or "
                    "console (the console stream; the default for a remote URI)",
                ),
                Key("serial_log_dir", "where virtlogd writes serial logs (/var/log/libvirt/qemu)"),
            ),
            example='hypervisor: {driver: libvirt, uri: "qemu+ssh://root@kvm1/system", '
            "pool: default}\n" + _TAIL,
        ),
        DriverInfo(
            "qemu",
            "QEMU started by vmtailor, driven over QMP",
            "qemu.qmp",
            "pip install 'vmtailor[qemu]'",
            None,
            keys=(
                Key("binary", "the QEMU program (qemu-system-x86_64)"),
                Key("run_dir", "QMP sockets, pid files and serial logs (/run/vmtailor/qemu)"),
            ),
            vm_keys=(Key("qemu", "the VM's QEMU arguments, without the binary", required=True),),
            example="""hypervisor: {driver: qemu}
config: web.yaml
vms:
  - name: web01
    vars: {hostname: web01}
    qemu: [-machine, q35, -m, "1024", -display, none,
           -drive, "file=web01.qcow2,if=virtio,format=qcow2"]""",
        ),
        DriverInfo(
            "vsphere",
            "VMware vSphere / ESXi (pyVmomi)",
            "pyVmomi",
            "pip install 'vmtailor[vsphere]'",
            "the vCenter or ESXi host (https://vcenter.example.com)",
            keys=(
                Key("datastore", "the datastore for the media (default: the VM's own)"),
                Key("folder", "the datastore folder for the media (vmtailor)"),
            ),
            example='hypervisor: {driver: vsphere, uri: "https://vcenter.example.com",\n'
            "             username: administrator@vsphere.local, password_env: VC_PASSWORD,\n"
            "             datastore: datastore1}\n" + _TAIL,
        ),
        DriverInfo(
            "proxmox",
            "Proxmox VE (proxmoxer)",
            "proxmoxer",
            "pip install 'vmtailor[proxmox]'",
            "the Proxmox VE API (https://pve.example.com:8006)",
            keys=(
                Key("node", "not needed: each VM's node is looked up in the cluster"),
                Key("storage", "an ISO storage of that node for the media (local)"),
                Key("token_name", "log in with an API token (its secret as the password)"),
                _POLL,
            ),
            vm_keys=(Key("vmid", "the VM's id, when its name is not unique"),),
            example='hypervisor: {driver: proxmox, uri: "https://pve.example.com:8006",\n'
            "             username: root@pam, token_name: vmtailor, password_env: PVE_TOKEN}\n"
            + _TAIL,
        ),
        DriverInfo(
            "xenserver",
            "XenServer / XCP-ng (XenAPI)",
            "XenAPI",
            "pip install 'vmtailor[xenserver]'",
            "the pool master (https://xen1.example.com)",
            keys=(Key("sr", "the SR (by name label) the media are imported into (ISOs)"),),
            example='hypervisor: {driver: xenserver, uri: "https://xen1.example.com",\n'
            "             username: root, password_env: XEN_PASSWORD, sr: ISOs}\n" + _TAIL,
        ),
        DriverInfo(
            "ovirt",
            "oVirt / RHV (ovirtsdk4)",
            "ovirtsdk4",
            "pip install 'vmtailor[ovirt]'",
            "the engine's API (https://engine.example.com/ovirt-engine/api)",
            keys=(
                Key("storage_domain", "the data domain the media are uploaded to", required=True),
                Key("ca_file", "the engine's CA certificate (relative: to the inventory)"),
                _POLL,
            ),
            example="hypervisor: {driver: ovirt, uri: "
            '"https://engine.example.com/ovirt-engine/api",\n'
            "             username: admin@internal, password_env: OVIRT_PASSWORD,\n"
            "             storage_domain: data1}\n" + _TAIL,
        ),
        DriverInfo(
            "hyperv",
            "Hyper-V (PowerShell over WinRM)",
            "winrm",
            "pip install 'vmtailor[hyperv]'",
            "the host's WinRM endpoint (https://hyperv1.example.com:5986/wsman)",
            keys=(
                Key("share_local", "the media share, as mounted on this host", required=True),
                Key(
                    "share_remote",
                    "the same share as the Hyper-V host sees it (\\\\fileserver\\vmtailor)",
                    required=True,
                ),
                Key("transport", "WinRM transport: ntlm (default), kerberos, credssp…"),
                _POLL,
            ),
            example="hypervisor: {driver: hyperv, uri: "
            '"https://hyperv1.example.com:5986/wsman",\n'
            "             username: 'CORP\\admin', password_env: HV_PASSWORD,\n"
            "             share_local: /mnt/vmtailor, share_remote: '\\\\files\\vmtailor'}\n"
            + _TAIL,
        ),
        DriverInfo(
            "virtualbox",
            "VirtualBox (VBoxManage)",
            None,
            "install VirtualBox",
            None,
            keys=(Key("vboxmanage", "the VBoxManage program (VBoxManage)"), _POLL),
            example="hypervisor: {driver: virtualbox}\n" + _TAIL,
        ),
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
