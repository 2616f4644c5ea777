"""Integration fixtures: the fixture guest disks (scripts/guest_disks), built once per
machine and cached in /var/cache/vmtailor/guests/, and helpers that attach a disk on the
host as a list of BlockDevice (guest_disks.host) — always detached afterwards, even on
failure."""

from __future__ import annotations

import subprocess
from pathlib import Path

import guest_disks  # scripts/, put on sys.path by tests/conftest.py
import pytest
from guest_disks.host import attached_guest
from guest_disks.host import btrfs_lock as guest_btrfs_lock


@pytest.fixture(scope="session")
def guest_image():
    """guest_image("debian") -> Path of the cached raw image (read it, never write it)."""
    return guest_disks.image


@pytest.fixture
def guest_copy(tmp_path):
    """guest_copy("debian") -> Path of a private sparse copy, free to customize."""

    def copy(name: str) -> Path:
        dest = tmp_path / f"{name}.raw"
        subprocess.run(
            ["cp", "--sparse=always", str(guest_disks.image(name)), str(dest)], check=True
        )
        return dest

    return copy


@pytest.fixture
def btrfs_lock():
    """Hold while a btrfs fixture is mounted: copies share the filesystem's UUID."""
    with guest_btrfs_lock():
        yield


def mounted_at(path: Path) -> list[tuple[str, str]]:
    """(mount point, source) of everything mounted at or below `path`, from the kernel."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            source = fields[fields.index("-") + 2]
            if point == str(path) or point.startswith(str(path) + "/"):
                out.append((point, source))
    return out


def loops_of(image: Path) -> list[str]:
    out = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True).stdout
    return [line.split(":")[0] for line in out.splitlines()]


@pytest.fixture
def attach():
    """attach(image, readonly=False, group="") -> context manager of the guest's devices."""
    return attached_guest


@pytest.fixture
def mountinfo():
    """mountinfo(path) -> [(mount point, source)] of what is mounted at or below path."""
    return mounted_at


@pytest.fixture
def sysroot(tmp_path, mountinfo):
    """An empty folder to mount a guest under (the initrd's /sysroot); nothing may be left
    mounted there when the test ends."""
    path = tmp_path / "sysroot"
    path.mkdir()
    yield path
    assert mountinfo(path) == [], "something was left mounted"


@pytest.fixture
def loops():
    """loops(image) -> the loop devices still attached to `image` (should be none)."""
    return loops_of


@pytest.fixture(scope="module")
def g(tmp_path_factory):
    """A launched libguestfs handle with one scratch disk (guestfs_handle), per module."""
    from tests.integration import guestfs_handle  # imports guestfs: only where it is used

    handle = guestfs_handle.launch(tmp_path_factory.mktemp("guestfs"))
    yield handle
    handle.shutdown()
    handle.close()
