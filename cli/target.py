"""Which guest a command works on: --root DIR (a mounted guest tree) or --disk IMG… (one
guest's disk images, in its disk order, opened in a libguestfs appliance).

open_guest() is the one way to open either; the CLI (open_target) and the Python API
(vmtailor.api.open_root / open_disks) both go through it, so that the lock, the image
checks and the appliance's life are the same whichever asked."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .customizer import lock
from .customizer.errors import VmtailorError
from .customizer.localroot import LocalRoot
from .customizer.root import Root
from .output import warn

if TYPE_CHECKING:
    from .offline.appliance import OpenGuest


def add_target_arguments(parser: Any) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--root",
        metavar="DIR",
        help="the guest's root filesystem, mounted at DIR (with its /boot, /var … mounted "
        "beneath it as the guest's fstab has them)",
    )
    group.add_argument(
        "--disk",
        metavar="IMG",
        nargs="+",
        help="the guest's disk image(s) — qcow2, raw, vmdk, vhdx … — in its disk order: "
        "one guest, mounted as its own fstab says (libguestfs)",
    )


@dataclass
class Target:
    root: Root
    where: str  # how to name it again on a command line: --root DIR / --disk IMG…
    guest: OpenGuest | None = None  # with --disk: how the images were found and mounted
    readonly: bool = False
    warnings: list[str] = field(default_factory=list)  # for the caller to show


@contextlib.contextmanager
def open_guest(
    *, root: str | None = None, disks: Sequence[str] | None = None, readonly: bool = False
) -> Iterator[Target]:
    """The guest's Root for the length of the block — a directory `root`, or the images
    `disks` in the guest's disk order — locked against other vmtailor runs: exclusively,
    or shared when `readonly` (see customizer/lock.py). Images are checked (refused when
    in use by a running VM or, unless `readonly`, not writable), one appliance is
    launched, and the guest is unmounted and the appliance shut down after."""
    if not disks:
        if root is None:
            raise ValueError("open_guest: give a root directory or disk images")
        if not readonly and os.geteuid() != 0:
            # every file vmtailor writes (its journal first) is given its owner in the guest,
            # which only root may do: refuse before anything, even a lock file, is made
            raise VmtailorError(
                f"--root {root}: changing a guest's files needs root (they are owned by "
                "the guest's users)",
                hint="run as root (sudo vmtailor …), or look first with --dry-run",
            )
        tree = LocalRoot(root)
        with lock.hold([tree.top], tree.top, shared=readonly):
            yield Target(tree, f"--root {root}", readonly=readonly)
        return
    from .offline import images
    from .offline.appliance import Appliance, Drive, GuestSpec

    found = [images.info(path) for path in disks]
    with lock.hold([i.path for i in found], " ".join(disks), shared=readonly):
        drives = []
        for image in found:
            if readonly:
                images.check_not_in_use(image)
            else:
                images.check_writable(image)
                images.check_consistent(image)
            drives.append(Drive(image.path, image.format))
        spec = GuestSpec("guest", tuple(drives))
        with Appliance([spec], readonly=readonly) as app, app.open("guest") as guest:
            where = "--disk " + " ".join(disks)
            yield Target(guest.root, where, guest, readonly, list(guest.warnings))


@contextlib.contextmanager
def open_target(args: Any, *, readonly: bool = False) -> Iterator[Target]:
    """open_guest() for a command's --root / --disk, its warnings shown on stderr."""
    with open_guest(root=args.root, disks=args.disk, readonly=readonly) as target:
        for message in target.warnings:
            warn(message)
        yield target
