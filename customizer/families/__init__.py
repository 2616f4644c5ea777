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


def by_os_id(os_id: str) -> Family | None:
    for cls in FAMILIES:
        if os_id in cls.ids or (os_id.startswith("opensuse") and cls is SUSE):
            return cls()
    return None


def supported_ids() -> list[str]:
    return sorted({i for cls in FAMILIES for i in cls.ids})


__all__ = ["FAMILIES", "Family", "by_os_id", "supported_ids"]
