"""oVirt / RHV through ovirtsdk4 (imported only when this driver is used).

oVirt 4.4+ keeps ISOs as disks on a data domain, so both media are uploaded as disks on
`storage_domain:` through an image transfer (the engine's imageio URL). An oVirt VM has
exactly one CD-ROM: the customization ISO goes there (its previous file is saved), and the
config media — a vfat image — is attached as a second, non-bootable disk. The boot order is
os.boot.devices with "cdrom" first; the snapshot keeps it, the CD-ROM's file and the VM's
disk attachments, so restore detaches only what it doesn't know. Started with
use_cloud_init=False so the engine adds no cloud-init payload of its own.

Result: an oVirt VM's serial console is reached only through the engine's SSH proxy, so
read_result returns None.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from .base import VM, ConnectError, Driver, DriverError, Media, PowerState, SDKMissing, VMNotFound

STEP_TIMEOUT = 600.0


def _sdk():
    try:
        import ovirtsdk4
        import ovirtsdk4.types
    except ImportError:
        raise SDKMissing(
            "the ovirt driver needs ovirtsdk4", hint="pip install 'vmtailor[ovirt]'"
        ) from None
    return ovirtsdk4, ovirtsdk4.types


class OvirtDriver(Driver):
    NAME = "ovirt"
    SUMMARY = "oVirt / RHV via ovirtsdk4 (uri: https://engine/ovirt-engine/api)"
    CONFIG_FORMAT = "vfat"  # one CD-ROM per VM: the config media is a small disk

    @classmethod
    def check_options(cls, connection) -> None:
        if not connection.uri or not connection.options.get("storage_domain"):
            raise DriverError("ovirt: hypervisor.uri and hypervisor.storage_domain are required")

    def connect(self) -> None:
        sdk, _ = _sdk()
        self.poll = float(self.connection.options.get("poll_interval", 2))
        ca_file = self.connection.options.get("ca_file")
        self.conn = sdk.Connection(
            url=self.connection.uri,
            username=self.connection.username,
            password=self.connection.password,
            insecure=not self.connection.verify_tls,
            ca_file=self.connection.path(ca_file) if ca_file else None,
            timeout=300,
        )
        try:
            self.conn.authenticate()  # the SDK logs in lazily: fail here, not mid-flow
        except sdk.AuthError as exc:
            raise ConnectError(f"ovirt {self.connection.uri}: login failed: {exc}") from None
        except sdk.Error as exc:
            raise ConnectError(f"ovirt {self.connection.uri}: {exc}") from None
        self.system = self.conn.system_service()
        self._ids: dict[str, str] = {}

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # closing must never fail a run that already finished
            pass

    def _call(self, what: str, func, *args, **kwargs):
        sdk, _ = _sdk()
        try:
            return func(*args, **kwargs)
        except sdk.Error as exc:
            raise DriverError(f"{what}: {exc}") from None

    def _service(self, vm: VM):
        if vm.name not in self._ids:
            vms_service = self.system.vms_service()
            found = self._call(f"{vm.name}: find", vms_service.list, search=f"name={vm.name}")
            found = [v for v in found if v.name == vm.name]  # search is a pattern
            if not found:
                raise VMNotFound(f"{vm.name}: no such VM on ovirt {self.connection.uri}")
            if len(found) > 1:
                raise DriverError(f"{vm.name}: {len(found)} VMs have this name")
            self._ids[vm.name] = found[0].id
        return self.system.vms_service().vm_service(self._ids[vm.name])

    def _until(self, what: str, check, timeout: float = STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise DriverError(f"{what}: not done within {timeout:g} s")
            time.sleep(self.poll)

    # --- power ----------------------------------------------------------------------
    def power_state(self, vm: VM) -> PowerState:
        _, types = _sdk()
        status = self._call(f"{vm.name}: status", self._service(vm).get).status
        return PowerState.OFF if status == types.VmStatus.DOWN else PowerState.RUNNING

    def power_on(self, vm: VM) -> None:
        self._call(f"{vm.name}: start", self._service(vm).start, use_cloud_init=False)

    def power_off(self, vm: VM) -> None:
        if self.power_state(vm) != PowerState.OFF:
            self._call(f"{vm.name}: stop", self._service(vm).stop)

    def shutdown(self, vm: VM, timeout: float) -> None:
        self._call(f"{vm.name}: shutdown", self._service(vm).shutdown)
        if not self.wait_off(vm, timeout):
            raise DriverError(f"{vm.name}: still running {timeout:g} s after shutdown")

    # --- configuration --------------------------------------------------------------
    def snapshot(self, vm: VM) -> dict[str, Any]:
        service = self._service(vm)
        obj = self._call(f"{vm.name}: read", service.get)
        cdroms = self._call(f"{vm.name}: CD-ROMs", service.cdroms_service().list)
        if not cdroms:
            raise DriverError(f"{vm.name}: has no CD-ROM to boot the customization ISO from")
        attached = self._call(f"{vm.name}: disks", service.disk_attachments_service().list)
        boot = obj.os.boot.devices if obj.os and obj.os.boot and obj.os.boot.devices else []
        return {
            "boot": [d.value for d in boot],
            "cdrom": cdroms[0].id,
            "cdrom_file": cdroms[0].file.id if cdroms[0].file and cdroms[0].file.id else None,
            "attachments": sorted(a.id for a in attached),
        }

    def upload(self, vm: VM, media: Media) -> Media:
        if media.config_format != "vfat":
            raise DriverError(f"{vm.name}: ovirt attaches config media as a vfat disk only")
        _, types = _sdk()
        created: list[str] = []  # every disk made so far: a failure removes them all
        try:
            self._upload_disk(vm, media.iso, types.DiskContentType.ISO, "iso", created)
            self._upload_disk(vm, media.config, types.DiskContentType.DATA, "config", created)
        except DriverError:
            for disk_id in created:
                self.discard(vm, {"iso": disk_id, "config": ""})
            raise
        return Media(created[0], created[1], "vfat")

    def _upload_disk(self, vm: VM, local: str, kind, label: str, created: list[str]) -> None:
        _, types = _sdk()
        name = f"vmtailor-{vm.name}-{label}"
        disks = self.system.disks_service()
        with open(local, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            domain = types.StorageDomain(name=self.connection.options["storage_domain"])
            spec = types.Disk(
                name=name,
                format=types.DiskFormat.RAW,
                content_type=kind,
                provisioned_size=size,
                storage_domains=[domain],
            )
            disk = self._call(f"{vm.name}: create disk {name}", disks.add, spec)
            created.append(disk.id)
            disk_service = disks.disk_service(disk.id)
            self._disk_ok(vm, disk_service, name)
            transfers = self.system.image_transfers_service()
            direction = types.ImageTransferDirection.UPLOAD
            spec = types.ImageTransfer(disk=types.Disk(id=disk.id), direction=direction)
            transfer = self._call(f"{vm.name}: upload {name}", transfers.add, spec)
            transfer_service = transfers.image_transfer_service(transfer.id)
            try:
                self._put(transfer.transfer_url or transfer.proxy_url, f, size)
            except DriverError as exc:
                self._call(f"{vm.name}: cancel upload", transfer_service.cancel)
                raise DriverError(f"{vm.name}: upload {local}: {exc}") from None
        self._call(f"{vm.name}: finish upload {name}", transfer_service.finalize)
        phases = types.ImageTransferPhase
        ended = (phases.FINISHED_SUCCESS, phases.FINISHED_FAILURE)
        phase = self._until(
            f"{vm.name}: upload {name}",
            lambda: (p := transfer_service.get().phase) in ended and p,
        )
        if phase != phases.FINISHED_SUCCESS:
            raise DriverError(f"{vm.name}: upload {local}: the engine reports {phase.value}")
        self._disk_ok(vm, disk_service, name)

    def _disk_ok(self, vm: VM, disk_service, name: str) -> None:
        _, types = _sdk()
        ok = types.DiskStatus.OK
        self._until(f"{vm.name}: disk {name}", lambda: disk_service.get().status == ok)

    def _put(self, url: str, f, size: int) -> None:
        context = ssl.create_default_context()
        if not self.connection.verify_tls:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        req = urllib.request.Request(url, data=f, method="PUT", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=300, context=context) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise DriverError(f"HTTP {exc.code} {exc.reason}") from None
        except OSError as exc:
            raise DriverError(str(exc)) from None

    def attach(self, vm: VM, placed: Media, saved: Mapping[str, Any]) -> None:
        _, types = _sdk()
        service = self._service(vm)
        cdrom = service.cdroms_service().cdrom_service(saved["cdrom"])
        what = f"{vm.name}: attach"
        # current=False: the VM's persistent configuration, not a running VM's media
        self._call(what, cdrom.update, types.Cdrom(file=types.File(id=placed.iso)), current=False)
        attachment = types.DiskAttachment(
            disk=types.Disk(id=placed.config),
            interface=types.DiskInterface.VIRTIO_SCSI,
            bootable=False,
            active=True,
        )
        self._call(what, service.disk_attachments_service().add, attachment)
        order = ["cdrom"] + [d for d in saved["boot"] if d != "cdrom"]
        self._set_boot(vm, order)

    def _set_boot(self, vm: VM, order: list[str]) -> None:
        _, types = _sdk()
        devices = [types.BootDevice(d) for d in order]
        spec = types.Vm(os=types.OperatingSystem(boot=types.Boot(devices=devices)))
        self._call(f"{vm.name}: boot order", self._service(vm).update, spec)

    def restore(self, vm: VM, saved: Mapping[str, Any]) -> None:
        _, types = _sdk()
        service = self._service(vm)
        now = self.snapshot(vm)
        if now["cdrom_file"] != saved["cdrom_file"]:
            cdrom = service.cdroms_service().cdrom_service(saved["cdrom"])
            file = types.File(id=saved["cdrom_file"] or "")  # an empty id ejects
            self._call(
                f"{vm.name}: restore CD-ROM", cdrom.update, types.Cdrom(file=file), current=False
            )
        attachments = service.disk_attachments_service()
        for extra in sorted(set(now["attachments"]) - set(saved["attachments"])):
            remove = attachments.attachment_service(extra).remove
            self._call(f"{vm.name}: detach disk {extra}", remove, detach_only=True)
        if now["boot"] != saved["boot"]:
            self._set_boot(vm, saved["boot"])

    def discard(self, vm: VM, placed: Mapping[str, Any]) -> None:
        sdk, _ = _sdk()
        disks = self.system.disks_service()
        for disk_id in (placed["iso"], placed["config"]):
            if not disk_id:
                continue
            try:
                disks.disk_service(disk_id).remove()
            except sdk.NotFoundError:
                pass  # already gone: discard is idempotent
            except sdk.Error as exc:
                raise DriverError(f"{vm.name}: remove disk {disk_id}: {exc}") from None


DRIVER = OvirtDriver
