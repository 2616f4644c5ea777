"""`vmtailor deploy`: customize every VM of an inventory through its hypervisor, N at a
time, and put back whatever an interrupted deploy left changed.

The orchestrator owns what is common to all VMs — the inventory's lock and state file,
the ISO, per-VM config media, a driver connection per worker thread, Ctrl-C — and hands
each VM to flow.customize(). A deploy cut short resumes: VMs already done are skipped,
VMs left changed are restored first, the rest run again."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from ..customizer.errors import VmtailorError
from . import flow
from . import state as st
from .base import VM, Driver, Media
from .inventory import Inventory, InventoryVM

log = logging.getLogger("vmtailor.deploy")


def console_progress(stream=sys.stderr) -> flow.Progress:
    """Progress lines on a terminal only; always in the -v log."""
    started = time.monotonic()
    tty = stream.isatty()
    lock = threading.Lock()

    def report(vm: str, what: str) -> None:
        log.info("%s: %s", vm, what)
        if tty:
            with lock:
                stream.write(f"[{time.monotonic() - started:6.1f}s] {vm}: {what}\n")
                stream.flush()

    return report


def ensure_iso(inventory: Inventory, progress: flow.Progress) -> str:
    """The inventory's ISO, built (and cached) by the builder when it's missing."""
    from ..builder.iso import build_iso

    if inventory.iso and os.path.isfile(inventory.iso):
        return inventory.iso
    if inventory.iso and not os.path.isdir(os.path.dirname(inventory.iso)):
        raise VmtailorError(f"iso: {inventory.iso}: no such file, nor a folder to build it in")
    progress("-", f"building the customization ISO {inventory.iso or '(cached)'}")
    return build_iso(inventory.iso).iso


def make_config_media(vm: InventoryVM, folder: str, fmt: str, run: dict | None = None) -> str:
    """This VM's config, rendered with its vars, on media in `folder`. The image stays 0600
    (it holds password hashes and secret files): libvirt's DAC driver hands a disk image to
    the QEMU user for as long as the domain runs and gives it back after, and the qemu
    driver's QEMU runs as root. `run`: what this one boot is told (write_media)."""
    from ..builder.media import write_media

    ext = {"iso": "iso", "floppy": "img", "vfat": "img"}[fmt]
    out = os.path.join(folder, f"{vm.name}.config.{ext}")
    write_media(vm.config.config, vm.config.sources, out, fmt, run=run)
    return out


class _Workers:
    """One driver connection per worker thread: SDK sessions are not all thread-safe."""

    def __init__(self, inventory: Inventory):
        self.inventory = inventory
        self.local = threading.local()
        self.opened: list[Driver] = []
        self.lock = threading.Lock()

    def driver(self) -> Driver:
        driver = getattr(self.local, "driver", None)
        if driver is None:
            driver = self.inventory.driver(self.inventory.connection)
            driver.connect()
            with self.lock:
                self.opened.append(driver)
            self.local.driver = driver
        return driver

    def close(self) -> None:
        for driver in self.opened:
            driver.close()


def _vm(inventory: Inventory, name: str) -> VM:
    entry = inventory.vm(name)
    return VM(name, entry.settings if entry else {})


def _run_all(jobs: int, tasks: dict[str, Callable[[], flow.Outcome]],
             cancel: threading.Event) -> dict[str, flow.Outcome]:  # fmt: skip
    """Run the tasks `jobs` at a time. The first Ctrl-C asks every running VM to stop and
    restore (they do, in their finally blocks); a second one leaves at once — the state
    file then knows what `deploy --restore` must undo."""
    outcomes: dict[str, flow.Outcome] = {}
    main = threading.current_thread() is threading.main_thread()
    # SIGTERM (a service manager, `timeout`) restores the VMs in progress like Ctrl-C does
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if main else None
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="deploy")
    futures: dict[Future, str] = {pool.submit(task): name for name, task in tasks.items()}
    pending = set(futures)
    try:
        while pending:
            try:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                if cancel.is_set():
                    raise
                cancel.set()
                print("interrupted: restoring the VMs in progress "
                      "(if that is cut short too: `vmtailor deploy INVENTORY --restore`)",
                      file=sys.stderr)  # fmt: skip
                for f in pending:
                    f.cancel()
                continue
            for f in done:
                name = futures[f]
                if f.cancelled():
                    outcomes[name] = flow.Outcome(name, "skipped", "interrupted before it started")
                    continue
                try:
                    outcomes[name] = f.result()
                except flow.Cancelled as exc:
                    outcomes[name] = flow.Outcome(name, "failed", str(exc))
                except VmtailorError as exc:
                    outcomes[name] = flow.Outcome(name, "failed", str(exc))
        pool.shutdown(wait=True)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if main:
            signal.signal(signal.SIGTERM, previous)
    return {name: outcomes[name] for name in tasks}


def deploy(inventory: Inventory, opts: flow.Options, *, jobs: int = 1, force: bool = False,
           progress: flow.Progress | None = None) -> list[flow.Outcome]:  # fmt: skip
    """Customize every VM of the inventory; one Outcome per VM, in inventory order."""
    progress = progress or console_progress()
    with st.StateFile.for_inventory(inventory.path) as state:
        # one connection up front: bad URI or credentials fail the command in one line
        probe = inventory.driver(inventory.connection)
        probe.connect()
        probe.close()
        iso = ensure_iso(inventory, progress)
        media_dir = state.subdir("media")
        fmt = inventory.driver.CONFIG_FORMAT
        workers = _Workers(inventory)
        skipped: dict[str, flow.Outcome] = {}
        tasks: dict[str, Callable[[], flow.Outcome]] = {}
        for entry in inventory.vms:
            if state.phase(entry.name) == st.DONE and not force:
                skipped[entry.name] = flow.Outcome(
                    entry.name, "skipped", "already customized (--force to do it again)",
                    result=state.vm(entry.name).get("result"),
                )  # fmt: skip
                continue

            def task(entry=entry) -> flow.Outcome:
                # a fresh token per boot: only a record carrying it ends the wait early
                run = secrets.token_hex(16)
                config = make_config_media(entry, media_dir, fmt, {
                    "run": run, "reboot_stops": inventory.driver.REBOOT_STOPS})  # fmt: skip
                media = Media(iso, config, fmt)
                return flow.customize(workers.driver(), _vm(inventory, entry.name), media,
                                      state, opts, progress, run)  # fmt: skip

            tasks[entry.name] = task
        try:
            ran = _run_all(jobs, tasks, opts.cancel)
        finally:
            workers.close()
        outcomes = {**skipped, **ran}
        return [outcomes[entry.name] for entry in inventory.vms]


def restore(inventory: Inventory, *, progress: flow.Progress | None = None) -> list[flow.Outcome]:
    """Put back every VM the state file says is changed; one Outcome per VM it knows."""
    progress = progress or console_progress()
    out: list[flow.Outcome] = []
    with st.StateFile.for_inventory(inventory.path) as state:
        names = state.names()
        dirty = [n for n in names if state.phase(n) in st.DIRTY]
        if not dirty:
            return [flow.Outcome(n, "clean", "nothing to restore") for n in names]
        with inventory.driver(inventory.connection) as driver:
            for name in names:
                if name not in dirty:
                    out.append(flow.Outcome(name, "clean", "nothing to restore"))
                    continue
                started = time.monotonic()
                try:
                    flow.restore_vm(driver, _vm(inventory, name), state, progress)
                    out.append(flow.Outcome(name, "restored", "media and boot order restored",
                                            seconds=time.monotonic() - started))  # fmt: skip
                except VmtailorError as exc:
                    out.append(flow.Outcome(name, "failed", str(exc)))
    return out
