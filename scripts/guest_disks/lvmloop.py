"""Logical volumes without device-mapper: this host's kernel has none, so a linear LV is
reached as a loop device over its extents (offset and size read from LVM's metadata with
--driverloaded n). Used to build the LVM fixture and to read it back in tests; the
initrd activates LVs the ordinary way."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator

from .disk import Loop, attached, sh

NO_DM = ["--driverloaded", "n", "--config", "devices{use_devicesfile=0} backup{backup=0 archive=0}"]


def lvm(*argv: str, pv: str) -> str:
    return sh("lvm", *argv, *NO_DM, "--devices", pv)


def _report(*argv: str, pv: str) -> list[dict[str, str]]:
    rows = []
    out = lvm(*argv, "--nameprefixes", "--noheadings", "--units", "b", "--nosuffix", pv=pv)
    for line in out.splitlines():
        if line.strip():
            rows.append(dict(item.split("=", 1) for item in shlex.split(line)))
    return rows


def extents(pv: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(vg, lv) -> (byte offset within the PV, size) for every single-segment LV."""
    pe_start = int(_report("pvs", "-o", "pe_start", pv=pv)[0]["LVM2_PE_START"])
    out: dict[tuple[str, str], tuple[int, int]] = {}
    fields = "vg_name,lv_name,seg_pe_ranges,vg_extent_size"
    for row in _report("lvs", "--segments", "-o", fields, pv=pv):
        key = (row["LVM2_VG_NAME"], row["LVM2_LV_NAME"])
        if key in out:
            raise RuntimeError(f"{key[0]}/{key[1]} has several segments: not mappable")
        first, last = row["LVM2_SEG_PE_RANGES"].rsplit(":", 1)[1].split("-")
        size = int(row["LVM2_VG_EXTENT_SIZE"])
        out[key] = (pe_start + int(first) * size, (int(last) - int(first) + 1) * size)
    return out


@contextlib.contextmanager
def lv_loops(image: str, loop: Loop, pv_part: int, *, readonly: bool = False) -> Iterator[dict]:
    """{(vg, lv): loop device} for the LVs on partition `pv_part` of `image` (attached
    as `loop`), detached when the block ends."""
    base = loop.part_start(pv_part)
    with contextlib.ExitStack() as stack:
        out = {}
        for key, (offset, size) in extents(loop.part(pv_part)).items():
            lv = stack.enter_context(
                attached(image, readonly=readonly, offset=base + offset, size=size)
            )
            out[key] = lv.device
        yield out
