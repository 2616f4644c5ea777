"""A stateful XenAPI (XML-RPC) host on 127.0.0.1: VMs with HVM_boot_params, VBDs, VDIs
and SRs, `event.from` that blocks until a power state changes, and the /import_raw_vdi
HTTP upload. Every call is recorded (without its session argument) in `calls`.

The guest is simulated: a started VM halts after `runs_for` seconds (None: never, the
timeout case), as the customization initrd would."""

from __future__ import annotations

import copy
import itertools
import threading
import xmlrpc.client

from .http import FakeServer, HTTPError, Response, collect_routes, route

NULL = "OpaqueRef:NULL"
SESSION = "OpaqueRef:session-1"


class XenFailure(Exception):
    def __init__(self, *description: str):
        self.description = list(description)


@collect_routes
class FakeXen(FakeServer):
    def __init__(self, user="root", password="secret"):
        super().__init__()
        self.user, self.password = user, password
        self.calls: list[tuple] = []
        self.vms: dict[str, dict] = {}
        self.vbds: dict[str, dict] = {}
        self.vdis: dict[str, dict] = {}
        self.srs = {"OpaqueRef:sr-iso": {"name_label": "ISOs", "uuid": "sr-iso-uuid"}}
        self.token = 0
        self.changed = threading.Condition(self.lock)
        self.fail_import = False
        self._ids = itertools.count(1)

    # --- state ----------------------------------------------------------------------
    def add_vm(self, name: str, order: str | None, cd_vdi: str | None, runs_for=0.2) -> str:
        ref = f"OpaqueRef:vm-{name}"
        params = {"firmware": "bios"} | ({"order": order} if order is not None else {})
        self.vms[ref] = {
            "name_label": name,
            "power_state": "Halted",
            "is_a_template": False,
            "is_control_domain": False,
            "HVM_boot_params": params,
            "runs_for": runs_for,
        }
        disk = self._vdi(f"{name}-disk", b"")
        self._vbd(ref, disk, "Disk", "0")
        self._vbd(ref, cd_vdi, "CD", "3")
        return ref

    def add_iso(self, name: str) -> str:
        return self._vdi(name, b"an ISO of the library")

    def _vdi(self, name: str, data: bytes, size: int = 0) -> str:
        n = next(self._ids)
        ref = f"OpaqueRef:vdi-{n}"
        self.vdis[ref] = {
            "name_label": name,
            "uuid": f"vdi-uuid-{n}",
            "SR": "OpaqueRef:sr-iso",
            "virtual_size": str(size or len(data)),
            "data": data,
        }
        return ref

    def _vbd(self, vm: str, vdi: str | None, kind: str, userdevice: str) -> str:
        ref = f"OpaqueRef:vbd-{next(self._ids)}"
        self.vbds[ref] = {
            "VM": vm,
            "VDI": vdi or NULL,
            "type": kind,
            "userdevice": userdevice,
            "empty": vdi is None,
            "mode": "RO" if kind == "CD" else "RW",
            "bootable": kind == "Disk",
        }
        return ref

    def vm_state(self) -> dict:
        with self.lock:
            return copy.deepcopy({"vms": self.vms, "vbds": self.vbds, "vdis": self.vdis})

    # --- transport --------------------------------------------------------------------
    @route("POST", r"/(?:RPC2)?")  # xmlrpc.client posts to /RPC2, XAPI takes any path
    def xmlrpc(self, req):
        params, method = xmlrpc.client.loads(req.body.encode())
        try:
            if method == "session.login_with_password":
                self.calls.append((method, params[0], "***", *params[2:]))
                if params[:2] != (self.user, self.password):
                    raise XenFailure("SESSION_AUTHENTICATION_FAILED", params[0], "bad password")
                value = SESSION
            else:
                if params[0] != SESSION:
                    raise XenFailure("SESSION_INVALID", params[0])
                self.calls.append((method, *params[1:]))
                handler = getattr(self, "api_" + method.replace(".", "_"), None)
                if handler is None:
                    raise XenFailure("MESSAGE_METHOD_UNKNOWN", method)
                value = handler(*params[1:])
            result = {"Status": "Success", "Value": "" if value is None else value}
        except XenFailure as exc:
            result = {"Status": "Failure", "ErrorDescription": exc.description}
        body = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True)
        return Response(body=body, content_type="text/xml")

    @route("PUT", r"/import_raw_vdi")
    def import_raw_vdi(self, req):
        if req.query.get("session_id") != SESSION:
            raise HTTPError(401, "session invalid")
        if self.fail_import:
            raise HTTPError(500, "VDI_IO_ERROR")
        vdi = self.vdis.get(req.query.get("vdi", ""))
        if vdi is None or req.query.get("format") != "raw":
            raise HTTPError(404, "no such VDI")
        self.calls.append(("PUT /import_raw_vdi", req.query["vdi"], len(req.body)))
        vdi["data"] = req.body
        return Response(body=b"", content_type="text/plain")

    # --- XenAPI methods (only those vmtailor calls) -----------------------------------
    def _get(self, table: dict, ref: str, kind: str) -> dict:
        if ref not in table:
            raise XenFailure("HANDLE_INVALID", kind, ref)
        return table[ref]

    def _bump(self) -> None:
        self.token += 1
        self.changed.notify_all()

    def api_VM_get_by_name_label(self, name):
        return [r for r, v in self.vms.items() if v["name_label"] == name]

    def api_VM_get_record(self, ref):
        vm = self._get(self.vms, ref, "VM")
        vbds = [r for r, b in self.vbds.items() if b["VM"] == ref]
        return {k: v for k, v in vm.items() if k != "runs_for"} | {"VBDs": vbds}

    def api_VM_get_is_a_template(self, ref):
        return self._get(self.vms, ref, "VM")["is_a_template"]

    def api_VM_get_is_control_domain(self, ref):
        return self._get(self.vms, ref, "VM")["is_control_domain"]

    def api_VM_get_power_state(self, ref):
        return self._get(self.vms, ref, "VM")["power_state"]

    def api_VM_get_HVM_boot_params(self, ref):
        return dict(self._get(self.vms, ref, "VM")["HVM_boot_params"])

    def api_VM_remove_from_HVM_boot_params(self, ref, key):
        self._get(self.vms, ref, "VM")["HVM_boot_params"].pop(key, None)

    def api_VM_add_to_HVM_boot_params(self, ref, key, value):
        params = self._get(self.vms, ref, "VM")["HVM_boot_params"]
        if key in params:
            raise XenFailure("MAP_DUPLICATE_KEY", "VM", "HVM_boot_params", ref, key)
        params[key] = value

    def api_VM_get_VBDs(self, ref):
        self._get(self.vms, ref, "VM")
        return [r for r, b in self.vbds.items() if b["VM"] == ref]

    def api_VM_start(self, ref, paused, force):
        vm = self._get(self.vms, ref, "VM")
        if vm["power_state"] != "Halted":
            raise XenFailure("VM_BAD_POWER_STATE", ref, "halted", vm["power_state"].lower())
        vm["power_state"] = "Running"
        self._bump()
        if vm["runs_for"] is not None:
            threading.Timer(vm["runs_for"], self._guest_halts, (ref,)).start()

    def _guest_halts(self, ref):
        with self.lock:
            if self.vms[ref]["power_state"] == "Running":
                self.vms[ref]["power_state"] = "Halted"
                self._bump()

    def api_VM_hard_shutdown(self, ref):
        self._get(self.vms, ref, "VM")["power_state"] = "Halted"
        self._bump()

    api_VM_clean_shutdown = api_VM_hard_shutdown

    def api_VBD_get_record(self, ref):
        return dict(self._get(self.vbds, ref, "VBD"))

    def api_VBD_create(self, record):
        self._get(self.vms, record["VM"], "VM")
        ref = self._vbd(record["VM"], None, record["type"], record["userdevice"])
        if record.get("VDI", NULL) != NULL:
            self.vbds[ref].update(VDI=record["VDI"], empty=False)
        self.vbds[ref]["bootable"] = record["bootable"]
        return ref

    def api_VBD_destroy(self, ref):
        self._get(self.vbds, ref, "VBD")
        del self.vbds[ref]

    def api_VBD_insert(self, ref, vdi):
        vbd = self._get(self.vbds, ref, "VBD")
        self._get(self.vdis, vdi, "VDI")
        if not vbd["empty"]:
            raise XenFailure("VBD_NOT_EMPTY", ref)
        vbd.update(VDI=vdi, empty=False)

    def api_VBD_eject(self, ref):
        vbd = self._get(self.vbds, ref, "VBD")
        if vbd["empty"]:
            raise XenFailure("VBD_IS_EMPTY", ref)
        vbd.update(VDI=NULL, empty=True)

    def api_SR_get_by_name_label(self, name):
        return [r for r, s in self.srs.items() if s["name_label"] == name]

    def api_VDI_create(self, record):
        self._get(self.srs, record["SR"], "SR")
        return self._vdi(record["name_label"], b"", int(record["virtual_size"]))

    def api_VDI_get_uuid(self, ref):
        return self._get(self.vdis, ref, "VDI")["uuid"]

    def api_VDI_get_by_uuid(self, uuid):
        for ref, vdi in self.vdis.items():
            if vdi["uuid"] == uuid:
                return ref
        raise XenFailure("UUID_INVALID", "VDI", uuid)

    def api_VDI_destroy(self, ref):
        self._get(self.vdis, ref, "VDI")
        if any(b["VDI"] == ref for b in self.vbds.values()):
            raise XenFailure("VDI_IN_USE", ref, "destroy")
        del self.vdis[ref]

    def api_event_from(self, classes, token, timeout):
        # blocks until something changed after `token`, or `timeout` seconds
        start = int(token or 0)
        if token:
            self.changed.wait_for(lambda: self.token > start, timeout=float(timeout))
        events = [
            {"class": "vm", "ref": r, "operation": "mod", "snapshot": self.api_VM_get_record(r)}
            for r in self.vms
            if f"vm/{r}" in classes or "vm" in classes
        ]
        return {
            "events": events if self.token > start or not token else [],
            "token": str(self.token),
        }
