"""Pure edits of a libvirt domain's inactive XML: add vmtailor's CD-ROMs first in the boot
order, log the first serial port to a file, and make a power-off or a reboot stop the
domain (so that a guest without ACPI, which can't power off, ends the boot by rebooting).
No libvirt calls here, so it is tested without a daemon.

libvirt refuses `<os><boot dev=…>` together with per-device `<boot order=…>`, so a domain
that uses the former is converted to the latter for the customization boot: each legacy
boot device becomes the first device of that kind with the next order number. Nothing here
needs undoing piece by piece: restore redefines the domain from the XML saved before
attach, so the original comes back exactly."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .base import DriverError

ALIAS = "ua-vmtailor-"  # user aliases (libvirt ≥ 3.9) mark every device vmtailor adds
SERIAL_LOG_NAME = "vmtailor-serial-"

# <os><boot dev=…> → which device element stands for it
LEGACY_KINDS = {
    "hd": lambda el: el.tag == "disk" and el.get("device", "disk") in ("disk", "lun"),
    "cdrom": lambda el: el.tag == "disk" and el.get("device") == "cdrom",
    "fd": lambda el: el.tag == "disk" and el.get("device") == "floppy",
    "network": lambda el: el.tag == "interface",
}
# bus → (target name prefix, slots per controller, units per bus, how many names to try)
BUSES = {
    "ide": ("hd", 4, 2, 4),
    "sata": ("sd", 6, 6, 26),
    "scsi": ("sd", 7, 7, 26),
    "fdc": ("fd", 2, 2, 2),
}


def canonical(xml: str) -> str:
    """C14N with whitespace-only text dropped: equal for equal domains however printed."""
    return ET.canonicalize(xml, strip_text=True)


def is_modified(xml: str) -> bool:
    """Does this XML carry anything vmtailor adds during a deploy?"""
    return f"'{ALIAS}" in xml or f'"{ALIAS}' in xml or SERIAL_LOG_NAME in xml


@dataclass(frozen=True)
class SerialLog:
    path: str  # file on the hypervisor host
    existing: bool  # the domain's own log (kept), not one vmtailor adds
    appends: bool = False  # kept across starts; else emptied when the domain starts


def serial_log(xml: str, default_path: str) -> SerialLog:
    """Where the first serial port's output will be during the customization boot."""
    serial = ET.fromstring(xml).find("devices/serial")
    if serial is not None:
        log = serial.find("log")
        if log is not None and log.get("file"):
            return SerialLog(log.get("file"), True, log.get("append") == "on")
        source = serial.find("source")
        if serial.get("type") == "file" and source is not None and source.get("path"):
            return SerialLog(source.get("path"), True, source.get("append") == "on")
    return SerialLog(default_path, False)


def _disk_bus(root: ET.Element) -> str:
    """The bus vmtailor's CD-ROMs go on: q35's SATA, i440fx's (and Xen HVM's) IDE, else a
    virtio-scsi controller (arm, ppc, s390x machines have no IDE)."""
    os_type = root.find("os/type")
    machine = os_type.get("machine", "") if os_type is not None else ""
    arch = os_type.get("arch", "x86_64") if os_type is not None else "x86_64"
    if "q35" in machine:
        return "sata"
    if arch in ("x86_64", "i686"):
        return "ide"
    return "scsi"


def _free_target(devices: ET.Element, bus: str, skip: set[str]) -> tuple[str, tuple[int, ...]]:
    prefix, per_controller, per_bus, count = BUSES[bus]
    names = {t.get("dev") for t in devices.iter("target") if t.get("dev")} | skip
    used = set()
    for disk in devices.findall("disk"):
        target, address = disk.find("target"), disk.find("address")
        if target is not None and target.get("bus") == bus and address is not None:
            used.add(tuple(int(address.get(k, "0")) for k in ("controller", "bus", "unit")))
    for i in range(count):
        name = prefix + chr(ord("a") + i)
        slot = i % per_controller
        address = (i // per_controller, slot // per_bus, slot % per_bus)
        if name not in names and address not in used:
            return name, address
    raise DriverError(f"no free {bus} slot for vmtailor's media (all {count} in use)")


def _convert_legacy_boot(root: ET.Element, devices: ET.Element) -> None:
    os_el = root.find("os")
    legacy = [b.get("dev") for b in os_el.findall("boot")] if os_el is not None else []
    if legacy:
        for b in os_el.findall("boot"):
            os_el.remove(b)
        order = 2
        for dev in legacy:
            match = LEGACY_KINDS.get(dev)
            target = next((el for el in devices if match and match(el)), None)
            if target is not None and target.find("boot") is None:
                ET.SubElement(target, "boot", order=str(order))
                order += 1
        return
    for el in devices:
        boot = el.find("boot")
        if boot is not None and boot.get("order"):
            boot.set("order", str(int(boot.get("order")) + 1))


def _source(kind: str, location: str) -> tuple[str, dict[str, str]]:
    """`volume:POOL/NAME` (uploaded) or a path on the hypervisor host."""
    if location.startswith("volume:"):
        pool, _, volume = location[len("volume:") :].partition("/")
        return "volume", {"pool": pool, "volume": volume}
    return "file", {"file": location}


def _add_disk(devices, *, device, location, bus, target, alias, boot_order=None) -> None:
    source_type, source_attrs = _source(device, location)
    disk = ET.Element("disk", type=source_type, device=device)
    ET.SubElement(disk, "driver", name="qemu", type="raw")
    ET.SubElement(disk, "source", source_attrs)
    ET.SubElement(disk, "target", dev=target, bus=bus)
    if device in ("cdrom", "floppy"):
        ET.SubElement(disk, "readonly")
    if boot_order is not None:
        ET.SubElement(disk, "boot", order=str(boot_order))
    ET.SubElement(disk, "alias", name=ALIAS + alias)
    # libvirt wants disks before the other devices it lists; after the last disk is safe
    last = max((i for i, el in enumerate(devices) if el.tag == "disk"), default=-1)
    devices.insert(last + 1, disk)


def _ensure_scsi_controller(devices: ET.Element) -> None:
    if devices.find("controller[@type='scsi']") is None:
        ctl = ET.SubElement(devices, "controller", type="scsi", model="virtio-scsi")
        ET.SubElement(ctl, "alias", name=ALIAS + "scsi")


def _log_serial(devices: ET.Element, path: str) -> None:
    serial = devices.find("serial")
    if serial is None:
        # no serial port: add a null one whose output still goes to the log
        serial = ET.SubElement(devices, "serial", type="null")
        ET.SubElement(serial, "target", port="0")
    ET.SubElement(serial, "log", file=path, append="off")


def _console_serial(devices: ET.Element) -> None:
    """Console capture reads a pty serial port: add one when the domain has none."""
    if devices.find("serial") is None:
        serial = ET.SubElement(devices, "serial", type="pty")
        ET.SubElement(serial, "target", port="0")
        ET.SubElement(serial, "alias", name=ALIAS + "serial")


# the customization boot ends when the guest powers off or reboots: a domain set to restart
# on either would boot vmtailor's ISO again (and libvirt refuses on_reboot=destroy beside
# on_poweroff=restart)
LIFECYCLE = {"on_poweroff": "destroy", "on_reboot": "destroy"}


def _stop_on_reboot(root: ET.Element, devices: ET.Element) -> None:
    for tag, action in LIFECYCLE.items():
        el = root.find(tag)
        if el is None:
            el = ET.Element(tag)
            root.insert(list(root).index(devices), el)
        el.text = action


def customization_xml(
    xml: str, iso: str, config: str, config_format: str, log: SerialLog | None
) -> str:
    """The domain XML for the customization boot: the ISO as a CD-ROM first in the boot
    order, the config media beside it, the first serial port logged to `log` (None: read
    through the console stream instead, so make sure there is a serial port)."""
    root = ET.fromstring(xml)
    devices = root.find("devices")
    if devices is None:
        raise DriverError("domain XML has no <devices>")
    _convert_legacy_boot(root, devices)
    bus = _disk_bus(root)
    if bus == "scsi":
        _ensure_scsi_controller(devices)
    iso_target, _ = _free_target(devices, bus, set())
    _add_disk(devices, device="cdrom", location=iso, bus=bus, target=iso_target,
              alias="iso", boot_order=1)  # fmt: skip
    if config_format == "floppy":
        target, _ = _free_target(devices, "fdc", set())
        _add_disk(
            devices, device="floppy", location=config, bus="fdc", target=target, alias="config"
        )
    else:
        device = "cdrom" if config_format == "iso" else "disk"
        target, _ = _free_target(devices, bus, {iso_target})
        _add_disk(devices, device=device, location=config, bus=bus, target=target, alias="config")
    if log is None:
        _console_serial(devices)
    elif not log.existing:
        _log_serial(devices, log.path)
    _stop_on_reboot(root, devices)
    return ET.tostring(root, encoding="unicode")
