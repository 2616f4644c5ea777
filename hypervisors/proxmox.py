"""Proxmox VE through its REST API with proxmoxer (imported only when this driver is used).

The ISO and the config media are uploaded to an ISO storage of the VM's node
(`storage:`, default "local") and put into two IDE CD-ROM slots — ide2 and ide3 unless
they hold a disk — whose previous values the snapshot keeps, together with the `boot`
option and the config digest. attach is one synchronous PUT guarded by that digest, so a VM
edited since the snapshot is refused rather than half-changed. Restore writes back the
saved values exactly and deletes the keys that were absent.

Result: Proxmox's serial console is a socket reached only through a websocket terminal
proxy, so read_result returns None; the result is read from the guest on its next boot.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .base import VM, ConnectError, Driver, DriverError, Media, PowerState, SDKMissing, VMNotFound

SLOTS = ("ide2", "ide3", "ide0", "ide1")  # ide2 is where Proxmox puts a VM's CD-ROM
TASK_TIMEOUT = 600.0


def _sdk():
    try:
        import proxmoxer
    except ImportError:
        raise SDKMissing(
            "the proxmox driver needs proxmoxer", hint="pip install 'vmtailor[proxmox]'"
        ) from None
    return proxmoxer


def boot_with_cd_first(boot: str | None, cd: str, skip: set[str], bootdisk: str | None) -> str:
    """`order=ide2;scsi0;net0` with `cd` first. A legacy or missing order (`cdn`, none)
    becomes the CD then the boot disk."""
    order = []
    if boot and boot.startswith("order="):
        order = [d for d in boot.removeprefix("order=").split(";") if d and d not in skip]
    elif bootdisk:
        order = [bootdisk]
    return "order=" + ";".join([cd, *order])


class ProxmoxDriver(Driver):
    NAME = "proxmox"
    SUMMARY = "Proxmox VE via its REST API (uri: https://pve.example.com:8006)"
    CONFIG_FORMAT = "iso"

    @classmethod
    def check_options(cls, connection) -> None:
        if not connection.uri:
            raise DriverError("proxmox: hypervisor.uri is required (https://pve:8006)")
        poll = connection.options.get("poll_interval", 2)
        if not isinstance(poll, (int, float)) or poll <= 0:
            raise DriverError(f"proxmox: poll_interval: not a positive number: {poll!r}")

    @classmethod
    def check_vm_settings(cls, settings: Mapping[str, Any]) -> None:
        if "vmid" in settings and not isinstance(settings["vmid"], int):
            raise DriverError(f"proxmox: vmid: not an integer: {settings['vmid']!r}")

    def connect(self) -> None:
        proxmoxer = _sdk()
        import requests

        uri = self.connection.uri or ""
        parts = urllib.parse.urlsplit(uri if "//" in uri else f"https://{uri}")
        self.host = parts.hostname or ""
        token = self.connection.options.get("token_name")
        auth = (
            {"token_name": token, "token_value": self.connection.password}
            if token
            else {"password": self.connection.password}
        )
        self.poll = float(self.connection.options.get("poll_interval", 2))
        try:
            self.api = proxmoxer.ProxmoxAPI(
                self.host,
                port=parts.port or 8006,
                user=self.connection.username,
                verify_ssl=self.connection.verify_tls,
                timeout=60,
                **auth,
            )
            if token:  # token auth sends nothing until the first call: check it now
                self.api.version.get()
        except proxmoxer.AuthenticationError:
            raise ConnectError(
                f"proxmox {self.host}: login failed for user {self.connection.username!r}"
            ) from None
        except proxmoxer.ResourceException as exc:
            raise ConnectError(f"proxmox {self.host}: {exc.status_code} {exc.content}") from None
        except requests.RequestException as exc:
            raise ConnectError(f"proxmox {self.host}:{parts.port or 8006}: {exc}") from None
        self._where: dict[str, tuple[str, int]] = {}

    # --- API helpers ----------------------------------------------------------------
    def _call(self, what: str, method: str, path: str, **params):
        proxmoxer = _sdk()
        import requests

        try:
            return getattr(self.api(path), method)(**params)
        except proxmoxer.ResourceException as exc:
            # Proxmox says what went wrong in the HTTP reason phrase (and per parameter)
            detail = f" {exc.errors}" if exc.errors else ""
            raise DriverError(f"{what}: {exc.status_code} {exc.content}{detail}") from None
        except requests.RequestException as exc:
            raise DriverError(f"{what}: {exc}") from None

    def _wait_task(self, what: str, node: str, upid: Any) -> None:
        if not (isinstance(upid, str) and upid.startswith("UPID:")):
            return  # a synchronous answer: nothing to wait for
        deadline = time.monotonic() + TASK_TIMEOUT
        while time.monotonic() < deadline:
            status = self._call(what, "get", f"nodes/{node}/tasks/{upid}/status")
            if status.get("status") == "stopped":
                if status.get("exitstatus") != "OK":
                    raise DriverError(f"{what}: task failed: {status.get('exitstatus')}")
                return
            time.sleep(self.poll)
        raise DriverError(f"{what}: task did not finish within {TASK_TIMEOUT:g} s")

    def _locate(self, vm: VM) -> tuple[str, int]:
        if vm.name not in self._where:
            found = [
                r
                for r in self._call(f"{vm.name}: find", "get", "cluster/resources", type="vm")
                if r.get("type") == "qemu"
                and r.get("name") == vm.name
                and vm.settings.get("vmid", r["vmid"]) == r["vmid"]
            ]
            if not found:
                raise VMNotFound(f"{vm.name}: no such VM on proxmox {self.host}")
            if len(found) > 1:
                raise DriverError(f"{vm.name}: {len(found)} VMs have this name; give its vmid")
            self._where[vm.name] = (found[0]["node"], int(found[0]["vmid"]))
        return self._where[vm.name]

    def _qemu(self, vm: VM) -> str:
        node, vmid = self._locate(vm)
        return f"nodes/{node}/qemu/{vmid}"

    # --- power ----------------------------------------------------------------------
    def power_state(self, vm: VM) -> PowerState:
        status = self._call(f"{vm.name}: status", "get", f"{self._qemu(vm)}/status/current")
        return PowerState.OFF if status.get("status") == "stopped" else PowerState.RUNNING

    def _power(self, vm: VM, action: str, **params) -> None:
        node, _ = self._locate(vm)
        what = f"{vm.name}: {action}"
        upid = self._call(what, "post", f"{self._qemu(vm)}/status/{action}", **params)
        self._wait_task(what, node, upid)

    def power_on(self, vm: VM) -> None:
        self._power(vm, "start")

    def power_off(self, vm: VM) -> None:
        if self.power_state(vm) != PowerState.OFF:
            self._power(vm, "stop")

    def shutdown(self, vm: VM, timeout: float) -> None:
        self._power(vm, "shutdown", timeout=int(timeout))
        if not self.wait_off(vm, timeout):
            raise DriverError(f"{vm.name}: still running {timeout:g} s after shutdown")

    # --- configuration --------------------------------------------------------------
    def snapshot(self, vm: VM) -> dict[str, Any]:
        node, vmid = self._locate(vm)
        config = self._call(f"{vm.name}: read config", "get", f"{self._qemu(vm)}/config")
        # a slot is ours to use when it is empty or a CD-ROM; never one holding a disk
        free = [s for s in SLOTS if s not in config or "media=cdrom" in config[s]]
        if len(free) < 2:
            raise DriverError(f"{vm.name}: needs two IDE slots free or holding a CD-ROM")
        slots = free[:2]
        return {
            "node": node,
            "vmid": vmid,
            "digest": config.get("digest"),
            "slots": {s: config.get(s) for s in slots},
            "boot": config.get("boot"),
            "bootdisk": config.get("bootdisk"),
        }

    def upload(self, vm: VM, media: Media) -> Media:
        if media.config_format != "iso":
            raise DriverError(f"{vm.name}: proxmox attaches config media as an ISO only")
        node, vmid = self._locate(vm)
        storage = self.connection.options.get("storage", "local")
        names = (f"vmtailor-{vmid}.iso", f"vmtailor-{vmid}-config.iso")
        placed = Media(f"{storage}:iso/{names[0]}", f"{storage}:iso/{names[1]}", "iso")
        try:
            for local, name in zip((media.iso, media.config), names, strict=True):
                what = f"{vm.name}: upload {name} to {storage}"
                with open(local, "rb") as f:
                    path = f"nodes/{node}/storage/{storage}/upload"
                    upid = self._call(what, "post", path, content="iso", filename=name, file=f)
                self._wait_task(what, node, upid)
        except DriverError:
            # the flow only discards what upload returned: a half upload is ours to remove
            self.discard(vm, placed.to_dict())
            raise
        return placed

    def attach(self, vm: VM, placed: Media, saved: Mapping[str, Any]) -> None:
        cd, config_cd = list(saved["slots"])
        boot = boot_with_cd_first(saved["boot"], cd, {cd, config_cd}, saved.get("bootdisk"))
        self._call(
            f"{vm.name}: attach media",
            "put",
            f"{self._qemu(vm)}/config",
            **{cd: f"{placed.iso},media=cdrom", config_cd: f"{placed.config},media=cdrom"},
            boot=boot,
            digest=saved["digest"],  # refused if the VM changed since the snapshot
        )

    def restore(self, vm: VM, saved: Mapping[str, Any]) -> None:
        config = self._call(f"{vm.name}: read config", "get", f"{self._qemu(vm)}/config")
        wanted = {**saved["slots"], "boot": saved["boot"]}
        changes = {k: v for k, v in wanted.items() if v is not None and config.get(k) != v}
        delete = [k for k, v in wanted.items() if v is None and k in config]
        if delete:
            changes["delete"] = ",".join(delete)
        if changes:  # already as saved: restore is idempotent
            self._call(f"{vm.name}: restore", "put", f"{self._qemu(vm)}/config", **changes)

    def discard(self, vm: VM, placed: Mapping[str, Any]) -> None:
        node, _ = self._locate(vm)
        volids = [placed["iso"], placed["config"]]
        for storage in sorted({v.split(":", 1)[0] for v in volids}):
            path = f"nodes/{node}/storage/{storage}/content"
            present = {c["volid"] for c in self._call(f"{vm.name}: list {storage}", "get", path)}
            for volid in volids:
                if volid in present:
                    what = f"{vm.name}: remove {volid}"
                    self._wait_task(what, node, self._call(what, "delete", f"{path}/{volid}"))


DRIVER = ProxmoxDriver
