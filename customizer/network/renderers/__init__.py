"""One renderer per network stack, registered in one table (name -> renderer)."""

from __future__ import annotations

from .base import File, GuestFacts, Renderer

RENDERERS: dict[str, Renderer] = {}


def register(cls: type[Renderer]) -> type[Renderer]:
    RENDERERS[cls.name] = cls()
    return cls


def _load_all() -> None:
    # one module per stack in this folder; importing it registers its renderer
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


_load_all()

__all__ = ["RENDERERS", "File", "GuestFacts", "Renderer", "register"]
