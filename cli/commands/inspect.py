"""vmtailor inspect (--root DIR | --disk IMG…)"""

from ..customizer.detect import detect
from ..customizer.errors import PlanError
from ..customizer.journal import Journal
from ..customizer.network.select import choose
from ..output import add_json_flag, emit_json
from ..target import add_target_arguments, open_target

NAME = "inspect"
HELP = "show what a guest is: OS, init system, network stack, vmtailor state"
DESCRIPTION = """\
Detect the guest from its own files only (never from the machine running vmtailor): OS
family and version from os-release (or older *-release files), the init system, SELinux
mode, installed network stacks and the one vmtailor would write for (and why), whether it
regenerates ssh host keys at boot, and
whether vmtailor has customized it. With --disk (images opened read-only with libguestfs)
also where its root is and how its fstab is mounted.

examples:
  vmtailor inspect --root /mnt/clone
  vmtailor inspect --root /mnt/clone --json
  vmtailor inspect --disk web01.qcow2 web01-var.qcow2"""


def add_arguments(p) -> None:
    add_target_arguments(p)
    add_json_flag(p)


def _mount_rows(storage: dict) -> list[tuple[str, str]]:
    """The fstab plan as `inspect --disk` shows it: what is mounted where, and what not."""
    rows = [("root", storage["root"])]
    for m in storage["mounts"]:
        opts = f" ({','.join(m['options'])})" if m["options"] else ""
        rows.append(("mount", f"{m['target']:12} {m['device']} [{m['fstype']}{opts}] "
                              f"from fstab line {m['line']}: {m['spec']}"))  # fmt: skip
    for s in storage["skipped"]:
        rows.append(("skip", f"{s['target']:12} {s['reason']} ({s['spec']})"))
    return rows


def run(args) -> int:
    with open_target(args, readonly=True) as target:
        return _show(args, target.root, target.guest.plan_dict() if target.guest else None)


def _show(args, root, storage: dict | None) -> int:
    guest = detect(root)
    journal = Journal(root).data
    state = None
    if journal:
        state = {
            "state": journal["state"],
            "config_digest": journal.get("config_digest"),
            "paths": len(journal["entries"]),
        }
    try:
        name, why = choose(guest, None)
        renderer = {"name": name, "why": why}
    except PlanError as exc:
        renderer = {"name": None, "why": str(exc)}
    if args.json:
        data = {**guest.to_dict(), "network_renderer": renderer, "vmtailor": state}
        if storage is not None:
            data["storage"] = storage
        emit_json(data)
        return 0
    ev = guest.evidence
    stacks = (
        ", ".join(
            f"{n['stack']} ({'enabled' if n['enabled'] else 'installed, not enabled'}; "
            f"{n['evidence']})"
            for n in guest.network
        )
        or "none found"
    )
    rows = [
        (
            "os",
            f"{guest.pretty_name}  [family {guest.family.name}, {guest.os_id} "
            f"{guest.version}]  ({ev.get('os', '')})",
        ),
        ("init", f"{guest.init}  ({ev.get('init', '')})"),
        ("selinux", guest.selinux or "not installed"),
        ("network", stacks),
        (
            "writes",
            f"{renderer['name']} ({renderer['why']})" if renderer["name"] else renderer["why"],
        ),
        (
            "ssh keys",
            f"regenerated at boot ({ev['ssh']})"
            if guest.ssh_regenerates_host_keys
            else "not regenerated at boot (reset: ssh-host-keys adds a first-boot step)",
        ),
        (
            "vmtailor",
            "not applied"
            if state is None
            else f"{state['state']} (config {str(state['config_digest'])[:12]}, "
            f"{state['paths']} paths journaled)",
        ),
    ]
    if storage is not None:
        rows += _mount_rows(storage)
    for key, value in rows:
        print(f"{key + ':':10} {value}")
    return 0
