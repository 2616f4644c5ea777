"""md RAID without a kernel: mdadm's reports parsed (tests/unit/data/md holds what mdadm
4.2 printed on this machine — --examine on a host loop device and in the libguestfs
appliance, --detail of an array it assembled there), and the assembly's decisions
driven through a scripted shell that answers with those same reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmtailor.customizer.storage import md
from vmtailor.customizer.storage.devices import BlockDevice
from vmtailor.customizer.storage.errors import StorageError

DATA = Path(__file__).parent / "data" / "md"
UUID = "2c2336f7:e0bbbb3f:59c9db0b:835459a9"


def data(name: str) -> str:
    return (DATA / name).read_text()


def test_examine_of_two_members():
    one, two = md.parse_examine(data("examine-two-members.txt"))
    assert (one.path, two.path) == ("/dev/sda1", "/dev/sdb1")
    assert one.uuid == two.uuid == UUID
    assert one.name == "(none):guestmd"  # without mdadm's "(local to host …)"
    assert (one.level, one.raid_devices, one.events, one.state) == ("raid1", 2, "19", "clean")
    assert one.preferred_minor is None  # metadata 1.2 has none


def test_examine_on_the_host_and_of_a_disk_without_superblock():
    (member,) = md.parse_examine(data("examine-host-loop.txt"))
    assert (member.path, member.uuid, member.events) == ("/dev/loop0p1", UUID, "18")
    # a whole disk: mdadm prints its partition table, not a member
    assert md.parse_examine(data("examine-whole-disk.txt")) == []


def test_detail_of_a_running_clean_array():
    detail = md.parse_detail(data("detail-clean.txt"))
    assert detail.state == "clean"
    assert (detail.raid_devices, detail.active_devices) == (2, 2)
    assert detail.running and not detail.degraded
    # mdadm --detail of an array that is not there: nothing running
    assert not md.parse_detail("mdadm: cannot open /dev/md100: No such file or directory").running


def test_members_grouped_per_array_and_names_the_guest_may_use():
    members = md.parse_examine(data("examine-two-members.txt"))
    (array,) = md.group_arrays(members)
    assert [m.path for m in array.members] == ["/dev/sda1", "/dev/sdb1"]
    assert array.short_name == "guestmd" and array.clean
    conf = md.parse_mdadm_conf(
        "DEVICE partitions\n# ARRAY /dev/md9 UUID=" + UUID + "\n"
        "ARRAY /dev/md0 metadata=1.2\n   UUID=" + UUID.upper() + " name=h:guestmd\n"
    )
    assert conf == {UUID.replace(":", ""): ["/dev/md/0", "/dev/md0"]}
    assert md.guest_names(array, conf) == ("/dev/md/guestmd", "/dev/md/0", "/dev/md0")


def test_a_hostile_array_name_gives_no_device_name():
    member = md.Member("/dev/sda1", UUID, name="h:../../sda", level="raid1", raid_devices=2)
    assert md.guest_names(md.Array(UUID, member.name, "raid1", 2, (member,))) == ()


def test_assembly_is_read_only_from_the_named_members_only():
    (array,) = md.group_arrays(md.parse_examine(data("examine-two-members.txt")))
    argv = md.assemble_argv(array, "/dev/md100")
    assert argv == ["mdadm", "--assemble", "--readonly", "--config=none", "/dev/md100",
                    f"--uuid={UUID}", "/dev/sda1", "/dev/sdb1"]  # fmt: skip
    assert "--run" in md.assemble_argv(array, "/dev/md100", run_degraded=True)


class Shell:
    """mdadm as a script: each command's answer by its first words (a list: one answer
    per call, in turn); every argv kept."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.argvs: list[list[str]] = []

    def __call__(self, argv):
        self.argvs.append(list(argv))
        for prefix, answer in self.answers.items():
            if " ".join(argv).startswith(prefix):
                return answer.pop(0) if isinstance(answer, list) else answer
        return 0, ""

    def ran(self, *words: str) -> list[list[str]]:
        return [a for a in self.argvs if all(w in a for w in words)]


def test_a_complete_array_is_assembled_once_without_warning():
    shell = Shell({
        "mdadm --examine": (0, data("examine-two-members.txt")),
        "mdadm --detail /dev/md100": (0, data("detail-clean.txt")),
    })  # fmt: skip
    done = md.assemble(["/dev/sda1", "/dev/sdb1"], shell)
    assert done.paths == ["/dev/md100"] and done.warnings == []
    assert len(shell.ran("--assemble")) == 1 and shell.ran("--run") == []
    assert not any("--update" in a or "--force" in a for a in shell.argvs)


def test_examine_of_a_090_member_and_of_an_array_created_degraded():
    old, degraded = md.parse_examine(data("examine-090-and-degraded.txt"))
    assert old.uuid == "ac67a24e:6b4d5a18:3d186b3c:53958f34"  # "(local to host …)" dropped
    assert (old.name, old.preferred_minor, old.events) == ("", 0, "19")
    (array,) = md.group_arrays([old])
    assert md.guest_names(array) == ("/dev/md0", "/dev/md/0")
    # created with a member "missing": its superblock says active, never shut down
    assert (degraded.name, degraded.state) == ("(none):deg", "active")
    assert not md.group_arrays([degraded])[0].clean
    assert not old.interrupted and md.group_arrays([old])[0].clean


def test_details_of_degraded_and_090_arrays():
    degraded = md.parse_detail(data("detail-degraded.txt"))
    assert degraded.state == "clean, degraded" and degraded.running and degraded.degraded
    assert (degraded.raid_devices, degraded.active_devices) == (2, 1)
    old = md.parse_detail(data("detail-090.txt"))
    assert old.running and not old.degraded


def test_an_array_degraded_before_starts_without_run_but_with_a_warning():
    (_, _member) = md.parse_examine(data("examine-090-and-degraded.txt"))
    shell = Shell({
        "mdadm --examine": (0, data("examine-090-and-degraded.txt").split("/dev/sda1:")[0]
                            + "/dev/sda3:" + data("examine-090-and-degraded.txt").split("/dev/sda3:")[1]),
        "mdadm --assemble": (0, data("assemble-degraded.txt")),
        "mdadm --detail /dev/md100": (0, data("detail-degraded.txt")),
    })  # fmt: skip
    done = md.assemble(["/dev/sda3"], shell)
    assert done.paths == ["/dev/md100"] and shell.ran("--run") == []
    (warning,) = done.warnings
    assert "md array deg (raid1, 1 of 2) is degraded (1 of 2 members)" in warning


def test_an_array_missing_a_member_is_started_with_run_and_a_warning():
    one = data("examine-two-members.txt").split("/dev/sdb1:")[0]
    shell = Shell({
        "mdadm --examine": (0, one),
        "mdadm --assemble --readonly --config=none /dev/md100 --uuid": (
            1, data("assemble-one-of-two.txt")),
        "mdadm --detail": [(1, "mdadm: cannot open /dev/md100: No such file or directory"),
                           (0, data("detail-degraded.txt"))],
    })  # fmt: skip
    done = md.assemble(["/dev/sda1"], shell)
    assert done.paths == ["/dev/md100"]
    (warning,) = done.warnings
    assert "md array guestmd (raid1, 1 of 2) is degraded (1 of 2 members)" in warning
    assert len(shell.ran("--run")) == 1
    assert not any("--update" in a or "--force" in a for a in shell.argvs)


def test_an_array_that_cannot_start_is_an_error_and_the_others_are_stopped():
    shell = Shell({
        "mdadm --examine": (0, data("examine-two-members.txt").replace(UUID, "0:1:2:3", 1)),
        "mdadm --detail /dev/md100": (0, data("detail-clean.txt")),
        "mdadm --detail /dev/md101": (1, "mdadm: cannot open /dev/md101"),
        "mdadm --assemble --readonly --config=none /dev/md101 --run": (
            1, "mdadm: /dev/md101 assembled from 1 drive - need all 2 to start it"),
    })  # fmt: skip
    with pytest.raises(StorageError, match=r"cannot assemble md array guestmd .*need all 2"):
        md.assemble(["/dev/sda1", "/dev/sdb1"], shell)
    assert ["mdadm", "--stop", "/dev/md100"] in shell.argvs


def test_only_a_cleanly_stopped_array_is_made_writable():
    shell = Shell({})
    unclean = md.Member("/dev/sda1", UUID, "h:root", "raid1", 2, "40", "active")
    cut_off = md.Member("/dev/sda1", UUID, "h:root", "raid1", 2, "40", "clean", interrupted=True)
    for member in (unclean, cut_off):
        array = md.Array(UUID, "h:root", "raid1", 2, (member,))
        with pytest.raises(StorageError, match="not shut down cleanly .*or was resyncing"):
            md.readwrite(array, "/dev/md100", shell)
    assert shell.argvs == []
    clean = md.Array(UUID, "h:root", "raid1", 2, (md.Member("/dev/sda1", UUID, state="clean"),))
    md.readwrite(clean, "/dev/md100", shell)
    assert shell.argvs == [["mdadm", "--readwrite", "/dev/md100"]]


def test_arrays_under_a_mount_are_found_through_lvm():
    devices = [
        BlockDevice("/dev/md100", "LVM2_member", array="root", parents=("/dev/vda1", "/dev/vdb1")),
        BlockDevice("/dev/md101", "ext4", array="srv", parents=("/dev/vda2",)),
        BlockDevice("/dev/md102", "ext4", array="spare"),
        BlockDevice("/dev/mapper/vg-root", "ext4", vg="vg", lv="root", parents=("/dev/md100",)),
        BlockDevice("/dev/vda3", "ext4"),
    ]
    assert md.holding(["/dev/mapper/vg-root", "/dev/md101", "/dev/vda3"], devices) == {
        "/dev/md100",
        "/dev/md101",
    }
    assert BlockDevice.from_dict(devices[0].to_dict()) == devices[0]


def test_a_member_mdadm_cannot_read_is_an_error_not_an_array_less():
    shell = Shell(
        {"mdadm --examine": (1, "mdadm: cannot open /dev/sda2: No such file or directory")}
    )
    with pytest.raises(StorageError, match=r"superblock of /dev/sda2: cannot open /dev/sda2"):
        md.assemble(["/dev/sda2"], shell)


def test_a_member_taken_into_another_array_is_freed_first():
    """udev's incremental assembly (the libguestfs appliance) had put /dev/sda1 into an
    inactive md127: mdadm would find it busy."""
    holders = "/sys/class/block/sda1/holders:\nmd127\n\n/sys/class/block/sdb1/holders:\n"
    shell = Shell({
        "mdadm --examine": (0, data("examine-two-members.txt")),
        "ls /sys/class/block/sda1/holders /sys/class/block/sdb1/holders": (0, holders),
        "mdadm --detail /dev/md100": (0, data("detail-clean.txt")),
    })  # fmt: skip
    md.assemble(["/dev/sda1", "/dev/sdb1"], shell)
    stop = shell.argvs.index(["mdadm", "--stop", "/dev/md127"])
    assert stop < shell.argvs.index(shell.ran("--assemble")[0])


def test_an_array_that_will_not_stop_is_an_error_naming_it():
    shell = Shell(
        {"mdadm --stop /dev/md101": (1, "mdadm: Cannot get exclusive access to /dev/md101")}
    )
    with pytest.raises(StorageError, match=r"cannot stop md arrays: /dev/md101: .*exclusive"):
        md.stop(["/dev/md100", "/dev/md101"], shell)
    assert shell.argvs == [["mdadm", "--stop", "/dev/md101"], ["mdadm", "--stop", "/dev/md100"]]
    md.stop(["/dev/md101"], shell, check=False)  # cleaning up after another error
