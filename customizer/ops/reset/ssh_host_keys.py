"""reset ssh-host-keys: the clone must not share the template's ssh host keys.

The keys are deleted like virt-sysprep does. Most guests make missing keys when sshd
starts (detect.py looks for how); on the others (Debian, Ubuntu) a first-boot script
makes them and restarts sshd, which may have failed to start without them.

The script is queued whenever the guest has an ssh server, keys or no keys: the keys are
deleted before the script is written (the journal keeps the plan's order), so a run cut
off in between leaves no keys, and its re-run must still queue the script. (A template
whose keys were removed already needs the script just as much.)
"""

from __future__ import annotations

import re

from ...config.model import FirstbootScript
from ...context import Context
from . import reset_item

SSH_DIR = "/etc/ssh"
# what says an ssh server is installed; none of it is something this apply deletes
SSHD = ("/usr/sbin/sshd", "/sbin/sshd", f"{SSH_DIR}/sshd_config")
# ssh_host_key (protocol 1), ssh_host_<type>_key, their .pub and -cert.pub
HOST_KEY = re.compile(r"ssh_host_([a-z0-9]+_)?key(\.pub|-cert\.pub)?")

REGENERATE_SH = r"""#!/bin/sh
# Queued by vmtailor's reset of ssh-host-keys: this clone's host keys were removed and
# nothing on this guest makes new ones, so make them and restart sshd to load them.
if ! command -v ssh-keygen >/dev/null 2>&1; then
    echo "ssh-keygen not found: no ssh host keys made"
    exit 0
fi
if ! ssh-keygen -A; then
    # OpenSSH before 5.8 has no -A
    for type in rsa ecdsa ed25519; do
        key=/etc/ssh/ssh_host_${type}_key
        [ -f "$key" ] || ssh-keygen -q -t "$type" -N '' -f "$key" || :
    done
fi
if command -v restorecon >/dev/null 2>&1; then
    restorecon /etc/ssh/ssh_host_* 2>/dev/null || :
fi

if [ -d /run/systemd/system ]; then
    for unit in ssh.service sshd.service; do
        if systemctl -q is-enabled "$unit" 2>/dev/null; then
            systemctl reset-failed "$unit" 2>/dev/null || :
            # --no-block: this runs inside a unit itself, don't wait on another job
            systemctl --no-block restart "$unit" || :
            break
        fi
    done
elif [ -x /etc/init.d/ssh ]; then
    /etc/init.d/ssh restart || :
elif [ -x /etc/init.d/sshd ]; then
    /etc/init.d/sshd restart || :
fi
exit 0
"""


@reset_item("ssh-host-keys", "delete ssh host keys; new ones are made at next boot")
def plan(ctx: Context) -> None:
    p = ctx.plan
    if not p.is_dir(SSH_DIR):
        return
    keys = [name for name in p.listdir(SSH_DIR) if HOST_KEY.fullmatch(name)]
    for name in keys:
        p.delete(f"{SSH_DIR}/{name}")
    has_server = bool(keys) or any(p.exists(path) for path in SSHD)
    if has_server and not ctx.guest.ssh_regenerates_host_keys:
        ctx.firstboot.append(
            FirstbootScript(name="vmtailor-ssh-host-keys", script=REGENERATE_SH, priority=0)
        )
