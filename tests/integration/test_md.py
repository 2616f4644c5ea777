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
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import vmtailor
from tests.integration import md_guest
from tests.integration.md_guest import copy, superblocks

os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")

pytestmark = pytest.mark.xdist_group("md")


@pytest.fixture(scope="module")
def md_image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("md") / "md-guest.raw"
    md_guest.build(path)
    return path


def test_inspect_finds_root_and_srv_on_md(md_image):
    proc = vmtailor("inspect", "--disk", str(md_image), "--json")
    assert proc.returncode == 0, proc.stderr
    storage = json.loads(proc.stdout)["storage"]
    assert storage["root"] == "vmt-md/root"
    mounts = {m["target"]: m for m in storage["mounts"]}
    assert set(mounts) == {"/", "/srv"}
    assert (mounts["/srv"]["fstype"], mounts["/srv"]["device"]) == ("ext4", "md array vmtsrv")
    assert storage["warnings"] == []


def test_apply_and_revert_leave_the_arrays_clean_and_unsynced(md_image, tmp_path):
    image = copy(md_image, tmp_path / "guest.raw")
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

    one = copy(md_image, tmp_path / "one.raw")
    two = copy(md_image, tmp_path / "two.raw")
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
