"""Build the initrd: resolve the features into a staging tree through the one installer,
index the kernel modules that made it in (depmod), write a reproducible cpio, compress it
with lz4, and list every file with the Debian package it came from."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from importlib import resources

from .. import customizer
from ..customizer.run import run
from ..initrd import features as featuremod
from ..initrd import image
from . import cpio, dpkg
from . import python as pythonmod
from .installer import Installer, image_path
from .kmod import ModuleIndex

log = logging.getLogger("vmtailor.builder")

# Copied next to the chosen modules so depmod can index them as the full tree does.
DEPMOD_INPUTS = ("modules.order", "modules.builtin", "modules.builtin.modinfo")
# lz4 (its legacy frame: the format the kernel reads), not zstd. The kernel unpacks the
# initrd on the VM's one CPU before /init runs, and under emulation (QEMU TCG) that is
# most of what a bigger initrd costs: measured on this 50 MB image, zstd -19 (14.1 MB)
# unpacked in 1.43 s and lz4 -12 (20.6 MB) in 0.56 s, while the boot loader read lz4's
# extra 6.5 MB in 0.42 s — the boot to power-off was 0.5-0.8 s shorter.
COMPRESSOR = ("lz4", "-l", "-12")
INITRD_NAME = "initrd.lz4"
# Where vmtailor's packages (customizer/, initrd/ …) live: the manifest names them from here.
SOURCE_ROOT = os.path.dirname(os.path.dirname(customizer.__file__))


MEDIA_DIR = "media"  # beside the initrd: the files it leaves on the ISO, as the ISO has them


@dataclass
class InitrdResult:
    """The initrd, its manifest, and the files it leaves on the ISO."""

    path: str  # the compressed cpio (COMPRESSOR)
    manifest: str  # tab-separated: image path, Debian package (or "-"), origin
    size: int
    files: int
    media: str  # the files the initrd leaves on the ISO, each at its image.iso_path


def stage(
    staging: str,
    moddir: str,
    names: list[str] | tuple[str, ...],
    overlay: dict[str, bytes] | None = None,
) -> tuple[Installer, list[str]]:
    """Install every feature `names` need into `staging`, then the `overlay` files.
    Returns the installer and the files (image paths) that belong on the ISO: those the
    features on_media installed and no other feature needed — they go last, so what the
    rest share with them (libc, a module both need) is already there, the initrd's."""
    wanted = featuremod.resolve(names)
    for feature in wanted:
        for dep in feature.depends:
            if featuremod.FEATURES[dep].on_media and not feature.on_media:
                raise ValueError(f"initrd feature {feature.name} depends on {dep}, on the ISO")
    inst = Installer(staging, ModuleIndex.load(moddir))
    for feature in [f for f in wanted if not f.on_media]:
        _install(inst, feature)
    before = {i.path for i in inst.manifest()}
    for feature in [f for f in wanted if f.on_media]:
        _install(inst, feature)
    on_media = sorted(
        i.path for i in inst.manifest() if i.path not in before and _regular(staging, i.path)
    )
    for dest, content in sorted((overlay or {}).items()):
        inst.data(dest, content, 0o644, origin="overlay")
    if any(f.busybox_applets for f in wanted):
        reserved = {path for f in wanted for path in f.reserved}
        _busybox_applets(inst, reserved)  # last: real tools installed above keep their names
    if inst.kernel_modules:
        _depmod(inst, moddir)
    return inst, on_media


def _regular(staging: str, path: str) -> bool:
    """A file of its own (not a symlink or a folder): what can move to the ISO."""
    staged = os.path.join(staging, path.lstrip("/"))
    return os.path.isfile(staged) and not os.path.islink(staged)


def _install(inst: Installer, feature: featuremod.Feature) -> None:
    log.info("[started]  initrd feature %s", feature.name)
    package = resources.files("vmtailor.initrd")
    for folder in feature.directories:
        inst.directory(folder)
    for binary in feature.binaries:
        inst.binary(binary)
    for dest, target in feature.links:
        inst.symlink(dest, target)
    for src, dest, mode in feature.data:
        inst.data(dest, package.joinpath(src).read_bytes(), mode, origin=f"vmtailor:{src}")
    if feature.kernel_modules:
        inst.kmods(list(feature.kernel_modules))
    if feature.python:
        py = feature.python
        pythonmod.install(inst, py.roots, py.packages, py.vmtailor)
    log.info("[finished] initrd feature %s", feature.name)


def move_to_media(staging: str, paths: list[str], media: str) -> None:
    """Move the files at `paths` (image paths) from the staged tree to `media`, as the ISO
    holds them (image.iso_path), leaving in each one's place a symlink to where the
    stages mount the ISO. depmod has indexed the modules among them already."""
    for path in paths:
        staged = os.path.join(staging, path.lstrip("/"))
        on_iso = image.iso_path(path)
        os.makedirs(os.path.dirname(media + on_iso), exist_ok=True)
        os.rename(staged, media + on_iso)
        os.symlink(image.ISO_MOUNT + on_iso, staged)


def _busybox_applets(inst: Installer, reserved: set[str]) -> None:
    busybox = inst.binary("/bin/busybox")
    listing = run([os.path.join(inst.staging, busybox.lstrip("/")), "--list-full"]).stdout
    for rel in sorted(listing.decode().split()):
        dest = image_path("/" + rel)
        if dest not in reserved:
            inst.symlink(dest, os.path.relpath(busybox, os.path.dirname(dest)))


def _depmod(inst: Installer, moddir: str) -> None:
    version = os.path.basename(moddir.rstrip("/"))
    for name in DEPMOD_INPUTS:
        if os.path.exists(os.path.join(moddir, name)):
            inst.file(os.path.join(moddir, name), inst.module_dest(name), 0o644)
    run(["depmod", "-b", inst.staging, version])


def write_manifest(inst: Installer, path: str) -> int:
    """Every path in the staged tree with its Debian package and origin; bytecode is
    attributed to its source file (shipped or not)."""
    origins = {i.path: i.origin for i in inst.manifest()}
    rows = []
    for rel in cpio.entries(inst.staging):
        image = "/" + rel
        origin = origins.get(image, "")
        if not origin and "/__pycache__/" in image:
            head, _, tail = image.partition("/__pycache__/")
            source = f"{head}/{tail.split('.')[0]}.py"
            origin = origins.get(source, "")
        elif not origin and image.endswith(".pyc"):  # bytecode in its source's place
            origin = origins.get(image[:-1], "")
        rows.append((image, origin))
    packages = dpkg.owners(sorted({o for _, o in rows if o.startswith("/")}))
    with open(path, "w", encoding="utf-8") as f:
        f.write("# path\tdebian-package\torigin\n")
        for image, origin in rows:
            f.write(f"{image}\t{packages.get(origin, '-')}\t{_portable(origin) or '-'}\n")
    return len(rows)


def build_initrd(
    out_dir: str,
    moddir: str,
    features: list[str] | tuple[str, ...],
    epoch: int,
    overlay: dict[str, bytes] | None = None,
) -> InitrdResult:
    """Build `out_dir`/INITRD_NAME, `out_dir`/initrd.manifest and the modules for the ISO
    in `out_dir`/MEDIA_DIR from the kernel modules in `moddir`; every mtime in the archive
    is `epoch` (SOURCE_DATE_EPOCH). `overlay` adds files ({image path: content}), e.g. a
    test's stand-in for a module. The manifest lists a file left on the ISO at its path
    in the initrd, where a symlink to the mounted ISO stands."""
    staging = os.path.join(out_dir, "staging")
    shutil.rmtree(staging, ignore_errors=True)
    inst, on_media = stage(staging, moddir, features, overlay)
    media = os.path.join(out_dir, MEDIA_DIR)
    os.makedirs(media)
    move_to_media(staging, on_media, media)
    manifest = os.path.join(out_dir, "initrd.manifest")
    files = write_manifest(inst, manifest)
    raw = os.path.join(out_dir, "initrd.cpio")
    with open(raw, "wb") as f:
        cpio.write(staging, f, epoch)
    out = os.path.join(out_dir, INITRD_NAME)
    compress(raw, out)
    os.unlink(raw)
    shutil.rmtree(staging)
    return InitrdResult(out, manifest, os.path.getsize(out), files, media)


def compress(raw: str, out: str) -> None:
    """`raw` (a cpio archive) compressed as the kernel unpacks it, the same bytes every time."""
    run([*COMPRESSOR, "-q", "-f", raw, out])


def _portable(origin: str) -> str:
    """An origin as the manifest shows it: vmtailor's own files by their path in the
    package ("vmtailor:customizer/root.py") and a pip-installed file by its path
    below site-packages, not by where this checkout or its venv happens to live — so that
    the same inputs give the same ISO from any checkout (the build cache is shared)."""
    if origin.startswith(SOURCE_ROOT + os.sep):
        return "vmtailor:" + origin[len(SOURCE_ROOT) + 1 :]
    _head, sep, tail = origin.partition("/site-packages/")
    return f"site-packages/{tail}" if sep else origin
