"""md RAID guests on real arrays: a guest whose root is an LV on an md RAID1 and whose
/srv is ext4 right on a second RAID1 (named in its fstab by the superblock's name),
built in a libguestfs appliance (this host's kernel has no md driver), then opened with
`vmtailor inspect/apply/revert --disk` — and its members' superblocks read on the host
with mdadm --examine before and after: nothing resynced, every array clean, every
member of an array at the same event count.

Two copies of the image in one appliance carry the same array UUIDs: the appliance's own
`mdadm -As` at launch builds one array from one copy only; each guest must still get its
own arrays, made of its own disk's partitions."""

from __future__ import annotations

import json
import os
import subprocess
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.conftest import vmtailor
from vmtailor.customizer.storage import md

os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")

pytestmark = pytest.mark.xdist_group("md")

OS_RELEASE = 'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n'
FSTAB = """\
/dev/mapper/vmt--md-root  /     ext4  defaults  0 1
/dev/md/vmtsrv            /srv  ext4  defaults  0 2
"""


def _build(path: Path) -> None:
    """One disk: partitions 1+2 are RAID1 "vmtroot" (LVM vmt-md/root on it), 3+4 RAID1
    "vmtsrv" (ext4 on the array itself)."""
    import guestfs

    g = guestfs.GuestFS(python_return_dict=True)
    g.disk_create(str(path), "raw", 320 * 1024 * 1024)
    g.add_drive_opts(str(path), format="raw")
    g.launch()
    try:
        g.part_init("/dev/sda", "mbr")
        g.part_add("/dev/sda", "p", 2048, 264191)
        g.part_add("/dev/sda", "p", 264192, 526335)
        g.part_add("/dev/sda", "e", 526336, -1)
        g.part_add("/dev/sda", "l", 528384, 585727)
        g.part_add("/dev/sda", "l", 587776, 645119)
        parts = ["/dev/sda1", "/dev/sda2", "/dev/sda5", "/dev/sda6"]
        for part in parts:
            g.part_set_mbr_id("/dev/sda", int(part[-1]), 0xFD)
        g.md_create("vmtroot", parts[:2], level="raid1")
        g.md_create("vmtsrv", parts[2:], level="raid1")
        g.pvcreate("/dev/md/vmtroot")
        g.vgcreate("vmt-md", ["/dev/md/vmtroot"])
        g.lvcreate("root", "vmt-md", 96)
        g.mkfs("ext4", "/dev/vmt-md/root")
        g.mkfs("ext4", "/dev/md/vmtsrv")
        g.mount("/dev/vmt-md/root", "/")
        for folder in ("/etc/mdadm", "/srv", "/root", "/var/lib"):
            g.mkdir_p(folder)
        g.write("/etc/os-release", OS_RELEASE)
        g.write("/etc/fstab", FSTAB)
        g.write("/etc/hostname", "template\n")
        g.write("/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 template\n")
        scan = g.debug("sh", ["mdadm --examine --scan"])
        g.write("/etc/mdadm/mdadm.conf", scan)
        g.mount("/dev/md/vmtsrv", "/srv")
        g.write("/srv/on-the-srv-array", "srv\n")
        g.umount_all()
        g.vg_activate_all(False)
        for array in g.list_md_devices():
            g.md_stop(array)
        g.shutdown()
    finally:
        g.close()


@pytest.fixture(scope="module")
def md_image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("md") / "md-guest.raw"
    _build(path)
    return path


def _copy(src: Path, dest: Path) -> Path:
    subprocess.run(["cp", "--sparse=always", str(src), str(dest)], check=True)
    return dest


@contextmanager
def _partitions(image: Path):
    """The image loop-attached read-only on the host with its partitions (partx: losetup
    -P makes none here); always detached."""
    loop = subprocess.run(["losetup", "-f", "--show", "-r", str(image)], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    try:
        subprocess.run(["partx", "-a", loop], check=False, capture_output=True)
        for _ in range(50):
            if os.path.exists(f"{loop}p6"):
                break
            time.sleep(0.1)
        yield loop
    finally:
        subprocess.run(["partx", "-d", loop], check=False, capture_output=True)
        subprocess.run(["losetup", "-d", loop], check=False)


def superblocks(image: Path) -> dict[int, md.Member]:
    """{partition number: its md superblock}, read by the host's mdadm."""
    with _partitions(image) as loop:
        paths = [f"{loop}p{n}" for n in (1, 2, 5, 6)]
        out = subprocess.run(["mdadm", "--examine", *paths], capture_output=True, text=True)
    return {int(m.path.rpartition("p")[2]): m for m in md.parse_examine(out.stdout)}


def test_inspect_finds_root_and_srv_on_md(md_image):
    proc = vmtailor("inspect", "--disk", str(md_image), "--json")
    assert proc.returncode == 0, proc.stderr
    storage = json.loads(proc.stdout)["storage"]
    assert storage["root"] == "vmt-md/root"
    mounts = {m["target"]: m for m in storage["mounts"]}
    assert set(mounts) == {"/", "/srv"}
    assert mounts["/srv"]["fstype"] == "ext4"
    assert storage["warnings"] == []


def test_apply_and_revert_leave_the_arrays_clean_and_unsynced(md_image, tmp_path):
    image = _copy(md_image, tmp_path / "guest.raw")
    before = superblocks(image)
    assert sorted(before) == [1, 2, 5, 6]
    config = tmp_path / "c.yaml"
    config.write_text("hostname: md01\nfiles:\n  - {path: /srv/added, content: hi}\n")
    t0 = time.monotonic()
    proc = vmtailor("apply", str(config), "--disk", str(image))
    assert proc.returncode == 0, proc.stderr
    applied = time.monotonic() - t0
    middle = superblocks(image)
    proc = vmtailor("revert", "--disk", str(image))
    assert proc.returncode == 0, proc.stderr
    after = superblocks(image)
    for sb in (middle, after):
        for a, b in ((1, 2), (5, 6)):
            assert sb[a].uuid == before[a].uuid == sb[b].uuid
            assert sb[a].state == sb[b].state == "clean", (a, sb)
            assert sb[a].events == sb[b].events, (a, sb)  # no member left behind
    # the arrays were written (apply changed files on both), by whole event steps only
    assert int(after[1].events) > int(before[1].events)
    assert int(after[5].events) > int(before[5].events)
    print(f"apply --disk on the md guest: {applied:.1f} s")


def test_two_clones_in_one_appliance_each_get_their_own_arrays(md_image, tmp_path):
    from vmtailor.offline.appliance import Appliance, Drive, GuestSpec

    one = _copy(md_image, tmp_path / "one.raw")
    two = _copy(md_image, tmp_path / "two.raw")
    specs = [
        GuestSpec("one", (Drive(str(one), "raw"),)),
        GuestSpec("two", (Drive(str(two), "raw"),)),
    ]
    seen = {}
    with ExitStack() as stack:
        app = stack.enter_context(Appliance(specs, readonly=True))
        for name in ("two", "one"):  # the one the appliance's own scan took, first
            with app.open(name) as guest:
                arrays = [d for d in guest.found.devices if d.array]
                disk = guest.found.root.device.parents  # the root LV's PV: an array
                own = {d.path for d in guest.found.devices if d.fstype == "linux_raid_member"}
                assert {a.array for a in arrays} == {"vmtroot", "vmtsrv"}
                for array in arrays:
                    assert set(array.parents) <= own, (name, array)
                assert disk and set(disk) <= {a.path for a in arrays}
                assert guest.root.read_bytes("/srv/on-the-srv-array") == b"srv\n"
                seen[name] = {a.array: a.parents for a in arrays}
    assert seen["one"] != seen["two"]  # different disks' partitions
