"""The customization ISO's program, which /init starts as `python3 -m vmtailor.initrd`
(__main__.py) while drivers load. It finds the config media and the guest, customizes
the guest, reports, and unmounts everything (in a `finally`). /init powers the VM off
afterwards.

Exit status 0 when the guest was customized (or already was), 1 otherwise; either way
the result record is on the console between fixed markers and in /run/vmtailor."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from .result import RUN, format_result
from .stages import Context, StageError, State, report, run_stage, say
from .stages import config as config_stage
from .stages import customize as customize_stage
from .stages import disks as disks_stage
from .stages import mount as mount_stage

STAGES = (
    ("config", config_stage.stage),
    ("disks", disks_stage.stage),
    ("mount", mount_stage.stage),
    ("customize", customize_stage.stage),
)


def kernel_args(path: str = "/proc/cmdline") -> dict[str, str]:
    try:
        with open(path) as f:
            words = f.read().split()
    except OSError:
        return {}
    return {k: v for k, _, v in (w.partition("=") for w in words) if k.startswith("vmtailor.")}


def _umount(state: State, ctx: Context) -> None:
    errors = ctx.mounts.close()
    os.sync()
    if errors:
        raise StageError("unmounting failed: " + "; ".join(errors))


def run(ctx: Context, stages=STAGES) -> State:
    """Run `stages` in order until one fails, then always report and unmount."""
    state = State()
    started = time.monotonic()
    os.makedirs(ctx.run_dir, exist_ok=True)
    try:
        for name, fn in stages:
            if not run_stage(name, fn, state, ctx):
                break
        else:
            state.status = "ok"
    finally:
        run_stage("report", report.stage, state, ctx)
        run_stage("umount", _umount, state, ctx)
        state.timings["total"] = round(time.monotonic() - started, 3)
    return state


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    args = kernel_args()
    ctx = Context(drivers_loaded=os.environ.get("VMTAILOR_DRIVERS_LOADED") or None)
    try:
        ctx.wait = float(args.get("vmtailor.wait", ctx.wait))
    except ValueError:
        pass
    state = run(ctx)
    record = report.record(state)
    try:
        with open(os.path.join(ctx.run_dir, "result.json"), "w") as f:
            json.dump(record, f, sort_keys=True)
    except OSError:
        pass
    # the console copy only, printed after umount synced: the run token ends the host's
    # wait, so it must not reach the guest's disk nor the console before this point
    if ctx.run:
        record[RUN] = ctx.run
    say(format_result(record).rstrip("\n"))
    return 0 if state.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
