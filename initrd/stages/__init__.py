"""The in-initrd flow as named stages, Ignition style. Each stage takes the small,
serialisable State (what happened so far: written to /run/vmtailor/state.json after each
stage) and the Context (live things: the mount stack, the parsed config, the found
guest), and logs [started] / [finished] / [failed] on the console.

Order: config → disks → mount → customize; report and umount always run after, in a
`finally`, whatever failed before them."""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from vmtailor.customizer.errors import VmtailorError
from vmtailor.customizer.storage.mount import Mounts

RUN_DIR = "/run/vmtailor"
SYSROOT = "/sysroot"


@dataclass
class State:
    """What the stages did so far: serialisable, and the result record's source."""

    status: str = "running"  # then ok or error
    reason: str | None = None
    failed_stage: str | None = None
    config_device: str | None = None
    config_digest: str | None = None
    root: str | None = None  # where the guest's root was found
    mounts: list[dict] = field(default_factory=list)
    guest: dict | None = None
    changes: list[dict] = field(default_factory=list)
    already_applied: bool = False
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Context:
    """The live things the stages share: mounts, paths, config, the found guest."""

    mounts: Mounts = field(default_factory=Mounts)
    run_dir: str = RUN_DIR
    sysroot: str = SYSROOT
    wait: float = 60.0  # seconds to wait for the config media to appear
    drivers_loaded: str | None = None  # a file /init makes once drivers are loaded
    disks: list[str] | None = None  # look for the guest on these disks only (None: all)
    probed: dict[str, dict[str, str]] = field(default_factory=dict)  # blkid keys by device
    config: Any = None  # vmtailor.customizer.config.Config
    sources: Callable[[str], bytes] | None = None
    found: Any = None  # vmtailor.customizer.storage.guest.FoundGuest
    guest_mounted: bool = False
    run: str | None = None  # this run's token (config media's run.json): for the record

    @property
    def media_dir(self) -> str:
        return os.path.join(self.run_dir, "media")


class StageError(VmtailorError):
    """A stage cannot go on; the message is the result record's reason."""


def say(text: str) -> None:
    print(text, flush=True)


def save(state: State, ctx: Context) -> None:
    """The state after each stage, for whoever debugs a run (vmtailor.debug's shell)."""
    try:
        os.makedirs(ctx.run_dir, exist_ok=True)
        with open(os.path.join(ctx.run_dir, "state.json"), "w") as f:
            json.dump(state.to_dict(), f, indent=1)
    except OSError:
        pass


def run_stage(name: str, fn: Callable[[State, Context], None], state: State, ctx: Context) -> bool:
    """Run one stage; False (with the state saying why) when it failed."""
    say(f"[started] {name}")
    started = time.monotonic()
    try:
        fn(state, ctx)
    except VmtailorError as exc:
        reason = str(exc)
    except Exception as exc:  # a bug: say where on the console, keep the record short
        traceback.print_exc()
        reason = f"internal error: {type(exc).__name__}: {exc}"
    else:
        state.timings[name] = round(time.monotonic() - started, 3)
        say(f"[finished] {name}")
        save(state, ctx)
        return True
    state.timings[name] = round(time.monotonic() - started, 3)
    say(f"[failed] {name}: {reason}")
    if state.status != "error":  # the first failure is the reason
        state.status, state.reason, state.failed_stage = "error", reason, name
    save(state, ctx)
    return False
