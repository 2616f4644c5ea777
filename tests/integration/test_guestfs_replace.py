"""GuestfsRoot replaces files as LocalRoot does: a mode/owner change never reaches another
name of the inode, extended attributes come along byte for byte (less what chown(2)
clears), big files are refused for reading and copied with their holes, and labels can
be set at all (the binding takes no bytes)."""

from __future__ import annotations

import os
import struct
import subprocess

import pytest

from tests.integration import guestfs_handle
from vmtailor.customizer import config, engine
from vmtailor.customizer.errors import VmtailorError
from vmtailor.customizer.root import RootError
from vmtailor.offline.guestfs_root import GuestfsRoot

MiB = 1 << 20
CAP_NET_RAW = b"\x01\x00\x00\x02" + struct.pack("<I", 1 << 13) + bytes(12)
LABEL = "system_u:object_r:etc_t:s0"


def _xattrs(g, at: str) -> dict[str, bytes]:
    return {x["attrname"]: x["attrval"] for x in g.lgetxattrs(at)}


def _meta(g, at: str) -> tuple[int, int, int]:
    st = g.lstatns(at)
    return st["st_mode"] & 0o7777, st["st_uid"], st["st_gid"]


def _guest(g, tmp_path):
    """/outside (mode 4755, user.origin, a capability) hard-linked as /guest/usr/bin/ping;
    the Root's guest is /guest."""
    tree = tmp_path / "t"
    (tree / "guest/usr/bin").mkdir(parents=True)
    (tree / "guest/etc").mkdir()
    (tree / "guest/etc/os-release").write_text("ID=debian\n")
    (tree / "outside").write_bytes(b"#!/bin/sh\n")
    os.setxattr(tree / "outside", "user.origin", b"host")
    os.setxattr(tree / "outside", "security.capability", CAP_NET_RAW)
    os.chmod(tree / "outside", 0o4755)
    os.link(tree / "outside", tree / "guest/usr/bin/ping")
    guestfs_handle.fresh_guest(g, tree)
    return GuestfsRoot(g, "image", top="/guest")


def test_chmod_and_chown_replace_the_file(g, tmp_path):
    root = _guest(g, tmp_path)
    want = (_meta(g, "/outside"), _xattrs(g, "/outside"))
    assert want[1] == {"user.origin": b"host", "security.capability": CAP_NET_RAW}

    root.chmod("/usr/bin/ping", 0o4750)
    assert (_meta(g, "/outside"), _xattrs(g, "/outside")) == want
    assert _meta(g, "/guest/usr/bin/ping") == (0o4750, 0, 0)
    assert _xattrs(g, "/guest/usr/bin/ping") == want[1]  # chmod keeps capabilities

    root.chown("/usr/bin/ping", 1234, 5678)  # as chown(2): setuid and capability go
    assert _meta(g, "/guest/usr/bin/ping") == (0o0750, 1234, 5678)
    assert _xattrs(g, "/guest/usr/bin/ping") == {"user.origin": b"host"}
    assert (_meta(g, "/outside"), _xattrs(g, "/outside")) == want
    assert g.read_file("/guest/usr/bin/ping") == b"#!/bin/sh\n"
    assert g.ls("/guest/usr/bin") == ["ping"], "a temp file was left behind"


def test_labels_are_set_and_kept(g, tmp_path):
    root = _guest(g, tmp_path)
    root.write_bytes("/etc/motd", b"hello\n", label=LABEL)
    assert root.get_label("/etc/motd") == LABEL
    root.write_bytes("/etc/motd", b"again\n")  # keeps the replaced file's label
    assert root.get_label("/etc/motd") == LABEL
    root.set_label("/etc/motd", "system_u:object_r:user_home_t:s0")
    assert root.get_label("/etc/motd") == "system_u:object_r:user_home_t:s0"


def test_big_files_are_refused_for_reading_and_copied_with_their_holes(g, tmp_path):
    root = _guest(g, tmp_path)
    g.write("/guest/big", b"head")
    g.truncate_size("/guest/big", 100 * MiB)
    with pytest.raises(RootError, match="cannot read /big in the guest: 100 MiB is over"):
        root.read_bytes("/big")
    g.truncate_size("/guest/big", 16 * MiB)  # smaller from here on: TCG reads slowly
    g.pwrite("/guest/big", b"middle", 8 * MiB)
    root = GuestfsRoot(g, "image", top="/guest")  # one that has not seen it yet (stat cache)
    root.copy_file("/big", "/copy")
    assert g.lstatns("/guest/copy")["st_size"] == 16 * MiB
    assert g.lstatns("/guest/copy")["st_blocks"] * 512 < MiB
    assert _meta(g, "/guest/copy") == (0o600, 0, 0)
    assert g.checksum("sha256", "/guest/copy") == g.checksum("sha256", "/guest/big")


def test_apply_and_revert_a_big_file_outside_alone(g, tmp_path):
    root = _guest(g, tmp_path)
    g.write("/guest/srv.img", b"data")
    g.truncate_size("/guest/srv.img", 16 * MiB)
    sha = g.checksum("sha256", "/guest/srv.img")
    cfg = config.parse(
        {
            "files": [
                {"path": "/usr/bin/ping", "permissions": "0700"},
                {"path": "/srv.img", "permissions": "0600"},
            ]
        }
    )
    want = (_meta(g, "/outside"), _xattrs(g, "/outside"))
    engine.apply(cfg, root)
    assert _meta(g, "/guest/srv.img") == (0o600, 0, 0)
    assert _meta(g, "/guest/usr/bin/ping") == (0o700, 0, 0)
    assert (_meta(g, "/outside"), _xattrs(g, "/outside")) == want
    for name in g.ls("/guest/var/lib/vmtailor/originals"):
        assert g.lstatns(f"/guest/var/lib/vmtailor/originals/{name}")["st_blocks"] * 512 < MiB

    engine.revert(GuestfsRoot(g, "image", top="/guest"))
    assert g.checksum("sha256", "/guest/srv.img") == sha
    assert _meta(g, "/guest/srv.img") == (0o644, 0, 0)
    assert _meta(g, "/guest/usr/bin/ping") == (0o4755, 0, 0)
    assert (_meta(g, "/outside"), _xattrs(g, "/outside")) == want


def test_mount_points_are_known_from_the_appliance(g, tmp_path):
    """A filesystem the appliance mounted inside the guest is a mount point to the journal:
    apply refuses to change it and a forged journal cannot get it replaced."""
    root = _guest(g, tmp_path)
    g.mkdir("/guest/boot")
    g.mkdir("/guest/mnt")
    image = tmp_path / "boot.img"
    with open(image, "wb") as f:
        f.truncate(8 * MiB)
    subprocess.run(["mkfs.ext2", "-q", "-F", str(image)], check=True)
    g.upload(str(image), "/boot.img")
    g.mount_loop("/boot.img", "/guest/boot")
    try:
        assert root.is_mount_point("/")
        assert root.is_mount_point("/boot")
        assert not root.is_mount_point("/mnt")
        assert not root.is_mount_point("/etc/os-release")
        cfg = config.parse({"files": [{"path": "/boot", "permissions": "0700"}]})
        before = _meta(g, "/guest/boot")
        with pytest.raises(VmtailorError, match="/boot"):
            engine.apply(cfg, root)
        assert _meta(g, "/guest/boot") == before
    finally:
        g.umount("/guest/boot")
