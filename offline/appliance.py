"""One libguestfs appliance holding several guests' disks, launched once, and each guest
opened in turn: its devices found among its own disks only, its root found, its fstab
planned and mounted, a GuestfsRoot handed out — and everything unmounted afterwards,
whatever happened.

A launch costs ~20 s under TCG and opening a guest well under a second, so a batch puts
as many clones as it can into one appliance. Every drive gets a label (list_disk_labels
then names its partitions label1, label2, …), so a guest's disks are known by name, not
guessed from the order the kernel found them in."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..customizer.errors import VmtailorError
from ..customizer.storage.devices import BlockDevice
from ..customizer.storage.errors import StorageError
from ..customizer.storage.guest import FoundGuest
from ..customizer.storage.plan import Mount
from .devices import (
    GuestDevices,
    guest_devices,
    partitions_by_disk,
    release_lvm,
    release_md,
    writable_md,
)
from .guestfs_root import GuestfsRoot, error_text
from .mount import mount_plan, needs_sync, unmount_made
from .probe import find_guest

log = logging.getLogger("vmtailor.offline")

# set once a launch with KVM has failed in this process (see Appliance.launch)
_force_tcg = "force_tcg" in os.environ.get("LIBGUESTFS_BACKEND_SETTINGS", "")

# Drives kept free below the handle's limit (g.max_disks(), 255 with virtio-scsi): the
# appliance's own disk shares the controller, and a limit met exactly leaves no margin.
DRIVE_MARGIN = 8


class ApplianceError(VmtailorError):
    """The appliance could not be launched, or died: every guest in it is affected."""


@dataclass(frozen=True)
class Drive:
    path: str
    format: str  # qcow2, raw, vmdk … (never probed from the data: a raw guest disk
    # could hold a qcow2 header naming a host file as its backing file)


@dataclass(frozen=True)
class GuestSpec:
    name: str
    drives: tuple[Drive, ...]  # in the guest's own disk order


@dataclass
class OpenGuest:
    """A guest mounted in the appliance: its Root, and how it was found and mounted."""

    name: str
    root: GuestfsRoot
    found: FoundGuest
    mounted: list[Mount]
    images: dict[str, str]  # appliance disk (/dev/sdb) -> image path
    warnings: list[str] = field(default_factory=list)

    def where(self, device: BlockDevice) -> str:
        """A device as the user knows it: image and partition, VG/LV, or md array."""
        if device.vg:
            return f"{device.vg}/{device.lv}"
        if device.array:  # its /dev/mdN is this appliance's choice, not the guest's
            return f"md array {device.array}"
        image = os.path.basename(self.images.get(device.disk or "", device.path))
        return f"{image} partition {device.partition}" if device.partition else image

    def plan_dict(self) -> dict:
        """The guest's fstab plan as `inspect --json` shows it. Every planned mount is
        listed, as virt-inspector lists them; `mounted` is false for one this opening left
        out (a read-only look cannot make a missing mount point; `warnings` says why)."""
        plan = self.found.plan
        mounted = {m.target for m in self.mounted}
        return {
            "root": self.where(self.found.root.device)
            + (f" subvolume {self.found.root.subvol}" if self.found.root.subvol else ""),
            "mounts": [
                {**m.to_dict(), "device": self.where(m.device), "mounted": m.target in mounted}
                for m in plan.mounts
            ],
            "skipped": [s.__dict__ for s in plan.skipped],
            "warnings": self.warnings,
        }


def _named(text: str, images: dict[str, str]) -> str:
    """Appliance device names in a message replaced by the images they are on."""

    def name(m: re.Match) -> str:
        image = images.get(m.group(1))
        if image is None:
            return m.group(0)
        image = os.path.basename(image)
        return f"{image} partition {m.group(2)}" if m.group(2) else image

    return re.sub(r"(/dev/sd[a-z]+)(\d*)\b", name, text)


def _label(index: int) -> str:
    # libguestfs drive labels are letters only; two letters after "d" give 676 names
    return "d" + chr(97 + index // 26) + chr(97 + index % 26)


def _guestfs():
    import guestfs  # Debian's python3-guestfs, only where images are opened

    return guestfs.GuestFS(python_return_dict=True)


class Appliance:
    """with Appliance(guests) as app: with app.open("web01") as guest: … guest.root"""

    def __init__(self, guests: Sequence[GuestSpec], *, readonly: bool = False):
        names = [guest.name for guest in guests]
        if len(set(names)) != len(names):
            raise ValueError("guest names must be unique in one appliance")
        self.guests = {guest.name: guest for guest in guests}
        self.readonly = readonly
        self.g = None
        self._disks: dict[str, list[tuple[str, str]]] = {}  # guest -> [(device, label)]
        self._partitions: dict[str, list[tuple[int, str]]] = {}

    @property
    def drive_count(self) -> int:
        return sum(len(guest.drives) for guest in self.guests.values())

    def __enter__(self) -> Appliance:
        self.launch()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.close()
        except ApplianceError as error:
            if exc is None:
                raise
            log.warning("%s", error)  # the error already on its way says more

    def launch(self) -> None:
        global _force_tcg
        try:
            g, labels = self._start(tcg=_force_tcg)
        except ApplianceError as exc:
            if _force_tcg:
                raise
            # accel=kvm:tcg falls back only when KVM is absent; a /dev/kvm that is there
            # but broken (nested, no VMX) kills QEMU at start instead. Once seen, every
            # later appliance of this process goes straight to TCG.
            log.warning("%s; trying again without KVM (TCG)", exc)
            _force_tcg = True
            g, labels = self._start(tcg=True)
        by_label = g.list_disk_labels()
        self._partitions = partitions_by_disk(by_label)
        self._disks = {name: [(by_label[lb], lb) for lb in lbs] for name, lbs in labels.items()}
        self.g = g

    def _start(self, *, tcg: bool):
        g = _guestfs()
        if tcg:
            g.set_backend_settings([*g.get_backend_settings(), "force_tcg"])
        limit = g.max_disks() - DRIVE_MARGIN
        if self.drive_count > limit:
            g.close()
            raise ApplianceError(f"{self.drive_count} drives: one appliance takes {limit}")
        labels: dict[str, list[str]] = {}
        for guest in self.guests.values():
            for drive in guest.drives:
                label = _label(sum(len(v) for v in labels.values()))
                g.add_drive_opts(drive.path, format=drive.format, readonly=self.readonly,
                                 label=label)  # fmt: skip
                labels.setdefault(guest.name, []).append(label)
        try:
            g.launch()
        except RuntimeError as exc:
            g.close()
            first = error_text(exc).splitlines()[0]  # the rest is libguestfs' debugging advice
            raise ApplianceError(
                f"the libguestfs appliance did not start: {first}",
                hint="LIBGUESTFS_DEBUG=1 shows why",
            ) from None
        return g, labels

    def alive(self) -> bool:
        try:
            return self.g is not None and bool(self.g.is_ready())
        except RuntimeError:
            return False

    def close(self) -> None:
        """Shut the appliance down; raise when that fails, since writes might be lost."""
        g, self.g = self.g, None
        if g is None:
            return
        try:
            g.shutdown()  # flushes the guests' disks; close() alone would not wait
        except RuntimeError as exc:
            raise ApplianceError(
                f"the appliance did not shut down cleanly: {error_text(exc)}"
            ) from None
        finally:
            g.close()

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[OpenGuest]:
        """Find guest `name` on its own disks, mount it (read-only when the appliance is),
        and yield it; unmount it afterwards however the block ends. StorageError (no root,
        two roots, an encrypted root, an unclean filesystem …) concerns this guest only."""
        if self.g is None:
            raise ApplianceError("the appliance is not running")
        g = self.g
        disks = self._disks[name]
        images = {dev: drive.path for (dev, _), drive in zip(disks, self.guests[name].drives,
                                                             strict=True)}  # fmt: skip
        found_devices = GuestDevices([])
        failed = True
        guest = None
        try:
            found_devices = guest_devices(
                g, [d for d, _ in disks], [lb for _, lb in disks], self._partitions, name
            )
            found = find_guest(g, found_devices.devices)
            if not self.readonly:
                writable_md(g, found_devices, found.plan.mounts, found.devices)
            mounted, warnings = mount_plan(g, found.plan, readonly=self.readonly)
            guest = OpenGuest(name, GuestfsRoot(g, name), found, mounted, images,
                              found_devices.warnings + found.warnings + warnings)  # fmt: skip
            yield guest
            failed = False
        except RuntimeError as exc:  # a libguestfs call failed outside the Root
            raise StorageError(_named(error_text(exc), images)) from None
        except VmtailorError as exc:
            if exc.args:  # "/dev/sdc2" means nothing to the user: name the image
                exc.args = (_named(str(exc.args[0]), images), *exc.args[1:])
            raise
        finally:
            sync = guest is not None and needs_sync(guest.mounted, guest.root.changed)
            try:
                if guest is not None and not self.readonly:
                    # what it removes is on /, whatever its filesystem: flushed to be safe
                    sync = unmount_made(g, guest.found.plan, guest.mounted) or sync
            except VmtailorError as exc:
                if not failed:
                    raise
                log.warning("cleanup after a failed guest: %s", exc)
            finally:
                self._release(g, found_devices, failed, sync and not self.readonly)

    def _release(self, g, found: GuestDevices, failed: bool, sync: bool) -> None:
        """Unmount, deactivate, stop md arrays, flush. Unmounting the journaled filesystems
        flushes their disks; `sync` flushes every disk, for a change elsewhere (mount.needs_sync).
        After a success a failure here fails the guest (its writes might not be on
        disk); after a failure it is only logged."""
        errors = []
        for step in (g.umount_all, (lambda: release_lvm(g)) if found.lvm else None,
                     (lambda: release_md(g, found)) if found.md.arrays else None,
                     g.sync if sync else None):  # fmt: skip
            if step is None:
                continue
            try:
                step()
            except RuntimeError as exc:
                errors.append(error_text(exc))
            except VmtailorError as exc:  # an md array that would not stop
                errors.append(str(exc))
        if errors and not failed:
            raise StorageError(f"cannot unmount the guest cleanly: {'; '.join(errors)}")
        for error in errors:
            log.warning("cleanup after a failed guest: %s", error)
