"""vmtailor inspect (--root DIR | --disk IMG…)"""

from ..api import Inspection, inspection_of
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
        left_out = "" if m.get("mounted", True) else " — not mounted (see the warnings)"
        rows.append(("mount", f"{m['target']:12} {m['device']} [{m['fstype']}{opts}] "
                              f"from fstab line {m['line']}: {m['spec']}{left_out}"))  # fmt: skip
    for s in storage["skipped"]:
        rows.append(("skip", f"{s['target']:12} {s['reason']} ({s['spec']})"))
    return rows


def run(args) -> int:
    with open_target(args, readonly=True) as target:
        storage = target.guest.plan_dict() if target.guest else None
        return _show(args, inspection_of(target.root, storage))


def _show(args, found: Inspection) -> int:
    if args.json:
        emit_json(found.to_dict())
        return 0
    guest, state = found.os, found.vmtailor
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
            f"{guest.pretty_name}  [family {guest.family}, {guest.id} "
            f"{guest.version}]  ({ev.get('os', '')})",
        ),
        ("init", f"{guest.init}  ({ev.get('init', '')})"),
        ("selinux", guest.selinux or "not installed"),
        ("network", stacks),
        (
            "writes",
            f"{found.network_renderer} ({found.network_renderer_why})"
            if found.network_renderer
            else found.network_renderer_why,
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
    if found.storage is not None:
        rows += _mount_rows(found.storage)
    for key, value in rows:
        print(f"{key + ':':10} {value}")
    return 0
