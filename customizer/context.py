"""What an operation gets: the config, the detected guest, and the plan to stage into."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import Config
from .config.model import FirstbootScript
from .detect import Guest
from .plan import Plan


def no_sources(name: str) -> bytes:
    from .errors import PlanError

    raise PlanError(f"{name}: no source files were provided with this config")


@dataclass
class Context:
    """What every operation plans against: the config, the guest, the plan."""

    config: Config
    guest: Guest
    plan: Plan
    # content of a file item's `source:` (from beside the config, or from the media)
    sources: Callable[[str], bytes] = no_sources
    # scripts other operations need run at first boot (e.g. ssh host key generation);
    # the firstboot operation installs them with the config's own scripts
    firstboot: list[FirstbootScript] = field(default_factory=list)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("vmtailor"))
    # set when a file was created: on SELinux guests it needs labelling at next boot
    warnings: list[str] = field(default_factory=list)
