"""A deploy inventory: the hypervisor connection, the config, the ISO and the VMs —
validated in full (every VM's config rendered with its vars) before any VM is touched,
with errors that name the key path and line like the config's.

    hypervisor: {driver: libvirt, uri: "qemu:///system", pool: default}
    config: web.yaml                 # paths are relative to the inventory file
    iso: vmtailor.iso                # optional; built when missing
    vars: {domain: example.com}      # optional; every VM's vars start from these
    vms:
      - {name: web01, vars: {hostname: web01}}

Credentials never appear on the command line nor in the inventory itself: `username:` may,
but a password comes from `password_env: VAR` (an environment variable) or
`credentials_file: FILE` (YAML with username/password)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .. import hypervisors
from ..configfile import LoadedConfig, load_config, read_yaml_file
from ..customizer.config import ConfigError
from .base import Connection, Driver, DriverError
from .keys import names, unknown_key_hint

TOP_KEYS = {"hypervisor", "config", "iso", "vars", "vms"}


@dataclass
class InventoryVM:
    name: str
    vars: dict[str, Any]
    settings: dict[str, Any]
    config: LoadedConfig | None = None


@dataclass
class Inventory:
    path: str
    connection: Connection
    driver: type[Driver]
    config_path: str
    iso: str | None
    vms: list[InventoryVM] = field(default_factory=list)

    def vm(self, name: str) -> InventoryVM | None:
        return next((v for v in self.vms if v.name == name), None)


def _mapping(value: Any, path: tuple, what: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a mapping ({what})")
    return value


def _string(value: Any, path: tuple) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, "expected a non-empty string")
    return value


def _unknown(data: dict, allowed: list[str], path: tuple, driver: str | None = None) -> None:
    for key in data:
        if key not in allowed:
            hint = unknown_key_hint(str(key), allowed, driver)
            raise ConfigError((*path, key), f"unknown key '{key}'", hint=hint)


def _credentials(data: dict, base: str) -> tuple[str | None, str | None]:
    username, password = data.get("username"), None
    if username is not None:
        _string(username, ("hypervisor", "username"))
    if "credentials_file" in data:
        path = os.path.join(
            base, _string(data["credentials_file"], ("hypervisor", "credentials_file"))
        )
        try:
            creds, _ = read_yaml_file(path, "credentials file")
        except ConfigError as exc:
            raise ConfigError(
                ("hypervisor", "credentials_file"), f"{path}: {exc.message}"
            ) from None
        if not isinstance(creds, dict) or not set(creds) <= {"username", "password"}:
            raise ConfigError(("hypervisor", "credentials_file"),
                              f"{path}: expected a mapping with username and password")  # fmt: skip
        username = creds.get("username", username)
        password = creds.get("password")
    if "password_env" in data:
        var = _string(data["password_env"], ("hypervisor", "password_env"))
        if var not in os.environ:
            raise ConfigError(
                ("hypervisor", "password_env"), f"environment variable {var} is not set"
            )
        password = os.environ[var]
    return (str(username) if username is not None else None,
            str(password) if password is not None else None)  # fmt: skip


def _connection(data: Any, base: str) -> tuple[Connection, type[Driver]]:
    data = _mapping(data, ("hypervisor",), "driver, uri, credentials")
    if "driver" not in data:
        raise ConfigError(("hypervisor",), "missing key 'driver'")
    name = _string(data["driver"], ("hypervisor", "driver"))
    try:
        info = hypervisors.lookup(name)
    except DriverError as exc:
        raise ConfigError(("hypervisor", "driver"), str(exc)) from None
    # keys first: a typo is reported even where the driver's SDK is missing
    _unknown(data, info.accepted(), ("hypervisor",), name)
    driver = hypervisors.load(name)  # a missing SDK is one line with the install command
    uri = data.get("uri")
    if uri is not None:
        _string(uri, ("hypervisor", "uri"))
    verify = data.get("verify_tls", True)
    if not isinstance(verify, bool):
        raise ConfigError(("hypervisor", "verify_tls"), "expected true or false")
    username, password = _credentials(data, base)
    options = {k: v for k, v in data.items() if k in names(info.keys)}
    connection = Connection(name, uri, username, password, verify, options, base)
    try:
        driver.check_options(connection)
    except DriverError as exc:
        raise ConfigError(("hypervisor",), str(exc)) from None
    return connection, driver


def _vms(data: Any, driver: type[Driver], common: dict) -> list[InventoryVM]:
    info = hypervisors.lookup(driver.NAME)
    if not isinstance(data, list) or not data:
        raise ConfigError(("vms",), "expected a list of VMs: - {name: …, vars: {…}}")
    out, seen = [], set()
    for i, entry in enumerate(data):
        entry = _mapping(entry, ("vms", i), "name, vars")
        _unknown(entry, info.accepted_vm(), ("vms", i), driver.NAME)
        if "name" not in entry:
            raise ConfigError(("vms", i), "missing key 'name'")
        name = _string(entry["name"], ("vms", i, "name"))
        if name in seen:
            raise ConfigError(("vms", i, "name"), f"VM {name!r} is listed twice")
        seen.add(name)
        own = _mapping(entry.get("vars", {}), ("vms", i, "vars"), "NAME: VALUE")
        settings = {k: v for k, v in entry.items() if k in names(info.vm_keys)}
        try:
            driver.check_vm_settings(settings)
        except DriverError as exc:
            raise ConfigError(("vms", i), str(exc)) from None
        out.append(InventoryVM(name, {**common, **own}, settings))
    return out


def load_inventory(path: str, *, render: bool = True, sources: str | None = None) -> Inventory:
    """Parse and validate an inventory; with `render`, also each VM's config with its
    vars (and its `source:` files, inside `sources`, default the config's folder).
    Raises ConfigError naming the file, key path and line."""
    data, lines = read_yaml_file(path, "inventory")
    base = os.path.dirname(os.path.abspath(path))
    try:
        data = _mapping(data, (), "hypervisor, config, vms")
        _unknown(data, sorted(TOP_KEYS), ())
        for key in ("hypervisor", "config", "vms"):
            if key not in data:
                raise ConfigError((), f"missing key '{key}'")
        connection, driver = _connection(data["hypervisor"], base)
        config_path = os.path.join(base, _string(data["config"], ("config",)))
        if not os.path.isfile(config_path):
            raise ConfigError(("config",), f"config file {config_path} not found")
        iso = os.path.join(base, _string(data["iso"], ("iso",))) if "iso" in data else None
        common = _mapping(data.get("vars", {}), ("vars",), "NAME: VALUE")
        vms = _vms(data["vms"], driver, common)
    except ConfigError as exc:
        exc.locate(path, lines.line_of)
        raise
    inventory = Inventory(path, connection, driver, config_path, iso, vms)
    if render:
        for i, vm in enumerate(vms):
            try:
                vm.config = load_config(config_path, vm.vars, sources)
            except ConfigError as exc:
                exc.source = f"{config_path} (with the vars of vms[{i}] {vm.name}, {path})"
                raise
    return inventory
