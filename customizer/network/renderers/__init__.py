"""One renderer per network stack, registered in one table (name -> renderer).

Each stack's module is imported the first time its renderer is asked for, not before:
a guest has one stack, and the initrd (under emulation, where imports are most of
Python's start-up) has no use for the other six. MODULES (from network/stacks.py) names
them; a test checks that it lists every module here and that each registers the name it
is listed under."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from ..stacks import STACKS
from .base import File, GuestFacts, Renderer

# stack name -> module in this folder, whose import registers the stack's renderer
MODULES = {s.name: s.module for s in STACKS}


class Registry(Mapping[str, Renderer]):
    """name -> renderer; iterating gives the names without importing anything."""

    def __init__(self) -> None:
        self.loaded: dict[str, Renderer] = {}

    def __getitem__(self, name: str) -> Renderer:
        if name not in self.loaded and name in MODULES:
            importlib.import_module(f"{__name__}.{MODULES[name]}")
        return self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(MODULES)

    def __len__(self) -> int:
        return len(MODULES)


RENDERERS = Registry()


def register(cls: type[Renderer]) -> type[Renderer]:
    RENDERERS.loaded[cls.name] = cls()
    return cls


__all__ = ["MODULES", "RENDERERS", "File", "GuestFacts", "Renderer", "register"]
