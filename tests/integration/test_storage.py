"""Storage on real disks: each fixture guest disk (scripts/guest_disks) loop-attached on
the host, discovered with blkid, its root found and its fstab mounted under a temporary
/sysroot with the same code the initrd runs — and always unmounted and detached after,
even when it fails."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from guest_disks.host import dirty_xfs_log

from vmtailor.customizer.config import parse
from vmtailor.customizer.storage import discover
from vmtailor.customizer.storage.errors import StorageError
from vmtailor.customizer.storage.guest import find_guest, mount_guest
from vmtailor.customizer.storage.mount import Mounts
from vmtailor.customizer.storage.plan import plan_mounts
from vmtailor.initrd.main import run as run_stages
from vmtailor.initrd.stages import Context
from vmtailor.initrd.stages import customize as customize_stage
from vmtailor.initrd.stages import disks as disks_stage
from vmtailor.initrd.stages import mount as mount_stage

with open("/proc/filesystems") as _f:
    HOST_HAS_VFAT = "vfat" in _f.read()


def by_device(devices):
    return {d.path: d for d in devices}


def sources(mountinfo, sysroot):
    """{guest path: mount source} of what is mounted under sysroot."""
    return {p.removeprefix(str(sysroot)) or "/": s for p, s in mountinfo(sysroot)}


def mount_root_field(sysroot, target):
    """The mountinfo 'root' field: which subvolume (btrfs) a mount shows."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == os.path.join(str(sysroot), target.lstrip("/")).rstrip("/"):
                return fields[3]
    return None


def test_debian_by_uuid(guest_copy, attach, sysroot, mountinfo, loops):
    image = guest_copy("debian")
    with attach(image) as devices, Mounts() as mounts:
        loop = devices[0].path
        found = mount_guest(devices, str(sysroot), mounts)
        assert found.root.device.path == f"{loop}p4"
        expected = {"/": f"{loop}p4", "/boot": f"{loop}p3"}
        if HOST_HAS_VFAT:
            expected["/boot/efi"] = f"{loop}p2"
        else:  # nofail in the guest's fstab: a warning, the rest goes on
            assert any("/boot/efi (nofail) not mounted" in w for w in found.warnings)
        assert sources(mountinfo, sysroot) == expected
        assert (sysroot / "etc/os-release").exists()
        assert any(n.startswith("vmlinuz-") for n in os.listdir(sysroot / "boot"))
        assert [s.reason for s in found.plan.skipped] == ["tmpfs: not on a disk"]
    assert loops(image) == []


def test_one_blkid_run_names_each_device_as_one_run_each(guest_image, attach, tmp_path):
    """blkid_many probes every device in one process; each keeps its own keys, by the
    name it was asked under (a symlink too), and what blkid cannot name is {}."""
    link = tmp_path / "root-link"
    with attach(guest_image("debian"), readonly=True) as devices:
        paths = [d.path for d in devices]
        os.symlink(paths[-1], link)
        asked = [*paths, str(link), "/dev/vmtailor-no-such-device"]
        together = discover.blkid_many(asked)
        alone = {path: discover.blkid(path) for path in asked}
    assert list(together) == asked
    assert together == alone
    assert together[str(link)]["UUID"] == together[paths[-1]]["UUID"]
    assert together["/dev/vmtailor-no-such-device"] == {}
    assert len({props.get("PART_ENTRY_NUMBER") for props in together.values()}) >= 4


def test_a_device_blkid_cannot_read_hides_none_after_it(guest_image, attach):
    """blkid stops at the first device it cannot open (an empty CD drive; here an unbound
    loop device) and names none after it: blkid_many goes on past it."""
    with attach(guest_image("debian"), readonly=True) as devices:
        paths = [d.path for d in devices]
        unbound = subprocess.run(["losetup", "-f"], capture_output=True, text=True, check=True)
        free = unbound.stdout.strip()  # (another test may bind it meanwhile: no matter)
        alone = {path: discover.blkid(path) for path in paths}
        for asked in ([free, *paths], [paths[0], free, *paths[1:]], [*paths, free]):
            together = discover.blkid_many(asked)
            assert list(together) == asked
            assert {p: together[p] for p in paths} == alone, asked
    assert sum(1 for props in alone.values() if props.get("TYPE")) >= 3


def test_probe_takes_what_the_media_search_found_and_probes_the_rest(guest_image, attach):
    """The initrd's disks stage reuses the config stage's blkid run: a device in `known`
    is not probed again (its keys come back as given), one that is not is probed."""
    with attach(guest_image("debian"), readonly=True) as devices:
        disk = devices[0].path.removeprefix("/dev/")
        blocks = [b for b in discover.sys_block() if b.disk == disk]
        first, last = blocks[-2].path, blocks[-1].path
        known = {b.path: discover.blkid(b.path) for b in blocks[:-1]}
        known[first] = {**known[first], "LABEL": "from-the-media-search"}
        probed = {d.path: d for d in discover.probe(blocks, known=known)}
        fresh = discover.blkid(last)
    assert probed[first].label == "from-the-media-search"
    assert fresh["UUID"] and probed[last].uuid == fresh["UUID"]
    assert list(probed) == [b.path for b in blocks]


def test_el_lvm_xfs_root_and_var(guest_copy, attach, sysroot, mountinfo, loops):
    image = guest_copy("el-lvm")
    with attach(image) as devices, Mounts() as mounts:
        lvs = {(d.vg, d.lv): d.path for d in devices if d.vg}
        assert set(lvs) == {("vmt-el", "root"), ("vmt-el", "var"), ("vmt-el", "swap")}
        found = mount_guest(devices, str(sysroot), mounts)
        loop = devices[0].path
        assert sources(mountinfo, sysroot) == {
            "/": lvs[("vmt-el", "root")],
            "/boot": f"{loop}p1",
            "/var": lvs[("vmt-el", "var")],
        }
        assert [m.fstype for m in found.plan.mounts] == ["xfs", "ext4", "xfs"]
        assert [s.reason for s in found.plan.skipped] == ["swap"]
        assert (sysroot / "var/lib/dpkg/status").exists()  # on the var LV
    assert loops(image) == []


def test_btrfs_subvolumes(guest_copy, attach, sysroot, mountinfo, loops, btrfs_lock):
    image = guest_copy("btrfs")
    with attach(image) as devices, Mounts() as mounts:
        found = mount_guest(devices, str(sysroot), mounts)
        assert found.root.subvol == "@"  # not the read-only snapshot beside it
        assert [(m.target, m.options) for m in found.plan.mounts] == [
            ("/", ("subvol=@",)),
            ("/home", ("subvol=@home",)),
        ]
        assert mount_root_field(sysroot, "/") == "/@"
        assert mount_root_field(sysroot, "/home") == "/@home"
        assert (sysroot / "home/template/on-at-home").exists()
        assert {s.path for s in found.root.device.subvolumes} == {"@", "@home", "@snapshot-1"}
    assert loops(image) == []


def test_no_fstab_is_refused(guest_image, attach, sysroot, tmp_path, loops):
    image = guest_image("nofstab")
    with attach(image, readonly=True) as devices, Mounts() as mounts:
        with pytest.raises(StorageError, match="has /etc/os-release but no /etc/fstab"):
            mount_guest(devices, str(sysroot), mounts)
    assert loops(image) == []


def test_luks_root_is_refused(guest_image, attach, sysroot, loops):
    image = guest_image("luks")
    with attach(image, readonly=True) as devices, Mounts() as mounts:
        assert {d.fstype for d in devices} >= {"ext4", "crypto_LUKS"}
        with pytest.raises(
            StorageError, match=r"root is encrypted: /dev/loop\d+p2 is a LUKS volume"
        ):
            mount_guest(devices, str(sysroot), mounts)
    assert loops(image) == []


def test_two_clones_attached_at_once(guest_copy, attach, tmp_path, loops):
    """The clone trap for real: two copies of one image, same UUIDs everywhere."""
    one, two = guest_copy("debian"), tmp_path / "second.raw"
    subprocess.run(["cp", "--sparse=always", str(one), str(two)], check=True)
    with (
        attach(one, readonly=True, group="one") as d1,
        attach(two, readonly=True, group="two") as d2,
    ):
        assert by_device(d1)[f"{d1[0].path}p4"].uuid == by_device(d2)[f"{d2[0].path}p4"].uuid
        for own in (d1, d2):
            found = find_guest(own, str(tmp_path))
            # planned against *every* device attached: still only its own disks
            plan = plan_mounts(found.root.fstab, d1 + d2, found.root.location())
            assert {m.device.path.rsplit("p", 1)[0] for m in plan.mounts} == {own[0].path}
        # both as one guest: refused, not guessed
        ungrouped = [d.with_(group="") for d in d1 + d2]
        with pytest.raises(StorageError, match="two guest roots"):
            find_guest(ungrouped, str(tmp_path))
    assert loops(one) == [] and loops(two) == []


def test_remapped_kernel_names(guest_copy, attach, sysroot, mountinfo):
    """A template installed on sda, its clone attached as (here) a loop disk."""
    image = guest_copy("debian")
    with attach(image) as devices:
        root_part = f"{devices[0].path}p4"
        subprocess.run(["mount", root_part, str(sysroot)], check=True)
        try:
            (sysroot / "etc/fstab").write_text(
                "/dev/sda4 / ext4 defaults 0 1\n/dev/sda3 /boot ext4 defaults 0 2\n"
            )
        finally:
            subprocess.run(["umount", str(sysroot)], check=True)
        with Mounts() as mounts:
            mount_guest(devices, str(sysroot), mounts)
            assert sources(mountinfo, sysroot) == {"/": root_part, "/boot": f"{devices[0].path}p3"}


def test_unclean_ext4_is_refused_but_readable(guest_copy, attach, sysroot, mountinfo):
    image = guest_copy("debian")
    with attach(image) as devices:
        root_part = f"{devices[0].path}p4"
        subprocess.run(
            ["debugfs", "-w", "-R", "feature needs_recovery", root_part],
            check=True,
            capture_output=True,
        )
        with Mounts() as mounts, pytest.raises(StorageError) as exc:
            mount_guest(devices, str(sysroot), mounts)
        assert (
            f"{root_part} (ext4, the guest's /) was not cleanly unmounted: its ext4 journal needs recovery"
            in str(exc.value)
        )
        assert mountinfo(sysroot) == []
        with Mounts() as mounts:  # inspecting it read-only replays nothing
            mount_guest(devices, str(sysroot), mounts, readonly=True)
            assert (sysroot / "etc/fstab").exists()


def test_dirty_xfs_log_is_refused(guest_copy, attach, sysroot):
    image = guest_copy("el-lvm")
    with attach(image) as devices:
        var = next(d.path for d in devices if d.lv == "var")
        dirty_xfs_log(var)
        with (
            Mounts() as mounts,
            pytest.raises(
                StorageError,
                match="the guest's /var\\) was not cleanly unmounted: its XFS log is dirty",
            ),
        ):
            mount_guest(devices, str(sysroot), mounts)


def test_a_failure_halfway_unmounts_everything(guest_copy, attach, sysroot, mountinfo):
    image = guest_copy("debian")
    with attach(image) as devices:
        boot = f"{devices[0].path}p3"
        subprocess.run(["mount", boot, str(sysroot)], check=True)
        try:  # /boot/efi, the third mount, is now a file in the guest: / and /boot mount first
            os.rmdir(sysroot / "efi")
            (sysroot / "efi").write_text("not a directory")
        finally:
            subprocess.run(["umount", str(sysroot)], check=True)
        mounts = Mounts()
        try:
            with pytest.raises(
                StorageError,
                match="cannot mount the guest's /boot/efi: /boot/efi is not a directory",
            ):
                mount_guest(devices, str(sysroot), mounts)
            assert len(mountinfo(sysroot)) == 2
        finally:
            assert mounts.close() == []
        assert mountinfo(sysroot) == []


def test_initrd_stages_on_a_loop_disk(guest_copy, attach, sysroot, tmp_path, mountinfo):
    """disks → mount → customize → report → umount, as the initrd runs them (the config
    stage aside: the host cannot mount the config media's vfat or ISO 9660)."""
    image = guest_copy("debian")
    config = parse({"hostname": "web01", "files": [{"path": "/etc/motd", "content": "hi\n"}]})
    with attach(image) as devices:
        ctx = Context(run_dir=str(tmp_path / "run"), sysroot=str(sysroot), disks=[devices[0].path])
        ctx.config = config
        stages = (
            ("disks", disks_stage.stage),
            ("mount", mount_stage.stage),
            ("customize", customize_stage.stage),
        )
        state = run_stages(ctx, stages)
        assert state.status == "ok", state.reason
        assert mountinfo(sysroot) == []
        assert state.guest["id"] == "debian"
        assert {"action": "modify", "path": "/etc/hostname"} in state.changes
        assert [m["target"] for m in state.mounts][:2] == ["/", "/boot"]
        assert list(state.timings) == ["disks", "mount", "customize", "report", "umount", "total"]
        subprocess.run(["mount", "-o", "ro", f"{devices[0].path}p4", str(sysroot)], check=True)
        try:
            assert (sysroot / "etc/hostname").read_text() == "web01\n"
            record = json.loads((sysroot / "var/lib/vmtailor/result.json").read_text())
        finally:
            subprocess.run(["umount", str(sysroot)], check=True)
        assert record["status"] == "ok" and record["changes"] == state.changes
        # a second run finds it done
        ctx2 = Context(
            run_dir=str(tmp_path / "run2"), sysroot=str(sysroot), disks=[devices[0].path]
        )
        ctx2.config = config
        again = run_stages(ctx2, stages)
        assert again.status == "ok" and again.already_applied and again.changes == []


def test_initrd_stages_report_a_refusal_and_unmount(guest_image, attach, sysroot, tmp_path):
    image = guest_image("nofstab")
    with attach(image, readonly=True) as devices:
        ctx = Context(run_dir=str(tmp_path / "run"), sysroot=str(sysroot), disks=[devices[0].path])
        stages = (("disks", disks_stage.stage), ("mount", mount_stage.stage))
        state = run_stages(ctx, stages)
    assert state.status == "error" and state.failed_stage == "disks"
    assert "has /etc/os-release but no /etc/fstab" in state.reason
