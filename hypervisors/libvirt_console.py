"""A domain's serial console read through the libvirt connection (virDomainOpenConsole):
the result record of a remote hypervisor, whose log files vmtailor can't open.

The stream is non-blocking and read from libvirt's event loop thread as data arrives, from
just after power-on until the guest powers off (the stream hangs up) — the initrd prints
its result record at the very end, so nothing that matters is missed by opening late."""

from __future__ import annotations

import threading

import libvirt

EVENTS = (libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_ERROR
          | libvirt.VIR_STREAM_EVENT_HANGUP)  # fmt: skip
CHUNK = 65536
AGAIN = -2  # virStream.recv's "no data yet" on a non-blocking stream


class Console:
    def __init__(self, conn: libvirt.virConnect, dom: libvirt.virDomain):
        self.data = bytearray()
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self.stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        # FORCE: take the console from a `virsh console` someone left open
        dom.openConsole(None, self.stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        self.stream.eventAddCallback(EVENTS, self._event, None)

    def _event(self, stream, events, _opaque) -> None:
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            while True:
                try:
                    chunk = stream.recv(CHUNK)
                except libvirt.libvirtError:
                    chunk = b""
                if chunk == AGAIN:
                    break
                if not chunk:
                    self.close()
                    return
                with self._lock:
                    self.data.extend(chunk)
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self.close()

    def close(self) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
        for step in (self.stream.eventRemoveCallback, self.stream.abort):
            try:
                step()
            except libvirt.libvirtError:
                pass

    def so_far(self) -> str:
        """What was read until now; the capture goes on."""
        with self._lock:
            return self.data.decode("utf-8", errors="replace")

    def text(self, wait: float = 5.0) -> str:
        """Everything read, once the stream hung up (or `wait` seconds passed)."""
        self.closed.wait(wait)
        self.close()
        return self.so_far()
