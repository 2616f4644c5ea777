"""VMware vSphere / ESXi through pyVmomi (imported only when this driver is used).

Media go to the VM's datastore (or `datastore:`) under `vmtailor/<vm>/` through the
datastore's /folder HTTP endpoint, and are attached as *added* CD-ROMs (the config media
as a second CD-ROM, or a floppy for a .flp image), so restore removes exactly what attach
added and never touches the VM's own drives. Attach is one ReconfigVM_Task that also writes
the snapshot into the VM's extraConfig (`vmtailor.saved`): a VM changed by vmtailor always
carries what it looked like before, even if the state file is lost, and a later snapshot()
returns that record instead of the changed configuration.

Result: vSphere has no API for a serial console. When the VM has no serial port, attach
adds one backed by `vmtailor/<vm>/serial.log` on the datastore (the guest's ttyS0) and
read_result downloads it; when the VM already logs a serial port to a datastore file, the
part written during this boot is read from there. A VM whose serial port goes elsewhere
(network, pipe) gives "result unavailable: no serial log".
"""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from . import vsphere_devices as devices
from .base import VM, ConnectError, Driver, DriverError, Media, PowerState, SDKMissing, VMNotFound

SAVED_KEY = "vmtailor.saved"
TASK_TIMEOUT = 600.0
UPLOAD_CHUNK = 1 << 20


def _sdk():
    try:
        from pyVim import connect
        from pyVmomi import vim, vmodl
    except ImportError:
        raise SDKMissing(
            "the vsphere driver needs pyVmomi", hint="pip install 'vmtailor[vsphere]'"
        ) from None
    return connect, vim, vmodl


def _fault_text(exc: BaseException) -> str:
    return getattr(exc, "msg", None) or type(exc).__name__


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def split_ds_path(path: str) -> tuple[str, str]:
    """'[ds1] a/b.iso' -> ('ds1', 'a/b.iso')."""
    m = re.fullmatch(r"\[([^\]]+)\]\s*(.*)", path)
    if not m:
        raise DriverError(f"not a datastore path: {path!r}")
    return m.group(1), m.group(2)


class VSphereDriver(Driver):
    NAME = "vsphere"
    SUMMARY = "VMware vSphere / ESXi via pyVmomi (uri: https://vcenter-or-esxi)"
    CONFIG_FORMAT = "iso"
    HAS_EVENTS = True
    HAS_SERIAL_LOG = True

    @classmethod
    def check_options(cls, connection) -> None:
        if not connection.uri:
            raise DriverError("vsphere: hypervisor.uri is required (https://vcenter.example.com)")
        folder = connection.options.get("folder", "vmtailor")
        if not isinstance(folder, str) or not folder.strip("/") or ".." in folder.split("/"):
            raise DriverError(f"vsphere: folder: not a datastore folder: {folder!r}")

    # --- connection -----------------------------------------------------------------
    def connect(self) -> None:
        connect, vim, _ = _sdk()
        uri = self.connection.uri or ""
        parts = urllib.parse.urlsplit(uri if "//" in uri else f"https://{uri}")
        self.host, self.port = parts.hostname or "", parts.port or 443
        self._ssl = ssl.create_default_context()
        if not self.connection.verify_tls:
            self._ssl.check_hostname = False
            self._ssl.verify_mode = ssl.CERT_NONE
        try:
            self.si = connect.SmartConnect(
                host=self.host,
                port=self.port,
                user=self.connection.username or "",
                pwd=self.connection.password or "",
                sslContext=self._ssl,
                httpConnectionTimeout=60,
            )
        except vim.fault.InvalidLogin:
            raise ConnectError(
                f"vsphere {self.host}: login failed for user {self.connection.username!r}"
            ) from None
        except (OSError, vim.fault.HostConnectFault) as exc:
            raise ConnectError(f"vsphere {self.host}:{self.port}: {_fault_text(exc)}") from None
        self.content = self.si.RetrieveContent()

    def close(self) -> None:
        si, self.si = getattr(self, "si", None), None
        if si is not None:
            try:
                connect, _, _ = _sdk()
                connect.Disconnect(si)
            except Exception:  # closing must never fail a run that already finished
                pass

    # --- lookups --------------------------------------------------------------------
    def _vm(self, vm: VM):
        _, vim, vmodl = _sdk()
        pc = vmodl.query.PropertyCollector
        view = self.content.viewManager.CreateContainerView(
            self.content.rootFolder, [vim.VirtualMachine], True
        )
        try:
            # one round trip for every VM's name, rather than one per VM
            spec = pc.FilterSpec(
                objectSet=[
                    pc.ObjectSpec(
                        obj=view,
                        skip=True,
                        selectSet=[
                            pc.TraversalSpec(path="view", skip=False, type=vim.view.ContainerView)
                        ],
                    )
                ],
                propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])],
            )
            found = [
                oc.obj
                for oc in self.content.propertyCollector.RetrieveContents([spec])
                if oc.propSet and oc.propSet[0].val == vm.name
            ]
        finally:
            view.Destroy()
        if not found:
            raise VMNotFound(f"{vm.name}: no such VM on vsphere {self.host}")
        if len(found) > 1:
            raise DriverError(f"{vm.name}: {len(found)} VMs have this name on {self.host}")
        return found[0]

    def _datacenter(self, obj):
        _, vim, _ = _sdk()
        while obj is not None and not isinstance(obj, vim.Datacenter):
            obj = obj.parent
        if obj is None:
            raise DriverError("VM is in no datacenter")
        return obj

    def _media_dir(self, obj, vm: VM) -> str:
        datastore = self.connection.options.get("datastore")
        if not datastore:
            datastore = split_ds_path(obj.config.files.vmPathName)[0]
        folder = self.connection.options.get("folder", "vmtailor").strip("/")
        return f"[{datastore}] {folder}/{_safe(vm.name)}"

    # --- tasks and waiting ----------------------------------------------------------
    def _wait_for(self, obj, path: str, done, timeout: float):
        """Block on PropertyCollector updates of `obj.path` until done(value) or timeout;
        returns the last value seen (events, not polling)."""
        _, _, vmodl = _sdk()
        pc = vmodl.query.PropertyCollector
        collector = self.content.propertyCollector.CreatePropertyCollector()
        spec = pc.FilterSpec(
            objectSet=[pc.ObjectSpec(obj=obj)],
            propSet=[pc.PropertySpec(type=type(obj), pathSet=[path])],
        )
        pfilter = collector.CreateFilter(spec, partialUpdates=False)
        deadline, version, value = time.monotonic() + timeout, "", None
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return value
                options = pc.WaitOptions(maxWaitSeconds=max(1, int(min(left, 60))))
                update = collector.WaitForUpdatesEx(version, options)
                if update is None:  # maxWaitSeconds passed with no change
                    continue
                version = update.version
                for fset in update.filterSet:
                    for oset in fset.objectSet:
                        for change in oset.changeSet:
                            value = change.val
                if done(value):
                    return value
        finally:
            pfilter.Destroy()
            collector.DestroyPropertyCollector()

    def _get(self, obj, path: str):
        # one property, not the whole object: vcsim's TaskInfo.entity can be a FileManager,
        # which pyVmomi refuses to deserialize
        _, _, vmodl = _sdk()
        pc = vmodl.query.PropertyCollector
        spec = pc.FilterSpec(
            objectSet=[pc.ObjectSpec(obj=obj)],
            propSet=[pc.PropertySpec(type=type(obj), pathSet=[path])],
        )
        found = self.content.propertyCollector.RetrieveContents([spec])
        return found[0].propSet[0].val if found and found[0].propSet else None

    def _task(self, task, what: str) -> None:
        _, vim, _ = _sdk()
        terminal = (vim.TaskInfo.State.success, vim.TaskInfo.State.error)
        state = self._wait_for(task, "info.state", lambda s: s in terminal, TASK_TIMEOUT)
        if state == vim.TaskInfo.State.success:
            return
        if state == vim.TaskInfo.State.error:
            raise DriverError(f"{what}: {_fault_text(self._get(task, 'info.error'))}")
        raise DriverError(f"{what}: task did not finish within {TASK_TIMEOUT:g} s")

    def _call(self, what: str, method, *args, **kwargs):
        _, _, vmodl = _sdk()
        try:
            result = method(*args, **kwargs)
        except vmodl.MethodFault as exc:
            raise DriverError(f"{what}: {_fault_text(exc)}") from None
        return self._task(result, what)

    # --- power ----------------------------------------------------------------------
    def power_state(self, vm: VM) -> PowerState:
        state = self._vm(vm).runtime.powerState
        return PowerState.OFF if state == "poweredOff" else PowerState.RUNNING

    def power_on(self, vm: VM) -> None:
        obj = self._vm(vm)
        self._call(f"{vm.name}: power on", obj.PowerOnVM_Task)

    def power_off(self, vm: VM) -> None:
        obj = self._vm(vm)
        if obj.runtime.powerState != "poweredOff":
            self._call(f"{vm.name}: power off", obj.PowerOffVM_Task)

    def shutdown(self, vm: VM, timeout: float) -> None:
        _, _, vmodl = _sdk()
        obj = self._vm(vm)
        try:
            obj.ShutdownGuest()  # needs VMware Tools in the guest: that's the clean way
        except vmodl.MethodFault as exc:
            raise DriverError(f"{vm.name}: guest shutdown: {_fault_text(exc)}") from None
        if not self.wait_off(vm, timeout):
            raise DriverError(f"{vm.name}: still running {timeout:g} s after guest shutdown")

    def wait_off(self, vm: VM, timeout: float) -> bool:
        obj = self._vm(vm)
        state = self._wait_for(obj, "runtime.powerState", lambda s: s == "poweredOff", timeout)
        return state == "poweredOff"

    # --- configuration --------------------------------------------------------------
    def snapshot(self, vm: VM) -> dict[str, Any]:
        _, vim, _ = _sdk()
        obj = self._vm(vm)
        earlier = devices.extra_config(obj).get(SAVED_KEY)
        if earlier:
            # an earlier run changed this VM and never restored it: what it saved is the
            # original, the current configuration is not
            return json.loads(earlier)

        devs = obj.config.hardware.device
        serial = [d for d in devs if isinstance(d, vim.vm.device.VirtualSerialPort)]
        backing = vim.vm.device.VirtualSerialPort.FileBackingInfo
        logged = [d.backing.fileName for d in serial if isinstance(d.backing, backing)]
        saved: dict[str, Any] = {
            "boot_order": devices.boot_order_to_json(obj.config.bootOptions.bootOrder or []),
            "device_keys": sorted(d.key for d in devs),
            "media_dir": self._media_dir(obj, vm),
            "serial_log": None,
            "serial_offset": 0,
            "serial_added": False,
        }
        if logged:
            saved["serial_log"] = logged[0]
            # only what this boot appends is ours to read
            saved["serial_offset"] = self._datastore_size(obj, logged[0]) or 0
        elif not serial:
            saved["serial_log"] = f"{saved['media_dir']}/serial.log"
            saved["serial_added"] = True
        return saved

    def upload(self, vm: VM, media: Media) -> Media:
        obj = self._vm(vm)
        target = self._media_dir(obj, vm)
        ext = {"iso": "iso", "floppy": "flp"}.get(media.config_format)
        if ext is None:
            raise DriverError(f"{vm.name}: vsphere attaches config media as iso or floppy only")
        placed = Media(f"{target}/vmtailor.iso", f"{target}/config.{ext}", media.config_format)
        try:
            self._put(obj, media.iso, placed.iso)
            self._put(obj, media.config, placed.config)
        except DriverError:
            # the flow only discards what upload returned: a half upload is ours to remove
            try:
                self.discard(vm, placed.to_dict())
            except DriverError:
                pass
            raise
        return placed

    def attach(self, vm: VM, placed: Media, saved: Mapping[str, Any]) -> None:
        obj = self._vm(vm)
        spec = devices.attach_spec(obj, placed, saved)
        spec.extraConfig = [devices.option(SAVED_KEY, json.dumps(dict(saved), sort_keys=True))]
        self._call(f"{vm.name}: attach media", obj.ReconfigVM_Task, spec)

    def read_result(self, vm: VM, saved: Mapping[str, Any]) -> str | None:
        if not saved.get("serial_log"):
            return None
        obj = self._vm(vm)
        data = self._datastore_get(obj, saved["serial_log"], int(saved.get("serial_offset", 0)))
        return None if data is None else data.decode("utf-8", errors="replace")

    def restore(self, vm: VM, saved: Mapping[str, Any]) -> None:
        obj = self._vm(vm)
        spec = devices.restore_spec(obj, saved, SAVED_KEY)
        if spec is not None:  # already as saved: nothing to send, restore is idempotent
            self._call(f"{vm.name}: restore", obj.ReconfigVM_Task, spec)

    def discard(self, vm: VM, placed: Mapping[str, Any]) -> None:
        obj = self._vm(vm)
        folder = placed["iso"].rsplit("/", 1)[0]  # vmtailor/<vm>: media and our serial log
        # ask for the files, not the folder: what a HEAD of a folder gives is up to the server
        if all(self._datastore_size(obj, placed[k]) is None for k in ("iso", "config")):
            return  # already gone: discard is idempotent
        self._call(
            f"{vm.name}: remove {folder}",
            self.content.fileManager.DeleteDatastoreFile_Task,
            folder,
            self._datacenter(obj),
        )

    # --- datastore HTTP (/folder) ---------------------------------------------------
    def _folder_url(self, obj, ds_path: str) -> str:
        datastore, path = split_ds_path(ds_path)
        query = urllib.parse.urlencode({"dcPath": self._datacenter(obj).name, "dsName": datastore})
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/folder/{urllib.parse.quote(path)}?{query}"

    def _request(self, obj, ds_path: str, method: str, **kwargs) -> urllib.request.Request:
        # the datastore endpoint takes the SOAP session's cookie: no second login
        headers = {"Cookie": self.si._stub.cookie, **kwargs.pop("headers", {})}
        url = self._folder_url(obj, ds_path)
        return urllib.request.Request(url, method=method, headers=headers, **kwargs)

    def _put(self, obj, local: str, ds_path: str) -> None:
        try:
            with open(local, "rb") as f:
                size = f.seek(0, 2)
                f.seek(0)
                req = self._request(
                    obj,
                    ds_path,
                    "PUT",
                    data=iter(lambda: f.read(UPLOAD_CHUNK), b""),
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(size),
                    },
                )
                with urllib.request.urlopen(req, context=self._ssl, timeout=300) as resp:
                    resp.read()
        except urllib.error.HTTPError as exc:
            raise DriverError(f"upload {ds_path}: HTTP {exc.code} {exc.reason}") from None
        except OSError as exc:
            raise DriverError(f"upload {local} to {ds_path}: {exc}") from None

    def _datastore_get(self, obj, ds_path: str, offset: int = 0) -> bytes | None:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        req = self._request(obj, ds_path, "GET", headers=headers)
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=60) as resp:
                data = resp.read()
                # a server that ignores Range sends the whole file (200, not 206)
                return data[offset:] if offset and resp.status == 200 else data
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 416):
                return None if exc.code == 404 else b""
            raise DriverError(f"read {ds_path}: HTTP {exc.code} {exc.reason}") from None
        except OSError as exc:
            raise DriverError(f"read {ds_path}: {exc}") from None

    def _datastore_size(self, obj, ds_path: str) -> int | None:
        """The file's size; None when there is no such file or folder."""
        req = self._request(obj, ds_path, "HEAD")
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=60) as resp:
                return int(resp.headers.get("Content-Length") or 0)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise DriverError(f"stat {ds_path}: HTTP {exc.code} {exc.reason}") from None
        except OSError as exc:
            raise DriverError(f"stat {ds_path}: {exc}") from None


DRIVER = VSphereDriver
