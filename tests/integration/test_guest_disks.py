"""The fixture disks' loop plumbing (scripts/guest_disks/disk.py), which every storage test
stands on: a detach must never take down a device another test worker has just attached."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from guest_disks.disk import attached


def sysfs(device: str, name: str) -> str | None:
    try:
        return Path(f"/sys/class/block/{os.path.basename(device)}/loop/{name}").read_text().strip()
    except FileNotFoundError:
        return None


def wait_for(device: str, name: str, value: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while sysfs(device, name) != value:
        assert time.monotonic() < deadline, f"{device}'s {name} never became {value}"
        time.sleep(0.005)


def test_detach_leaves_alone_a_device_reattached_meanwhile(tmp_path):
    ours, theirs = tmp_path / "ours.img", tmp_path / "theirs.img"
    for image in (ours, theirs):
        image.write_bytes(bytes(1 << 20))
    for _ in range(3):  # another worker may take the freed device first: then try again
        block = attached(str(ours))
        loop = block.__enter__()
        holder = os.open(loop.device, os.O_RDONLY)  # as a just-unmounted filesystem does
        errors: list[BaseException] = []

        def leave(block=block, errors=errors):
            try:
                block.__exit__(None, None, None)
            except BaseException as e:
                errors.append(e)

        detaching = threading.Thread(target=leave)
        detaching.start()
        # losetup -d of a held device only marks it to go when last closed
        device = loop.device
        wait_for(device, "autoclear", "1")
        os.close(holder)  # it goes now; another worker's image takes the device at once
        taken = subprocess.run(["losetup", device, str(theirs)], capture_output=True)
        detaching.join(timeout=20)
        try:
            assert not detaching.is_alive() and not errors, errors
            if taken.returncode == 0:
                assert sysfs(device, "backing_file") == str(theirs)
                return
        finally:
            if taken.returncode == 0:
                subprocess.run(["losetup", "-d", device], check=True)
    raise AssertionError("could not re-attach a freed loop device three times over")
