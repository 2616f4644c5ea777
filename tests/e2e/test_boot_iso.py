"""Boot the real customization ISO under QEMU, with BIOS and with UEFI: with no config
media attached the initrd must say so in its result record and power the VM off itself.
And the watchdog: a run that takes too long is powered off with a record saying why."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import build_cached
from tests.e2e.qemu import boot


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_no_config_media_reports_and_powers_off(quick_iso, firmware):
    vm = boot(quick_iso.iso, firmware=firmware, timeout=240)
    assert vm.powered_off, vm.log[-3000:]
    assert vm.result is not None, vm.log[-3000:]
    assert vm.result["status"] == "error"
    assert "config media" in vm.result["reason"]
    assert "Run /init as init process" in vm.log  # our initrd ran, not some other boot
    print(f"{firmware}: boot to power-off {vm.seconds:.1f} s")


def test_watchdog_powers_off_a_run_that_hangs():
    # waiting 120 s for config media that never comes, with a 5 s watchdog
    iso = build_cached(cmdline="vmtailor.wait=120 vmtailor.timeout=5")
    vm = boot(iso.iso, firmware="bios", timeout=240)
    assert vm.powered_off, vm.log[-3000:]
    assert vm.seconds < 100
    assert vm.result is not None and vm.result["status"] == "error", vm.log[-3000:]
    assert vm.result["reason"].startswith("watchdog: no result after 5 s")
