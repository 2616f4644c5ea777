"""Boot a VM under QEMU (TCG: no nested KVM here) and collect what it said.

    from tests.e2e.qemu import boot
    vm = boot(iso, firmware="bios", disks=[disk_img], cdroms=[config_iso], timeout=300)
    vm.powered_off   # True when the guest powered itself off before the timeout
    vm.result        # the JSON record between the VMTAILOR RESULT markers, or None
    vm.log           # the whole serial console
    vm.seconds       # wall time from QEMU start to exit

The ISO is the first boot device (bootindex 0) on an IDE CD drive of the default `pc`
machine; extra `disks` are raw or qcow2 images on virtio-blk (or `disk_bus="ide"`/"scsi"),
`cdroms` more IDE CD drives, `floppy` a 1.44 MB image in drive A, `nics` virtio NICs
with those MACs on QEMU's user network (restricted: nothing outside is reachable). BIOS is QEMU's default
SeaBIOS; UEFI is OVMF (Debian's ovmf package), started from a scratch copy of its
variables. `-no-reboot` makes a reboot or a kernel panic end QEMU as well: `powered_off`
tells them apart only by the result record, so check that too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

from vmtailor.initrd import result

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"


@dataclass
class Boot:
    log: str
    result: dict | None
    powered_off: bool
    seconds: float
    returncode: int | None


def parse_result(log: str) -> dict | None:
    """The last result record on the console (vmtailor.initrd.result's format), or None."""
    try:
        return result.parse_result(log)
    except result.NoResult:
        return None


def command(
    iso: str | None,
    serial_log: str,
    *,
    firmware: str = "bios",
    memory: int = 512,
    disks: list[str] = (),
    disk_bus: str = "virtio",
    cdroms: list[str] = (),
    floppy: str | None = None,
    kernel: str | None = None,
    initrd: str | None = None,
    append: str | None = None,
    vars_file: str | None = None,
    nics: list[str] = (),
) -> list[str]:
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-m", str(memory), "-nographic",
            "-serial", f"file:{serial_log}", "-monitor", "none", "-no-reboot"]  # fmt: skip
    # user-mode networking, nothing reachable: the NIC is there for the guest to configure
    for mac in nics:
        argv += ["-nic", f"user,model=virtio-net-pci,mac={mac},restrict=on"]
    if not nics:
        argv += ["-nic", "none"]
    if firmware == "uefi":
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}"]  # fmt: skip
    elif firmware != "bios":
        raise ValueError(f"firmware {firmware!r}: bios or uefi")
    if kernel:
        argv += ["-kernel", kernel, "-initrd", initrd, "-append", append or ""]
    # IDE has two buses of two: the ISO is the primary master, extra CDs follow it
    ide = 0
    if iso:
        argv += ["-drive", f"file={iso},media=cdrom,if=none,id=cd0,readonly=on",
                 "-device", "ide-cd,drive=cd0,bus=ide.0,unit=0,bootindex=0"]  # fmt: skip
        ide = 1
    for i, cd in enumerate(cdroms):
        bus, unit = divmod(ide, 2)
        argv += ["-drive", f"file={cd},media=cdrom,if=none,id=xcd{i},readonly=on",
                 "-device", f"ide-cd,drive=xcd{i},bus=ide.{bus},unit={unit}"]  # fmt: skip
        ide += 1
    if disk_bus == "scsi" and disks:
        argv += ["-device", "virtio-scsi-pci,id=scsi0"]
    for i, disk in enumerate(disks):
        fmt = "qcow2" if disk.endswith(".qcow2") else "raw"
        argv += ["-drive", f"file={disk},format={fmt},if=none,id=hd{i},cache=unsafe"]
        if disk_bus == "virtio":
            argv += ["-device", f"virtio-blk-pci,drive=hd{i}"]
        elif disk_bus == "scsi":
            argv += ["-device", f"scsi-hd,drive=hd{i},bus=scsi0.0"]
        else:
            bus, unit = divmod(ide, 2)
            argv += ["-device", f"ide-hd,drive=hd{i},bus=ide.{bus},unit={unit}"]
            ide += 1
    if floppy:
        argv += ["-drive", f"file={floppy},format=raw,if=floppy,index=0"]
    return argv


def boot(iso: str | None, *, timeout: float = 300, workdir: str | None = None, **options) -> Boot:
    """Boot and wait for QEMU to exit (power-off, reboot, panic) or `timeout` seconds
    (then it is killed and `powered_off` is False). `options` are command()'s."""
    tmp = tempfile.mkdtemp(prefix="vmtailor-qemu-", dir=workdir)
    try:
        serial_log = os.path.join(tmp, "serial.log")
        if options.get("firmware") == "uefi":
            options["vars_file"] = os.path.join(tmp, "OVMF_VARS.fd")
            shutil.copyfile(OVMF_VARS, options["vars_file"])
        argv = command(iso, serial_log, **options)
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)  # fmt: skip
        try:
            _, err = proc.communicate(timeout=timeout)
            powered_off = proc.returncode == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            powered_off = False
        seconds = time.monotonic() - started
        with open(serial_log, encoding="utf-8", errors="replace") as f:
            log = f.read()
        if proc.returncode not in (0, None, -9):
            log += f"\n[qemu exited {proc.returncode}: {err.decode(errors='replace')}]"
        return Boot(log, parse_result(log), powered_off, seconds, proc.returncode)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
