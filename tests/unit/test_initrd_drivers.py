"""The config stage looks for devices only once /init's background driver loading is done:
it waits for the marker file, and gives up waiting (and says so) after its time. The disks
stage loads the guest's filesystem drivers in one go, from what the image has."""

from __future__ import annotations

import threading
import time

from vmtailor.initrd import features
from vmtailor.initrd import image as image_features
from vmtailor.initrd.stages import disks as disks_stage
from vmtailor.initrd.stages.config import wait_for_drivers


def test_waits_until_the_marker_appears(tmp_path, capsys):
    marker = tmp_path / "drivers.loaded"
    threading.Timer(0.3, marker.touch).start()
    started = time.monotonic()
    wait_for_drivers(str(marker), wait=10)
    waited = time.monotonic() - started
    assert marker.exists() and 0.25 <= waited < 5
    assert capsys.readouterr().out == ""


def test_gives_up_after_its_wait_and_says_so(tmp_path, capsys):
    started = time.monotonic()
    wait_for_drivers(str(tmp_path / "never"), wait=0.2)
    assert 0.2 <= time.monotonic() - started < 5
    assert "drivers still loading after 0.2 s" in capsys.readouterr().out


def test_no_marker_means_no_wait(capsys):
    # outside /init (tests, a debug shell) nothing loads drivers in the background
    started = time.monotonic()
    wait_for_drivers(None, wait=10)
    assert time.monotonic() - started < 0.1


def test_filesystem_drivers_loaded_up_front_are_all_in_the_image():
    # a name modprobe cannot find is an error on the console (kmod's gives up there)
    image = {m for f in features.resolve(image_features.FEATURES) for m in f.kernel_modules}
    assert {*disks_stage.DRIVERS.values(), *disks_stage.FAT} <= image
