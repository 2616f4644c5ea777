"""A stateful oVirt engine (the REST API part vmtailor uses) on 127.0.0.1: SSO token,
VMs with os.boot.devices, one CD-ROM each and disk attachments, disks on a storage
domain, image transfers with an imageio-like upload URL, start/stop and status. It speaks
the XML ovirtsdk4 sends and reads, and records every request in `requests`.

The guest is simulated by `off_after_polls`: a started VM reports "down" after that many
status reads (None: never, the timeout case)."""

from __future__ import annotations

import copy
import itertools
import xml.etree.ElementTree as ET

from .http import FakeServer, HTTPError, Response, collect_routes, route

API = "/ovirt-engine/api"
TOKEN = "fake-sso-token"


def canon(xml: str) -> str:
    """XML without the SDK's indentation, for comparing request bodies."""
    return ET.canonicalize(xml, strip_text=True)


def _text(elem: ET.Element | None, path: str, default=None):
    found = elem.find(path) if elem is not None else None
    return found.text if found is not None else default


@collect_routes
class FakeOvirt(FakeServer):
    def __init__(self, user="admin@internal", password="secret"):
        super().__init__()
        self.user, self.password = user, password
        self.vms: dict[str, dict] = {}
        self.disks: dict[str, dict] = {
            "disk-sys": {"name": "system", "content": "data", "data": b""}
        }
        self.transfers: dict[str, dict] = {}
        self.fail_upload = False
        self._ids = itertools.count(1)

    def add_vm(self, name: str, boot: list[str], cd_file: str | None, off_after_polls=2):
        vm_id = f"vm-{name}"
        self.vms[vm_id] = {
            "name": name,
            "status": "down",
            "boot": list(boot),
            "cdrom": cd_file,
            "attachments": ["disk-sys"],
            "off_after_polls": off_after_polls,
            "polls": 0,
        }
        return vm_id

    def vm_state(self) -> dict:
        with self.lock:
            vms = {
                k: {f: v[f] for f in ("status", "boot", "cdrom", "attachments")}
                for k, v in self.vms.items()
            }
            return copy.deepcopy({"vms": vms, "disks": self.disks})

    def api_requests(self) -> list[tuple]:
        """(method, path, query, body) after login, the imageio PUT reduced to its size."""
        out = []
        for r in self.requests:
            if r.path.endswith("/sso/oauth/token"):
                continue
            if isinstance(r.body, str):
                body = canon(r.body)
            else:
                body = len(r.body) if r.body else None
            out.append((r.method, r.path.removeprefix(API), r.query or None, body))
        return out

    def dispatch(self, req):
        if not req.path.startswith(API) or req.headers.get("Authorization") == f"Bearer {TOKEN}":
            return super().dispatch(req)
        return Response(401, "<fault><reason>Unauthorized</reason></fault>", "application/xml")

    def error(self, exc: HTTPError) -> Response:
        body = f"<fault><reason>{exc.message}</reason><detail>{exc.message}</detail></fault>"
        return Response(exc.status, body, "application/xml")

    def _vm(self, vm_id: str) -> dict:
        if vm_id not in self.vms:
            raise HTTPError(404, "Entity not found")
        return self.vms[vm_id]

    def _vm_xml(self, vm_id: str) -> str:
        vm = self.vms[vm_id]
        devices = "".join(f"<device>{d}</device>" for d in vm["boot"])
        return (
            f'<vm href="{API}/vms/{vm_id}" id="{vm_id}"><name>{vm["name"]}</name>'
            f"<status>{vm['status']}</status>"
            f"<os><boot><devices>{devices}</devices></boot><type>other_linux</type></os></vm>"
        )

    @staticmethod
    def xml(body: str, status: int = 200) -> Response:
        return Response(status, body, "application/xml")

    # --- SSO and VMs --------------------------------------------------------------------
    @route("POST", r"/ovirt-engine/sso/oauth/token")
    def token(self, req):
        if req.body.get("username") != self.user or req.body.get("password") != self.password:
            return {"error": "access_denied", "error_description": "Cannot authenticate user"}
        return {"access_token": TOKEN, "scope": "ovirt-app-api", "token_type": "bearer"}

    @route("GET", API + r"/vms")
    def list_vms(self, req):
        wanted = req.query.get("search", "").removeprefix("name=")
        found = "".join(self._vm_xml(k) for k, v in self.vms.items() if v["name"] == wanted)
        return self.xml(f"<vms>{found}</vms>")

    @route("GET", API + r"/vms/(?P<vm_id>[^/]+)")
    def get_vm(self, req, vm_id):
        vm = self._vm(vm_id)
        if vm["status"] == "up" and vm["off_after_polls"] is not None:
            vm["polls"] += 1
            if vm["polls"] > vm["off_after_polls"]:
                vm["status"] = "down"  # the customization initrd powered off
        return self.xml(self._vm_xml(vm_id))

    @route("PUT", API + r"/vms/(?P<vm_id>[^/]+)")
    def update_vm(self, req, vm_id):
        vm = self._vm(vm_id)
        boot = ET.fromstring(req.body).find("os/boot/devices")
        if boot is not None:
            vm["boot"] = [d.text for d in boot.findall("device")]
        return self.xml(self._vm_xml(vm_id))

    @route("POST", API + r"/vms/(?P<vm_id>[^/]+)/(?P<action>start|stop|shutdown)")
    def power(self, req, vm_id, action):
        vm = self._vm(vm_id)
        if action == "start":
            if _text(ET.fromstring(req.body), "use_cloud_init") != "false":
                raise HTTPError(400, "test fake: start without use_cloud_init=false")
            vm["status"], vm["polls"] = "up", 0
        else:
            vm["status"] = "down"
        return self.xml("<action><status>complete</status></action>")

    # --- CD-ROM and disk attachments -------------------------------------------------------
    def _cdrom_xml(self, vm_id: str) -> str:
        file = self.vms[vm_id]["cdrom"]
        inner = f'<file id="{file}"/>' if file else ""
        return f'<cdrom href="{API}/vms/{vm_id}/cdroms/cd0" id="cd0">{inner}</cdrom>'

    @route("GET", API + r"/vms/(?P<vm_id>[^/]+)/cdroms")
    def cdroms(self, req, vm_id):
        self._vm(vm_id)
        return self.xml(f"<cdroms>{self._cdrom_xml(vm_id)}</cdroms>")

    @route("PUT", API + r"/vms/(?P<vm_id>[^/]+)/cdroms/cd0")
    def update_cdrom(self, req, vm_id):
        vm = self._vm(vm_id)
        file = ET.fromstring(req.body).find("file")
        new = file.get("id") if file is not None else None
        if new and new not in self.disks:
            raise HTTPError(400, f"ISO {new} not found")
        vm["cdrom"] = new or None
        return self.xml(self._cdrom_xml(vm_id))

    @route("GET", API + r"/vms/(?P<vm_id>[^/]+)/diskattachments")
    def attachments(self, req, vm_id):
        items = "".join(
            f'<disk_attachment id="{d}"><disk id="{d}"/></disk_attachment>'
            for d in self._vm(vm_id)["attachments"]
        )
        return self.xml(f"<disk_attachments>{items}</disk_attachments>")

    @route("POST", API + r"/vms/(?P<vm_id>[^/]+)/diskattachments")
    def attach_disk(self, req, vm_id):
        disk = ET.fromstring(req.body).find("disk").get("id")
        if disk not in self.disks:
            raise HTTPError(404, f"disk {disk} not found")
        self._vm(vm_id)["attachments"].append(disk)
        return self.xml(f'<disk_attachment id="{disk}"><disk id="{disk}"/></disk_attachment>', 201)

    @route("DELETE", API + r"/vms/(?P<vm_id>[^/]+)/diskattachments/(?P<disk>[^/]+)")
    def detach_disk(self, req, vm_id, disk):
        vm = self._vm(vm_id)
        if disk not in vm["attachments"] or req.query.get("detach_only") != "true":
            raise HTTPError(404, "Entity not found")
        vm["attachments"].remove(disk)
        return self.xml("<action/>")

    # --- disks and image transfers ---------------------------------------------------------
    @route("POST", API + r"/disks")
    def add_disk(self, req):
        spec = ET.fromstring(req.body)
        disk_id = f"disk-{next(self._ids)}"
        self.disks[disk_id] = {
            "name": _text(spec, "name"),
            "content": _text(spec, "content_type"),
            "data": b"",
        }
        return self.xml(f'<disk id="{disk_id}"><status>locked</status></disk>', 201)

    @route("GET", API + r"/disks/(?P<disk_id>[^/]+)")
    def get_disk(self, req, disk_id):
        if disk_id not in self.disks:
            raise HTTPError(404, "Entity not found")
        return self.xml(f'<disk id="{disk_id}"><status>ok</status></disk>')

    @route("DELETE", API + r"/disks/(?P<disk_id>[^/]+)")
    def remove_disk(self, req, disk_id):
        if self.disks.pop(disk_id, None) is None:
            raise HTTPError(404, "Entity not found")
        return self.xml("<action/>")

    @route("POST", API + r"/imagetransfers")
    def add_transfer(self, req):
        disk = ET.fromstring(req.body).find("disk").get("id")
        tid = f"transfer-{next(self._ids)}"
        self.transfers[tid] = {"disk": disk, "phase": "transferring"}
        return self.xml(self._transfer_xml(tid), 201)

    def _transfer_xml(self, tid: str) -> str:
        phase = self.transfers[tid]["phase"]
        url = f"{self.url}/images/{tid}"
        return f'<image_transfer id="{tid}"><phase>{phase}</phase><transfer_url>{url}</transfer_url></image_transfer>'

    @route("GET", API + r"/imagetransfers/(?P<tid>[^/]+)")
    def get_transfer(self, req, tid):
        return self.xml(self._transfer_xml(tid))

    @route("POST", API + r"/imagetransfers/(?P<tid>[^/]+)/(?P<action>finalize|cancel)")
    def end_transfer(self, req, tid, action):
        ok = action == "finalize" and not self.transfers[tid].get("failed")
        self.transfers[tid]["phase"] = "finished_success" if ok else "finished_failure"
        return self.xml("<action/>")

    @route("PUT", r"/images/(?P<tid>[^/]+)")
    def imageio_put(self, req, tid):
        if self.fail_upload:
            self.transfers[tid]["failed"] = True
            raise HTTPError(500, "imageio: No space left on device")
        self.disks[self.transfers[tid]["disk"]]["data"] = req.body
        return Response(200, b"", "text/plain")
