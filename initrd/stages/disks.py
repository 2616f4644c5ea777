"""Stage `disks`: find the guest among the disks (never the config media or a CD),
activate its LVM volume groups, find its root (os-release + fstab) and plan its fstab."""

from __future__ import annotations

import os
from collections.abc import Sequence

from vmtailor.customizer.run import run
from vmtailor.customizer.storage import discover
from vmtailor.customizer.storage.devices import BlockDevice
from vmtailor.customizer.storage.guest import find_guest

from . import Context, StageError, State, say

# The driver the image has for each filesystem a guest may mount (initrd/features/
# filesystems.py), and the nls tables FAT's default codepage and iocharset need
# (Debian's kernel: cp437, ascii). Only what the image has: a name modprobe cannot find
# is an error on the console, and kmod's modprobe gives up at the first one.
DRIVERS = {"ext2": "ext4", "ext3": "ext4", "ext4": "ext4", "xfs": "xfs", "btrfs": "btrfs"}
FAT = ("vfat", "nls_cp437", "nls_ascii")


def _module_name(path: str) -> str:
    return os.path.basename(path).split(".", 1)[0].replace("-", "_")


def with_softdeps(modules: Sequence[str], moddir: str | None = None) -> list[str]:
    """`modules` preceded by the softdeps ("pre:") of them and of what they depend on, as
    kmod's modprobe would load them: busybox's reads only modules.dep, and the kernel
    then asks for each missing one at first use — for ext4, crc32c at the first mount,
    through a modprobe process of its own (~0.1 s under emulation)."""
    moddir = moddir or os.path.join("/lib/modules", os.uname().release)
    deps: dict[str, list[str]] = {}
    pre: dict[str, list[str]] = {}
    try:
        with open(os.path.join(moddir, "modules.dep")) as f:
            for line in f:
                module, _, needs = line.partition(":")
                deps[_module_name(module)] = [_module_name(n) for n in needs.split()]
        with open(os.path.join(moddir, "modules.softdep")) as f:
            for line in f:
                words = line.split()
                if len(words) >= 3 and words[0] == "softdep":
                    # softdep MODULE pre: A B post: C — only what comes before post:
                    names = words[2:]
                    if "post:" in names:
                        names = names[: names.index("post:")]
                    pre.setdefault(words[1].replace("-", "_"), []).extend(
                        n for n in names if n != "pre:"
                    )
        with open(os.path.join(moddir, "modules.alias")) as f:
            aliases = {w[1] for w in map(str.split, f) if len(w) == 3 and w[0] == "alias"}
    except OSError:
        return list(modules)
    # only what the image has: a softdep on a module built into the kernel or left out is
    # a name modprobe cannot find
    first: list[str] = []
    for module in modules:
        name = module.replace("-", "_")
        for needed in (name, *deps.get(name, ())):
            for soft in pre.get(needed, ()):
                if soft not in first and (soft in aliases or soft.replace("-", "_") in deps):
                    first.append(soft)
    return first + [m for m in modules if m not in first]


def load_filesystems(devices: Sequence[BlockDevice]) -> None:
    """The drivers for the filesystems on the guest's devices, with their softdeps, in one
    modprobe run. The kernel would load each at its first mount, one modprobe process per
    module; a module this leaves out (another nls table), it still loads on demand."""
    fstypes = {d.fstype for d in devices}
    modules = sorted({DRIVERS[t] for t in fstypes if t in DRIVERS})
    if "vfat" in fstypes:
        modules += FAT
    if modules:
        run(["modprobe", "-a", "-q", *with_softdeps(modules)], check=False)


def stage(state: State, ctx: Context) -> None:
    media = [state.config_device] if state.config_device else []
    media_disks = [b.disk for b in discover.sys_block() if b.path in media]
    devices = discover.guest_devices(media_disks, only=ctx.disks, known=ctx.probed)
    if not devices:
        raise StageError("no guest disks: only the customization and config media are attached")
    devices += discover.logical_volumes(devices, ctx.mounts)
    for device in devices:
        say(f"  {device.describe()}")
    load_filesystems(devices)
    found = find_guest(devices, ctx.run_dir)
    ctx.found = found
    state.root = found.root.where
    state.warnings.extend(found.warnings)
    for warning in found.warnings:
        say(f"warning: {warning}")
    say(f"guest root: {found.root.where}")
