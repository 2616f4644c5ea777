"""Which guest a command works on: --root DIR (a mounted guest tree) or --disk IMG… (one
guest's disk images, in its disk order, opened in a libguestfs appliance)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from .customizer import lock
from .customizer.errors import VmtailorError
from .customizer.localroot import LocalRoot
from .customizer.root import Root
from .output import warn


def add_target_arguments(parser) -> None:
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


def open_root(args, *, readonly: bool = False) -> Root:
    if not readonly and os.geteuid() != 0:
        # every file vmtailor writes (its journal first) is given its owner in the guest,
        # which only root may do: refuse before anything, even a lock file, is made
        raise VmtailorError(
            f"--root {args.root}: changing a guest's files needs root (they are owned by "
            "the guest's users)",
            hint="run as root (sudo vmtailor …), or look first with --dry-run",
        )
    return LocalRoot(args.root)


@dataclass
class Target:
    root: Root
    where: str  # how to name it again on a command line: --root DIR / --disk IMG…
    guest: object | None = None  # offline.appliance.OpenGuest with --disk


@contextlib.contextmanager
def open_target(args, *, readonly: bool = False) -> Iterator[Target]:
    """The guest's Root for the length of the block, locked against other vmtailor runs:
    exclusively, or shared when `readonly` (see customizer/lock.py). With --disk the
    images are checked (refused when in use by a running VM or, unless `readonly`, not
    writable), one appliance is launched, and the guest is unmounted and the appliance
    shut down after."""
    if not getattr(args, "disk", None):
        root = open_root(args, readonly=readonly)
        with lock.hold([root.top], root.top, shared=readonly):
            yield Target(root, f"--root {args.root}")
        return
    from .offline import images
    from .offline.appliance import Appliance, Drive, GuestSpec

    found = [images.info(path) for path in args.disk]
    with lock.hold([i.path for i in found], " ".join(args.disk), shared=readonly):
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
            for message in guest.warnings:
                warn(message)
            yield Target(guest.root, "--disk " + " ".join(args.disk), guest)
