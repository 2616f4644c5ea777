"""vmtailor inspect --root DIR"""

from ..customizer.detect import detect
from ..customizer.errors import PlanError
from ..customizer.journal import Journal
from ..customizer.network.select import choose
from ..output import add_json_flag, emit_json
from ..target import add_target_arguments, open_root

NAME = "inspect"
HELP = "show what a guest is: OS, init system, network stack, vmtailor state"
DESCRIPTION = """\
Detect the guest from its own files only (never from the machine running vmtailor): OS
family and version from os-release (or older *-release files), the init system, SELinux
mode, installed network stacks and the one vmtailor would write for (and why), whether it
regenerates ssh host keys at boot, and
whether vmtailor has customized it.

examples:
  vmtailor inspect --root /mnt/clone
  vmtailor inspect --root /mnt/clone --json"""


def add_arguments(p) -> None:
    add_target_arguments(p)
    add_json_flag(p)


def run(args) -> int:
    root = open_root(args)
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
        emit_json({**guest.to_dict(), "network_renderer": renderer, "vmtailor": state})
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
    for key, value in rows:
        print(f"{key + ':':10} {value}")
    return 0
