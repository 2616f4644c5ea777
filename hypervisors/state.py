"""The deploy state file: per VM, what vmtailor changed and how far it got, so that an
interrupted run (Ctrl-C, crash, SIGKILL, power cut) can be restored or resumed.

One folder per inventory (named by a hash of its absolute path) holds `state.json`, a lock
that keeps two deploys of one inventory apart, the per-VM config media and the serial logs.
Every update rewrites the whole file atomically (temp file, fsync, rename), so a reader
sees either the old state or the new one, never half of each. The file can hold secrets
(libvirt's secure domain XML), hence 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..customizer.errors import VmtailorError

VERSION = 1
DEFAULT_BASE = "/var/lib/vmtailor/deploy"

# How far a VM got. A VM in a DIRTY phase may have vmtailor's media attached or its boot
# order changed: it must be restored (from `saved`) before anything else happens to it.
PENDING = "pending"  # nothing done yet
SAVED = "saved"  # snapshot recorded; the VM is unchanged
PLACED = "placed"  # media uploaded to the hypervisor (`placed`)
ATTACHED = "attached"  # media attached / boot order changed (maybe only partly)
BOOTED = "booted"  # powered on from the customization ISO
RESTORED = "restored"  # back as in `saved`; uploads may still need discarding
DONE = "done"  # customized, restored, uploads removed
FAILED = "failed"  # restored and cleaned up, but the customization didn't succeed
DIRTY = frozenset({SAVED, PLACED, ATTACHED, BOOTED, RESTORED})


def base_dir() -> str:
    """Where state folders live: $VMTAILOR_STATE_DIR, else /var/lib/vmtailor/deploy for
    root, else ~/.local/state/vmtailor/deploy."""
    if os.environ.get("VMTAILOR_STATE_DIR"):
        return os.environ["VMTAILOR_STATE_DIR"]
    if os.geteuid() == 0:
        return DEFAULT_BASE
    xdg = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(xdg, "vmtailor", "deploy")


def folder_for(inventory: str) -> str:
    digest = hashlib.sha256(os.path.realpath(inventory).encode()).hexdigest()[:16]
    stem = os.path.splitext(os.path.basename(inventory))[0]
    return os.path.join(base_dir(), f"{stem}-{digest}")


class StateFile:
    """state.json of one inventory. Thread-safe: `--jobs N` workers share one instance."""

    def __init__(self, folder: str, inventory: str):
        self.folder = folder
        self.path = os.path.join(folder, "state.json")
        self.inventory = os.path.realpath(inventory)
        self._lock = threading.Lock()
        self._lockfile: int | None = None
        self.data: dict[str, Any] = {"version": VERSION, "inventory": self.inventory, "vms": {}}

    @classmethod
    def for_inventory(cls, inventory: str) -> StateFile:
        return cls(folder_for(inventory), inventory)

    # --- opening ------------------------------------------------------------------------
    def open(self) -> StateFile:
        """Create the folder, take the inventory's lock, read the file if there is one."""
        # 0755: libvirt's QEMU (another user) must reach the config media in media/
        os.makedirs(self.folder, mode=0o755, exist_ok=True)
        fd = os.open(os.path.join(self.folder, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise VmtailorError(
                f"another vmtailor deploy of {self.inventory} is running (lock {self.folder}/lock)"
            ) from None
        self._lockfile = fd
        self.data = self._read() or self.data
        return self

    def close(self) -> None:
        if self._lockfile is not None:
            os.close(self._lockfile)  # releases the flock
            self._lockfile = None

    def __enter__(self) -> StateFile:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> dict[str, Any] | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise VmtailorError(f"cannot read deploy state {self.path}: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise VmtailorError(f"{self.path}: not a vmtailor deploy state (version {VERSION})")
        data.setdefault("vms", {})
        return data

    # --- per VM -------------------------------------------------------------------------
    def vm(self, name: str) -> dict[str, Any]:
        """A copy of the VM's record ({} when there is none)."""
        with self._lock:
            return json.loads(json.dumps(self.data["vms"].get(name, {})))

    def names(self) -> list[str]:
        with self._lock:
            return list(self.data["vms"])

    def phase(self, name: str) -> str:
        return self.vm(name).get("phase", PENDING)

    def update(self, name: str, **fields: Any) -> None:
        """Merge `fields` into the VM's record and write the file before returning: the
        caller changes the VM only after this, so the file always knows at least as much
        as the hypervisor has been told."""
        with self._lock:
            record = self.data["vms"].setdefault(name, {})
            record.update(fields)
            record["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self._write()

    def forget(self, name: str) -> None:
        with self._lock:
            if self.data["vms"].pop(name, None) is not None:
                self._write()

    def _write(self) -> None:
        text = json.dumps(self.data, indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".state-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dirfd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dirfd)  # the rename itself must survive a crash
        finally:
            os.close(dirfd)

    # --- files beside the state ---------------------------------------------------------
    def subdir(self, name: str) -> str:
        path = os.path.join(self.folder, name)
        os.makedirs(path, mode=0o755, exist_ok=True)
        return path

    def dirty(self) -> Iterator[str]:
        for name in self.names():
            if self.phase(name) in DIRTY:
                yield name
