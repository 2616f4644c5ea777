"""The keys of an inventory's `hypervisor:` mapping and of its VM entries, declared once
per driver (in the registry, hypervisors/__init__.py) with a line of help each.

The same declarations make the inventory loader's list of accepted keys, its unknown-key
error, `vmtailor deploy --help-driver NAME` and the README's table (a test keeps the
README in step). They live in the registry, not in the driver modules, because a driver
module imports its SDK: the help and the error must work without it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    name: str
    help: str
    required: bool = False


# Keys every driver takes: where the hypervisor is and how to log in (never a password).
COMMON_KEYS = (
    Key("driver", "the driver's name", required=True),
    Key("uri", "the hypervisor's address (what it means is the driver's)"),
    Key("username", "the login name"),
    Key("password_env", "an environment variable holding the password"),
    Key("credentials_file", "a YAML file with username and password (relative: to the inventory)"),
    Key("verify_tls", "check the hypervisor's TLS certificate (true)"),
)
VM_COMMON_KEYS = (
    Key("name", "the VM's name on the hypervisor", required=True),
    Key("vars", "this VM's template variables"),
)
# Names people reach for, and the key that holds what they mean.
ALIASES = {"server": "uri", "host": "uri", "url": "uri", "address": "uri", "hostname": "uri",
           "user": "username", "password": "password_env"}  # fmt: skip


def names(keys: tuple[Key, ...]) -> list[str]:
    return [k.name for k in keys]


def unknown_key_hint(key: str, accepted: list[str], driver: str | None) -> str:
    """The hint of an unknown-key error: what was probably meant, and every accepted key."""
    hint = f"accepted: {', '.join(accepted)}"
    if key == "password":
        hint = (
            "a password never goes in the inventory: use password_env or credentials_file; " + hint
        )
    elif ALIASES.get(key) in accepted:
        hint = f"did you mean '{ALIASES[key]}'? {hint}"
    if driver:
        hint += f" (`vmtailor deploy --help-driver {driver}`)"
    return hint


def _rows(keys: tuple[Key, ...]) -> list[str]:
    width = max(len(k.name) for k in keys)
    return [f"  {k.name:{width}}  {k.help}" + (" (required)" if k.required else "")
            for k in keys]  # fmt: skip


def driver_help(info) -> str:
    """The text of `vmtailor deploy --help-driver NAME`: `info` is a DriverInfo."""
    uri = info.uri or "not used: the hypervisor is this host"
    out = [f"{info.name}: {info.summary}", "", f"uri: {uri}", "",
           "hypervisor: keys of this driver"]  # fmt: skip
    out += _rows(info.keys) if info.keys else ["  (none)"]
    out += ["", "hypervisor: keys of every driver", *_rows(COMMON_KEYS)]
    out += ["", "keys of each entry in vms:", *_rows(VM_COMMON_KEYS + info.vm_keys)]
    out += ["", f"SDK: {info.install}", "", "example inventory:", "",
            *("  " + line for line in info.example.splitlines())]  # fmt: skip
    return "\n".join(out)


def readme_table(drivers) -> str:
    """The README's table of every driver's keys (a test checks the README holds it)."""
    rows = ["| driver | `uri:` | its keys in `hypervisor:` | its keys in each VM |",
            "| --- | --- | --- | --- |"]  # fmt: skip
    for info in drivers:
        keys = ", ".join(f"`{k.name}`" + (" (required)" if k.required else "") for k in info.keys)
        vm_keys = ", ".join(f"`{k.name}`" for k in info.vm_keys)
        rows.append(f"| `{info.name}` | {info.uri or '—'} | {keys or '—'} | {vm_keys or '—'} |")
    return "\n".join(rows)
