"""The whole path, for real: each fixture guest disk (scripts/guest_disks) boots the
customization ISO under QEMU TCG with its config media attached (a CD, a floppy or a
disk), powers itself off, and then the result record is read from the serial console and
the guest's files from its disk — mounted read-only on the host with the same storage
code. Then the Debian template, customized, boots on its own: its new hostname shows on
the serial console and the first-boot script runs on the first boot only.

Boots: debian, el-lvm and btrfs with SeaBIOS and with OVMF; the broken guests once each
(nofstab with SeaBIOS, luks with OVMF, el-lvm with a dirty XFS log with SeaBIOS); the
customized Debian twice more on its own."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import guest_disks
import pytest
from guest_disks.host import attached_guest, btrfs_lock, dirty_xfs_log

from tests.e2e.qemu import boot
from vmtailor.builder.media import write_media
from vmtailor.customizer.config import parse
from vmtailor.customizer.storage.guest import mount_guest
from vmtailor.customizer.storage.mount import Mounts
from vmtailor.initrd.result import BEGIN, END, NoResult, format_result, parse_result

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com"
ISSUE = b"Authorized use only (from the config media's files/)\n"
REPORT_SCRIPT = "/usr/local/sbin/vmt-e2e-report"
POWEROFF_UNIT = f"""\
[Unit]
Description=vmtailor e2e: report on the console and power off once booted
After=multi-user.target vmtailor-firstboot.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c '/bin/sh {REPORT_SCRIPT} >/dev/console 2>&1; systemctl --no-block poweroff'
"""
# What the guest says once booted: its host name and its IPv4 addresses
REPORT = """\
echo "VMT-BOOTED $(hostname)"
ip -4 -o addr show | sed "s/^/VMT-ADDR /"
"""
CONFIG = {
    "hostname": "{{ hostname }}",
    "domain": "example.com",
    "users": [{"name": "ops", "groups": ["adm"], "ssh_authorized_keys": [KEY]}],
    "files": [
        {"path": "/etc/motd", "content": "{{ hostname }}: managed by vmtailor\n"},
        {"path": "/etc/issue.net", "source": "files/issue.net"},
    ],
    "firstboot": [
        {
            "name": "hello",
            "priority": 10,
            "script": 'echo "VMT-FIRSTBOOT $(hostname)" >/dev/console\n',
        }
    ],
}


def self_poweroff(report: str = REPORT) -> list[dict]:
    """Files for the boots on its own: a unit that runs the shell script `report` once
    the guest is up, its output on the serial console, and powers the guest off."""
    return [
        {"path": REPORT_SCRIPT, "content": report},
        {"path": "/etc/systemd/system/vmt-e2e-poweroff.service", "content": POWEROFF_UNIT},
        {
            "path": "/etc/systemd/system/multi-user.target.wants/vmt-e2e-poweroff.service",
            "symlink": "/etc/systemd/system/vmt-e2e-poweroff.service",
        },
    ]


SELF_POWEROFF = self_poweroff()
# What each layout mounts, and what is not mounted, when customized
LAYOUTS = {
    "debian": ["/", "/boot", "/boot/efi"],
    "el-lvm": ["/", "/boot", "/var"],
    "btrfs": ["/", "/home"],
}


# The clone's NIC, matched by MAC whatever the kernel calls it, renamed and given the
# static address that the booted guest must then have
MAC = "52:54:00:e2:e0:02"
NETWORK = {
    "version": 2,
    "ethernets": {
        "lan0": {
            "match": {"macaddress": MAC},
            "set-name": "lan0",
            "addresses": ["192.0.2.10/24"],
            "routes": [{"to": "default", "via": "192.0.2.1"}],
        }
    },
}


def config(hostname: str, extra_files=(), network=None):
    data = json.loads(json.dumps(CONFIG))
    data["files"] += list(extra_files)
    if network:
        data["network"] = network
    return parse(data, {"hostname": hostname})


def customize(iso, name: str, firmware: str, media: str, tmp: Path, cfg):
    """A private copy of fixture `name`, booted with the ISO first and `cfg` on `media`
    (iso: a second CD; floppy; vfat: a second virtio disk). Returns (image, vm)."""
    image = tmp / f"{name}.raw"
    subprocess.run(["cp", "--sparse=always", str(guest_disks.image(name)), str(image)], check=True)
    out = tmp / f"config.{media}"
    write_media(cfg, lambda source: ISSUE, str(out), {"vfat": "vfat"}.get(media, media))
    disks, cdroms, floppy = [str(image)], [], None
    if media == "iso":
        cdroms = [str(out)]
    elif media == "floppy":
        floppy = str(out)
    else:
        disks.append(str(out))
    vm = boot(iso.iso, firmware=firmware, disks=disks, cdroms=cdroms, floppy=floppy, timeout=400)
    print(f"{name} {firmware} ({media} media): boot to power-off {vm.seconds:.1f} s")
    assert vm.powered_off, vm.log[-4000:]
    assert vm.result is not None, vm.log[-4000:]
    return image, vm


@contextlib.contextmanager
def guest_tree(image: Path):
    """The guest mounted read-only on the host as its fstab says (nothing replayed)."""
    sysroot = Path(tempfile.mkdtemp(prefix="vmt-e2e-"))
    lock = btrfs_lock() if "btrfs" in image.name else contextlib.nullcontext()
    try:
        with lock, attached_guest(image, readonly=True) as devices, Mounts() as mounts:
            found = mount_guest(devices, str(sysroot), mounts, readonly=True)
            yield sysroot, found, devices
    finally:
        sysroot.rmdir()


def subvolume_holds(device: str, path: str) -> bool:
    """Whether `path` (from the btrfs top level) exists."""
    top = tempfile.mkdtemp(prefix="vmt-e2e-top-")
    try:
        subprocess.run(["mount", "-o", "ro,subvolid=5", device, top], check=True)
        try:
            return Path(top, path).exists()
        finally:
            subprocess.run(["umount", top], check=True)
    finally:
        os.rmdir(top)


def check_customized(image: Path, vm, name: str, hostname: str) -> None:
    record = vm.result
    assert record["status"] == "ok", record
    assert record["guest"]["id"] == "debian"
    assert [m["target"] for m in record["mounts"]] == LAYOUTS[name]
    assert {"action": "modify", "path": "/etc/hostname"} in record["changes"]
    assert record["timings"]["total"] < 60
    # lvm2, xfs and btrfs come from the ISO, mounted for them; ext4 is in the initrd
    from_iso = re.search(r"from the ISO on /dev/sr\d: (.*)", vm.log)
    assert (from_iso is not None) == (name != "debian"), vm.log[-3000:]
    if from_iso:
        assert ("lvm2" if name == "el-lvm" else "btrfs") in from_iso[1].split(", ")
    with guest_tree(image) as (root, found, devices):
        assert (root / "etc/hostname").read_text() == f"{hostname}\n"
        assert (root / "etc/issue.net").read_bytes() == ISSUE
        assert (root / "etc/motd").read_text() == f"{hostname}: managed by vmtailor\n"
        assert KEY in (root / "home/ops/.ssh/authorized_keys").read_text()
        assert (root / "usr/lib/vmtailor/firstboot/scripts/10-hello").exists()
        in_guest = json.loads((root / "var/lib/vmtailor/result.json").read_text())
        assert in_guest["changes"] == record["changes"] and in_guest["status"] == "ok"
        assert (root / "var/lib/vmtailor/journal.json").exists()
        if name == "btrfs":  # each write went to the subvolume fstab mounts there
            fs = found.root.device.path
            assert subvolume_holds(fs, "@home/ops/.ssh/authorized_keys")
            assert not subvolume_holds(fs, "@/home/ops")
        if name == "el-lvm":  # /var/lib/vmtailor is on the var LV, not under the root LV
            lv_root = next(d.path for d in devices if d.lv == "root")
            top = tempfile.mkdtemp(prefix="vmt-e2e-root-")
            subprocess.run(["mount", "-o", "ro,norecovery,nouuid", lv_root, top], check=True)
            try:
                assert not Path(top, "var/lib/vmtailor").exists()
                assert Path(top, "etc/hostname").read_text() == f"{hostname}\n"
            finally:
                subprocess.run(["umount", top], check=True)
                os.rmdir(top)


CASES = [
    ("debian", "bios", "iso"),
    ("el-lvm", "bios", "vfat"),  # the media is a second disk: not a guest disk
    ("el-lvm", "uefi", "iso"),
    ("btrfs", "bios", "floppy"),
    ("btrfs", "uefi", "vfat"),
    # debian with OVMF: test_debian_boots_on_its_own_afterwards
]


@pytest.mark.parametrize("name, firmware, media", CASES, ids=["-".join(c) for c in CASES])
def test_customize(customization_iso, tmp_path, name, firmware, media):
    image, vm = customize(customization_iso, name, firmware, media, tmp_path, config("web01"))
    check_customized(image, vm, name, "web01")


BROKEN = [
    ("nofstab", "bios", "has /etc/os-release but no /etc/fstab"),
    ("luks", "uefi", "root is encrypted: /dev/vda2 is a LUKS volume"),
]


@pytest.mark.parametrize("name, firmware, reason", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_guest_fails_cleanly(customization_iso, tmp_path, name, firmware, reason):
    before = hashlib.sha256(guest_disks.image(name).read_bytes()).hexdigest()
    image, vm = customize(customization_iso, name, firmware, "iso", tmp_path, config("web01"))
    assert vm.result["status"] == "error"
    assert vm.result["failed_stage"] == "disks"
    assert reason in vm.result["reason"]
    assert vm.result["changes"] == [] and vm.result["mounts"] == []
    assert "[failed] disks: " in vm.log
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before  # not a byte written


def test_dirty_xfs_log_fails_cleanly(customization_iso, tmp_path):
    """A clone of a running EL template: /var's XFS log holds changes never replayed. The
    initrd tells (xfs_logprint) and refuses before anything is mounted read-write."""
    image = tmp_path / "el-lvm.raw"
    subprocess.run(
        ["cp", "--sparse=always", str(guest_disks.image("el-lvm")), str(image)], check=True
    )
    with attached_guest(image) as devices:
        dirty_xfs_log(next(d.path for d in devices if d.lv == "var"))
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    media = tmp_path / "config.iso"
    write_media(config("web01"), lambda source: ISSUE, str(media))
    vm = boot(customization_iso.iso, disks=[str(image)], cdroms=[str(media)], timeout=400)
    assert vm.powered_off and vm.result is not None, vm.log[-4000:]
    assert vm.result["status"] == "error", vm.result
    assert (
        "the guest's /var) was not cleanly unmounted: its XFS log is dirty" in vm.result["reason"]
    )
    assert vm.result["changes"] == []
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before  # not a byte written


def test_debian_boots_on_its_own_afterwards(customization_iso, tmp_path):
    """Customized with OVMF, then booted from its own disk twice (OVMF, then SeaBIOS):
    the host name took, the NIC has the config's static address, and the first-boot
    script ran on the first boot only."""
    cfg = config("web02", SELF_POWEROFF, NETWORK)
    image, vm = customize(customization_iso, "debian", "uefi", "floppy", tmp_path, cfg)
    check_customized(image, vm, "debian", "web02")

    first = boot(None, firmware="uefi", disks=[str(image)], nics=[MAC], timeout=600)
    print(f"debian uefi, own boot to power-off: {first.seconds:.1f} s")
    assert first.powered_off, first.log[-4000:]
    assert "Hostname set to <web02>." in first.log
    assert first.log.count("VMT-FIRSTBOOT web02") == 1, first.log[-4000:]
    assert "VMT-BOOTED web02" in first.log
    addresses = re.findall(r"VMT-ADDR \d+: (\S+)\s+inet (\S+)", first.log)
    assert ("lan0", "192.0.2.10/24") in addresses, first.log[-4000:]
    assert [a for a in addresses if a[0] != "lo"] == [("lan0", "192.0.2.10/24")]

    second = boot(None, firmware="bios", disks=[str(image)], timeout=600)
    print(f"debian bios, own boot to power-off: {second.seconds:.1f} s")
    assert second.powered_off, second.log[-4000:]
    assert "VMT-BOOTED web02" in second.log
    assert "VMT-FIRSTBOOT" not in second.log

    with guest_tree(image) as (root, _, _):
        log = (root / "var/log/vmtailor-firstboot.log").read_text()
        assert log.count("10-hello: started") == 1, log
        assert (root / "usr/lib/vmtailor/firstboot/scripts-done/10-hello").exists()
        assert not (
            root / "etc/systemd/system/multi-user.target.wants/vmtailor-firstboot.service"
        ).exists()


# -- the record on a console, as the host reads it -------------------------------------
def test_parse_result_takes_the_last_record_and_ignores_kernel_noise():
    first = format_result({"status": "error", "reason": "first try"})
    second = {"status": "ok", "changes": [{"action": "modify", "path": "/etc/hostname"}]}
    noisy = format_result(second).replace(
        "\n{", "\n[   12.345678] sd 2:0:0:0: [sdb] Attached SCSI disk\r\n{", 1
    )
    log = "SeaBIOS\r\n" + first + "[    3.1] random kernel line\n" + noisy.replace("\n", "\r\n")
    assert parse_result(log) == second


def test_parse_result_without_a_record():
    for log in ("", "booting...\n", f'{BEGIN}\n{{"status": \n'):
        with pytest.raises(NoResult):
            parse_result(log)
    with pytest.raises(NoResult, match="not readable JSON"):
        parse_result(f"{BEGIN}\nnot json\n{END}\n")
