"""hostname + domain: /etc/hostname, /etc/hosts, machine-info and each family's own places."""

from __future__ import annotations

import re

from ..context import Context
from .registry import operation

LOOPBACKS = ("127.0.0.1", "::1")


def names(ctx: Context) -> tuple[str, str, str | None]:
    """(short name, FQDN, the template's old name) for this run."""
    old = ctx.guest.family.current_hostname(ctx.plan)
    hostname = ctx.config.hostname or (old or "localhost")
    short, _, own_domain = hostname.partition(".")
    domain = ctx.config.domain or own_domain
    fqdn = f"{short}.{domain}" if domain else short
    return short, fqdn, old


def rewrite_hosts(text: str, address: str, short: str, fqdn: str, old: str | None) -> str:
    """Map our names to `address`, and take the template's old name off every line."""
    stale = {n for n in (old, (old or "").split(".")[0]) if n} - {"localhost"}
    ours = f"{address}\t{fqdn} {short}" if fqdn != short else f"{address}\t{short}"
    lines = []
    inserted = False
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and fields[0] == address:
            if not inserted:
                lines.append(ours)
                inserted = True
            continue
        if len(fields) > 1 and stale & set(fields[1:]):
            kept = [f for f in fields[1:] if f not in stale]
            if not kept:
                continue
            line = "\t".join([fields[0], " ".join(kept)])
        lines.append(line)
    if not inserted:
        at = next(
            (i + 1 for i, ln in enumerate(lines) if ln.split()[:1] and ln.split()[0] in LOOPBACKS),
            0,
        )
        lines.insert(at, ours)
    return "\n".join(lines) + "\n"


@operation("hostname", ("hostname", "domain"), 10, "host name and domain (hostname, hosts, …)")
def plan(ctx: Context) -> None:
    short, fqdn, old = names(ctx)
    family = ctx.guest.family
    # /etc/hosts first: the old name it loses is read from the files written after it, so
    # a run cut off in between still finds the old name when it is run again
    hosts = ctx.plan.read_text("/etc/hosts")
    if hosts is None:
        hosts = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"
    ctx.plan.write("/etc/hosts", rewrite_hosts(hosts, family.hosts_address, short, fqdn, old))
    ctx.plan.write("/etc/hostname", short + "\n")
    info = ctx.plan.read_text("/etc/machine-info")
    if info is not None and re.search(r"^PRETTY_HOSTNAME=", info, re.M):
        ctx.plan.write(
            "/etc/machine-info",
            re.sub(r"^PRETTY_HOSTNAME=.*$", f"PRETTY_HOSTNAME={short}", info, flags=re.M),
        )
    family.hostname_files(ctx.guest, ctx.plan, short, fqdn)
