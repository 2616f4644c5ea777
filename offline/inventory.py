"""A batch inventory: one config, an optional master image, and the clones — each with its
image(s) and vars. Validated in full (every clone's rendered config too) before any image
is touched; paths are relative to the inventory file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..configfile import SourceDir, check_sources, read_yaml_file
from ..customizer import config as configmod
from ..customizer.config import Config, ConfigError
from ..customizer.config.schema import load, spec
from .images import FORMATS

NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"


@dataclass(kw_only=True)
class CloneSpec:
    """One clone to customize."""

    name: str = spec("clone name (also the default for {{ name }})", pattern=NAME)
    image: str | None = spec("the clone's disk image", default=None)
    images: list[str] = spec("a clone made of several disk images, in order", factory=list)
    format: str | None = spec("the images' format; probed from the data when not given",
                              default=None, choices=lambda: list(FORMATS))  # fmt: skip
    vars: dict[str, Any] = spec("values for the config's templates", factory=dict)

    def validate(self, path) -> None:
        if bool(self.image) == bool(self.images):
            raise ConfigError(path, "give exactly one of image or images")


@dataclass(kw_only=True)
class InventorySpec:
    """vmtailor batch inventory."""

    config: str = spec("the config file (YAML), relative to this inventory")
    master: str | None = spec("master image: missing clone images become its overlays",
                              default=None)  # fmt: skip
    vars: dict[str, Any] = spec("vars shared by every clone (a clone's own win)", factory=dict)
    clones: list[CloneSpec] = spec("the clones", factory=list)

    def validate(self, path) -> None:
        seen: dict[str, int] = {}
        for i, clone in enumerate(self.clones):
            if clone.name in seen:
                raise ConfigError((*path, "clones", i, "name"),
                                  f"{clone.name!r} is already clone {seen[clone.name]}")  # fmt: skip
            seen[clone.name] = i


@dataclass
class Clone:
    name: str
    images: list[str]  # absolute paths
    config: Config
    digest: str
    format: str | None = None


@dataclass
class Inventory:
    path: str
    config_path: str
    master: str | None
    clones: list[Clone]
    sources_dir: str  # where the config's `source:` files are read from, and only there

    def sources(self):
        return SourceDir(self.sources_dir).read


def load_inventory(path: str, sources: str | None = None) -> Inventory:
    """Parse the inventory and render + validate every clone's config, its `source:`
    files too (inside `sources`, default the config's folder). Raises ConfigError (with
    the file and line; every problem of the first config that has any)."""
    data, lines = read_yaml_file(path, "inventory")
    base = os.path.dirname(os.path.abspath(path))
    try:
        spec_ = load(InventorySpec, data if data is not None else {})
    except ConfigError as exc:
        exc.locate(path, lines.line_of)
        raise
    if not spec_.clones:
        raise ConfigError(("clones",), "no clones to customize")
    config_path = os.path.join(base, spec_.config)
    config_data, config_lines = read_yaml_file(config_path)
    folder = SourceDir(sources or os.path.dirname(os.path.abspath(config_path)))
    clones = []
    for c in spec_.clones:
        variables = {"name": c.name, **spec_.vars, **c.vars}
        try:
            cfg = configmod.parse(config_data, variables)
            check_sources(cfg, folder)
        except ConfigError as exc:
            exc.locate(config_path, config_lines.line_of)
            for error in exc.errors:
                error.message = f"clone {c.name}: {error.message}"
            raise
        images = [os.path.join(base, p) for p in (c.images or [c.image])]
        clones.append(Clone(c.name, images, cfg, configmod.digest(cfg), c.format))
    master = os.path.join(base, spec_.master) if spec_.master else None
    _check_images(path, lines, master, clones)
    return Inventory(os.path.abspath(path), config_path, master, clones, folder.base)


def _check_images(path: str, lines, master: str | None, clones: list[Clone]) -> None:
    """One image, one clone — compared as real paths, so that ./a and a are one image;
    and the master is never a clone: clones are written, the master never is."""
    owner: dict[str, int] = {}
    if master:
        owner[os.path.realpath(master)] = -1
    for i, clone in enumerate(clones):
        for image in clone.images:
            real = os.path.realpath(image)
            if real in owner:
                where = "the master" if owner[real] < 0 else f"clone {clones[owner[real]].name}"
                exc = ConfigError(("clones", i), f"image {image} is already {where}'s image")
                exc.source, exc.line = path, lines.line_of(exc.path)
                raise exc
            owner[real] = i
