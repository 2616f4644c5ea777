"""Stage `customize`: the engine, exactly as `vmtailor apply` runs it, on /sysroot."""

from __future__ import annotations

from vmtailor.customizer import engine
from vmtailor.customizer.localroot import LocalRoot

from . import Context, State, say


def stage(state: State, ctx: Context) -> None:
    kwargs = {"sources": ctx.sources} if ctx.sources else {}
    result = engine.apply(ctx.config, LocalRoot(ctx.sysroot), **kwargs)
    guest = result.guest
    state.guest = {
        "family": guest.family.name,
        "id": guest.os_id,
        "version": guest.version,
        "pretty_name": guest.pretty_name,
    }
    state.changes = [{"action": c.action, "path": c.path} for c in result.changes]
    state.already_applied = result.already_applied
    state.warnings.extend(result.warnings)
    say(f"guest: {guest.pretty_name}; {len(state.changes)} change(s)")
