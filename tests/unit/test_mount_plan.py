"""Mount planning, pure: a guest's devices as data and its fstab in, ordered mounts out.

The clone trap (ARCHITECTURE, Known traps) is tested here: clones share UUIDs and labels,
so a guest's fstab is resolved only among that guest's own devices."""

from __future__ import annotations

import pytest

from vmtailor.customizer.storage import lvm, probe, recovery
from vmtailor.customizer.storage.devices import (
    BlockDevice,
    Subvolume,
    dm_name,
    from_blkid,
    parse_blkid_export,
    split_dm_name,
    split_kernel_name,
)
from vmtailor.customizer.storage.errors import StorageError
from vmtailor.customizer.storage.guest import plan_guest
from vmtailor.customizer.storage.plan import RootLocation, plan_mounts
from vmtailor.customizer.storage.roots import RootCandidate, choose_root

U_ROOT = "11111111-1111-4111-8111-111111111111"
U_BOOT = "22222222-2222-4222-8222-222222222222"
U_HOME = "33333333-3333-4333-8333-333333333333"


def part(disk: str, n: int, fstype: str = "ext4", **kw) -> BlockDevice:
    sep = "p" if disk[-1].isdigit() else ""
    return BlockDevice(f"/dev/{disk}{sep}{n}", fstype, disk=f"/dev/{disk}", partition=n, **kw)


def debian_disk(group: str = "", disk: str = "vda") -> list[BlockDevice]:
    return [
        BlockDevice(f"/dev/{disk}", None, disk=f"/dev/{disk}", group=group),
        part(disk, 1, None, partlabel="bios", group=group),
        part(disk, 2, "vfat", uuid="5EC0-FFEE", label="EFI", partlabel="esp", group=group),
        part(disk, 3, uuid=U_BOOT, label="boot", partuuid="aaaa-03", group=group),
        part(disk, 4, uuid=U_ROOT, label="root", partuuid="aaaa-04", group=group),
    ]


DEBIAN_FSTAB = f"""\
UUID={U_ROOT} /               ext4    errors=remount-ro 0       1
UUID={U_BOOT} /boot           ext4    defaults        0       2
UUID=5ec0-ffee  /boot/efi       vfat    umask=0077,nofail 0     1
tmpfs           /tmp            tmpfs   nosuid,nodev    0       0
"""


def at(devices, path):
    return next(d for d in devices if d.path == path)


def layout(plan):
    return [(m.target, m.device.path, m.fstype, m.options) for m in plan.mounts]


def test_debian_by_uuid_parents_first():
    devices = debian_disk()
    plan = plan_mounts(DEBIAN_FSTAB, devices, RootLocation(at(devices, "/dev/vda4")))
    assert layout(plan) == [
        ("/", "/dev/vda4", "ext4", ()),
        ("/boot", "/dev/vda3", "ext4", ()),
        ("/boot/efi", "/dev/vda2", "vfat", ()),  # vfat UUIDs match case-insensitively
    ]
    assert [(s.target, s.reason) for s in plan.skipped] == [("/tmp", "tmpfs: not on a disk")]
    assert plan.warnings == []


def test_depth_order_whatever_the_fstab_order():
    devices = [part("vda", i, uuid=f"u{i}") for i in range(1, 5)]
    fstab = "UUID=u4 /var/log ext4 defaults\nUUID=u3 /var ext4 defaults\nUUID=u1 / ext4 defaults\nUUID=u2 /srv ext4 defaults\n"
    plan = plan_mounts(fstab, devices, RootLocation(devices[0]))
    assert [m.target for m in plan.mounts] == ["/", "/var", "/srv", "/var/log"]


@pytest.mark.parametrize("attached_as", ["vda", "sda", "xvda", "hda", "nvme0n1"])
@pytest.mark.parametrize("template", ["sda", "vda", "xvda", "hda", "nvme0n1"])
def test_plain_dev_paths_follow_the_disk_across_bus_names(template, attached_as):
    sep = "p" if template[-1].isdigit() else ""
    devices = debian_disk(disk=attached_as)
    fstab = f"/dev/{template}{sep}4 / ext4 defaults 0 1\n/dev/{template}{sep}3 /boot ext4 defaults 0 2\n"
    plan = plan_mounts(fstab, devices, RootLocation(devices[4]))
    sep = "p" if attached_as[-1].isdigit() else ""
    assert [m.device.path for m in plan.mounts] == [
        f"/dev/{attached_as}{sep}4",
        f"/dev/{attached_as}{sep}3",
    ]


def test_second_disk_is_the_guests_second_disk_not_the_kernels():
    # The config media took vda: the guest's disks are vdb and vdc (media not passed in).
    devices = [
        BlockDevice("/dev/vdb", None, disk="/dev/vdb"),
        part("vdb", 1, uuid=U_ROOT),
        BlockDevice("/dev/vdc", None, disk="/dev/vdc"),
        part("vdc", 1, "xfs", uuid=U_HOME),
    ]
    fstab = "/dev/sda1 / ext4 defaults 0 1\n/dev/sdb1 /home xfs defaults 0 2\n"
    plan = plan_mounts(fstab, devices, RootLocation(devices[1]))
    assert [m.device.path for m in plan.mounts] == ["/dev/vdb1", "/dev/vdc1"]


def test_exact_paths_win_over_remapping():
    devices = [*debian_disk(disk="sda"), *debian_disk(disk="sdb")[3:]]
    plan = plan_mounts(
        "/dev/sda4 / ext4 defaults\n/dev/sdb3 /boot ext4 defaults\n",
        devices,
        RootLocation(devices[4]),
    )
    assert [m.device.path for m in plan.mounts] == ["/dev/sda4", "/dev/sdb3"]


def lvm_guest():
    return [
        BlockDevice("/dev/sda", None, disk="/dev/sda"),
        part("sda", 1, uuid=U_BOOT),
        part("sda", 2, "LVM2_member", uuid="pv-uuid"),
        BlockDevice("/dev/mapper/vmt--el-root", "xfs", uuid=U_ROOT, vg="vmt-el", lv="root"),
        BlockDevice("/dev/mapper/vmt--el-var", "xfs", uuid=U_HOME, vg="vmt-el", lv="var"),
        BlockDevice("/dev/mapper/vmt--el-swap", "swap", uuid="sw", vg="vmt-el", lv="swap"),
    ]


def test_lvm_by_mapper_and_vg_paths():
    devices = lvm_guest()
    fstab = f"""\
/dev/mapper/vmt--el-root   /      xfs   defaults  0 0
UUID={U_BOOT}              /boot  ext4  defaults  1 2
/dev/vmt-el/var            /var   xfs   defaults  0 0
/dev/mapper/vmt--el-swap   none   swap  defaults  0 0
"""
    plan = plan_mounts(fstab, devices, RootLocation(devices[3]))
    assert layout(plan) == [
        ("/", "/dev/mapper/vmt--el-root", "xfs", ()),
        ("/boot", "/dev/sda1", "ext4", ()),
        ("/var", "/dev/mapper/vmt--el-var", "xfs", ()),
    ]
    assert [s.reason for s in plan.skipped] == ["swap"]


def test_udev_link_names():
    devices = debian_disk()
    devices[2] = devices[2].with_(label="EFI SYSTEM")
    fstab = f"""\
/dev/disk/by-uuid/{U_ROOT} / ext4 defaults
/dev/disk/by-partuuid/aaaa-03 /boot ext4 defaults
/dev/disk/by-label/EFI\\x20SYSTEM /boot/efi vfat defaults
/dev/disk/by-partlabel/bios /x auto nofail
"""
    plan = plan_mounts(fstab, devices, RootLocation(devices[4]))
    assert [m.device.path for m in plan.mounts] == ["/dev/vda4", "/dev/vda3", "/dev/vda2"]
    assert "/dev/vda1 holds no mountable filesystem (none); skipped (nofail)" in plan.warnings[0]


def test_by_path_names_are_local_disks_not_network_shares():
    devices = debian_disk()
    devices[3] = devices[3].with_(aliases=("/dev/disk/by-path/pci-0000:00:04.0-part3",))
    fstab = f"UUID={U_ROOT} / ext4 defaults\n/dev/disk/by-path/pci-0000:00:04.0-part3 /boot ext4 defaults\n"
    plan = plan_mounts(fstab, devices, RootLocation(devices[4]))
    assert [m.device.path for m in plan.mounts] == ["/dev/vda4", "/dev/vda3"]
    # unknown by-path name: missing, not skipped as a share
    with pytest.raises(StorageError, match="pci-0000:00:05.0-part1 is not among the guest's disks"):
        plan_mounts(
            f"UUID={U_ROOT} / ext4 defaults\n/dev/disk/by-path/pci-0000:00:05.0-part1 /srv ext4 defaults\n",
            devices,
            RootLocation(devices[4]),
        )


def test_aliases_resolve_by_id_names():
    devices = debian_disk()
    devices[3] = devices[3].with_(aliases=("/dev/disk/by-id/virtio-abc-part3",))
    fstab = f"UUID={U_ROOT} / ext4 defaults\n/dev/disk/by-id/virtio-abc-part3 /boot ext4 defaults\n"
    plan = plan_mounts(fstab, devices, RootLocation(devices[4]))
    assert plan.mounts[1].device.path == "/dev/vda3"


def btrfs_guest(known: bool = True) -> list[BlockDevice]:
    subvols = (Subvolume(256, "@"), Subvolume(257, "@home")) if known else None
    return [
        BlockDevice("/dev/vda", None, disk="/dev/vda"),
        part("vda", 1, "btrfs", uuid=U_ROOT, subvolumes=subvols),
    ]


def test_btrfs_subvolumes():
    devices = btrfs_guest()
    fstab = f"UUID={U_ROOT} / btrfs defaults,subvol=@ 0 0\nUUID={U_ROOT} /home btrfs subvol=/@home,compress=zstd 0 0\n"
    plan = plan_mounts(fstab, devices, RootLocation(devices[1], "@"))
    assert layout(plan) == [
        ("/", "/dev/vda1", "btrfs", ("subvol=@",)),
        ("/home", "/dev/vda1", "btrfs", ("subvol=/@home",)),  # compress= is the guest's business
    ]


def test_btrfs_subvolid_and_root_found_without_option():
    devices = btrfs_guest()
    fstab = f"UUID={U_ROOT} / btrfs defaults 0 0\nUUID={U_ROOT} /home btrfs subvolid=257 0 0\n"
    plan = plan_mounts(fstab, devices, RootLocation(devices[1], "@"))
    assert layout(plan) == [
        ("/", "/dev/vda1", "btrfs", ("subvol=/@",)),
        ("/home", "/dev/vda1", "btrfs", ("subvolid=257",)),
    ]


def test_btrfs_missing_subvolume():
    devices = btrfs_guest()
    root = RootLocation(devices[1], "@")
    with pytest.raises(StorageError, match="has no btrfs subvolume '@data'"):
        plan_mounts(
            f"UUID={U_ROOT} / btrfs subvol=@\nUUID={U_ROOT} /data btrfs subvol=@data\n",
            devices,
            root,
        )
    with pytest.raises(StorageError, match="no btrfs subvolume with id 300"):
        plan_mounts(
            f"UUID={U_ROOT} / btrfs subvol=@\nUUID={U_ROOT} /d btrfs subvolid=300\n", devices, root
        )
    # unknown subvolumes (nobody listed them): the mount itself will tell
    unknown = btrfs_guest(known=False)
    plan = plan_mounts(
        f"UUID={U_ROOT} /data btrfs subvol=@data\n", unknown, RootLocation(unknown[1], "@")
    )
    assert plan.mounts[1].options == ("subvol=@data",)


def test_btrfs_root_subvolume_disagreement_is_an_error():
    devices = btrfs_guest()
    with pytest.raises(StorageError, match="/ is subvolume '@old'"):
        plan_mounts(f"UUID={U_ROOT} / btrfs subvol=@old\n", devices, RootLocation(devices[1], "@"))


def test_multi_device_btrfs_is_not_ambiguous():
    devices = [
        part("vda", 1, "btrfs", uuid=U_HOME),
        part("vdb", 1, "btrfs", uuid=U_HOME),
        part("vdc", 1, uuid=U_ROOT),
    ]
    plan = plan_mounts(
        f"UUID={U_ROOT} / ext4 defaults\nUUID={U_HOME} /home btrfs defaults\n",
        devices,
        RootLocation(devices[2]),
    )
    assert plan.mounts[1].device.path == "/dev/vda1"


SKIPPED = """\
UUID={root} / ext4 defaults 0 1
/swapfile none swap sw 0 0
UUID=swap-uuid swap swap defaults 0 0
nfs.example.com:/export /mnt/nfs nfs4 defaults 0 0
//files/share /mnt/smb cifs credentials=/root/.smb 0 0
user@host:/x /mnt/ssh fuse.sshfs defaults 0 0
/dev/vdz1 /mnt/iscsi ext4 _netdev 0 0
proc /proc proc defaults 0 0
tmpfs /dev/shm tmpfs defaults 0 0
/srv/data /home/data none bind 0 0
/dev/vdy1 /mnt/later ext4 noauto 0 0
/dev/sr0 /media/cdrom0 udf,iso9660 user 0 0
/dev/fd0 /media/floppy auto rw,user 0 0
"""


def test_what_is_skipped_and_why():
    devices = debian_disk()
    plan = plan_mounts(SKIPPED.format(root=U_ROOT), devices, RootLocation(devices[4]))
    assert [m.target for m in plan.mounts] == ["/"]
    assert [(s.target, s.reason) for s in plan.skipped] == [
        ("none", "swap"),
        ("swap", "swap"),
        ("/mnt/nfs", "network filesystem"),
        ("/mnt/smb", "network filesystem"),
        ("/mnt/ssh", "network filesystem"),
        ("/mnt/iscsi", "network filesystem"),
        ("/proc", "proc: not on a disk"),
        ("/dev/shm", "tmpfs: not on a disk"),
        ("/home/data", "bind mount"),
        ("/mnt/later", "noauto"),
        ("/media/cdrom0", "removable media"),
        ("/media/floppy", "removable media"),
    ]


def test_missing_nofail_mount_is_a_warning_and_its_children_are_skipped():
    devices = debian_disk()
    fstab = f"UUID={U_ROOT} / ext4 defaults\nLABEL=data /data ext4 nofail\nUUID={U_BOOT} /data/sub ext4 defaults\n"
    plan = plan_mounts(fstab, devices, RootLocation(devices[4]))
    assert [m.target for m in plan.mounts] == ["/"]
    assert plan.warnings == [
        "fstab line 2: LABEL=data on /data: LABEL=data is not among the guest's disks; skipped (nofail)",
        "/data/sub: skipped, /data above it is missing",
    ]


def test_missing_mount_without_nofail_is_an_error():
    devices = debian_disk()
    fstab = f"UUID={U_ROOT} / ext4 defaults\nLABEL=data /data ext4 defaults\n"
    with pytest.raises(StorageError) as exc:
        plan_mounts(fstab, devices, RootLocation(devices[4]))
    assert str(exc.value) == (
        "fstab line 2: LABEL=data on /data: LABEL=data is not among the guest's disks"
        " — attach that disk, or mark it nofail"
    )


@pytest.mark.parametrize("target", ["/var", "/etc", "/usr", "/var/lib", "/var/log", "/usr/lib"])
def test_missing_essential_mount_is_an_error_even_with_nofail(target):
    devices = debian_disk()
    fstab = f"UUID={U_ROOT} / ext4 defaults\nLABEL=gone {target} ext4 nofail\n"
    with pytest.raises(StorageError, match=f"LABEL=gone on {target}: LABEL=gone is not among"):
        plan_mounts(fstab, devices, RootLocation(devices[4]))


def test_encrypted_and_container_devices_are_not_mounted():
    devices = [
        *debian_disk(),
        part("vdb", 1, "crypto_LUKS", uuid=U_HOME),
        part("vdc", 1, "LVM2_member", uuid="pv"),
    ]
    root = RootLocation(devices[4])
    with pytest.raises(
        StorageError, match="/dev/vdb1 is encrypted \\(LUKS\\); vmtailor does not open it"
    ):
        plan_mounts(
            f"UUID={U_ROOT} / ext4 defaults\nUUID={U_HOME} /home ext4 defaults\n", devices, root
        )
    with pytest.raises(
        StorageError, match="/dev/vdc1 holds no mountable filesystem \\(LVM2_member\\)"
    ):
        plan_mounts(f"UUID={U_ROOT} / ext4 defaults\nUUID=pv /srv ext4 defaults\n", devices, root)
    # the guest's own boot would not mount it either
    crypttab_style = plan_mounts(
        f"UUID={U_ROOT} / ext4 defaults\n/dev/mapper/home /home ext4 defaults,nofail\n",
        devices,
        root,
    )
    assert crypttab_style.warnings == [
        "fstab line 2: /dev/mapper/home on /home: /dev/mapper/home is not among the guest's disks; skipped (nofail)"
    ]


def test_the_clone_trap_two_guests_sharing_uuids():
    """Two clones of one template, attached at once: every UUID and label appears twice.
    Each guest's fstab must resolve to its *own* disks."""
    one = debian_disk(group="clone-1", disk="vda")
    two = debian_disk(group="clone-2", disk="vdb")
    everything = one + two
    for own, root in ((one, one[4]), (two, two[4])):
        plan = plan_mounts(DEBIAN_FSTAB, everything, RootLocation(root))
        assert {m.device.group for m in plan.mounts} == {root.group}
        assert [m.device.path for m in plan.mounts] == [own[4].path, own[3].path, own[2].path]
    # by kernel name too: /dev/sda3 is each guest's own first disk
    plan = plan_mounts(
        f"UUID={U_ROOT} / ext4 defaults\n/dev/sda3 /boot ext4 defaults\n",
        everything,
        RootLocation(two[4]),
    )
    assert plan.mounts[1].device.path == "/dev/vdb3"


def test_the_clone_trap_without_groups_is_refused_not_guessed():
    devices = debian_disk(disk="vda") + debian_disk(disk="vdb")
    with pytest.raises(
        StorageError, match="UUID=.* matches several of the guest's devices: /dev/vda3, /dev/vdb3"
    ):
        plan_mounts(DEBIAN_FSTAB, devices, RootLocation(devices[4]))


def test_fstab_root_naming_another_device_is_refused():
    devices = debian_disk()
    with pytest.raises(
        StorageError, match="names /dev/vda3, but the guest's root .* is on /dev/vda4"
    ):
        plan_mounts(f"UUID={U_BOOT} / ext4 defaults\n", devices, RootLocation(devices[4]))


def test_fstab_without_root_entry_or_unresolvable_root():
    devices = debian_disk()
    plan = plan_mounts(f"UUID={U_BOOT} /boot ext4 defaults\n", devices, RootLocation(devices[4]))
    assert [m.target for m in plan.mounts] == ["/", "/boot"]
    assert plan.warnings == ["the guest's fstab has no / entry: using /dev/vda4"]
    plan = plan_mounts("/dev/root / ext4 defaults\n", devices, RootLocation(devices[4]))
    assert plan.warnings == ["fstab line 1: /dev/root on /: not found; using /dev/vda4"]


@pytest.mark.parametrize("target", ["relative/path", "/var/../../etc", "/srv/.."])
def test_mount_points_must_stay_inside_the_root(target):
    devices = debian_disk()
    with pytest.raises(StorageError, match="absolute path without '..'"):
        plan_mounts(
            f"UUID={U_ROOT} / ext4 defaults\nUUID={U_BOOT} {target} ext4 defaults\n",
            devices,
            RootLocation(devices[4]),
        )


def test_mount_points_are_normalised_and_duplicates_warned():
    devices = debian_disk()
    fstab = f"UUID={U_ROOT} / ext4 defaults\nLABEL=EFI /boot/ vfat defaults\nUUID={U_BOOT} //boot/./ ext4 defaults\n"
    plan = plan_mounts(fstab, devices, RootLocation(devices[4]))
    assert layout(plan)[1] == ("/boot", "/dev/vda3", "ext4", ())
    assert plan.warnings == [
        "fstab line 3: UUID=22222222-2222-4222-8222-222222222222 on //boot/./: /boot listed twice; the last one wins"
    ]


def test_declared_type_differing_from_the_disk():
    devices = debian_disk()
    fstab = f"UUID={U_ROOT} / ext3 defaults\nUUID={U_BOOT} /boot xfs defaults\n"
    plan = plan_mounts(fstab, devices, RootLocation(devices[4]))
    assert [m.fstype for m in plan.mounts] == ["ext4", "ext4"]  # what is on the disk
    assert plan.warnings == [
        f"fstab line 2: UUID={U_BOOT} on /boot: fstab says xfs but /dev/vda3 is ext4"
    ]


def test_malformed_lines_carry_into_the_plan_warnings():
    devices = debian_disk()
    plan = plan_mounts(f"oops\nUUID={U_ROOT} / ext4 defaults\n", devices, RootLocation(devices[4]))
    assert plan.warnings == ["fstab line 1: ignored, not 'what where [type …]': oops"]


def test_plan_as_data():
    devices = debian_disk()
    data = plan_mounts(DEBIAN_FSTAB, devices, RootLocation(devices[4])).to_dict()
    assert data["mounts"][1] == {
        "target": "/boot",
        "device": "/dev/vda3",
        "fstype": "ext4",
        "options": [],
        "spec": f"UUID={U_BOOT}",
        "line": 2,
    }
    assert data["skipped"] == [
        {"target": "/tmp", "spec": "tmpfs", "reason": "tmpfs: not on a disk", "line": 4}
    ]
    assert BlockDevice.from_dict(devices[4].to_dict()) == devices[4]


# -- choosing the root ----------------------------------------------------------------
def cand(device, fstab=DEBIAN_FSTAB, os_release=True, subvol=None, default=True):
    release = "/etc/os-release" if os_release else None
    return RootCandidate(device, subvol, release, fstab, is_default_subvol=default)


def test_one_root():
    devices = debian_disk()
    chosen = choose_root([cand(devices[3], None, False), cand(devices[4])], devices)
    assert chosen.device.path == "/dev/vda4" and chosen.location() == RootLocation(devices[4])


def looker(roots: dict[str, str | None]):
    """look() for plan_guest: the devices in `roots` hold os-release and that fstab (None:
    no fstab); every other filesystem holds neither. Records what it was asked."""
    asked: list[str] = []

    def look(device):
        asked.append(device.path)
        if device.path in roots:
            return device, [cand(device, roots[device.path])]
        return device, [cand(device, None, False)]

    return look, asked


def test_what_the_root_mounts_elsewhere_is_not_looked_inside():
    devices = debian_disk()
    look, asked = looker({"/dev/vda4": DEBIAN_FSTAB})
    found = plan_guest(devices, look)
    assert asked == ["/dev/vda4"]  # the last partition first; /boot is in its fstab
    assert found.root.device.path == "/dev/vda4"
    assert layout(found.plan)[:2] == [("/", "/dev/vda4", "ext4", ()),
                                      ("/boot", "/dev/vda3", "ext4", ())]  # fmt: skip


def test_a_root_first_in_the_device_order_still_has_its_boot_skipped_only_after():
    devices = debian_disk()
    devices[3], devices[4] = devices[4], devices[3]  # root on the earlier device
    look, asked = looker({"/dev/vda4": DEBIAN_FSTAB})
    assert plan_guest(devices, look).root.device.path == "/dev/vda4"
    assert asked == ["/dev/vda3", "/dev/vda4"]


def test_a_second_root_is_still_looked_at_and_refused():
    devices = debian_disk("", "vda") + debian_disk("", "vdb")  # one disk attached twice
    look, asked = looker({"/dev/vda4": DEBIAN_FSTAB, "/dev/vdb4": DEBIAN_FSTAB})
    with pytest.raises(StorageError, match="two guest roots"):
        plan_guest(devices, look)
    assert {"/dev/vda4", "/dev/vdb4"} <= set(asked)


def test_a_filesystem_that_cannot_be_looked_in_is_a_warning():
    devices = debian_disk()

    def look(device):
        if device.path == "/dev/vda3":
            raise StorageError("bad superblock")
        return device, [cand(device)]

    found = plan_guest(devices, look)
    assert found.root.device.path == "/dev/vda4"
    assert not any("vda3" in w for w in found.warnings)  # never asked: its fstab has it


def test_two_roots_are_refused():
    devices = debian_disk("", "vda") + debian_disk("", "vdb")
    with pytest.raises(StorageError) as exc:
        choose_root([cand(devices[4]), cand(devices[9])], devices)
    assert str(exc.value) == (
        "two guest roots: /dev/vda4 and /dev/vdb4 both hold /etc/fstab and an OS release file"
        " — attach one guest's disks only (a clone's disk attached twice?)"
    )


def test_root_without_fstab_is_refused():
    devices = debian_disk()
    with pytest.raises(
        StorageError, match="root on /dev/vda4 has /etc/os-release but no /etc/fstab"
    ):
        choose_root([cand(devices[4], fstab=None)], devices)


def test_encrypted_root_is_refused():
    devices = [part("vda", 1, uuid=U_BOOT), part("vda", 2, "crypto_LUKS", uuid="luks")]
    with pytest.raises(StorageError, match="root is encrypted: /dev/vda2 is a LUKS volume"):
        choose_root([cand(devices[0], fstab=None, os_release=False)], devices)


def test_no_root_at_all():
    devices = [part("vda", 1, uuid=U_BOOT)]
    with pytest.raises(
        StorageError, match=r"no guest root found: .* \(looked in no Linux filesystems at all\)"
    ):
        choose_root([], devices)


def test_btrfs_snapshots_of_the_root_are_not_roots():
    fs = part(
        "vda",
        1,
        "btrfs",
        uuid=U_ROOT,
        subvolumes=(Subvolume(256, "@"), Subvolume(258, "@snapshot-1")),
    )
    fstab = f"UUID={U_ROOT} / btrfs subvol=@\n"
    chosen = choose_root(
        [
            cand(fs, fstab, subvol="@", default=False),
            cand(fs, fstab, subvol="@snapshot-1", default=False),
        ],
        [fs],
    )
    assert chosen.subvol == "@"
    # by subvolid, and by being the default subvolume when fstab names none
    by_id = f"UUID={U_ROOT} / btrfs subvolid=258\n"
    assert (
        choose_root(
            [
                cand(fs, by_id, subvol="@", default=False),
                cand(fs, by_id, subvol="@snapshot-1", default=False),
            ],
            [fs],
        ).subvol
        == "@snapshot-1"
    )
    plain = f"UUID={U_ROOT} / btrfs defaults\n"
    assert (
        choose_root(
            [
                cand(fs, plain, subvol="@", default=True),
                cand(fs, plain, subvol="@snapshot-1", default=False),
            ],
            [fs],
        ).subvol
        == "@"
    )


# -- names and tool output --------------------------------------------------------------
@pytest.mark.parametrize(
    "name, split",
    [
        ("/dev/sda", ("sd", 0, None)),
        ("sdb2", ("sd", 1, 2)),
        ("/dev/vdaa1", ("vd", 26, 1)),
        ("xvdc3", ("xvd", 2, 3)),
        ("hda1", ("hd", 0, 1)),
        ("nvme0n1p3", ("nvme", 0, 3)),
        ("nvme1n1", ("nvme", 1, None)),
        ("mmcblk0p2", ("mmcblk", 0, 2)),
        ("loop7p1", ("loop", 7, 1)),
        ("dm-0", None),
        ("root", None),
    ],
)
def test_kernel_names(name, split):
    assert split_kernel_name(name) == split


def test_device_mapper_names():
    assert dm_name("vmt-el", "root") == "vmt--el-root"
    assert split_dm_name("vmt--el-root") == ("vmt-el", "root")
    assert split_dm_name("vg-lv--x") == ("vg", "lv-x")
    assert split_dm_name("cryptroot") is None


def test_blkid_export():
    text = "DEVNAME=/dev/vda2\nLABEL=my\\ disk\\$x\nUUID=5EC0-FFEE\nTYPE=vfat\nPART_ENTRY_NAME=EFI\\ System\nPART_ENTRY_UUID=aaaa-02\nPART_ENTRY_NUMBER=2\n"
    props = parse_blkid_export(text)
    assert props["LABEL"] == "my disk$x" and props["PART_ENTRY_NAME"] == "EFI System"
    dev = from_blkid("/dev/vda2", props, disk="/dev/vda")
    assert (dev.fstype, dev.uuid, dev.partuuid, dev.partlabel, dev.partition) == (
        "vfat",
        "5EC0-FFEE",
        "aaaa-02",
        "EFI System",
        2,
    )


def test_lvs_report():
    text = (
        "  LVM2_VG_NAME='vmt-el' LVM2_LV_NAME='root' LVM2_LV_PATH='/dev/vmt-el/root' LVM2_LV_DM_PATH='/dev/mapper/vmt--el-root' LVM2_LV_ACTIVE='active' LVM2_LV_ATTR='-wi-a-----' LVM2_DEVICES='/dev/vda2(0)'\n"
        "  LVM2_VG_NAME='vmt-el' LVM2_LV_NAME='pool' LVM2_LV_PATH='' LVM2_LV_DM_PATH='/dev/mapper/vmt--el-pool' LVM2_LV_ACTIVE='' LVM2_LV_ATTR='twi---tz--' LVM2_DEVICES='pool_tdata(0)'\n"
    )
    root, pool = lvm.parse_lvs(text)
    assert (root.vg, root.lv, root.dm_path, root.active, root.devices, root.mountable) == (
        "vmt-el", "root", "/dev/mapper/vmt--el-root", True, ("/dev/vda2",), True,
    )  # fmt: skip
    assert not pool.active and not pool.mountable


def test_btrfs_subvolume_listing():
    listed = probe.parse_subvolume_list(
        "ID 256 gen 10 top level 5 path @\nID 257 gen 11 top level 5 path @home\nID 260 gen 12 top level 256 path @/var/lib/machines\n"
    )
    assert listed == [(256, 5, "@"), (257, 5, "@home"), (260, 256, "@/var/lib/machines")]
    assert probe.parse_default_subvolume("ID 5 (FS_TREE)\n") == 5
    assert probe.parse_default_subvolume("ID 256 gen 10 top level 5 path @\n") == 256


def test_xfs_log_state_from_xfs_logprint():
    header = "xfs_logprint:\n    data device: 0xfd00\n    log device: 0xfd00 daddr: 307248\n\n"
    dirty = header + "    log tail: 2 head: 18 state: <DIRTY>\n\n\nLOG REC AT LSN cycle 1 block 2\n"
    assert recovery.xfs_log_state(dirty) == "DIRTY"
    assert recovery.xfs_log_state(header + "    log tail: 2 head: 2 state: <CLEAN>\n") == "CLEAN"
    # a transaction's text that looks like a state line does not count: only the header's
    assert recovery.xfs_log_state(header + "TRANS: state: <CLEAN>\n") is None
    assert recovery.xfs_log_state("") is None
