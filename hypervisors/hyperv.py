"""Hyper-V through PowerShell over WinRM (pywinrm, imported only when this driver is used).

Not run against a live Hyper-V host here: the tests check the generated PowerShell
(golden files) and the parsing of canned output.

Every step is one PowerShell script that prints one JSON object, `{"error": …}` on a
failure, so a step's result never depends on parsing PowerShell's error stream. Values are
passed as single-quoted literals (the only quoting PowerShell never expands).

Media: WinRM is far too slow to carry an ISO, so the driver copies the media into a share
the Hyper-V host can read — `share_local` (mounted here) seen by the host as
`share_remote` (e.g. \\\\fileserver\\vmtailor) — under vmtailor\\<vm>\\. Both are attached
as *added* DVD drives (Add-VMDvdDrive), so restore removes exactly the drives the
snapshot doesn't know. Boot order: Generation 2 VMs with Set-VMFirmware (-FirstBootDevice
on attach; the saved entries, matched by FirmwarePath, on restore); Generation 1 with
Set-VMBios -StartupOrder.

Result: the VM's COM port is a named pipe on the Hyper-V host, which cannot be read over
WinRM, so read_result returns None.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from typing import Any

from .base import VM, ConnectError, Driver, DriverError, Media, PowerState, SDKMissing, VMNotFound

GEN1_DEVICES = ("CD", "IDE", "LegacyNetworkAdapter", "Floppy")


def ps_quote(value: str) -> str:
    """A PowerShell single-quoted string literal: nothing inside is expanded."""
    return "'" + str(value).replace("'", "''") + "'"


def ps_array(values) -> str:
    return "@(" + ", ".join(ps_quote(v) for v in values) + ")"


def script(vm_name: str, body: str) -> str:
    """Wrap a step: find the VM, run `body` (which sets $out), print one JSON object."""
    return "\n".join(
        [
            "$ErrorActionPreference = 'Stop'",
            "try {",
            f"    $vm = Get-VM -Name {ps_quote(vm_name)} -ErrorAction SilentlyContinue",
            "    if (-not $vm) { @{ error = 'notfound' } | ConvertTo-Json -Compress; exit 0 }",
            *("    " + line if line else "" for line in body.strip("\n").splitlines()),
            "    $out | ConvertTo-Json -Compress -Depth 4",
            "} catch {",
            "    @{ error = $_.Exception.Message } | ConvertTo-Json -Compress",
            "}",
        ]
    )


def as_list(value) -> list:
    """ConvertTo-Json writes a one-element array as the bare element, and none as null."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def drive_key(drive: Mapping[str, Any]) -> str:
    return f"{drive['ControllerType']}:{drive['ControllerNumber']}:{drive['ControllerLocation']}"


SNAPSHOT = """
$out = @{ Generation = $vm.Generation }
$out.Dvd = @(Get-VMDvdDrive -VM $vm | Select-Object @{n='ControllerType'; e={"$($_.ControllerType)"}}, ControllerNumber, ControllerLocation, Path)
if ($vm.Generation -eq 2) {
    $out.BootOrder = @((Get-VMFirmware -VM $vm).BootOrder | Select-Object FirmwarePath, Description)
} else {
    $out.StartupOrder = @((Get-VMBios -VM $vm).StartupOrder | ForEach-Object { "$_" })
}
"""


def parse_snapshot(data: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot script's JSON -> what restore needs (PowerShell quirks removed)."""
    saved: dict[str, Any] = {
        "generation": int(data["Generation"]),
        "dvd": sorted(drive_key(d) for d in as_list(data.get("Dvd"))),
    }
    if saved["generation"] == 2:
        saved["boot"] = [e["FirmwarePath"] for e in as_list(data.get("BootOrder"))]
    else:
        saved["boot"] = [str(d) for d in as_list(data.get("StartupOrder"))]
    return saved


def attach_body(placed: Media, saved: Mapping[str, Any]) -> str:
    lines = [
        f"$iso = Add-VMDvdDrive -VM $vm -Path {ps_quote(placed.iso)} -Passthru",
        f"$cfg = Add-VMDvdDrive -VM $vm -Path {ps_quote(placed.config)} -Passthru",
    ]
    if saved["generation"] == 2:
        lines.append("Set-VMFirmware -VM $vm -FirstBootDevice $iso")
    else:
        order = ["CD"] + [d for d in saved["boot"] if d != "CD"]
        lines.append(f"Set-VMBios -VM $vm -StartupOrder {ps_array(order)}")
    lines.append("$out = @{ ok = $true }")
    return "\n".join(lines)


def restore_body(saved: Mapping[str, Any]) -> str:
    lines = [
        f"$known = {ps_array(saved['dvd'])}",
        "$ours = @(Get-VMDvdDrive -VM $vm | Where-Object {",
        "    $known -notcontains ('{0}:{1}:{2}' -f $_.ControllerType, $_.ControllerNumber, $_.ControllerLocation)",
        "})",
        "$ours | Remove-VMDvdDrive",
    ]
    if saved["generation"] == 2:
        # entries are matched by FirmwarePath: the device objects differ per session
        lines += [
            f"$paths = {ps_array(saved['boot'])}",
            "$entries = @{}",
            "foreach ($b in (Get-VMFirmware -VM $vm).BootOrder) { $entries[$b.FirmwarePath] = $b }",
            "$order = @($paths | ForEach-Object { $entries[$_] } | Where-Object { $_ })",
            "if ($order.Count -ne $paths.Count) { throw 'a saved boot entry is gone' }",
            "Set-VMFirmware -VM $vm -BootOrder $order",
        ]
    else:
        lines.append(f"Set-VMBios -VM $vm -StartupOrder {ps_array(saved['boot'])}")
    lines.append("$out = @{ removed = $ours.Count }")
    return "\n".join(lines)


def _sdk():
    try:
        import winrm
    except ImportError:
        raise SDKMissing(
            "the hyperv driver needs pywinrm", hint="pip install 'vmtailor[hyperv]'"
        ) from None
    return winrm


class HyperVDriver(Driver):
    NAME = "hyperv"
    SUMMARY = "Hyper-V via PowerShell over WinRM (uri: https://hyperv-host:5986/wsman)"
    CONFIG_FORMAT = "iso"

    @classmethod
    def check_options(cls, connection) -> None:
        for key in ("share_local", "share_remote"):
            if not connection.options.get(key):
                raise DriverError(
                    f"hyperv: hypervisor.{key} is required (the media share: share_local "
                    "mounted here, share_remote as the Hyper-V host sees it)"
                )

    def connect(self) -> None:
        winrm = _sdk()
        self.poll = float(self.connection.options.get("poll_interval", 2))
        self.session = winrm.Session(
            self.connection.uri,
            auth=(self.connection.username or "", self.connection.password or ""),
            transport=self.connection.options.get("transport", "ntlm"),
            server_cert_validation="validate" if self.connection.verify_tls else "ignore",
        )
        try:
            self._run("$PSVersionTable.PSVersion.Major | ConvertTo-Json", "connect")
        except DriverError as exc:
            raise ConnectError(f"hyperv {self.connection.uri}: {exc}") from None

    def _run(self, text: str, what: str) -> Any:
        try:
            result = self.session.run_ps(text)
        except Exception as exc:  # pywinrm raises transport, auth and HTTP errors alike
            raise DriverError(f"{what}: {type(exc).__name__}: {exc}") from None
        out = result.std_out.decode("utf-8", errors="replace").strip()
        if result.status_code != 0 or not out:
            err = result.std_err.decode("utf-8", errors="replace").strip().splitlines()
            raise DriverError(
                f"{what}: PowerShell exit {result.status_code}: {err[-1] if err else ''}"
            )
        return json.loads(out.splitlines()[-1])

    def _step(self, vm: VM, body: str, what: str) -> Any:
        data = self._run(script(vm.name, body), f"{vm.name}: {what}")
        if isinstance(data, dict) and data.get("error"):
            if data["error"] == "notfound":
                raise VMNotFound(f"{vm.name}: no such VM on hyperv {self.connection.uri}")
            raise DriverError(f"{vm.name}: {what}: {data['error']}")
        return data

    # --- power ----------------------------------------------------------------------
    def power_state(self, vm: VM) -> PowerState:
        data = self._step(vm, '$out = @{ State = "$($vm.State)" }', "state")
        return PowerState.OFF if data["State"] == "Off" else PowerState.RUNNING

    def power_on(self, vm: VM) -> None:
        self._step(vm, "Start-VM -VM $vm\n$out = @{ ok = $true }", "start")

    def power_off(self, vm: VM) -> None:
        self._step(vm, "Stop-VM -VM $vm -TurnOff -Force\n$out = @{ ok = $true }", "turn off")

    def shutdown(self, vm: VM, timeout: float) -> None:
        # Stop-VM without -TurnOff asks the guest through the shutdown integration service
        self._step(
            vm, "Stop-VM -VM $vm -Force -AsJob | Out-Null\n$out = @{ ok = $true }", "shutdown"
        )
        if not self.wait_off(vm, timeout):
            raise DriverError(f"{vm.name}: still running {timeout:g} s after shutdown")

    # --- configuration --------------------------------------------------------------
    def snapshot(self, vm: VM) -> dict[str, Any]:
        return parse_snapshot(self._step(vm, SNAPSHOT, "snapshot"))

    def _folder(self, vm: VM) -> tuple[str, str]:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", vm.name)
        local = self.connection.path(self.connection.options["share_local"])
        remote = self.connection.options["share_remote"].rstrip("\\")
        return os.path.join(local, "vmtailor", safe), f"{remote}\\vmtailor\\{safe}"

    def upload(self, vm: VM, media: Media) -> Media:
        if media.config_format != "iso":
            raise DriverError(f"{vm.name}: hyperv attaches config media as an ISO only")
        local, remote = self._folder(vm)
        try:
            os.makedirs(local, exist_ok=True)
            shutil.copyfile(media.iso, os.path.join(local, "vmtailor.iso"))
            shutil.copyfile(media.config, os.path.join(local, "config.iso"))
        except OSError as exc:
            raise DriverError(f"{vm.name}: copy media to {local}: {exc}") from None
        return Media(f"{remote}\\vmtailor.iso", f"{remote}\\config.iso", "iso")

    def attach(self, vm: VM, placed: Media, saved: Mapping[str, Any]) -> None:
        self._step(vm, attach_body(placed, saved), "attach media")

    def restore(self, vm: VM, saved: Mapping[str, Any]) -> None:
        self._step(vm, restore_body(saved), "restore")

    def discard(self, vm: VM, placed: Mapping[str, Any]) -> None:
        local, _ = self._folder(vm)
        shutil.rmtree(local, ignore_errors=True)


DRIVER = HyperVDriver
