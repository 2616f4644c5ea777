"""Finding the guest's root as virt-inspector does: /etc/fstab plus os-release or one of
the older release files detection reads, and a symlinked os-release judged by where the
guest's own fstab mounts /usr. Real trees, looked at through the initrd's probe."""

from __future__ import annotations

import os
from pathlib import Path

import fixture_roots
import pytest

from vmtailor.customizer.detect import DetectError, detect
from vmtailor.customizer.families import LEGACY_RELEASE_FILES, RELEASE_FILES
from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.storage import probe
from vmtailor.customizer.storage.devices import BlockDevice
from vmtailor.customizer.storage.errors import StorageError
from vmtailor.customizer.storage.guest import plan_guest
from vmtailor.customizer.storage.roots import choose_root

U_ROOT, U_USR = "11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002"
ROOT = BlockDevice("/dev/vda2", "ext4", uuid=U_ROOT, disk="/dev/vda", partition=2)
USR = BlockDevice("/dev/vda3", "ext4", uuid=U_USR, disk="/dev/vda", partition=3)
FSTAB = f"UUID={U_ROOT} / ext4 defaults 1 1\n"
SPLIT_USR_FSTAB = FSTAB + f"UUID={U_USR} /usr ext4 defaults 1 2\n"


def find(trees: dict[BlockDevice, Path]):
    """plan_guest over `trees` (device -> what it holds), each looked at by the probe."""

    def look(device):
        return device, [probe._candidate(device, str(trees[device]), None, True)]

    return plan_guest(list(trees), look)


def tree(top: Path, files: dict[str, str], links: dict[str, str] | None = None) -> Path:
    for path, text in files.items():
        (top / path).parent.mkdir(parents=True, exist_ok=True)
        (top / path).write_text(text)
    for path, target in (links or {}).items():
        (top / path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, top / path)
    return top


# -- no os-release: the older release files ---------------------------------------------
@pytest.mark.parametrize(
    ("name", "release"),
    [
        ("centos-6", "/etc/redhat-release"),  # CentOS 6: a link to centos-release
        ("sles-11", "/etc/SuSE-release"),
        ("debian-7", "/etc/debian_version"),
    ],
)
def test_a_root_without_os_release_is_found(make_root, name, release):
    top = make_root(name)
    assert not (top / "etc/os-release").exists() and not (top / "usr/lib/os-release").exists()
    # choose_root alone: the fixture's fstab names disks that are not here to plan
    chosen = choose_root([probe._candidate(ROOT, str(top), None, True)], [ROOT])
    assert chosen.device == ROOT and chosen.release == release
    assert detect(LocalRoot(str(top))).os_id == fixture_roots.describe(name)["expect"]["id"]


def test_every_release_file_detection_reads_makes_a_root(tmp_path):
    """One list: whatever legacy file detect() identifies a guest by, the root finder
    accepts — including a distribution vmtailor then refuses by name."""
    for i, (path, _) in enumerate(LEGACY_RELEASE_FILES):
        top = tree(tmp_path / str(i), {"etc/fstab": FSTAB, path.lstrip("/"): "x 1\n"})
        assert find({ROOT: top}).root.release == path
    assert set(RELEASE_FILES) >= {p for p, _ in LEGACY_RELEASE_FILES}


def test_an_unsupported_release_file_is_found_then_named(tmp_path):
    top = tree(tmp_path, {"etc/fstab": FSTAB, "etc/gentoo-release": "Gentoo Base System 2.6\n"})
    assert find({ROOT: top}).root.release == "/etc/gentoo-release"
    with pytest.raises(DetectError, match=r"unsupported guest: .*/etc/gentoo-release"):
        detect(LocalRoot(str(top)))


def test_a_release_file_without_fstab_is_named(tmp_path):
    top = tree(tmp_path, {"etc/redhat-release": "CentOS release 6.10 (Final)\n"})
    with pytest.raises(
        StorageError, match="on /dev/vda2 has /etc/redhat-release but no /etc/fstab"
    ):
        find({ROOT: top})


def test_two_legacy_roots_stay_an_error(tmp_path):
    other = BlockDevice("/dev/vdb2", "ext4", uuid=U_ROOT, disk="/dev/vdb", partition=2)
    files = {"etc/fstab": FSTAB, "etc/SuSE-release": "SUSE Linux Enterprise Server 11\n"}
    trees = {ROOT: tree(tmp_path / "a", files), other: tree(tmp_path / "b", files)}
    with pytest.raises(StorageError) as exc:
        find(trees)
    assert str(exc.value).startswith(
        "two guest roots: /dev/vda2 and /dev/vdb2 both hold /etc/fstab and an OS release file"
    )


def test_no_root_names_the_release_files_looked_for(tmp_path):
    top = tree(tmp_path, {"etc/fstab": FSTAB})
    with pytest.raises(StorageError) as exc:
        find({ROOT: top})
    message = str(exc.value)
    assert "holds /etc/fstab and an OS release file such as /etc/os-release, " in message
    assert "/etc/redhat-release" in message and "(looked in /dev/vda2)" in message


# -- split /usr: /etc/os-release -> ../usr/lib/os-release, /usr on its own ---------------
@pytest.mark.parametrize("target", ["../usr/lib/os-release", "/usr/lib/os-release"])
def test_split_usr_os_release_link_is_judged_by_the_guests_fstab(tmp_path, target):
    """The link dangles on the root filesystem alone: it makes a root when the root's own
    fstab mounts a filesystem where it leads (/usr), and not otherwise (no entry, a
    tmpfs there, or a disk mounted somewhere else)."""
    usr = tree(tmp_path / "usr", {"lib/os-release": 'ID=debian\nVERSION_ID="12"\n'})
    srv = f"UUID={U_USR} /srv ext4 defaults 0 2\n"
    cases = [SPLIT_USR_FSTAB, FSTAB, FSTAB + "tmpfs /usr tmpfs defaults 0 0\n", FSTAB + srv]
    for i, fstab in enumerate(cases):
        root = tree(tmp_path / str(i), {"etc/fstab": fstab}, {"etc/os-release": target})
        (root / "usr").mkdir()  # the mount point, empty on the root filesystem
        if i == 0:
            found = find({ROOT: root, USR: usr})
            assert found.root.device == ROOT and found.root.release == "/etc/os-release"
            mounts = [(m.target, m.device.path) for m in found.plan.mounts]
            assert mounts == [("/", "/dev/vda2"), ("/usr", "/dev/vda3")]
        else:
            with pytest.raises(StorageError, match="no guest root found"):
                find({ROOT: root, USR: usr})
