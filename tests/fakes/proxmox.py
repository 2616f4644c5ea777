"""A stateful Proxmox VE API (the part vmtailor uses) over HTTPS on 127.0.0.1.

It holds per VM its config (boot, ideN, digest), power status and the node's ISO storage,
answers what proxmoxer sends, and records every request. The guest is simulated by
`off_after_polls`: a started VM reports "stopped" after that many status polls (None:
never, the timeout case)."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json

from .http import FakeServer, HTTPError, Response, collect_routes, route

API = "/api2/json"
TICKET = "PVE:vmtailor@pve:00000000::fake-ticket"
CSRF = "00000000:fake-csrf"


def _digest(config: dict) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()


@collect_routes
class FakeProxmox(FakeServer):
    def __init__(self, tls_dir, user="root@pam", password="secret"):
        super().__init__(tls_dir)
        self.user, self.password = user, password
        self.vms: dict[int, dict] = {}
        self.storage: dict[str, dict[str, bytes]] = {"local": {}}
        self.fail_upload = False
        self.fail_after_uploads: int | None = None  # let this many uploads succeed first
        self._upids = itertools.count(1)

    def add_vm(self, vmid: int, name: str, config: dict, node="pve1", off_after_polls=2):
        self.vms[vmid] = {
            "name": name,
            "node": node,
            "status": "stopped",
            "config": dict(config),
            "off_after_polls": off_after_polls,
            "polls": 0,
        }

    def vm_state(self) -> dict:
        """What a test compares before and after: configs, power, storage."""
        with self.lock:
            return copy.deepcopy(
                {
                    "vms": {k: (v["config"], v["status"]) for k, v in self.vms.items()},
                    "storage": self.storage,
                }
            )

    def api_requests(self) -> list[tuple]:
        """(method, path, body) of every request after login, the ticket left out."""
        out = []
        for r in self.requests:
            if r.path == f"{API}/access/ticket":
                continue
            body = r.body
            if isinstance(body, dict):
                body = {
                    k: (v[0], len(v[1])) if isinstance(v, tuple) else v for k, v in body.items()
                }
            out.append((r.method, r.path.removeprefix(API), body or None))
        return out

    def dispatch(self, req):
        if req.path != f"{API}/access/ticket":
            if TICKET not in req.headers.get("Cookie", ""):
                return Response(401, {"data": None})
            if req.method != "GET" and req.headers.get("CSRFPreventionToken") != CSRF:
                return Response(401, {"data": None})
        resp = super().dispatch(req)
        if resp.status == 200 and not (isinstance(resp.body, dict) and "data" in resp.body):
            resp.body = {"data": resp.body}
        return resp

    def error(self, exc: HTTPError) -> Response:
        return Response(exc.status, {"data": None}, reason=exc.message)

    def _vm(self, node: str, vmid: str) -> dict:
        vm = self.vms.get(int(vmid))
        if vm is None or vm["node"] != node:
            raise HTTPError(
                500, f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"
            )
        return vm

    def _task(self, node: str, kind: str) -> str:
        return f"UPID:{node}:{next(self._upids):08X}:{kind}:"

    # --- routes ---------------------------------------------------------------------
    @route("POST", API + r"/access/ticket")
    def ticket(self, req):
        if req.body.get("username") != self.user or req.body.get("password") != self.password:
            return Response(401, {"data": None})
        return {"ticket": TICKET, "CSRFPreventionToken": CSRF, "username": self.user}

    @route("GET", API + r"/cluster/resources")
    def resources(self, req):
        return [
            {"vmid": k, "id": f"qemu/{k}", "name": v["name"], "node": v["node"], "type": "qemu"}
            for k, v in self.vms.items()
        ]

    @route("GET", API + r"/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>\d+)/config")
    def get_config(self, req, node, vmid):
        config = self._vm(node, vmid)["config"]
        return {**config, "digest": _digest(config)}

    @route("PUT", API + r"/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>\d+)/config")
    def put_config(self, req, node, vmid):
        vm = self._vm(node, vmid)
        changes = dict(req.body)
        if "digest" in changes and changes.pop("digest") != _digest(vm["config"]):
            raise HTTPError(500, "detected modified configuration - file changed by another user?")
        for key in filter(None, changes.pop("delete", "").split(",")):
            vm["config"].pop(key, None)
        vm["config"].update(changes)
        return

    @route("POST", API + r"/nodes/(?P<node>[^/]+)/storage/(?P<storage>[^/]+)/upload")
    def upload(self, req, node, storage):
        if (
            self.fail_after_uploads is not None
            and len(self.storage[storage]) >= self.fail_after_uploads
        ):
            self.fail_upload = True
        if self.fail_upload:
            raise HTTPError(500, "error during cfs-locked 'storage-local' operation: no space left")
        filename, data = req.body["file"]
        if req.body.get("content") != "iso" or not filename.endswith(".iso"):
            raise HTTPError(400, "wrong content type or file extension")
        self.storage[storage][f"{storage}:iso/{req.body.get('filename', filename)}"] = data
        return self._task(node, "imgcopy")

    @route("GET", API + r"/nodes/(?P<node>[^/]+)/storage/(?P<storage>[^/]+)/content")
    def content(self, req, node, storage):
        return [
            {"volid": v, "size": len(d), "content": "iso"} for v, d in self.storage[storage].items()
        ]

    @route(
        "DELETE", API + r"/nodes/(?P<node>[^/]+)/storage/(?P<storage>[^/]+)/content/(?P<volid>.+)"
    )
    def delete_content(self, req, node, storage, volid):
        if self.storage[storage].pop(volid, None) is None:
            raise HTTPError(500, f"volume '{volid}' does not exist")
        return

    @route("GET", API + r"/nodes/(?P<node>[^/]+)/tasks/(?P<upid>[^/]+)/status")
    def task_status(self, req, node, upid):
        return {"upid": upid, "status": "stopped", "exitstatus": "OK"}

    @route("GET", API + r"/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>\d+)/status/current")
    def current(self, req, node, vmid):
        vm = self._vm(node, vmid)
        if vm["status"] == "running" and vm["off_after_polls"] is not None:
            vm["polls"] += 1
            if vm["polls"] > vm["off_after_polls"]:
                vm["status"] = "stopped"  # the customization initrd powered off
        return {"status": vm["status"], "vmid": int(vmid), "name": vm["name"]}

    @route(
        "POST",
        API + r"/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>\d+)/status/(?P<action>start|stop|shutdown)",
    )
    def power(self, req, node, vmid, action):
        vm = self._vm(node, vmid)
        vm["status"] = "running" if action == "start" else "stopped"
        vm["polls"] = 0
        return self._task(node, f"qm{action}")
