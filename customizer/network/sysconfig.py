"""Shell-style KEY=value files: RHEL's and SUSE's ifcfg files, /etc/sysconfig/network and
SUSE's network/config. Read without a shell (for the simple quoting these files use),
written in each family's quoting, and edited in place keeping every other byte."""

from __future__ import annotations

import re
import shlex

from ..errors import PlanError
from .state import NetworkState

ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
BARE = re.compile(r"^[A-Za-z0-9_./:+,@%=-]*$")
# backup and package-manager leftovers that initscripts, ifcfg-rh and wicked all skip
IGNORED = ("~", ".bak", ".orig", ".rpmnew", ".rpmorig", ".rpmsave", ".old", "-range")


def _value(raw: str) -> str:
    try:
        words = shlex.split(raw, comments=True)
    except ValueError:
        return raw.strip()
    return words[0] if words else ""


def parse(text: str) -> dict[str, str]:
    """KEY -> value as `. file` would set it (the last assignment wins)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = ASSIGN.match(line)
        if m:
            out[m.group(1)] = _value(m.group(2))
    return out


def quote(value: str, style: str) -> str:
    """style "bare": unquoted when safe, else double quotes (RHEL, whose tools grep for
    e.g. `VLAN=yes`); "single" (SUSE ifcfg); "double" (SUSE network/config)."""
    if style == "single" and "'" not in value:
        return f"'{value}'"
    if style == "bare" and value and BARE.match(value):
        return value
    escaped = re.sub(r'(["$`\\])', r"\\\1", value)
    return f'"{escaped}"'


def render(items: list[tuple[str, object]], style: str, header: str = "") -> str:
    """Assignments in order; None values are left out, booleans become yes/no."""
    lines = [header.rstrip("\n")] if header else []
    for key, value in items:
        if value is None:
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        lines.append(f"{key}={quote(str(value), style)}")
    return "\n".join(lines) + "\n"


def set_keys(text: str, values: dict[str, str | None], style: str) -> str:
    """Set (or, for None, remove) keys in place: a line already giving the value is kept
    byte for byte, a key set twice keeps only its first line, a missing key is appended."""
    done: set[str] = set()
    lines = []
    for line in text.splitlines(keepends=True):
        m = ASSIGN.match(line)
        if m is None or m.group(1) not in values:
            lines.append(line)
            continue
        key, wanted = m.group(1), values[m.group(1)]
        if wanted is None or key in done:
            continue
        done.add(key)
        if _value(m.group(2)) == wanted:
            lines.append(line)
        else:
            lines.append(f"{key}={quote(wanted, style)}\n")
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for key, wanted in values.items():
        if wanted is not None and key not in done:
            lines.append(f"{key}={quote(wanted, style)}\n")
    return "".join(lines)


def config_files(names: list[str], prefix: str) -> list[str]:
    """The `prefix`-<name> files the stack reads, in order, without backups."""
    return [n for n in names if n.startswith(prefix) and not n.endswith(IGNORED)]


def require_names(state: NetworkState, stack: str) -> None:
    """ifcfg files configure a NIC by its kernel name (and, at most, pin it by MAC): they
    can't match a name pattern or a driver, nor rename a NIC they can't find by MAC."""
    for dev in state.by_kind("ethernet"):
        where = f"network.ethernets.{dev.key}"
        if dev.is_glob:
            raise PlanError(
                f"{where}: {stack} configures NICs by exact name, not by a pattern "
                f"({dev.match_name})",
                hint="match by macaddress, or give the exact name",
            )
        if dev.set_name and not dev.mac:
            raise PlanError(
                f"{where}: {stack} can rename a NIC only when it is matched by macaddress",
                hint="add match.macaddress, or drop set-name",
            )
        if dev.driver and not dev.mac and not dev.match_name:
            raise PlanError(
                f"{where}: {stack} cannot match a NIC by driver ({dev.driver})",
                hint="match by macaddress or name",
            )
