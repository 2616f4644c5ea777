"""Root discovery on real filesystems (loop-attached ext4, no libguestfs): a guest whose
/etc/os-release is a link into a /usr on another disk, and a guest with only an older
release file, are found, mounted as their fstab says, and detected from what is mounted."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from pathlib import Path

from vmtailor.customizer.detect import detect
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.storage.devices import BlockDevice
from vmtailor.customizer.storage.guest import mount_guest
from vmtailor.customizer.storage.mount import Mounts


def ext4_image(path: Path, tree: Path, fs_uuid: str) -> Path:
    """A whole-disk ext4 (no partition table) holding `tree`, made without mounting."""
    with open(path, "wb") as f:
        f.truncate(16 * 1024 * 1024)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-U", fs_uuid, "-d", str(tree), str(path)],
        check=True,
        capture_output=True,
    )
    return path


def write(top: Path, files: dict[str, str], links: dict[str, str] | None = None) -> Path:
    for rel, text in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text(text)
    for rel, target in (links or {}).items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, top / rel)
    return top


def test_split_usr_with_a_symlinked_os_release(tmp_path, attach, sysroot, mountinfo):
    root_uuid, usr_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    fstab = f"UUID={root_uuid} / ext4 defaults 0 1\nUUID={usr_uuid} /usr ext4 defaults 0 2\n"
    root_tree = write(tmp_path / "root", {"etc/fstab": fstab},
                      {"etc/os-release": "../usr/lib/os-release"})  # fmt: skip
    (root_tree / "usr").mkdir()
    usr_tree = write(tmp_path / "usr", {"lib/os-release": 'ID=debian\nVERSION_ID="12"\n'})
    images = [
        ext4_image(tmp_path / "root.raw", root_tree, root_uuid),
        ext4_image(tmp_path / "usr.raw", usr_tree, usr_uuid),
    ]
    with contextlib.ExitStack() as stack, Mounts() as mounts:
        devices = [d for image in images for d in stack.enter_context(attach(image))]
        found = mount_guest(devices, str(sysroot), mounts, readonly=True)
        root_dev, usr_dev = (d.path for d in devices if d.fstype == "ext4")
        assert found.root.device.path == root_dev
        assert dict(mountinfo(sysroot)) == {str(sysroot): root_dev, f"{sysroot}/usr": usr_dev}
        guest = detect(LocalRoot(str(sysroot)))
        assert (guest.os_id, guest.version) == ("debian", "12")


def test_release_file_only(tmp_path, attach, sysroot):
    root_uuid = str(uuid.uuid4())
    tree = write(
        tmp_path / "root",
        {
            "etc/fstab": f"UUID={root_uuid} / ext4 defaults 1 1\n",
            "etc/centos-release": "CentOS release 6.10 (Final)\n",
        },
        {"etc/redhat-release": "centos-release"},
    )
    with attach(ext4_image(tmp_path / "el6.raw", tree, root_uuid)) as devices, Mounts() as m:
        found = mount_guest(devices, str(sysroot), m, readonly=True)
        assert found.root.release == "/etc/redhat-release"
        guest = detect(LocalRoot(str(sysroot)))
        assert (guest.os_id, guest.version) == ("centos", "6.10")


def test_the_appliance_probe_reads_the_same_list(g, tmp_path):
    """offline/probe.py (libguestfs) judges a filesystem as the initrd's probe does: the
    older release file, and the split-/usr link by the candidate's own fstab."""
    from tests.integration import guestfs_handle
    from vmtailor.offline.probe import look_inside

    scratch = BlockDevice("/dev/sda", "ext4")
    usr_fstab = "LABEL=root / ext4 defaults 0 1\nLABEL=usr /usr ext4 defaults 0 2\n"
    cases = [
        ({"etc/fstab": "LABEL=root / ext4 defaults 1 1\n", "etc/SuSE-release": "SLES 11\n"},
         {}, "/etc/SuSE-release"),
        ({"etc/fstab": usr_fstab}, {"etc/os-release": "../usr/lib/os-release"},
         "/etc/os-release"),
    ]  # fmt: skip
    for i, (files, links, release) in enumerate(cases):
        guestfs_handle.fresh_guest(g, write(tmp_path / str(i), files, links))
        g.umount_all()
        _, [found] = look_inside(g, scratch)
        assert found.release == release
