"""Two of virt-inspector's layouts (issue #23) customized for real from the ISO under QEMU
TCG: Debian with LVM on an md RAID1 (the array assembled by the ISO from the guest's
mdadm.conf, never resynced), and Debian with /usr, /var and /home on their own LVs and
/etc/os-release a link into /usr. The result record comes from the serial console; the
guest's files are read back afterwards through a read-only libguestfs handle that
mounts the known devices directly, not through vmtailor's own guest finding (this host
has neither md nor device-mapper)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import guest_disks
import pytest

from tests.e2e.qemu import boot
from tests.e2e.test_customize_boot import ISSUE, KEY, config
from vmtailor.builder.media import write_media

os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")

# layout -> (mount point -> device in an appliance with the image as its only disk)
DEVICES = {
    "md-raid": {"/": "/dev/vg_md/root", "/boot": "/dev/sda1"},
    "split-usr": {
        "/": "/dev/template-vg/root",
        "/boot": "/dev/sda1",
        "/usr": "/dev/template-vg/usr",
        "/var": "/dev/template-vg/var",
        "/home": "/dev/template-vg/home",
    },
}
# what the ISO must fetch from itself for each (the initrd holds ext4 alone)
# what the first mount of the ISO is announced for; the ISO is mounted once, so lvm2,
# needed after mdadm on md-raid, comes through the same mount without a second line
FROM_ISO = {"md-raid": {"mdadm"}, "split-usr": {"lvm2"}}


def read_back(image: Path, layout: str, paths: list[str]) -> tuple[dict, dict, list]:
    """({path: text or None} as the guest sees it; {path: [mount points of the
    filesystems holding it]}, each filesystem looked at alone, so that a write beneath
    a mount point shows; the md arrays' member states)."""
    import guestfs

    g = guestfs.GuestFS(python_return_dict=True)
    try:
        g.add_drive_opts(str(image), format="raw", readonly=True)
        g.launch()
        mounts = DEVICES[layout]
        held: dict[str, list[str]] = {p: [] for p in paths}
        for target, device in mounts.items():
            g.mount_ro(device, "/")
            for path in paths:
                inside = path if target == "/" else path.removeprefix(target)
                if (target == "/" or path.startswith(target + "/")) and g.exists(inside):
                    held[path].append(target)
            g.umount_all()
        for target in sorted(mounts, key=len):
            g.mount_ro(mounts[target], target)
        texts = {p: g.cat(p) if g.is_file(p, followsymlinks=True) else None for p in paths}
        members = [g.md_stat(md) for md in g.list_md_devices()]
        return texts, held, members
    finally:
        g.close()


def mounted_from(path: str, mounts) -> str:
    """The mount point whose filesystem holds `path` in the booted guest."""
    return max((t for t in mounts if t == "/" or path.startswith(t + "/")), key=len)


@pytest.mark.parametrize("layout", list(DEVICES))
def test_customize_from_the_iso(customization_iso, tmp_path, layout):
    image = tmp_path / f"{layout}.raw"
    subprocess.run(
        ["cp", "--sparse=always", str(guest_disks.image(layout)), str(image)], check=True
    )
    media = tmp_path / "config.iso"
    write_media(config("web01"), lambda source: ISSUE, str(media))
    vm = boot(customization_iso.iso, disks=[str(image)], cdroms=[str(media)], timeout=400)
    print(f"{layout}: boot to power-off {vm.seconds:.1f} s")
    assert vm.powered_off and vm.result is not None, vm.log[-4000:]
    record = vm.result
    assert record["status"] == "ok", (record.get("failed_stage"), record.get("reason"))
    assert record["guest"]["id"] == "debian"
    assert sorted(m["target"] for m in record["mounts"]) == sorted(DEVICES[layout])
    assert {"action": "modify", "path": "/etc/hostname"} in record["changes"]
    from_iso = re.search(r"from the ISO on /dev/sr\d: (.*)", vm.log)
    assert from_iso is not None, vm.log[-3000:]
    assert FROM_ISO[layout] <= set(from_iso[1].split(", ")), from_iso[0]

    paths = ["/etc/hostname", "/etc/issue.net", "/etc/motd", "/home/ops/.ssh/authorized_keys",
             "/var/lib/vmtailor/result.json", "/etc/os-release"]  # fmt: skip
    texts, held, members = read_back(image, layout, paths)
    assert texts["/etc/hostname"] == "web01\n"
    assert texts["/etc/issue.net"] == ISSUE.decode()
    assert texts["/etc/motd"] == "web01: managed by vmtailor\n"
    assert KEY in texts["/home/ops/.ssh/authorized_keys"]
    assert json.loads(texts["/var/lib/vmtailor/result.json"])["changes"] == record["changes"]
    assert "ID=debian" in texts["/etc/os-release"].splitlines()
    # each write in the filesystem the guest mounts there, none beneath a mount point
    assert held == {p: [mounted_from(p, DEVICES[layout])] for p in paths}
    if layout == "md-raid":
        # both halves still in the array: nothing failed or rebuilt it
        assert len(members) == 1 and len(members[0]) == 2, members
        assert all(m["mdstat_flags"] == "" for m in members[0]), members
