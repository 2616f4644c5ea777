"""network: render the config's netplan-v2 network for the guest's own stack, clear the
template's stale config for the same NICs, and put DNS where that stack keeps it.

The network machinery (its state model, renderers, DNS) is imported when a config has
a network, not when this module registers the operation: every operation is registered
at start, and in the initrd, under emulation, imports are most of Python's start-up."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from ..context import Context
from ..detect import systemd_enabled
from .registry import operation

if TYPE_CHECKING:
    from ..network.renderers import GuestFacts

PERSISTENT_NET = "/etc/udev/rules.d/70-persistent-net.rules"


def guest_facts(ctx: Context) -> GuestFacts:
    from ..network.renderers import GuestFacts

    root, guest = ctx.plan.root, ctx.guest
    enabled = {n["stack"] for n in guest.network if n["enabled"]}
    st = root.lstat("/etc/resolv.conf") if root.lexists("/etc/resolv.conf") else None
    return GuestFacts(
        family=guest.family.name,
        version=guest.version,
        netplan_backend="NetworkManager" if "networkmanager" in enabled else "networkd",
        resolv_conf="absent" if st is None else "symlink" if st.kind == "symlink" else "file",
        resolved=systemd_enabled(root, "systemd-resolved.service"),
    )


def predictable_names(ctx: Context) -> bool:
    """Does the guest give NICs predictable names (ens3) rather than classic (eth0)?"""
    if ctx.guest.init != "systemd":
        return False
    for path in ("/etc/default/grub", "/etc/kernel/cmdline", "/boot/grub/grub.cfg",
                 "/boot/grub2/grub.cfg"):  # fmt: skip
        if "net.ifnames=0" in (ctx.plan.read_text(path) or ""):
            return False
    return not ctx.plan.root.is_symlink("/etc/udev/rules.d/80-net-setup-link.rules")


@operation("network", ("network",), 20, "network configuration for the guest's own stack")
def plan(ctx: Context) -> None:
    from ..network import cloudinit, dns, naming
    from ..network.renderers import RENDERERS
    from ..network.select import choose
    from ..network.state import build_state

    net = ctx.config.network
    assert net is not None
    state = build_state(net)
    name, why = choose(ctx.guest, net.renderer)
    renderer = RENDERERS[name]
    ctx.log.info("network: writing %s config (%s)", name, why)
    facts = guest_facts(ctx)
    renderer.check(state, facts)
    files = renderer.render(state, facts)
    # Ours are staged before the template's config is cleaned away, because the journal
    # keeps the plan's order and which stack is enabled is read from that config (netplan:
    # "/etc/netplan has config"): a run cut off between removing the template's files and
    # writing ours would be re-planned for another stack. Staged again after the cleaning,
    # which may take a file of ours for a stale one (as one from an earlier config is).
    _write(ctx, files, facts)
    renderer.clean_stale(ctx.plan, state, facts)
    # cloud-init on a clone renders its own network at first boot, over ours, whatever
    # the stack
    cloudinit.disable_network_config(ctx.plan)
    if ctx.plan.exists(PERSISTENT_NET):
        # the template's NICs pinned by MAC: the clone's would get other names
        ctx.plan.delete(PERSISTENT_NET)
    _write(ctx, files, facts)
    if facts.resolv_conf == "symlink" and facts.resolved and not _hands_dns_to_resolved(name):
        dropin = dns.resolved_dropin(state)
        if dropin:
            ctx.plan.mkdir(posixpath.dirname(dropin[0]))
            ctx.plan.write(dropin[0], dropin[1].content, dropin[1].mode, 0, 0)
    ctx.warnings.extend(naming.name_warnings(state, predictable_names(ctx)))
    ctx.warnings.extend(renderer.warnings(ctx.plan, state, facts))


def _write(ctx: Context, files: dict, facts: GuestFacts) -> None:
    for path, file in files.items():
        if path == "/etc/resolv.conf" and facts.resolv_conf == "symlink":
            continue  # owned by resolved/NM/resolvconf; the stack's own DNS keys carry it
        parent = posixpath.dirname(path)
        if not ctx.plan.is_dir(parent):
            ctx.plan.mkdir(parent)
        ctx.plan.write(path, file.content, file.mode, 0, 0)


def _hands_dns_to_resolved(stack: str) -> bool:
    """Stacks that pass per-link DNS to systemd-resolved themselves."""
    from ..network.stacks import BY_NAME

    return BY_NAME[stack].resolved_dns
