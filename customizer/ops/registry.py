"""The one table of operations: apply order, the config keys each consumes, and the text
that `vmtailor ops`, `--help` and the README show all come from here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..context import Context


@dataclass(frozen=True)
class Operation:
    """One step of the engine: the config keys it consumes and how it plans them."""

    name: str
    keys: tuple[str, ...]  # top-level config keys this operation consumes
    order: int  # apply order: lower first
    summary: str
    plan: Callable[[Context], None]

    # extra condition beyond "one of my keys is set", e.g. firstboot also runs for
    # scripts other operations queued
    also_when: Callable[[Context], bool] | None = None

    def wanted(self, ctx: Context) -> bool:
        if any(getattr(ctx.config, key) not in (None, [], {}) for key in self.keys):
            return True
        return self.also_when is not None and self.also_when(ctx)


OPERATIONS: dict[str, Operation] = {}


def operation(
    name: str,
    keys: tuple[str, ...],
    order: int,
    summary: str,
    also_when: Callable[[Context], bool] | None = None,
):
    """Register the decorated `plan(ctx)` function as an operation."""

    def register(fn: Callable[[Context], None]) -> Callable[[Context], None]:
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name} registered twice")
        OPERATIONS[name] = Operation(name, keys, order, summary, fn, also_when)
        return fn

    return register


def ordered() -> list[Operation]:
    return sorted(OPERATIONS.values(), key=lambda op: op.order)
