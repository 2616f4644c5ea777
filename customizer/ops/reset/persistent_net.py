"""reset persistent-net: the clone's new MAC addresses get the template's NIC names.

Two separate pieces, as in virt-sysprep (udev-persistent-net and net-hwaddr):
- udev's persistent-net rules pin each *old* MAC to eth0, eth1…, so a new MAC would
  become eth1: the rules file is deleted (udev writes a fresh one at boot).
- RHEL/SUSE ifcfg files with HWADDR= only apply to the template's NIC: the line goes.
"""

from __future__ import annotations

import re

from ...context import Context
from ...plan import Plan
from . import reset_item

UDEV_RULES = "/etc/udev/rules.d/70-persistent-net.rules"
IFCFG_DIRS = ("/etc/sysconfig/network-scripts", "/etc/sysconfig/network")
HWADDR_LINE = re.compile(r"^[ \t]*HWADDR=.*(\n|$)", re.M)


@reset_item("persistent-net", "forget the template's MAC-to-NIC-name pinning (udev, HWADDR=)")
def plan(ctx: Context) -> None:
    remove_udev_rules(ctx.plan)
    strip_hwaddr(ctx.plan)


def remove_udev_rules(p: Plan) -> None:
    # A link to /dev/null is an admin's choice to turn naming off, not template identity.
    if p.root.is_symlink(UDEV_RULES) and p.root.readlink(UDEV_RULES) == "/dev/null":
        return
    p.delete(UDEV_RULES)


# -- MAC pinning in ifcfg files (the network operation may take this over) ------------------
def strip_hwaddr(p: Plan) -> None:
    for directory in IFCFG_DIRS:
        if not p.is_dir(directory):
            continue
        for name in p.listdir(directory):
            path = f"{directory}/{name}"
            if not name.startswith("ifcfg-") or not p.is_file(path):
                continue
            text = p.read_text(path) or ""
            stripped = HWADDR_LINE.sub("", text)
            if stripped != text:
                p.write(path, stripped)
