"""initrd features, dracut-style: each module declares what one job in the initrd needs —
executables, kernel modules, files, Python — and registers in FEATURES below. The builder
(vmtailor.builder.initrd) resolves the declarations: executables with their libraries,
modules with their dependencies and softdeps, Python with the stdlib modules it imports.

Declarations only (stdlib, no host access): a test checks every feature installs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PythonNeeds:
    """The interpreter the builder runs on, the stdlib modules `roots` import (found by
    modulefinder, not listed), third-party `packages` from the build environment, and the
    vmtailor subpackages shipped whole."""

    roots: tuple[str, ...]
    packages: tuple[str, ...] = ()
    vmtailor: tuple[str, ...] = ()


@dataclass(frozen=True)
class Feature:
    name: str
    summary: str
    depends: tuple[str, ...] = ()
    binaries: tuple[str, ...] = ()  # names on the build host's PATH, or absolute paths
    links: tuple[tuple[str, str], ...] = ()  # (image path, target)
    kernel_modules: tuple[str, ...] = ()  # names or aliases
    # only some guests need it: the files it installs that no other feature does stay on
    # the ISO (image.iso_path), a symlink to each in the initrd; the stages mount the ISO
    # when a guest needs them (vmtailor.initrd.stages.disks). No feature in the initrd
    # may depend on one.
    on_media: bool = False
    data: tuple[tuple[str, str, int], ...] = ()  # (file in vmtailor/initrd/, image path, mode)
    directories: tuple[str, ...] = ()
    python: PythonNeeds | None = None
    busybox_applets: bool = False  # link every busybox applet not installed otherwise
    # paths left empty in the image, not even a busybox applet: /init fills them
    reserved: tuple[str, ...] = ()


def _collect() -> dict[str, Feature]:
    from . import base, blkid, filesystems, lvm, md, modalias, python, storage, xfs_btrfs

    table = {}
    for module in (base, modalias, storage, filesystems, blkid, lvm, md, xfs_btrfs, python):
        table[module.FEATURE.name] = module.FEATURE
    return table


FEATURES: dict[str, Feature] = _collect()


def resolve(names: list[str] | tuple[str, ...]) -> list[Feature]:
    """`names` and what they depend on, dependencies first, each once."""
    order: list[Feature] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name not in FEATURES:
            raise KeyError(f"unknown initrd feature {name!r} (known: {', '.join(FEATURES)})")
        feature = FEATURES[name]
        if feature in order:
            return
        if name in chain:
            raise ValueError(f"initrd features depend on each other in a loop: {chain}")
        for dep in feature.depends:
            visit(dep, (*chain, name))
        order.append(feature)

    for name in names:
        visit(name, ())
    return order
