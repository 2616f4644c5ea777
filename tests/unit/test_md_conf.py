"""The guest's own mdadm.conf naming its arrays: an fstab line /dev/md0 for an array
whose superblock calls it "host:data" is planned on that array, with the conf read from
the chosen root (real trees, looked at through the initrd's probe). The conf only adds
names to arrays assembled from the guest's own members, found by UUID: a conf that is
huge, binary or names other devices changes nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmtailor.customizer.localroot import LocalRoot
from vmtailor.customizer.storage import md, probe
from vmtailor.customizer.storage.devices import BlockDevice
from vmtailor.customizer.storage.errors import StorageError
from vmtailor.customizer.storage.guest import plan_guest

DATA_UUID = "2c2336f7:e0bbbb3f:59c9db0b:835459a9"
SRV_UUID = "ac67a24e:6b4d5a18:3d186b3c:53958f34"
FS_DATA, FS_SRV = "11111111-0000-4000-8000-00000000000a", "11111111-0000-4000-8000-00000000000b"
FS_BOOT = "11111111-0000-4000-8000-00000000000c"
OS_RELEASE = "ID=debian\nVERSION_ID=12\n"
FSTAB = "/dev/md0 / ext4 defaults 0 1\n/dev/md1 /srv ext4 defaults 0 2\n"
CONF = (
    "DEVICE partitions\nHOMEHOST <system>\n"
    f"ARRAY /dev/md0 metadata=1.2 UUID={DATA_UUID} name=host:data\n"
    f"ARRAY /dev/md/1 metadata=1.2 name=host:srv\n   UUID={SRV_UUID.upper()}\n"
)


def array(uuid: str, name: str, path: str, fs_uuid: str, members: tuple[str, ...]):
    found = tuple(md.Member(m, uuid, name, "raid1", 2, state="clean") for m in members)
    props = {"TYPE": "ext4", "UUID": fs_uuid}
    return md.as_device(md.Array(uuid, name, "raid1", 2, found), path, props, "")


def guest_devices() -> list[BlockDevice]:
    members = [
        BlockDevice(p, "linux_raid_member", disk=p[:-1], partition=int(p[-1]))
        for p in ("/dev/vda2", "/dev/vdb2", "/dev/vda3", "/dev/vdb3")
    ]
    boot = BlockDevice("/dev/vda1", "ext4", uuid=FS_BOOT, disk="/dev/vda", partition=1)
    return [
        boot,
        *members,
        array(DATA_UUID, "host:data", "/dev/md100", FS_DATA, ("/dev/vda2", "/dev/vdb2")),
        array(SRV_UUID, "host:srv", "/dev/md101", FS_SRV, ("/dev/vda3", "/dev/vdb3")),
    ]


def root_tree(top: Path, fstab: str, conf: bytes | None, where: str) -> Path:
    (top / "etc/mdadm").mkdir(parents=True)
    (top / "etc/os-release").write_text(OS_RELEASE)
    (top / "etc/fstab").write_text(fstab)
    if conf is not None:
        (top / where.lstrip("/")).write_bytes(conf)
    return top


def find(tmp_path: Path, fstab: str, conf: bytes | None, where="/etc/mdadm/mdadm.conf"):
    """plan_guest over the guest's devices: the root (on the "data" array) holds `fstab`
    and `conf` at `where`; every other filesystem is empty."""
    root = root_tree(tmp_path / "root", fstab, conf, where)
    empty = tmp_path / "empty"
    empty.mkdir()

    def look(device):
        top = root if device.path == "/dev/md100" else empty
        return device, [probe._candidate(device, str(top), None, True)]

    return plan_guest(guest_devices(), look)


def layout(found) -> list[tuple[str, str]]:
    return [(m.target, m.device.path) for m in found.plan.mounts]


@pytest.mark.parametrize("where", ["/etc/mdadm/mdadm.conf", "/etc/mdadm.conf"])  # Debian, RHEL
def test_an_fstab_naming_arrays_as_the_guests_mdadm_conf_does(tmp_path, where):
    found = find(tmp_path, FSTAB, CONF.encode(), where)
    assert layout(found) == [("/", "/dev/md100"), ("/srv", "/dev/md101")]
    assert found.warnings == []
    by_path = {d.path: d for d in found.devices}
    assert by_path["/dev/md100"].aliases == ("/dev/md/data", "/dev/md/0", "/dev/md0")
    assert by_path["/dev/md101"].aliases == ("/dev/md/srv", "/dev/md/1", "/dev/md1")
    # without the conf, only the superblocks' names
    with pytest.raises(StorageError, match="/dev/md1 is not among the guest's disks"):
        find(tmp_path / "no-conf", FSTAB, None)
    found = find(tmp_path / "by-name", "/dev/md/data / ext4 defaults 0 1\n", None)
    assert layout(found) == [("/", "/dev/md100")]


def test_a_name_the_conf_gives_is_taken_from_the_array_whose_superblock_had_it(tmp_path):
    # the guest's mdadm names the srv array /dev/md/data at boot, not the data array
    conf = f"ARRAY /dev/md/data UUID={SRV_UUID}\nARRAY /dev/md/root UUID={DATA_UUID}\n"
    fstab = "/dev/md/root / ext4 defaults 0 1\n/dev/md/data /srv ext4 defaults 0 2\n"
    found = find(tmp_path, fstab, conf.encode())
    assert layout(found) == [("/", "/dev/md100"), ("/srv", "/dev/md101")]


HOSTILE = [
    f"ARRAY /dev/vda1 UUID={DATA_UUID}",  # a partition's name for the array
    f"ARRAY /dev/md/../vda1 UUID={DATA_UUID}",
    f"ARRAY /dev/md/a/b UUID={DATA_UUID}",
    f"ARRAY /dev/disk/by-uuid/{FS_BOOT} UUID={DATA_UUID}",
    f"ARRAY /dev/md7 UUID={FS_BOOT}",  # the UUID of a filesystem, not of an array
    "ARRAY /dev/md8 UUID=ffffffff:ffffffff:ffffffff:ffffffff",  # no such array
    "ARRAY /dev/md9 UUID=../../../x",
    "ARRAY",
    "ARRAY =",
]


def test_a_hostile_conf_names_nothing_else(tmp_path):
    fstab = f"/dev/md0 / ext4 defaults 0 1\n/dev/vda1 /boot ext4 defaults 0 2\nUUID={FS_SRV} /srv ext4 defaults 0 2\n"
    garbage = b"\x00\xff\xfe ARRAY\n\t\x00" + b"x" * 70000 + b"\n" + b"\xc3\x28" * 100
    conf = (
        "\n".join(HOSTILE).encode()
        + b"\n"
        + garbage
        + f"\nARRAY /dev/md0 UUID={DATA_UUID}\n".encode()
    )
    found = find(tmp_path, fstab, conf)
    assert layout(found) == [("/", "/dev/md100"), ("/boot", "/dev/vda1"), ("/srv", "/dev/md101")]
    by_path = {d.path: d for d in found.devices}
    assert by_path["/dev/md100"].aliases == ("/dev/md/data", "/dev/md/0", "/dev/md0")
    others = [d for d in guest_devices() if d.path != "/dev/md100"]
    assert [by_path[d.path] for d in others] == others  # not a name more on any other


def test_a_huge_conf_is_not_read_and_the_root_is_still_found(tmp_path):
    line = f"ARRAY /dev/md1 UUID={SRV_UUID}\n".encode()
    conf = line + b"#" * md.CONF_LIMIT
    found = find(tmp_path, "/dev/md/data / ext4 defaults 0 1\n", conf)
    assert found.root.device.path == "/dev/md100" and found.root.mdadm_conf is None
    assert {d.path: d for d in found.devices}["/dev/md101"].aliases == ("/dev/md/srv",)
    # the same conf, small enough, is read
    found = find(tmp_path / "2", "/dev/md/data / ext4 defaults 0 1\n", line)
    assert "/dev/md1" in {d.path: d for d in found.devices}["/dev/md101"].aliases


def test_a_conf_that_is_a_link_out_of_the_guest_is_not_followed(tmp_path):
    outside = tmp_path / "host-mdadm.conf"
    outside.write_text(f"ARRAY /dev/md1 UUID={SRV_UUID}\n")
    root = root_tree(tmp_path / "root", "/dev/md/data / ext4 defaults 0 1\n", None, "")
    (root / "etc/mdadm/mdadm.conf").symlink_to(outside)  # absolute: the guest's own /…
    (root / "etc/mdadm.conf").symlink_to("../../../../../host-mdadm.conf")
    assert md.read_conf(LocalRoot(str(root))) is None
