"""Real libvirtd and stand-in guests for the hypervisor tests.

libvirtd is started here when it isn't running (CI starts from a fresh machine); domains are
type='qemu' because nested KVM doesn't work on these machines. QEMU runs as libvirt-qemu,
so every file a domain uses lives in a world-traversable scratch folder, not pytest's 0700
tmp_path.

The stand-in "customization ISO" is the Debian kernel + a busybox initrd that prints a
result record on the serial console and powers off (~5 s under TCG); a *data* ISO with no
boot record makes a guest that never powers off (SeaBIOS retries forever)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import libvirt

URI = "qemu:///system"
SOCKET = "/run/libvirt/libvirt-sock"
PREFIX = "vmtailor-test-"

STANDIN_INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /dev /sys
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
{{
echo
echo '-----BEGIN VMTAILOR RESULT-----'
echo '{{"status": "ok", "hostname": "standin", {run}"cmdline": "'"$(/bin/busybox cat /proc/cmdline)"'"}}'
echo '-----END VMTAILOR RESULT-----'
}} >/dev/ttyS0
/bin/busybox poweroff -f
"""


def _libvirtd_answers() -> bool:
    if not os.path.exists(SOCKET):
        return False
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(SOCKET)
            return True
        except OSError:
            return False


def ensure_libvirtd() -> None:
    """Start virtlogd and libvirtd by hand (no systemd here) unless libvirtd answers."""
    if _libvirtd_answers():
        return
    for daemon in ("virtlogd", "libvirtd"):
        if subprocess.run(["pgrep", "-x", daemon], capture_output=True).returncode != 0:
            subprocess.run([daemon, "-d"], check=True)
    deadline = time.monotonic() + 30
    while not _libvirtd_answers():
        if time.monotonic() > deadline:
            raise RuntimeError("libvirtd did not start within 30 s")
        time.sleep(0.2)


def scratch_dir() -> Path:
    """A folder QEMU (running as libvirt-qemu) can reach."""
    path = Path(tempfile.mkdtemp(prefix="vmtailor-test-", dir="/var/tmp"))
    path.chmod(0o755)
    return path


def kernel() -> str:
    found = sorted(glob.glob("/boot/vmlinuz-*"))
    if not found:
        raise RuntimeError("no /boot/vmlinuz-*: apt-get install linux-image-amd64")
    return found[-1]


def make_iso(dest: Path, tree: Path, label: str, boot: bool) -> Path:
    args = ["genisoimage", "-quiet", "-R", "-J", "-V", label, "-o", str(dest)]
    if boot:
        args += ["-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot",
                 "-boot-load-size", "4", "-boot-info-table"]  # fmt: skip
    subprocess.run([*args, str(tree)], check=True)
    dest.chmod(0o644)
    return dest


def _copy_libraries(binary: str, top: Path) -> None:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    for line in out.splitlines():
        path = line.split("=>")[-1].split("(")[0].strip()
        if path.startswith("/"):
            dest = top / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)
            if "ld-linux" in path:  # the interpreter, where the binary expects it
                lib64 = top / "lib64"
                lib64.mkdir(exist_ok=True)
                shutil.copy(path, lib64 / Path(path).name)


def standin_iso(dest: Path, run: str | None = None) -> Path:
    """A bootable ISO (isolinux → kernel + busybox initrd) that prints a result record on
    ttyS0 (carrying the run token `run`, if given) and powers off — or, on a domain
    without ACPI, halts."""
    work = Path(tempfile.mkdtemp())
    try:
        initrd = work / "initrd"
        (initrd / "bin").mkdir(parents=True)
        shutil.copy("/bin/busybox", initrd / "bin/busybox")
        _copy_libraries("/bin/busybox", initrd)  # Debian's busybox is dynamic, -static isn't
        (initrd / "init").write_text(STANDIN_INIT.format(run=f'"run": "{run}", ' if run else ""))
        (initrd / "init").chmod(0o755)
        iso = work / "iso"
        (iso / "isolinux").mkdir(parents=True)
        shutil.copy("/usr/lib/ISOLINUX/isolinux.bin", iso / "isolinux/")
        shutil.copy("/usr/lib/syslinux/modules/bios/ldlinux.c32", iso / "isolinux/")
        (iso / "isolinux/isolinux.cfg").write_text(
            "SERIAL 0 115200\nPROMPT 0\nTIMEOUT 0\nDEFAULT vmtailor\nLABEL vmtailor\n"
            "  KERNEL /vmlinuz\n  APPEND initrd=/initrd.img console=ttyS0 quiet panic=-1\n"
        )
        shutil.copy(kernel(), iso / "vmlinuz")
        files = subprocess.run(
            "find . | cpio -o -H newc --quiet", shell=True, cwd=initrd, capture_output=True,
            check=True,
        ).stdout  # fmt: skip
        (iso / "initrd.img").write_bytes(files)
        return make_iso(dest, iso, "VMTAILOR", boot=True)
    finally:
        shutil.rmtree(work)


def data_iso(dest: Path, label: str = "DATA") -> Path:
    """An ISO without a boot record: a guest 'booting' it never powers off."""
    work = Path(tempfile.mkdtemp())
    try:
        (work / "README").write_text("not bootable\n")
        return make_iso(dest, work, label, boot=False)
    finally:
        shutil.rmtree(work)


def empty_disk(dest: Path, size: str = "64M") -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(dest), size], check=True)
    dest.chmod(0o644)
    return dest


def domain_xml(
    name: str,
    disk: Path,
    *,
    style: str = "os",
    machine: str = "pc",
    extra: str = "",
    acpi: bool = True,
) -> str:
    """A small type='qemu' domain. style 'os': <os><boot dev='hd'/><boot dev='network'/>;
    'order': per-device <boot order> on the disk and the NIC; 'none': no boot element;
    'noserial': like 'none', and no serial port. acpi=False: a guest that can't power
    off (its kernel halts instead)."""
    os_boot = "<boot dev='hd'/><boot dev='network'/>" if style == "os" else ""
    disk_boot = "<boot order='1'/>" if style == "order" else ""
    nic_boot = "<boot order='2'/>" if style == "order" else ""
    serial = (
        ""
        if style == "noserial"
        else (
            "<serial type='pty'><target port='0'/></serial>"
            "<console type='pty'><target type='serial' port='0'/></console>"
        )
    )
    bus = "sata" if machine == "q35" else "ide"
    target = "sda" if machine == "q35" else "hda"
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='{machine}'>hvm</type>{os_boot}<bootmenu enable='no'/></os>
  <features>{"<acpi/>" if acpi else ""}</features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{disk}'/>
      <target dev='{target}' bus='{bus}'/>
      {disk_boot}
    </disk>
    <interface type='user'><model type='e1000'/>{nic_boot}</interface>
    {serial}
    <graphics type='vnc' port='-1' autoport='yes' passwd='s3cret'/>
    {extra}
  </devices>
</domain>"""


def connect() -> libvirt.virConnect:
    ensure_libvirtd()
    return libvirt.open(URI)


def undefine(conn: libvirt.virConnect, name: str) -> None:
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    if dom.isActive():
        dom.destroy()
    dom.undefine()


def inactive_xml(conn: libvirt.virConnect, name: str) -> str:
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    return conn.lookupByName(name).XMLDesc(flags)
