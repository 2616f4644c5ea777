"""One VM through a driver in the order hypervisors/base.py prescribes — the steps of
hypervisors/flow.py without its power check, state file and result parsing, so that a
contract test sees exactly the requests of these steps. Restore and discard always run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vmtailor.hypervisors.base import Media


@dataclass
class Ran:
    off: bool  # the guest powered itself off within the timeout
    text: str | None  # what read_result() returned
    saved: dict[str, Any]  # the snapshot, as it came back through JSON (the state file)
    placed: Media | None


def write_media(top, iso: bytes = b"I" * 4096, config: bytes = b"C" * 2048,
                config_name: str = "config.iso", config_format: str = "iso") -> Media:  # fmt: skip
    """Stand-in media files in `top` (a tmp_path) for drivers that only move them."""
    (top / "vmtailor.iso").write_bytes(iso)
    (top / config_name).write_bytes(config)
    return Media(str(top / "vmtailor.iso"), str(top / config_name), config_format)


def run_flow(driver, vm, media: Media, timeout: float = 5.0) -> Ran:
    saved = json.loads(json.dumps(driver.snapshot(vm)))  # it must survive the state file
    placed = None
    try:
        placed = driver.upload(vm, media)
        driver.attach(vm, placed, saved)
        driver.power_on(vm)
        off = driver.wait_off(vm, timeout)
        if not off:
            driver.power_off(vm)
        return Ran(off, driver.read_result(vm, saved), saved, placed)
    finally:
        driver.restore(vm, saved)
        if placed is not None:
            driver.discard(vm, placed.to_dict())
