"""LVM through the `lvm` tool, confined to the devices it is given: the initrd has no
udev (LVM makes its own /dev/mapper nodes), and on a host a guest's volume groups must
not meet the host's own or a second clone's identical ones."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..run import run

CONFIG = (
    "devices{use_devicesfile=0 obtain_device_list_from_udev=0} "
    "activation{udev_sync=0 udev_rules=0 monitoring=0} "
    "backup{backup=0 archive=0}"
)


@dataclass(frozen=True)
class LogicalVolume:
    """One LVM logical volume, as lvs reports it."""

    vg: str
    lv: str
    path: str  # /dev/vg/lv
    dm_path: str  # /dev/mapper/vg-lv
    active: bool
    devices: tuple[str, ...]  # the PVs it lives on: /dev/vda2
    attr: str = ""

    @property
    def mountable(self) -> bool:
        # thin pools, raid/mirror images and snapshot origins' metadata are not filesystems
        return self.attr[:1] not in ("t", "T", "i", "I", "l", "e", "d", "D")


def _args(pvs: Sequence[str]) -> list[str]:
    args = ["--config", CONFIG]
    for pv in pvs:
        args += ["--devices", pv]
    return args


def parse_lvs(text: str) -> list[LogicalVolume]:
    """`lvs --nameprefixes --noheadings` rows: LVM2_VG_NAME='vg' LVM2_LV_NAME='root' …"""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        row = {}
        for item in shlex.split(line):
            key, _, value = item.partition("=")
            row[key.removeprefix("LVM2_")] = value
        devices = tuple(d.partition("(")[0] for d in row.get("DEVICES", "").split(",") if d.strip())
        out.append(
            LogicalVolume(
                vg=row["VG_NAME"],
                lv=row["LV_NAME"],
                path=row.get("LV_PATH", ""),
                dm_path=row.get("LV_DM_PATH", ""),
                active=row.get("LV_ACTIVE", "") == "active",
                devices=devices,
                attr=row.get("LV_ATTR", ""),
            )
        )
    return out


def list_lvs(pvs: Sequence[str], *, driver: bool = True) -> list[LogicalVolume]:
    """The LVs on `pvs`. driver=False reads metadata only (a kernel without device-mapper)."""
    if not pvs:
        return []
    argv = ["lvm", "lvs", "--nameprefixes", "--noheadings", "--unbuffered"]
    argv += ["-o", "vg_name,lv_name,lv_path,lv_dm_path,lv_active,lv_attr,devices"]
    if not driver:
        argv += ["--driverloaded", "n"]
    return parse_lvs(run([*argv, *_args(pvs)]).stdout.decode())


def activate(pvs: Sequence[str]) -> None:
    run(["lvm", "vgscan", "--mknodes", *_args(pvs)], check=False)
    run(["lvm", "vgchange", "-ay", *_args(pvs)])


def deactivate(vgs: Sequence[str], pvs: Sequence[str]) -> None:
    if vgs:
        run(["lvm", "vgchange", "-an", *_args(pvs), *sorted(set(vgs))])
