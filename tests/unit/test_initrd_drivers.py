"""The config stage looks for devices only once /init's background driver loading is done:
it waits for the marker file, and gives up waiting (and says so) after its time. The disks
stage loads the guest's filesystem drivers in one go, from what the image has."""

from __future__ import annotations

import threading
import time

import pytest

from vmtailor.customizer.storage import filesystems
from vmtailor.initrd import features
from vmtailor.initrd import image as image_features
from vmtailor.initrd.modules import ModuleIndex
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
    every = [fs.name for fs in filesystems.FILESYSTEMS.values()]
    assert {"ext4", "xfs", "btrfs", "vfat", "nls_cp437"} <= set(filesystems.modules_for(every))
    assert set(filesystems.modules_for(every)) <= image


def _moddir(tmp_path):
    (tmp_path / "modules.dep").write_text(
        "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko\n"
        "kernel/fs/jbd2/jbd2.ko:\n"
        "kernel/fs/mbcache.ko:\n"
        "kernel/crypto/crc32c_generic.ko:\n"
        "kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\n"
        "kernel/fs/fat/fat.ko:\n"
        "kernel/fs/xfs/xfs.ko: kernel/lib/libcrc32c.ko\n"
        "kernel/lib/libcrc32c.ko:\n"
    )
    (tmp_path / "modules.softdep").write_text(
        "# Soft dependencies extracted from modules themselves.\n"
        "softdep ext4 pre: crypto-crc32c\n"
        "softdep jbd2 pre: crypto-crc32c\n"
        "softdep jbd2 pre: crc32c-left-out post: jbd2-after\n"
        "softdep fat pre: built_in_only\n"
        "softdep libcrc32c pre: crc32c\n"
    )
    (tmp_path / "modules.alias").write_text(
        "alias crypto-crc32c crc32c_generic\nalias crc32c crc32c_generic\n"
    )
    for path in ("fs/ext4/ext4.ko", "fs/jbd2/jbd2.ko", "fs/mbcache.ko", "crypto/crc32c_generic.ko",
                 "fs/fat/vfat.ko", "fs/fat/fat.ko"):  # fmt: skip
        (tmp_path / "kernel" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "kernel" / path).write_bytes(b"\x7fELF")
    # as the build leaves xfs on the ISO: a symlink to where the stages mount it
    for path in ("fs/xfs/xfs.ko", "lib/libcrc32c.ko"):
        (tmp_path / "kernel" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "kernel" / path).symlink_to(tmp_path / "iso" / path)
    return ModuleIndex.load(str(tmp_path))


def test_softdeps_of_a_module_and_its_dependencies_come_first_once(tmp_path):
    # busybox's modprobe ignores modules.softdep: the stage hands it ext4's crc32c itself
    assert _moddir(tmp_path).with_softdeps(["ext4", "vfat"]) == ["crypto-crc32c", "ext4", "vfat"]


def test_softdeps_the_image_cannot_resolve_and_post_ones_are_left_out(tmp_path):
    # crc32c-left-out (no module, no alias), built_in_only, post: jbd2-after
    loaded = _moddir(tmp_path).with_softdeps(["jbd2", "fat"])
    assert loaded == ["crypto-crc32c", "jbd2", "fat"]


def test_without_module_indexes_there_is_no_index(tmp_path):
    assert ModuleIndex.load(str(tmp_path / "none")) is None


def test_modules_left_on_the_iso_are_missing_until_it_is_mounted(tmp_path):
    index = _moddir(tmp_path)
    assert index.missing(index.with_softdeps(["ext4", "vfat"])) == []
    assert index.missing(index.with_softdeps(["xfs"])) == ["libcrc32c", "xfs"]
    assert index.closure(["xfs"]) == {"xfs", "libcrc32c", "crc32c_generic"}
    for path in ("fs/xfs/xfs.ko", "lib/libcrc32c.ko"):  # the ISO, mounted
        (tmp_path / "iso" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "iso" / path).write_bytes(b"\x7fELF")
    assert index.missing(["xfs"]) == []


def test_no_feature_in_the_initrd_may_depend_on_one_on_the_iso(monkeypatch, tmp_path):
    # its files would be symlinks to an ISO nothing mounted yet
    import dataclasses

    from vmtailor.builder import initrd as builder

    table = dict(features.FEATURES)
    table["needs-lvm"] = dataclasses.replace(table["blkid"], name="needs-lvm", depends=("lvm",))
    monkeypatch.setattr(features, "FEATURES", table)
    with pytest.raises(ValueError, match="needs-lvm depends on lvm, on the ISO"):
        builder.stage(str(tmp_path / "staging"), str(tmp_path / "none"), ["needs-lvm"])
    assert not (tmp_path / "staging").exists()  # nothing staged
