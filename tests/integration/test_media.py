"""Config media for real: ISO (pycdlib), floppy and vfat (vmtailor's FAT writer), read
back with independent tools (pycdlib, mtools, fsck.fat, blkid); reproducible, fast enough
for one per clone, and the same layout the initrd's config stage reads."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time

import pycdlib
import pytest

from tests.conftest import assert_same_bytes, vmtailor
from vmtailor.builder import fat
from vmtailor.builder.media import write_media
from vmtailor.customizer import config as configmod
from vmtailor.customizer.errors import VmtailorError
from vmtailor.initrd.image import CONFIG_LABEL, CONFIG_PATH, FILES_DIR

MTOOLS = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
CONFIG = {
    "hostname": "web01",
    "files": [
        {"path": "/etc/issue.net", "source": "files/issue.net"},
        {"path": "/etc/a-long-name.conf", "source": "A Rather Long File Name.conf"},
    ],
}
SOURCES = {"files/issue.net": b"Authorized use only\n", "A Rather Long File Name.conf": b"x=1\n"}


def _config():
    return configmod.parse(CONFIG)


def _read_iso(path: str) -> dict[str, tuple[bytes, int]]:
    iso = pycdlib.PyCdlib()
    iso.open(path)
    out = {}
    try:
        for dirname, _, files in iso.walk(rr_path="/"):
            for name in files:
                rr = f"{dirname.rstrip('/')}/{name}"
                buf = io.BytesIO()
                iso.get_file_from_iso_fp(buf, rr_path=rr)
                mode = iso.get_record(rr_path=rr).rock_ridge.get_file_mode()
                out[rr] = (buf.getvalue(), mode & 0o7777)
        assert iso.pvd.volume_identifier.rstrip() == CONFIG_LABEL.encode()
    finally:
        iso.close()
    return out


def _read_fat(path: str, tmp_path) -> dict[str, bytes]:
    dest = tmp_path / "out"
    dest.mkdir()
    subprocess.run(["mcopy", "-s", "-n", "-i", path, "::/", str(dest)], check=True, env=MTOOLS)
    subprocess.run(["fsck.fat", "-n", path], check=True, capture_output=True)
    return {
        "/" + os.path.relpath(os.path.join(d, f), dest): open(os.path.join(d, f), "rb").read()
        for d, _, files in os.walk(dest)
        for f in files
    }


def _expected() -> dict[str, bytes]:
    return {
        CONFIG_PATH: configmod.canonical_json(_config()).encode(),
        f"{FILES_DIR}/files/issue.net": SOURCES["files/issue.net"],
        f"{FILES_DIR}/A Rather Long File Name.conf": SOURCES["A Rather Long File Name.conf"],
    }


def test_iso_media_holds_config_and_sources_0600(tmp_path):
    out = write_media(_config(), SOURCES.__getitem__, str(tmp_path / "c.iso"), "iso")
    files = _read_iso(out)
    assert {k: v[0] for k, v in files.items()} == _expected()
    assert {mode for _, mode in files.values()} == {0o600}
    assert json.loads(files[CONFIG_PATH][0])["hostname"] == "web01"


@pytest.mark.parametrize("fmt", ["floppy", "vfat"])
def test_fat_media_hold_config_and_sources(tmp_path, fmt):
    out = write_media(_config(), SOURCES.__getitem__, str(tmp_path / f"c.{fmt}"), fmt)
    assert _read_fat(out, tmp_path) == _expected()
    if fmt == "floppy":
        assert os.path.getsize(out) == 1474560
    blkid = subprocess.run(["blkid", "-o", "export", out], capture_output=True, text=True)
    assert f"LABEL={CONFIG_LABEL}" in blkid.stdout and "TYPE=vfat" in blkid.stdout


@pytest.mark.parametrize("fmt", ["iso", "floppy", "vfat"])
def test_media_are_reproducible(tmp_path, fmt):
    a = write_media(_config(), SOURCES.__getitem__, str(tmp_path / "a"), fmt)
    b = write_media(_config(), SOURCES.__getitem__, str(tmp_path / "b"), fmt)
    assert_same_bytes(a, b)


def test_source_outside_the_config_folder_is_refused(tmp_path):
    config = configmod.parse({"files": [{"path": "/etc/x", "source": "../x"}]})
    with pytest.raises(VmtailorError, match="leaves the config's folder"):
        write_media(config, lambda name: b"", str(tmp_path / "c.iso"))


def test_a_floppy_too_small_says_so(tmp_path):
    big = {"files/big": os.urandom(1_600_000)}
    config = configmod.parse({"files": [{"path": "/big", "source": "files/big"}]})
    with pytest.raises(VmtailorError, match="use --format iso or vfat"):
        write_media(config, big.__getitem__, str(tmp_path / "f.img"), "floppy")
    assert write_media(config, big.__getitem__, str(tmp_path / "v.img"), "vfat")


def test_media_for_many_clones_are_fast(tmp_path):
    started = time.monotonic()
    for i in range(50):
        config = configmod.parse({**CONFIG, "hostname": f"web{i:02d}"})
        for fmt in ("iso", "vfat"):
            write_media(config, SOURCES.__getitem__, str(tmp_path / f"{i}.{fmt}"), fmt)
    per_clone = (time.monotonic() - started) / 50
    print(f"media per clone (iso + vfat): {per_clone * 1000:.0f} ms")
    assert per_clone < 0.2


def test_fat_writer_long_names_folders_and_fat16(tmp_path):
    files = {f"/d{i % 3}/sub/file number {i}.txt": os.urandom(i * 700) for i in range(60)}
    files["/UPPER.TXT"] = b"short name, no long entry"
    for name, sectors in (("fat12.img", None), ("fat16.img", 40000)):
        path = tmp_path / name
        path.write_bytes(fat.make_fat(files, "TESTLABEL", sectors, epoch=1700000000))
        assert (
            _read_fat(str(path), tmp_path / name.split(".")[0] if False else _sub(tmp_path, name))
            == files
        )


def _sub(tmp_path, name):
    sub = tmp_path / name.split(".")[0]
    sub.mkdir()
    return sub


def test_cli_media(tmp_path):
    cfg = tmp_path / "web.yaml"
    cfg.write_text("hostname: '{{ hostname }}'\nfiles:\n  - {path: /etc/motd, source: motd}\n")
    (tmp_path / "motd").write_text("hi\n")
    out = tmp_path / "web01.iso"
    proc = vmtailor("media", str(cfg), "--out", str(out), "--var", "hostname=web01")
    assert proc.returncode == 0, proc.stderr
    files = _read_iso(str(out))
    assert json.loads(files[CONFIG_PATH][0])["hostname"] == "web01"
    assert files[f"{FILES_DIR}/motd"][0] == b"hi\n"
    missing = vmtailor("media", str(cfg), "--out", str(out))
    assert missing.returncode == 2 and "hostname" in missing.stderr


def test_layout_is_what_the_initrd_config_stage_reads():
    from vmtailor.initrd.stages import config as config_stage

    assert config_stage.LABEL == CONFIG_LABEL
    assert "/" + config_stage.CONFIG_JSON == CONFIG_PATH
