"""A btrfs guest whose fstab mounts a /home subvolume the root subvolume has no folder
for: apply makes /home (journaled) and the users' files land in the /home subvolume;
revert leaves both subvolumes as they were — content, mode, owner and times, to the
nanosecond — with no /home in the root subvolume again. One appliance launch: the guest is
built in it, then opened by vmtailor's own Appliance twice (apply, revert) and read back
through the raw handle, mounted noatime so the reading moves no times."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")

from vmtailor.customizer import config, engine
from vmtailor.customizer.mountpoints import MARKER
from vmtailor.customizer.storage.guest import mount_guest
from vmtailor.customizer.storage.mount import Mounts
from vmtailor.offline.appliance import Appliance, Drive, GuestSpec

CONFIG = {
    "hostname": "web01",
    "files": [{"path": "/home/alice/notes", "content": "on the /home subvolume\n"}],
}
FILES = {
    "/@/etc/os-release": 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n',
    "/@/etc/hostname": "template\n",
    "/@/etc/hosts": "127.0.0.1\tlocalhost\n127.0.1.1\ttemplate\n",
    "/@/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "/@/etc/group": "root:x:0:\n",
    "/@home/template/.profile": "# the template's home\n",
}


def _build(g) -> None:
    """btrfs on the whole disk: subvolumes @ (the root, no /home in it) and @home."""
    g.mkfs("btrfs", "/dev/sda")
    uuid = g.vfs_uuid("/dev/sda")
    g.mount("/dev/sda", "/")
    g.btrfs_subvolume_create("/@")
    g.btrfs_subvolume_create("/@home")
    for d in ("/@/etc", "/@/var/lib", "/@home/template"):
        g.mkdir_p(d)
    fstab = f"UUID={uuid} / btrfs subvol=@ 0 0\nUUID={uuid} /home btrfs subvol=@home 0 0\n"
    for path, text in {**FILES, "/@/etc/fstab": fstab}.items():
        g.write(path, text.encode())
    # old times, odd nanoseconds, atime != mtime: deepest first
    for i, path in enumerate(sorted(_paths(g), key=len, reverse=True)):
        g.utimens(path, 1_000_000_000 + i, 123_456_789, 990_000_000 + i, 987_654_321)
    g.umount_all()


def _paths(g) -> list[str]:
    return ["/@", "/@home", *(f"/{p}" for p in g.find("/") if p.startswith("@"))]


def _state(g) -> dict:
    """Every path of both subvolumes: kind, mode, owner, size, times, content."""
    g.mount_options("noatime", "/dev/sda", "/")
    try:
        out = {}
        for path in _paths(g):
            st = g.lstatns(path)
            content = g.read_file(path) if g.is_file(path, followsymlinks=False) else None
            out[path] = (st["st_mode"], st["st_uid"], st["st_gid"], st["st_size"],
                         st["st_atime_sec"], st["st_atime_nsec"], st["st_mtime_sec"],
                         st["st_mtime_nsec"], content)  # fmt: skip
        journal = g.read_file("/@/var/lib/vmtailor/journal.json") if g.exists(
            "/@/var/lib/vmtailor/journal.json") else None  # fmt: skip
        return {"paths": out, "journal": journal and json.loads(journal)}
    finally:
        g.umount_all()


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    disk = tmp_path_factory.mktemp("btrfs-home") / "guest.raw"
    with open(disk, "wb") as f:
        f.truncate(384 << 20)
    with Appliance([GuestSpec("guest", (Drive(str(disk), "raw"),))]) as app:
        _build(app.g)
        yield app


def test_home_is_made_through_the_journal_and_reverted(appliance):
    g = appliance.g
    before = _state(g)
    assert "/@/home" not in before["paths"]

    with appliance.open("guest") as guest:
        assert [m.target for m in guest.mounted] == ["/", "/home"]
        engine.apply(config.parse(CONFIG), guest.root)
    applied = _state(g)
    assert applied["paths"]["/@home/alice/notes"][-1] == b"on the /home subvolume\n"
    assert "/@/home/alice" not in applied["paths"]  # the folder is a mount point only
    assert applied["journal"]["mount_points"] == ["/home"]
    assert f"/@{MARKER}" not in applied["paths"]  # the journal took it over

    with appliance.open("guest") as guest:
        result = engine.revert(guest.root)
    assert "/home" not in result.kept
    after = _state(g)
    assert after["journal"] is None
    changed = sorted(set(after["paths"]) ^ set(before["paths"]))
    assert changed == []
    differ = [p for p in before["paths"] if before["paths"][p] != after["paths"][p]]
    assert differ == []  # content, mode, owner and times of both subvolumes


def test_the_initrd_removes_a_mount_point_no_journal_took(
    guest_copy, attach, tmp_path, mountinfo, btrfs_lock
):
    """The initrd's side, on a loop-attached btrfs fixture with @/home removed: mounting
    makes /home (the /home subvolume is mounted there) and names it in the marker; a run
    whose journal never took it (nothing applied here) leaves, once unmounted, no /home,
    no marker, and the root subvolume's times as they were."""
    image = guest_copy("btrfs")
    top, sysroot = tmp_path / "top", tmp_path / "sysroot"
    top.mkdir()
    sysroot.mkdir()
    with attach(image) as devices:
        part = next(d.path for d in devices if d.fstype == "btrfs")

        def root_subvolume():
            subprocess.run(["mount", "-o", "noatime", part, str(top)], check=True)
            try:
                st = os.lstat(top / "@")
                return (
                    (top / "@/home").exists(),
                    (top / "@" / MARKER.lstrip("/")).exists(),
                    (
                        st.st_atime_ns,
                        st.st_mtime_ns,
                    ),
                )
            finally:
                subprocess.run(["umount", str(top)], check=True)

        subprocess.run(["mount", part, str(top)], check=True)
        try:
            os.rmdir(top / "@/home")
        finally:
            subprocess.run(["umount", str(top)], check=True)
        before = root_subvolume()
        assert before[:2] == (False, False)
        with Mounts() as mounts:
            mount_guest(devices, str(sysroot), mounts)
            assert (sysroot / "home/template/on-at-home").exists()
            assert json.loads((sysroot / MARKER.lstrip("/")).read_text())["made"] == ["/home"]
        assert mountinfo(sysroot) == []
        assert root_subvolume() == before
