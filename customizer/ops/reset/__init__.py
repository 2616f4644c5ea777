"""reset: sysprep-like removal of a template's identity, one small module per item."""

from __future__ import annotations

from collections.abc import Callable

from ...context import Context
from ..registry import operation

# name -> (summary, plan function); filled by the item modules below
RESET_ITEMS: dict[str, tuple[str, Callable[[Context], None]]] = {}


def reset_item(name: str, summary: str):
    def register(fn: Callable[[Context], None]) -> Callable[[Context], None]:
        RESET_ITEMS[name] = (summary, fn)
        return fn

    return register


from . import machine_id, persistent_net, ssh_host_keys  # noqa: E402,F401  (registration)


@operation("reset", ("reset",), 50, "reset template identity: " + ", ".join(sorted(RESET_ITEMS)))
def plan(ctx: Context) -> None:
    for name in ctx.config.reset:
        RESET_ITEMS[name][1](ctx)
