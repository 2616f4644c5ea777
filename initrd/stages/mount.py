"""Stage `mount`: the planned filesystems under /sysroot, parents first, after refusing
any that needs journal recovery; each unmount is queued for the umount stage."""

from __future__ import annotations

import os

from vmtailor.customizer.storage.guest import mount_plan

from . import Context, State, say


def stage(state: State, ctx: Context) -> None:
    plan = ctx.found.plan
    os.makedirs(ctx.sysroot, exist_ok=True)
    before = len(ctx.mounts.targets)
    try:
        mounted, warnings = mount_plan(plan, ctx.sysroot, ctx.mounts)
    finally:
        ctx.guest_mounted = len(ctx.mounts.targets) > before
    for warning in warnings:
        say(f"warning: {warning}")
    state.warnings.extend(warnings)
    for m in mounted:
        options = f" {','.join(m.options)}" if m.options else ""
        say(f"  {m.target}: {m.device.path} ({m.fstype}{options})")
        state.mounts.append({"target": m.target, "device": m.device.path, "fstype": m.fstype})
