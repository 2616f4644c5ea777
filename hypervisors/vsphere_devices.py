"""The vSphere driver's ReconfigVM specs: what attach adds and what restore takes back.

Kept apart from the connection code so the device rules read in one place: vmtailor only
ever *adds* CD-ROMs, a floppy and a serial port, and recognises its own by their absence
from the snapshot's device keys — a device the VM had before is never removed or changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import DriverError, Media

# placeholder keys for devices added in one spec (the server assigns the real ones)
ISO_KEY, CONFIG_KEY, SERIAL_KEY = -101, -102, -103


def _vim():
    from pyVmomi import vim

    return vim


def option(key: str, value: str):
    # an empty value is how vSphere deletes an extraConfig key
    return _vim().option.OptionValue(key=key, value=value)


def extra_config(obj) -> dict[str, str]:
    """extraConfig as a dict; the last entry of a key wins (vcsim appends on update)."""
    return {o.key: o.value for o in obj.config.extraConfig or []}


def boot_order_to_json(order) -> list[dict[str, Any]]:
    vim = _vim()
    boot = vim.vm.BootOptions
    out: list[dict[str, Any]] = []
    for entry in order:
        if isinstance(entry, boot.BootableCdromDevice):
            out.append({"type": "cdrom"})
        elif isinstance(entry, boot.BootableFloppyDevice):
            out.append({"type": "floppy"})
        elif isinstance(entry, boot.BootableDiskDevice):
            out.append({"type": "disk", "device_key": entry.deviceKey})
        elif isinstance(entry, boot.BootableEthernetDevice):
            out.append({"type": "ethernet", "device_key": entry.deviceKey})
        else:
            raise DriverError(f"unknown boot device type {type(entry).__name__}")
    return out


def boot_order_from_json(order: list[Mapping[str, Any]]) -> list:
    boot = _vim().vm.BootOptions
    make = {
        "cdrom": lambda e: boot.BootableCdromDevice(),
        "floppy": lambda e: boot.BootableFloppyDevice(),
        "disk": lambda e: boot.BootableDiskDevice(deviceKey=e["device_key"]),
        "ethernet": lambda e: boot.BootableEthernetDevice(deviceKey=e["device_key"]),
    }
    return [make[e["type"]](e) for e in order]


def _boot_options(obj, order: list[Mapping[str, Any]]):
    # send every boot option back as it is with only the order changed: vcsim replaces
    # bootOptions wholesale, vSphere merges, and both then agree
    options = obj.config.bootOptions
    options.bootOrder = boot_order_from_json(order)
    return options


def _free_ide_slots(devices) -> list[tuple[int, int]]:
    vim = _vim()
    used = {(d.controllerKey, d.unitNumber) for d in devices if d.controllerKey is not None}
    controllers = sorted(
        (d for d in devices if isinstance(d, vim.vm.device.VirtualIDEController)),
        key=lambda c: c.busNumber,
    )
    return [(c.key, unit) for c in controllers for unit in (0, 1) if (c.key, unit) not in used]


def _sio_key(devices) -> int | None:
    vim = _vim()
    sio = [d.key for d in devices if isinstance(d, vim.vm.device.VirtualSIOController)]
    return sio[0] if sio else None


def _connected():
    return _vim().vm.device.VirtualDevice.ConnectInfo(
        startConnected=True, connected=True, allowGuestControl=False
    )


def _add(device):
    spec = _vim().vm.device.VirtualDeviceSpec
    return spec(operation=spec.Operation.add, device=device)


def _ours(obj, saved: Mapping[str, Any]) -> list:
    """Removable-media devices the snapshot doesn't know: the ones vmtailor added."""
    vim = _vim()
    kinds = (
        vim.vm.device.VirtualCdrom,
        vim.vm.device.VirtualFloppy,
        vim.vm.device.VirtualSerialPort,
    )
    known = set(saved["device_keys"])
    return [d for d in obj.config.hardware.device if isinstance(d, kinds) and d.key not in known]


def _removals(obj, saved: Mapping[str, Any]) -> list:
    spec = _vim().vm.device.VirtualDeviceSpec
    return [spec(operation=spec.Operation.remove, device=d) for d in _ours(obj, saved)]


def attach_spec(obj, placed: Media, saved: Mapping[str, Any]):
    """Add the ISO CD-ROM (and the config CD-ROM or floppy, and a serial log port when the
    VM has no serial port), CD first in the boot order. Devices left by an earlier,
    unrestored run are removed in the same spec, so attach never stacks duplicates."""
    vim = _vim()
    dev = vim.vm.device
    devices = obj.config.hardware.device
    changes = _removals(obj, saved)
    leftover = {c.device.key for c in changes}
    devices = [d for d in devices if d.key not in leftover]
    slots = _free_ide_slots(devices)
    need = 2 if placed.config_format == "iso" else 1
    if len(slots) < need:
        raise DriverError(
            f"{obj.name}: needs {need} free IDE slot(s) for CD-ROMs, has {len(slots)}"
        )

    def cdrom(key: int, slot: tuple[int, int], path: str):
        backing = dev.VirtualCdrom.IsoBackingInfo(fileName=path)
        return dev.VirtualCdrom(
            key=key,
            controllerKey=slot[0],
            unitNumber=slot[1],
            backing=backing,
            connectable=_connected(),
        )

    # the lowest free slot: "first CD-ROM with bootable media" must be ours
    changes.append(_add(cdrom(ISO_KEY, slots[0], placed.iso)))
    if placed.config_format == "iso":
        changes.append(_add(cdrom(CONFIG_KEY, slots[1], placed.config)))
    else:
        floppy = dev.VirtualFloppy(
            key=CONFIG_KEY,
            controllerKey=_sio_key(devices),
            backing=dev.VirtualFloppy.ImageBackingInfo(fileName=placed.config),
            connectable=_connected(),
        )
        changes.append(_add(floppy))
    if saved.get("serial_added"):
        port = dev.VirtualSerialPort(
            key=SERIAL_KEY,
            controllerKey=_sio_key(devices),
            yieldOnPoll=True,
            backing=dev.VirtualSerialPort.FileBackingInfo(fileName=saved["serial_log"]),
            connectable=_connected(),
        )
        changes.append(_add(port))

    order = [{"type": "cdrom"}] + [e for e in saved["boot_order"] if e["type"] != "cdrom"]
    if len(order) == 1:  # no order was set: after the CD, the disks as the BIOS lists them
        disks = [d for d in devices if isinstance(d, dev.VirtualDisk)]
        order += [{"type": "disk", "device_key": d.key} for d in disks]
    return vim.vm.ConfigSpec(deviceChange=changes, bootOptions=_boot_options(obj, order))


def restore_spec(obj, saved: Mapping[str, Any], saved_key: str):
    """The spec that puts the VM back as `saved` says, or None when it already is."""
    vim = _vim()
    spec = vim.vm.ConfigSpec()
    changed = False
    removals = _removals(obj, saved)
    if removals:
        spec.deviceChange, changed = removals, True
    current = boot_order_to_json(obj.config.bootOptions.bootOrder or [])
    if current != saved["boot_order"]:
        spec.bootOptions, changed = _boot_options(obj, saved["boot_order"]), True
    if extra_config(obj).get(saved_key):
        spec.extraConfig, changed = [option(saved_key, "")], True
    return spec if changed else None
