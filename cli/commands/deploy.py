"""vmtailor deploy INVENTORY"""

from __future__ import annotations

import argparse

from .. import output
from ..hypervisors import DRIVERS
from ..hypervisors.keys import driver_help
from ..output import add_json_flag, emit_json
from ..progress import DeployProgress
from .vars import add_sources_argument

NAME = "deploy"
HELP = "customize VMs through their hypervisor: attach, boot, wait, detach, restore"


def _description() -> str:
    drivers = "\n".join(f"  {d.name:11} {d.summary}" for d in DRIVERS.values())
    return f"""\
Customize every VM of an inventory through its hypervisor. Per VM: save its boot order
and media (in a state file, before anything changes), attach the customization ISO and
the VM's config media, boot from the CD, wait for the guest to power itself off (or, where
the driver reads the console live, for this run's result record on it and --grace more
seconds, then stop it), read the result from its serial console, detach the media and
restore the boot order exactly.
A running VM is refused unless --shutdown.

The inventory (paths relative to it; credentials from password_env or credentials_file,
never on the command line):

  hypervisor: {{driver: libvirt, uri: "qemu:///system"}}
  config: web.yaml
  iso: vmtailor.iso          # optional: built when missing
  vms:
    - {{name: web01, vars: {{hostname: web01}}}}

Interrupted (Ctrl-C, crash, timeout)? `vmtailor deploy INVENTORY --restore` puts every
VM's media and boot order back; running the deploy again resumes it (VMs already done
are skipped unless --force).

drivers (`--help-driver NAME`: its keys and an example inventory):
{drivers}

examples:
  vmtailor deploy site.yaml --jobs 4
  vmtailor deploy site.yaml --restore
  vmtailor deploy --help-driver vsphere"""


DESCRIPTION = _description()


class _HelpDriver(argparse.Action):
    """Like --help: prints and exits before the positional INVENTORY is asked for."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(driver_help(DRIVERS[values]))
        parser.exit()


def add_arguments(p) -> None:
    p.add_argument("inventory", metavar="INVENTORY", help="the YAML inventory")
    p.add_argument("--help-driver", action=_HelpDriver, choices=list(DRIVERS), metavar="NAME",
                   help="show a driver's inventory keys and an example, and exit")  # fmt: skip
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="VMs at a time (1)")
    p.add_argument("--restore", action="store_true",
                   help="only put back what an interrupted deploy changed")  # fmt: skip
    p.add_argument("--shutdown", action="store_true",
                   help="shut running VMs down cleanly first instead of refusing them")  # fmt: skip
    p.add_argument("--timeout", type=float, default=900.0, metavar="S",
                   help="seconds from power-on to the guest's power-off (900)")  # fmt: skip
    p.add_argument("--grace", type=float, default=10.0, metavar="S",
                   help="seconds a guest may take to power off after its result (10)")  # fmt: skip
    p.add_argument("--shutdown-timeout", type=float, default=300.0, metavar="S",
                   help="seconds a --shutdown may take (300)")  # fmt: skip
    p.add_argument("--power-on", action="store_true", help="start each VM normally afterwards")
    p.add_argument("--force", action="store_true", help="customize VMs already done, again")
    add_sources_argument(p)
    add_json_flag(p)


def _table(outcomes) -> str:
    rows = [("VM", "STATUS", "TIME", "DETAIL")]
    for o in outcomes:
        detail = o.reason
        if o.status in ("ok", "skipped") and o.result:
            changes = len(o.result.get("changes") or [])
            detail = f"{changes} change(s)" + (f"; {o.reason}" if o.reason else "")
        rows.append((o.vm, o.status, f"{o.seconds:.0f}s" if o.seconds else "-", detail or ""))
    return output.table(rows)


def run(args) -> int:
    from ..customizer.errors import UsageError
    from ..hypervisors import deploy, flow
    from ..hypervisors.inventory import load_inventory

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.timeout <= 0 or args.shutdown_timeout <= 0:
        raise UsageError("--timeout and --shutdown-timeout must be positive")
    if args.grace < 0:
        raise UsageError("--grace must not be negative")
    inventory = load_inventory(args.inventory, render=not args.restore,
                               sources=args.sources)  # fmt: skip
    if args.restore:
        outcomes = deploy.restore(inventory, progress=DeployProgress())
        bad = {"failed"}
    else:
        opts = flow.Options(timeout=args.timeout, shutdown=args.shutdown, grace=args.grace,
                            shutdown_timeout=args.shutdown_timeout, power_on=args.power_on)  # fmt: skip
        outcomes = deploy.deploy(inventory, opts, jobs=args.jobs, force=args.force,
                                 progress=DeployProgress())  # fmt: skip
        bad = {"failed"}
    failed = sum(o.status in bad for o in outcomes)
    if args.json:
        emit_json({"inventory": args.inventory, "restore": args.restore, "failed": failed,
                   "vms": [o.to_dict() for o in outcomes]})  # fmt: skip
    elif not outcomes:
        print(f"nothing to restore: no deploy of {args.inventory} is on record")
    else:
        print(_table(outcomes))
    return 1 if failed else 0
