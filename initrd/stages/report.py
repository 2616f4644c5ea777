"""Stage `report`: the result record, written inside the guest (when it is mounted) at
/var/lib/vmtailor/result.json, so the host can read it from the disk later. The console
copy is printed by main once everything is unmounted, so that it is the final word."""

from __future__ import annotations

import json
import time

from vmtailor.customizer.localroot import LocalRoot

from . import Context, State

GUEST_RESULT = "/var/lib/vmtailor/result.json"
FORMAT = 1


def record(state: State) -> dict:
    return {
        "format": FORMAT,
        "status": state.status,
        "reason": state.reason,
        "failed_stage": state.failed_stage,
        "guest": state.guest,
        "root": state.root,
        "mounts": state.mounts,
        "changes": state.changes,
        "already_applied": state.already_applied,
        "warnings": state.warnings,
        "config_digest": state.config_digest,
        "timings": state.timings,
        "finished_at": int(time.time()),
    }


def stage(state: State, ctx: Context) -> None:
    if not ctx.guest_mounted:
        return
    root = LocalRoot(ctx.sysroot)
    for d in ("/var", "/var/lib", "/var/lib/vmtailor"):
        if not root.is_dir(d):
            root.mkdir(d, 0o700 if d.endswith("vmtailor") else 0o755)
    data = json.dumps(record(state), indent=1, sort_keys=True) + "\n"
    root.write_bytes(GUEST_RESULT, data.encode(), mode=0o600, uid=0, gid=0)
