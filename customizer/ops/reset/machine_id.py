"""reset machine-id: the clone gets a machine ID of its own at next boot.

/etc/machine-id is emptied, not deleted: systemd fills an empty file at boot (and treats
the boot as a first boot), while a missing one would stay missing on some guests. An
absent file stays absent. Without systemd nothing refills it, so a first-boot script does.
D-Bus's own copy is removed: D-Bus falls back to /etc/machine-id or makes a new one.
"""

from __future__ import annotations

from ...config.model import FirstbootScript
from ...context import Context
from . import reset_item

MACHINE_ID = "/etc/machine-id"
DBUS_MACHINE_ID = "/var/lib/dbus/machine-id"

# Honours VMTAILOR_FIRSTBOOT_ROOT like the runner, so tests can run it on a guest tree.
REFILL_SH = r"""#!/bin/sh
# Queued by vmtailor's reset of machine-id: /etc/machine-id was emptied for this clone and,
# without systemd, nothing else on this guest fills it in.
R=${VMTAILOR_FIRSTBOOT_ROOT:-}
[ -s "$R/etc/machine-id" ] && exit 0

valid() {
    [ ${#1} -eq 32 ] || return 1
    case $1 in *[!0-9a-f]*) return 1 ;; esac
}

# D-Bus may have made a new ID already this boot: keep the two the same
id=$(cat "$R/var/lib/dbus/machine-id" 2>/dev/null)
if ! valid "$id" && command -v dbus-uuidgen >/dev/null 2>&1; then
    id=$(dbus-uuidgen)
fi
if ! valid "$id"; then
    id=$(tr -d '-' </proc/sys/kernel/random/uuid)
fi
printf '%s\n' "$id" >"$R/etc/machine-id"
"""


@reset_item("machine-id", "empty /etc/machine-id so each clone gets its own at boot")
def plan(ctx: Context) -> None:
    p = ctx.plan
    if p.is_file(MACHINE_ID):
        p.write(MACHINE_ID, b"")  # keeps mode and owner
        if ctx.guest.init != "systemd":
            ctx.firstboot.append(
                FirstbootScript(name="vmtailor-machine-id", script=REFILL_SH, priority=0)
            )
    if not _links_to_machine_id(ctx):
        p.delete(DBUS_MACHINE_ID)


def _links_to_machine_id(ctx: Context) -> bool:
    """Debian links D-Bus's copy to /etc/machine-id: that link already follows the reset."""
    p = ctx.plan
    return p.root.is_symlink(DBUS_MACHINE_ID) and p.resolve(DBUS_MACHINE_ID) == p.resolve(
        MACHINE_ID
    )
