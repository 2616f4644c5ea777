"""libvirt (KVM/QEMU, and Xen through libvirt) via libvirt-python.

Configuration is changed only in the *inactive* (persistent) XML with defineXML — the VM is
off, and IDE drives can't be hot-added anyway. snapshot() keeps the whole inactive XML
(with secrets: VNC passwords must survive the round trip) and restore() defines it again,
so the domain comes back byte for byte as libvirt printed it; the XML edits themselves are
in libvirt_xml.py.

Media: by default the hypervisor host reads vmtailor's files where they are (a local
libvirtd; the files must be readable by the QEMU user, e.g. libvirt-qemu). With
`pool: NAME` they are uploaded into that storage pool as volumes over the libvirt
connection (works for remote URIs too) and deleted afterwards.

Power-off is seen through lifecycle events (one event-loop thread per process), with a
slow poll as a safety net. The result comes from a serial log file written by virtlogd on
the hypervisor host when that host is this one (`serial: file`), else from the console
stream read over the connection while the customization boot runs (`serial: console`);
either is read live too (read_console), so the result record ends the wait. During the
customization boot a reboot stops the domain like a power-off does (REBOOT_STOPS).
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import libvirt

from . import libvirt_xml
from .base import VM, ConnectError, Driver, DriverError, Media, PowerState, VMNotFound
from .libvirt_console import Console

XML_FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
POLL = 5.0  # seconds between state checks while waiting, in case an event is lost
UPLOAD_CHUNK = 1 << 20

_loop_lock = threading.Lock()
_loop_started = False


def _start_event_loop() -> None:
    """libvirt delivers events only on connections opened after an event implementation
    is registered, and only while something runs it: one daemon thread per process."""
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()
        # without this, libvirt prints every error on stderr as well as raising it
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _loop_started = True


def _message(exc: libvirt.libvirtError) -> str:
    return (exc.get_error_message() or str(exc)).strip().splitlines()[0]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


class LibvirtDriver(Driver):
    NAME = "libvirt"
    SUMMARY = "KVM/QEMU (and Xen) through libvirt (uri: qemu:///system, qemu+ssh://host/system)"
    CONFIG_FORMAT = "iso"
    HAS_EVENTS = True
    HAS_SERIAL_LOG = True
    REBOOT_STOPS = True  # libvirt_xml.LIFECYCLE

    conn: libvirt.virConnect | None = None

    def __init__(self, connection):
        super().__init__(connection)
        self._consoles: dict[str, Console] = {}

    @classmethod
    def check_options(cls, connection) -> None:
        pool = connection.options.get("pool")
        if pool is not None and (not isinstance(pool, str) or not pool):
            raise DriverError("libvirt: pool: expected the name of a storage pool")
        if connection.options.get("serial", "file") not in ("file", "console"):
            raise DriverError("libvirt: serial: 'file' (a log on this host) or 'console'")
        log_dir = connection.options.get("serial_log_dir")
        if log_dir is not None and (not isinstance(log_dir, str) or not log_dir.startswith("/")):
            raise DriverError("libvirt: serial_log_dir: expected an absolute path")

    @property
    def uri(self) -> str:
        return self.connection.uri or "qemu:///system"

    def _console_mode(self) -> bool:
        """Read the result through the console stream rather than a log file: the default
        for a remote hypervisor, whose files this host can't open."""
        return (
            self.connection.options.get("serial", "file" if self._local() else "console")
            == "console"
        )

    def _local(self) -> bool:
        host = urllib.parse.urlsplit(self.uri).hostname
        return host in (None, "", "localhost", "127.0.0.1", "::1")

    # --- connection -------------------------------------------------------------------
    def connect(self) -> None:
        _start_event_loop()
        username, password = self.connection.username, self.connection.password

        def credentials(creds, _opaque) -> int:
            for cred in creds:
                if cred[0] == libvirt.VIR_CRED_AUTHNAME and username:
                    cred[4] = username
                elif cred[0] in (libvirt.VIR_CRED_PASSPHRASE, libvirt.VIR_CRED_NOECHOPROMPT):
                    if password is None:
                        return -1  # asked for a password we were not given
                    cred[4] = password
                elif cred[0] == libvirt.VIR_CRED_AUTHNAME:
                    cred[4] = cred[3] or ""  # the default the server offered
                else:
                    return -1
            return 0

        kinds = [
            libvirt.VIR_CRED_AUTHNAME,
            libvirt.VIR_CRED_PASSPHRASE,
            libvirt.VIR_CRED_NOECHOPROMPT,
        ]
        try:
            self.conn = libvirt.openAuth(self.uri, [kinds, credentials, None], 0)
        except libvirt.libvirtError as exc:
            raise ConnectError(f"cannot connect to {self.uri}: {_message(exc)}") from None
        if not self._local():
            # notice a dead link within ~15 s instead of waiting on it for the whole timeout
            self.conn.setKeepAlive(5, 3)

    def close(self) -> None:
        for console in self._consoles.values():
            console.close()
        self._consoles.clear()
        if self.conn is not None:
            try:
                self.conn.close()
            except libvirt.libvirtError:
                pass
            self.conn = None

    def _call(self, vm: VM, what: str, method, *args):
        try:
            return method(*args)
        except libvirt.libvirtError as exc:
            raise DriverError(f"{vm.name}: cannot {what}: {_message(exc)}") from None

    def _dom(self, vm: VM, uuid: str | None = None) -> libvirt.virDomain:
        try:
            if uuid:
                return self.conn.lookupByUUIDString(uuid)
            return self.conn.lookupByName(vm.name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise VMNotFound(f"{vm.name}: no such domain on {self.uri}") from None
            raise DriverError(f"{vm.name}: cannot look it up: {_message(exc)}") from None

    # --- power --------------------------------------------------------------------------
    def power_state(self, vm: VM) -> PowerState:
        dom = self._dom(vm)
        active = self._call(vm, "read its state", dom.isActive)
        return PowerState.RUNNING if active else PowerState.OFF

    def power_on(self, vm: VM) -> None:
        dom = self._dom(vm)
        self._call(vm, "start it", dom.create)
        if self._console_mode() and libvirt_xml.is_modified(dom.XMLDesc(XML_FLAGS)):
            # the customization boot: capture its console from now until it powers off
            self._consoles[dom.UUIDString()] = self._call(
                vm, "open its console", Console, self.conn, dom
            )

    def power_off(self, vm: VM) -> None:
        dom = self._dom(vm)
        if dom.isActive():
            self._call(vm, "power it off", dom.destroy)

    def shutdown(self, vm: VM, timeout: float) -> None:
        dom = self._dom(vm)
        if not dom.isActive():
            return
        self._call(vm, "ask it to shut down", dom.shutdown)
        if not self.wait_off(vm, timeout):
            raise DriverError(f"{vm.name}: did not shut down within {timeout:g} s (left running)")

    def wait_off(self, vm: VM, timeout: float) -> bool:
        dom = self._dom(vm)
        stopped = threading.Event()

        def lifecycle(_conn, _dom, event, _detail, _opaque) -> None:
            if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
                stopped.set()

        callback = self._call(
            vm, "watch its events", self.conn.domainEventRegisterAny,
            dom, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, None,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while True:
                # checked after registering, so a power-off in between is not missed
                if not self._call(vm, "read its state", dom.isActive):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                stopped.wait(min(remaining, POLL))
        finally:
            try:
                self.conn.domainEventDeregisterAny(callback)
            except libvirt.libvirtError:
                pass

    # --- configuration ------------------------------------------------------------------
    def _log_path(self, uuid: str) -> str:
        folder = self.connection.options.get("serial_log_dir", "/var/log/libvirt/qemu")
        return os.path.join(folder, f"{libvirt_xml.SERIAL_LOG_NAME}{uuid}.log")

    def snapshot(self, vm: VM) -> dict[str, Any]:
        dom = self._dom(vm)
        if not dom.isPersistent():
            raise DriverError(f"{vm.name}: a transient domain; vmtailor changes only defined ones")
        xml = self._call(vm, "read its XML", dom.XMLDesc, XML_FLAGS)
        if libvirt_xml.is_modified(xml):
            raise DriverError(
                f"{vm.name}: still carries vmtailor's media from an interrupted deploy",
                hint="run `vmtailor deploy INVENTORY --restore` first",
            )
        uuid = dom.UUIDString()
        log = libvirt_xml.serial_log(xml, self._log_path(uuid))
        offset = 0
        if log.appends and self._local():
            # the domain's own log, appended to: read only what this boot adds (one
            # without append='on' starts empty: an offset would skip this boot's start)
            try:
                offset = os.path.getsize(log.path)
            except OSError:
                offset = 0
        return {"uuid": uuid, "xml": xml, "serial_log": log.path,
                "serial_log_existing": log.existing, "serial_offset": offset}  # fmt: skip

    def upload(self, vm: VM, media: Media) -> Media:
        for path in (media.iso, media.config):
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise DriverError(f"{vm.name}: cannot read {path}: {exc.strerror}") from None
        pool_name = self.connection.options.get("pool")
        if not pool_name:
            return Media(
                os.path.abspath(media.iso), os.path.abspath(media.config), media.config_format
            )
        try:
            pool = self.conn.storagePoolLookupByName(pool_name)
        except libvirt.libvirtError as exc:
            raise DriverError(f"{vm.name}: storage pool {pool_name!r}: {_message(exc)}") from None
        stem = f"vmtailor-{_safe(vm.name)}-{self._dom(vm).UUIDString()[:8]}"
        ext = {"iso": "iso", "floppy": "img", "vfat": "img"}[media.config_format]
        iso = self._upload_one(vm, pool, media.iso, f"{stem}-boot.iso")
        config = self._upload_one(vm, pool, media.config, f"{stem}-config.{ext}")
        return Media(iso, config, media.config_format)

    def _upload_one(self, vm: VM, pool, path: str, volume: str) -> str:
        size = os.path.getsize(path)
        self._delete_volume(pool, volume)  # a leftover of an interrupted run
        spec = (f"<volume><name>{volume}</name><capacity unit='bytes'>{size}</capacity>"
                "<target><format type='raw'/></target></volume>")  # fmt: skip
        vol = stream = None
        try:
            vol = pool.createXML(spec, 0)
            stream = self.conn.newStream(0)
            vol.upload(stream, 0, size, 0)
            with open(path, "rb") as f:
                stream.sendAll(lambda _s, n, _o: f.read(min(n, UPLOAD_CHUNK)), None)
            stream.finish()
        except (libvirt.libvirtError, OSError) as exc:
            if stream is not None:
                try:
                    stream.abort()
                except libvirt.libvirtError:
                    pass
            self._delete_volume(pool, volume)
            text = _message(exc) if isinstance(exc, libvirt.libvirtError) else exc.strerror
            raise DriverError(
                f"{vm.name}: cannot upload {path} to pool {pool.name()}: {text}"
            ) from None
        return f"volume:{pool.name()}/{volume}"

    @staticmethod
    def _delete_volume(pool, volume: str) -> None:
        try:
            pool.storageVolLookupByName(volume).delete(0)
        except libvirt.libvirtError:
            pass

    def attach(self, vm: VM, placed: Media, saved: Mapping[str, Any]) -> None:
        dom = self._dom(vm, saved["uuid"])
        if dom.isActive():
            raise DriverError(
                f"{vm.name}: is running; vmtailor attaches media only to a VM that is off"
            )
        log = libvirt_xml.SerialLog(saved["serial_log"], saved["serial_log_existing"])
        if self._console_mode():
            log = None
        xml = libvirt_xml.customization_xml(
            saved["xml"], placed.iso, placed.config, placed.config_format, log
        )
        self._call(vm, "define it with vmtailor's media", self.conn.defineXML, xml)

    def read_result(self, vm: VM, saved: Mapping[str, Any]) -> str | None:
        console = self._consoles.pop(saved["uuid"], None)
        if console is not None:
            return console.text()
        return self._read_log(saved)

    def read_console(self, vm: VM, saved: Mapping[str, Any]) -> str | None:
        console = self._consoles.get(saved["uuid"])
        if console is not None:
            return console.so_far()
        return self._read_log(saved)

    def _read_log(self, saved: Mapping[str, Any]) -> str | None:
        if self._console_mode():
            return None  # not captured (a --restore run, or the console couldn't open)
        try:
            with open(saved["serial_log"], "rb") as f:
                f.seek(saved.get("serial_offset", 0))
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return None

    def restore(self, vm: VM, saved: Mapping[str, Any]) -> None:
        dom = self._dom(vm, saved["uuid"])
        if dom.isActive():
            raise DriverError(f"{vm.name}: is running; power it off before restoring")
        current = self._call(vm, "read its XML", dom.XMLDesc, XML_FLAGS)
        if not libvirt_xml.is_modified(current):
            return  # already restored, or never attached
        self._call(vm, "restore its XML", self.conn.defineXML, saved["xml"])
        after = self._call(vm, "read its XML", dom.XMLDesc, XML_FLAGS)
        if libvirt_xml.canonical(after) != libvirt_xml.canonical(saved["xml"]):
            raise DriverError(f"{vm.name}: restored XML differs from the saved one")

    def discard(self, vm: VM, placed: Mapping[str, Any]) -> None:
        for location in (placed.get("iso", ""), placed.get("config", "")):
            if not location.startswith("volume:"):
                continue
            pool_name, _, volume = location[len("volume:") :].partition("/")
            try:
                pool = self.conn.storagePoolLookupByName(pool_name)
            except libvirt.libvirtError:
                continue
            self._delete_volume(pool, volume)


DRIVER = LibvirtDriver
