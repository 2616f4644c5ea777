"""initrd/coldplug.sh on a fake /sys, with a modprobe that records what it is asked and
makes the devices a real driver would reveal (a disk behind its controller): every new
modalias once, round after round, until two rounds in a row find nothing new; and a
later run carries on from what the first one saw."""

from __future__ import annotations

import os
import subprocess
import time

from tests.conftest import REPO

SCRIPT = REPO / "initrd/coldplug.sh"
# what "loading" a controller's driver makes appear: alias -> (device, its modalias)
REVEALS = {"pci:v00001AF4d00001001": ("virtio0", "virtio:d00000002v00001AF4")}


def _device(sys_dir, bus: str, name: str, alias: str) -> None:
    (sys_dir / "bus" / bus / "devices" / name).mkdir(parents=True)
    (sys_dir / "bus" / bus / "devices" / name / "modalias").write_text(alias + "\n")


def _run(tmp_path) -> list[list[str]]:
    log = tmp_path / "modprobe.log"
    log.unlink(missing_ok=True)
    lines = [f'echo "$*" >>{log}']
    for alias, (name, new) in REVEALS.items():
        lines.append(f'case " $* " in *" {alias} "*) mkdir -p {tmp_path}/sys/bus/virtio/'
                     f"devices/{name} && echo {new} >{tmp_path}/sys/bus/virtio/devices/"
                     f"{name}/modalias ;; esac")  # fmt: skip
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "bin/modprobe").write_text("#!/bin/sh\n" + "\n".join(lines) + "\n")
    os.chmod(tmp_path / "bin/modprobe", 0o755)
    env = {"PATH": f"{tmp_path}/bin:/usr/bin:/bin", "VMTAILOR_SYS": str(tmp_path / "sys"),
           "VMTAILOR_STATE": str(tmp_path / "state")}  # fmt: skip
    # dash, not busybox sh: busybox would run its own modprobe applet, not the fake
    subprocess.run(["dash", str(SCRIPT)], env=env, check=True, timeout=30)
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def test_rounds_until_nothing_new_then_a_later_run_carries_on(tmp_path):
    sys_dir = tmp_path / "sys"
    _device(sys_dir, "pci", "0000:00:04.0", "pci:v00001AF4d00001001")
    _device(sys_dir, "pci", "0000:00:01.1", "pci:v00008086d00007010")
    _device(sys_dir, "acpi", "PNP0A03:00", "acpi:PNP0A03:")
    (sys_dir / "bus/acpi/devices/LNXCPU:00").mkdir(parents=True)  # a device with no alias
    started = time.monotonic()
    calls = _run(tmp_path)
    assert calls == [
        # in the glob's order: bus, then device name
        ["-a", "-b", "-q", "acpi:PNP0A03:", "pci:v00008086d00007010", "pci:v00001AF4d00001001"],
        ["-a", "-b", "-q", "virtio:d00000002v00001AF4"],  # what the first round revealed
    ]
    assert 0.1 <= time.monotonic() - started < 10  # one pause, between the quiet rounds
    assert _run(tmp_path) == []  # everything seen already: nothing asked again
    _device(sys_dir, "scsi", "0:0:0:0", "scsi:t-0x05")
    assert _run(tmp_path) == [["-a", "-b", "-q", "scsi:t-0x05"]]
