"""firstboot: scripts the guest runs once, as root, on its next boot.

Modelled on virt-customize's firstboot: every script goes to scripts/ as PP-NAME, and a
small POSIX-sh runner, started by one boot hook for the guest's init system, moves each
script to scripts-done/ *before* running it (so it runs exactly once even if it reboots
the machine), logs its output and exit status, and removes the hook when none is left.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..config.model import FirstbootScript
from ..context import Context
from ..errors import PlanError
from ..plan import Plan
from .registry import operation

BASE = "/usr/lib/vmtailor/firstboot"
SCRIPTS = f"{BASE}/scripts"
DONE = f"{BASE}/scripts-done"
RUNNER = f"{BASE}/run"
LOG = "/var/log/vmtailor-firstboot.log"

UNIT_NAME = "vmtailor-firstboot.service"
UNIT = f"/etc/systemd/system/{UNIT_NAME}"
WANTS = f"/etc/systemd/system/multi-user.target.wants/{UNIT_NAME}"
LOCAL_D = "/etc/local.d/vmtailor-firstboot.start"
BEGIN = "# vmtailor-firstboot begin"
END = "# vmtailor-firstboot end"

# Every path the runner touches is prefixed with $VMTAILOR_FIRSTBOOT_ROOT (empty at boot),
# so tests can run it for real against a guest tree. @REMOVE_HOOK@ is filled per guest.
RUNNER_SH = r"""#!/bin/sh
# vmtailor first-boot runner: runs each script in scripts/ once, in name (priority) order.
# Each script is moved to scripts-done/ *before* it runs, so it runs exactly once even if
# it reboots the machine; its output and exit status are appended to the log. A failed
# script does not stop the others. With no script left, the runner removes its boot hook.

R=${VMTAILOR_FIRSTBOOT_ROOT:-}
scripts=$R/usr/lib/vmtailor/firstboot/scripts
done_dir=$R/usr/lib/vmtailor/firstboot/scripts-done
log=$R/var/log/vmtailor-firstboot.log

say() {
    printf 'vmtailor-firstboot: %s\n' "$*"
}

stamp() {
    date '+%Y-%m-%d %H:%M:%S'
}

# The first script left, in byte order whatever the boot locale (in a subshell, so the
# scripts still get the guest's locale).
next_script() {
    (
        LC_ALL=C
        export LC_ALL
        for f in "$scripts"/*; do
            if [ -e "$f" ] || [ -L "$f" ]; then
                printf '%s\n' "${f##*/}"
            fi
            break
        done
    )
}

remove_hook() {
@REMOVE_HOOK@
}

run_script() {
    name=$1
    printf '=== %s %s: started ===\n' "$(stamp)" "$name" >>"$log"
    (cd "$R/" && exec "$done_dir/$name") </dev/null >>"$log" 2>&1
    status=$?
    printf '=== %s %s: exit status %s ===\n' "$(stamp)" "$name" "$status" >>"$log"
    say "$name: exit status $status"
}

# scripts may print secrets: the log is for root only
if ! (umask 077 && : >>"$log") 2>/dev/null; then
    say "cannot write $log: script output is not kept"
    log=/dev/null
fi
mkdir -p "$done_dir"

while name=$(next_script) && [ -n "$name" ]; do
    if ! mv -f "$scripts/$name" "$done_dir/$name"; then
        say "cannot move $name to $done_dir: not running it (it would run again at every boot)"
        exit 1
    fi
    run_script "$name"
done

if remove_hook; then
    say "all scripts have run; boot hook removed"
else
    say "all scripts have run; could not remove the boot hook"
fi
exit 0
"""

UNIT_TEXT = f"""[Unit]
Description=vmtailor first-boot scripts
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart={RUNNER}
RemainAfterExit=no
TimeoutSec=0
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""

LOCAL_D_TEXT = f"""#!/bin/sh
# vmtailor: run first-boot scripts (the runner deletes this file when all have run)
{RUNNER}
"""

RC_BLOCK = f"""{BEGIN}
{RUNNER} || true
{END}
"""

NEW_RC_LOCAL = f"""#!/bin/sh -e
#
# rc.local: run at the end of each multi-user runlevel (created by vmtailor).
#
{RC_BLOCK}exit 0
"""


@operation(
    "firstboot",
    ("firstboot",),
    60,
    "run-once scripts at next boot",
    also_when=lambda ctx: bool(ctx.firstboot),
)
def plan(ctx: Context) -> None:
    scripts = _scripts(ctx)
    hook = HOOKS.get(ctx.guest.init)
    if hook is None:
        raise PlanError(
            "cannot install first-boot scripts: the guest's init system is unknown "
            "(looked for systemd, sysvinit, upstart, OpenRC)",
            hint="scripts that needed it: " + ", ".join(s.name for s in scripts),
        )
    p = ctx.plan
    # vmtailor's own machinery (folders, runner, boot hook) is one "helper" group, shown
    # as one line by `apply --diff`; the scripts themselves are the config's and shown
    with p.group("helper"):
        # scripts may carry secrets (registration tokens): only root may read them
        p.mkdir(SCRIPTS, mode=0o700)
        p.mkdir(DONE, mode=0o700)
    for script in scripts:
        install_script(p, script)
    with p.group("helper"):
        p.write(RUNNER, render_runner(hook.removal(ctx)), mode=0o755, uid=0, gid=0)
        # the hook goes in last: a run cut off part-way never leaves a hook without a runner
        hook.install(ctx)


def _scripts(ctx: Context) -> list[FirstbootScript]:
    scripts = [*ctx.config.firstboot, *ctx.firstboot]
    seen: set[str] = set()
    for script in scripts:
        if script.name in seen:
            raise PlanError(
                f"first-boot script name {script.name!r} is used twice",
                hint="vmtailor's own scripts (from reset) are named vmtailor-*",
            )
        seen.add(script.name)
    return scripts


def script_file(script: FirstbootScript) -> str:
    return f"{script.priority:02d}-{script.name}"


def script_text(script: FirstbootScript) -> str:
    text = str(script.script)
    if not text.startswith("#!"):
        text = "#!/bin/sh\n" + text
    return text if text.endswith("\n") else text + "\n"


def install_script(p: Plan, script: FirstbootScript) -> None:
    """Write scripts/PP-NAME, replacing the same script queued earlier at another priority."""
    name = script_file(script)
    for other in p.listdir(SCRIPTS):
        match = re.fullmatch(r"\d\d-(.+)", other)
        if match and match.group(1) == script.name and other != name:
            p.delete(f"{SCRIPTS}/{other}")
    p.write(f"{SCRIPTS}/{name}", script_text(script), mode=0o755, uid=0, gid=0)


def render_runner(remove_hook: str) -> str:
    return RUNNER_SH.replace("@REMOVE_HOOK@", remove_hook.rstrip("\n"))


# -- boot hooks: how each init system starts the runner, and how the runner removes it ------
@dataclass(frozen=True)
class Hook:
    """How one init system starts the first-boot runner, and how it is removed."""

    install: Callable[[Context], None]
    removal: Callable[[Context], str]  # shell lines of the runner's remove_hook()


def _install_systemd(ctx: Context) -> None:
    p = ctx.plan
    p.write(UNIT, UNIT_TEXT, mode=0o644, uid=0, gid=0)
    p.mkdir(posixpath.dirname(WANTS))
    p.symlink(WANTS, UNIT)


def _install_openrc(ctx: Context) -> None:
    p = ctx.plan
    p.mkdir(posixpath.dirname(LOCAL_D))
    p.write(LOCAL_D, LOCAL_D_TEXT, mode=0o755, uid=0, gid=0)
    # /etc/local.d only runs when the `local` service is in a runlevel
    if p.exists("/etc/init.d/local") and not any(
        p.root.lexists(f"/etc/runlevels/{level}/local") for level in ("boot", "default")
    ):
        p.mkdir("/etc/runlevels/default")
        p.symlink("/etc/runlevels/default/local", "/etc/init.d/local")


def _rc_local_path(ctx: Context) -> str:
    # resolved, so the runner edits the file itself (RHEL's /etc/rc.local is a symlink)
    return ctx.plan.resolve(ctx.guest.family.rc_local)


def _install_rc_local(ctx: Context) -> None:
    p = ctx.plan
    path = _rc_local_path(ctx)
    text = p.read_text(path)
    if text is None or not text.strip():
        mode = 0o755
        text = NEW_RC_LOCAL
        p.mkdir(posixpath.dirname(path))
    else:
        # sysvinit and Debian's rc-local generator skip an rc.local that is not executable
        st = p.stat(path)
        mode = (st.mode if st else 0o644) | 0o111
        text = add_rc_block(text)
    p.write(path, text, mode=mode)


# sed to a copy renamed over the original: the shell still running rc.local keeps reading
# the old file rather than lines shifted under it.
RC_REMOVE = r"""    f=$R@RC_LOCAL@
    [ -f "$f" ] || return 0
    grep -q '^# vmtailor-firstboot begin$' "$f" || return 0
    if ! { cp -p "$f" "$f.vmtailor-tmp" &&
        sed '/^# vmtailor-firstboot begin$/,/^# vmtailor-firstboot end$/d' "$f" >"$f.vmtailor-tmp" &&
        mv -f "$f.vmtailor-tmp" "$f"; }; then
        rm -f "$f.vmtailor-tmp"
        return 1
    fi
    if [ -z "$R" ] && command -v restorecon >/dev/null 2>&1; then
        restorecon "$f" 2>/dev/null || :
    fi
"""


def strip_rc_block(text: str) -> str:
    return re.sub(rf"^{re.escape(BEGIN)}\n.*?^{re.escape(END)}\n?", "", text, flags=re.M | re.S)


def add_rc_block(text: str) -> str:
    """rc.local with our block before its trailing `exit` (or at the end when it has none)."""
    text = strip_rc_block(text)
    if not text.endswith("\n"):
        text += "\n"
    lines = text.splitlines(keepends=True)
    at = len(lines)
    for i in range(len(lines) - 1, -1, -1):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        if re.fullmatch(r"exit(\s+\S+)?\s*(#.*)?", stripped):
            at = i
        break
    return "".join([*lines[:at], RC_BLOCK, *lines[at:]])


_RC_LOCAL = Hook(
    _install_rc_local, lambda ctx: RC_REMOVE.replace("@RC_LOCAL@", _rc_local_path(ctx))
)
HOOKS: dict[str, Hook] = {
    "systemd": Hook(_install_systemd, lambda ctx: f'    rm -f "$R{WANTS}"\n'),
    "sysvinit": _RC_LOCAL,
    "upstart": _RC_LOCAL,
    "openrc": Hook(_install_openrc, lambda ctx: f'    rm -f "$R{LOCAL_D}"\n'),
}
