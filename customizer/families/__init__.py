"""The distribution families vmtailor supports, one small module each."""

from __future__ import annotations

from .alpine import Alpine
from .arch import Arch
from .base import Family
from .debian import Debian
from .fedora import Fedora
from .rhel import RHEL
from .suse import SUSE
from .ubuntu import Ubuntu

# Order matters only for legacy release files: the first family whose file exists wins,
# so the more specific file (fedora-release) comes before the generic (redhat-release).
FAMILIES: tuple[type[Family], ...] = (Ubuntu, Debian, Fedora, RHEL, SUSE, Arch, Alpine)

# Where systemd-era guests say what they are, /etc first (it may override /usr/lib).
OS_RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release")

# The release files of distributions vmtailor knows but does not customize: a filesystem
# holding one is still a guest's root (virt-inspector finds it), and detection names it
# rather than saying "no Linux here". Tried before the families' own files: a
# distribution's own file says more than a compatibility one it may carry beside it.
UNSUPPORTED_RELEASE_FILES = (
    "/etc/gentoo-release",
    "/etc/mageia-release",
    "/etc/altlinux-release",
    "/etc/slackware-version",
    "/etc/frugalware-release",
    "/etc/pardus-release",
)

# Every legacy release file, in the order detection tries them, with the family it may
# name (None: a distribution vmtailor does not customize).
LEGACY_RELEASE_FILES: tuple[tuple[str, type[Family] | None], ...] = (
    *((path, None) for path in UNSUPPORTED_RELEASE_FILES),
    *((path, cls) for cls in FAMILIES for path in cls.release_files),
)

# What makes a filesystem (with an /etc/fstab) a guest's root: the one list the root
# finders (storage/roots.py, both probes) and detection (detect.py) read.
RELEASE_FILES: tuple[str, ...] = OS_RELEASE_FILES + tuple(
    dict.fromkeys(path for path, _ in LEGACY_RELEASE_FILES)
)


def by_os_id(os_id: str) -> Family | None:
    for cls in FAMILIES:
        if os_id in cls.ids or (os_id.startswith("opensuse") and cls is SUSE):
            return cls()
    return None


def supported_ids() -> list[str]:
    return sorted({i for cls in FAMILIES for i in cls.ids})


__all__ = [
    "FAMILIES",
    "LEGACY_RELEASE_FILES",
    "OS_RELEASE_FILES",
    "RELEASE_FILES",
    "Family",
    "by_os_id",
    "supported_ids",
]
