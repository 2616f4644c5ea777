"""XenServer / XCP-ng through XenAPI (XML-RPC; imported only when this driver is used).

The media are imported as VDIs into an SR (`sr:` by name label, default "ISOs") through
the host's /import_raw_vdi endpoint. The customization ISO goes into the VM's first CD
drive — the one the HVM BIOS boots as "d" — after ejecting whatever it held; the config
media gets a CD drive of its own. Boot order is HVM_boot_params["order"] with "d" first
("cn" becomes "dcn"). The snapshot keeps the order, the VM's VBDs and the first CD's VDI,
so restore ejects ours, re-inserts the original disc and destroys only the VBDs it
doesn't know. Power-off is awaited with event.from, not polling.

Result: an HVM guest's serial console goes to a pty or file in dom0 that the API cannot
read, so read_result returns None.
"""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.parse
import xmlrpc.client
from collections.abc import Mapping
from typing import Any

from .base import VM, ConnectError, Driver, DriverError, Media, PowerState, SDKMissing, VMNotFound

NULL = "OpaqueRef:NULL"


def _sdk():
    try:
        import XenAPI
    except ImportError:
        raise SDKMissing(
            "the xenserver driver needs XenAPI", hint="pip install 'vmtailor[xenserver]'"
        ) from None
    return XenAPI


def order_with_cd_first(order: str | None) -> str:
    """HVM boot order letters (c disk, d CD, n network) with d first."""
    return "d" + (order if order is not None else "c").replace("d", "")


class XenServerDriver(Driver):
    NAME = "xenserver"
    SUMMARY = "XenServer / XCP-ng via XenAPI (uri: https://pool-master)"
    CONFIG_FORMAT = "iso"
    HAS_EVENTS = True

    def connect(self) -> None:
        XenAPI = _sdk()
        uri = self.connection.uri or ""
        self.url = uri if "//" in uri else f"https://{uri}"
        self.host = urllib.parse.urlsplit(self.url).netloc
        self.session = XenAPI.Session(self.url, ignore_ssl=not self.connection.verify_tls)
        try:
            self.session.xenapi.login_with_password(
                self.connection.username or "", self.connection.password or "", "2.0", "vmtailor"
            )
        except XenAPI.Failure as exc:
            reason = exc.details[0] if exc.details else "login failed"
            if reason == "SESSION_AUTHENTICATION_FAILED":
                reason = f"login failed for user {self.connection.username!r}"
            raise ConnectError(f"xenserver {self.host}: {reason}") from None
        except (OSError, xmlrpc.client.Error) as exc:
            raise ConnectError(f"xenserver {self.host}: {exc}") from None
        self.api = self.session.xenapi
        self._refs: dict[str, str] = {}

    def close(self) -> None:
        try:
            self.session.xenapi.session.logout()
        except Exception:  # closing must never fail a run that already finished
            pass

    def _call(self, what: str, method: str, *args):
        XenAPI = _sdk()
        func = self.api
        for part in method.split("."):
            func = getattr(func, part)
        try:
            return func(*args)
        except XenAPI.Failure as exc:
            raise DriverError(f"{what}: {' '.join(map(str, exc.details))}") from None
        except (OSError, xmlrpc.client.Error) as exc:
            raise DriverError(f"{what}: {exc}") from None

    def _vm(self, vm: VM) -> str:
        if vm.name not in self._refs:
            refs = [
                r
                for r in self._call(f"{vm.name}: find", "VM.get_by_name_label", vm.name)
                if not any(
                    self._call(f"{vm.name}: find", f"VM.get_{flag}", r)
                    for flag in ("is_a_template", "is_control_domain")
                )
            ]
            if not refs:
                raise VMNotFound(f"{vm.name}: no such VM on xenserver {self.host}")
            if len(refs) > 1:
                raise DriverError(f"{vm.name}: {len(refs)} VMs have this name label")
            self._refs[vm.name] = refs[0]
        return self._refs[vm.name]

    # --- power ----------------------------------------------------------------------
    def power_state(self, vm: VM) -> PowerState:
        state = self._call(f"{vm.name}: power state", "VM.get_power_state", self._vm(vm))
        return PowerState.OFF if state == "Halted" else PowerState.RUNNING

    def power_on(self, vm: VM) -> None:
        self._call(f"{vm.name}: start", "VM.start", self._vm(vm), False, False)

    def power_off(self, vm: VM) -> None:
        if self.power_state(vm) != PowerState.OFF:
            self._call(f"{vm.name}: hard shutdown", "VM.hard_shutdown", self._vm(vm))

    def shutdown(self, vm: VM, timeout: float) -> None:
        self._call(f"{vm.name}: clean shutdown", "VM.clean_shutdown", self._vm(vm))
        if not self.wait_off(vm, timeout):
            raise DriverError(f"{vm.name}: still running {timeout:g} s after shutdown")

    def wait_off(self, vm: VM, timeout: float) -> bool:
        ref = self._vm(vm)
        deadline = time.monotonic() + timeout
        # the first event.from (empty token) returns at once with a token to wait from
        token = self._call(f"{vm.name}: events", "event.from", [f"vm/{ref}"], "", 0.0)["token"]
        while True:
            if self.power_state(vm) == PowerState.OFF:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            batch = self._call(
                f"{vm.name}: events", "event.from", [f"vm/{ref}"], token, min(left, 30.0)
            )
            token = batch["token"]

    # --- configuration --------------------------------------------------------------
    def _vbds(self, vm: VM) -> dict[str, dict]:
        ref = self._vm(vm)
        return {
            b: self._call(f"{vm.name}: read VBD", "VBD.get_record", b)
            for b in self._call(f"{vm.name}: list VBDs", "VM.get_VBDs", ref)
        }

    def snapshot(self, vm: VM) -> dict[str, Any]:
        ref = self._vm(vm)
        params = self._call(f"{vm.name}: boot params", "VM.get_HVM_boot_params", ref)
        vbds = self._vbds(vm)
        cds = sorted((int(r["userdevice"]), b) for b, r in vbds.items() if r["type"] == "CD")
        cd = cds[0][1] if cds else None
        return {
            "order": params.get("order"),
            "vbds": sorted(vbds),
            "cd": cd,
            "cd_vdi": None if cd is None or vbds[cd]["empty"] else vbds[cd]["VDI"],
            "used": sorted(int(r["userdevice"]) for r in vbds.values()),
        }

    def upload(self, vm: VM, media: Media) -> Media:
        if media.config_format != "iso":
            raise DriverError(f"{vm.name}: xenserver attaches config media as an ISO only")
        sr_name = self.connection.options.get("sr", "ISOs")
        srs = self._call(f"{vm.name}: find SR", "SR.get_by_name_label", sr_name)
        if not srs:
            raise DriverError(f"{vm.name}: no SR named {sr_name!r} on {self.host}")
        uuids: list[str] = []
        try:
            for local, label in ((media.iso, "iso"), (media.config, "config")):
                uuids.append(self._import(vm, srs[0], local, f"vmtailor-{vm.name}-{label}"))
        except DriverError:
            self.discard(vm, {"iso": uuids[0] if uuids else "", "config": ""})
            raise
        return Media(uuids[0], uuids[1], "iso")

    def _import(self, vm: VM, sr: str, local: str, label: str) -> str:
        with open(local, "rb") as f:
            size = f.seek(0, 2)
            record = {
                "name_label": label,
                "name_description": "vmtailor customization media",
                "SR": sr,
                "virtual_size": str(size),
                "type": "user",
                "sharable": False,
                "read_only": False,
                "other_config": {},
                "xenstore_data": {},
                "sm_config": {},
                "tags": [],
            }
            vdi = self._call(f"{vm.name}: create VDI", "VDI.create", record)
            uuid = self._call(f"{vm.name}: create VDI", "VDI.get_uuid", vdi)
            f.seek(0)
            try:
                self._put(vdi, f, size)
            except (OSError, DriverError) as exc:
                self._call(f"{vm.name}: remove VDI", "VDI.destroy", vdi)
                raise DriverError(f"{vm.name}: upload {local}: {exc}") from None
        return uuid

    def _put(self, vdi: str, f, size: int) -> None:
        parts = urllib.parse.urlsplit(self.url)
        query = urllib.parse.urlencode(
            {"session_id": self.session.handle, "vdi": vdi, "format": "raw"}
        )
        if parts.scheme == "https":
            context = ssl.create_default_context()
            if not self.connection.verify_tls:
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            conn = http.client.HTTPSConnection(parts.netloc, timeout=300, context=context)
        else:
            conn = http.client.HTTPConnection(parts.netloc, timeout=300)
        try:
            conn.request(
                "PUT", f"/import_raw_vdi?{query}", body=f, headers={"Content-Length": str(size)}
            )
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise DriverError(f"HTTP {resp.status} {resp.reason}")
        finally:
            conn.close()

    def _vdi(self, vm: VM, uuid: str) -> str | None:
        XenAPI = _sdk()
        try:
            return self.api.VDI.get_by_uuid(uuid)
        except XenAPI.Failure as exc:
            if exc.details and exc.details[0] == "UUID_INVALID":
                return None
            raise DriverError(f"{vm.name}: find VDI {uuid}: {exc.details}") from None

    def attach(self, vm: VM, placed: Media, saved: Mapping[str, Any]) -> None:
        ref = self._vm(vm)
        iso, config = self._vdi(vm, placed.iso), self._vdi(vm, placed.config)
        free = (str(n) for n in range(1, 16) if n not in saved["used"] and n != 3)
        free = iter(["3", *free] if 3 not in saved["used"] else free)
        if saved["cd"] is None:
            self._new_cd(vm, ref, iso, next(free), bootable=True)
        else:
            if saved["cd_vdi"] is not None:
                self._call(f"{vm.name}: eject CD", "VBD.eject", saved["cd"])
            self._call(f"{vm.name}: insert ISO", "VBD.insert", saved["cd"], iso)
        self._new_cd(vm, ref, config, next(free), bootable=False)
        self._set_order(vm, ref, order_with_cd_first(saved["order"]))

    def _new_cd(self, vm: VM, ref: str, vdi: str | None, userdevice: str, bootable: bool) -> None:
        record = {
            "VM": ref,
            "VDI": vdi,
            "userdevice": userdevice,
            "bootable": bootable,
            "mode": "RO",
            "type": "CD",
            "empty": False,
            "unpluggable": True,
            "other_config": {},
            "qos_algorithm_type": "",
            "qos_algorithm_params": {},
        }
        self._call(f"{vm.name}: add CD drive", "VBD.create", record)

    def _set_order(self, vm: VM, ref: str, order: str | None) -> None:
        what = f"{vm.name}: boot order"
        self._call(what, "VM.remove_from_HVM_boot_params", ref, "order")
        if order is not None:
            self._call(what, "VM.add_to_HVM_boot_params", ref, "order", order)

    def restore(self, vm: VM, saved: Mapping[str, Any]) -> None:
        ref = self._vm(vm)
        for vbd, record in self._vbds(vm).items():
            if vbd not in saved["vbds"]:
                self._call(f"{vm.name}: remove CD drive", "VBD.destroy", vbd)
            elif vbd == saved["cd"]:
                current = None if record["empty"] else record["VDI"]
                if current != saved["cd_vdi"]:
                    if current is not None:
                        self._call(f"{vm.name}: eject CD", "VBD.eject", vbd)
                    if saved["cd_vdi"] is not None:
                        self._call(f"{vm.name}: re-insert CD", "VBD.insert", vbd, saved["cd_vdi"])
        params = self._call(f"{vm.name}: boot params", "VM.get_HVM_boot_params", ref)
        if params.get("order") != saved["order"]:
            self._set_order(vm, ref, saved["order"])

    def discard(self, vm: VM, placed: Mapping[str, Any]) -> None:
        for uuid in (placed["iso"], placed["config"]):
            vdi = self._vdi(vm, uuid) if uuid else None
            if vdi is not None:
                self._call(f"{vm.name}: remove VDI {uuid}", "VDI.destroy", vdi)


DRIVER = XenServerDriver
