"""Shared e2e fixtures: the customization ISO, built once per session however many
pytest-xdist workers ask. The build cache (outside the repo, kept between sessions) is
keyed by every input and locked while one worker builds, so the others wait, then copy.

Integration tests use build_cached() directly: `from tests.e2e.conftest import build_cached`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from vmtailor.builder.iso import BuildResult, build_iso

CACHE_DIR = os.environ.get("VMTAILOR_TEST_CACHE", "/var/tmp/vmtailor-tests/build-cache")
EPOCH = 1700000000


def build_cached(cmdline: str = "", **options) -> BuildResult:
    """The ISO for `cmdline` from the shared test cache; `options` go to build_iso()."""
    options.setdefault("cache_dir", CACHE_DIR)
    options.setdefault("epoch", EPOCH)
    return build_iso(cmdline=cmdline, **options)


def iso_in(folder: Path) -> Path:
    """A copy of the default ISO in `folder`, readable by libvirt's QEMU (another user)."""
    iso = folder / "vmtailor.iso"
    shutil.copyfile(build_cached().iso, iso)
    iso.chmod(0o644)
    return iso


@pytest.fixture(scope="session")
def customization_iso() -> BuildResult:
    """The default customization ISO (result.iso lives in the test cache: don't modify)."""
    return build_cached()


@pytest.fixture(scope="session")
def quick_iso() -> BuildResult:
    """The same initrd with a 3 s wait for config media, for boots that expect none."""
    return build_cached(cmdline="vmtailor.wait=3")
