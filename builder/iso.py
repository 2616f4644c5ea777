"""The customization ISO: kernel + vmtailor initrd, bootable by BIOS (isolinux) and UEFI
(GRUB), mastered in-process with pycdlib, reproducible, and cached."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

from ..customizer.errors import VmtailorError
from ..initrd import image
from . import boot, cache, initrd, kernel
from .isofs import IsoImage

log = logging.getLogger("vmtailor.builder")

FIRMWARE = ("bios", "uefi")
DEFAULT_EPOCH = 1704067200  # 2024-01-01: builds are reproducible even without SOURCE_DATE_EPOCH


@dataclass
class BuildResult:
    iso: str  # `out`, or the cached ISO when no `out` was given
    initrd: str  # the cached initrd (compressed cpio)
    manifest: str  # the cached initrd manifest: path, Debian package, origin
    kernel: str
    modules: str
    initrd_size: int
    iso_size: int
    cached: bool  # True when nothing had to be built
    seconds: float


def source_epoch(epoch: int | None = None) -> int:
    if epoch is not None:
        return epoch
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value:
        try:
            return int(value)
        except ValueError:
            raise VmtailorError(f"SOURCE_DATE_EPOCH={value!r} is not a number") from None
    return DEFAULT_EPOCH


def _initrd_key(moddir: str, features: tuple[str, ...], overlay: dict, epoch: int) -> str:
    from .. import customizer
    from .. import initrd as initrd_pkg
    from ..initrd import features as featuremod
    from . import python

    shipped = [p for f in featuremod.resolve(features) if f.python for p in f.python.packages]

    return cache.key({
        "modules": cache.tree_digest(moddir),
        "features": features,
        # what ships (customizer: its .py files) and what builds (initrd data, builder)
        "vmtailor": [cache.tree_digest(os.path.dirname(customizer.__file__), True, (".py",))]
        + [cache.tree_digest(os.path.dirname(p.__file__), contents=True)
           for p in (initrd_pkg, sys.modules[__package__])],
        "site": [cache.tree_digest(python.package_dir(p), contents=True) for p in shipped],
        "packages": cache.packages_digest(),
        "python": [python.interpreter(), sys.version],
        "overlay": {k: cache.key({"data": v.hex()}) for k, v in sorted(overlay.items())},
        "epoch": epoch,
        "compressor": initrd.COMPRESSOR,
    })  # fmt: skip


def build_iso(
    out: str | None = None,
    *,
    kernel_path: str | None = None,
    modules: str | None = None,
    firmware: tuple[str, ...] = FIRMWARE,
    cache_dir: str | None = None,
    epoch: int | None = None,
    cmdline: str = "",
    features: tuple[str, ...] = image.FEATURES,
    overlay: dict[str, bytes] | None = None,
) -> BuildResult:
    """Build the customization ISO and copy it to `out` (if given).

    kernel_path/modules: the kernel image and its modules directory (default: the newest
    Debian linux-image-amd64 and /lib/modules/VERSION). firmware: "bios" (isolinux) and/or
    "uefi" (GRUB). cmdline: extra kernel arguments after image.KERNEL_CMDLINE, e.g.
    "vmtailor.debug" or "vmtailor.timeout=120". epoch: every timestamp (default
    SOURCE_DATE_EPOCH, else a fixed date): the same inputs give a byte-identical ISO.
    overlay: extra initrd files {image path: bytes} (tests use it for stand-ins).

    The initrd and the ISO are cached in `cache_dir` (default $VMTAILOR_CACHE_DIR or
    /var/cache/vmtailor/build) under a hash of every input; a rebuild with nothing
    changed copies the cached ISO (well under a second). Safe to call from several
    processes at once: one builds, the others wait for it."""
    started = time.monotonic()
    bad = set(firmware) - set(FIRMWARE)
    if bad or not firmware:
        raise VmtailorError(f"firmware must be bios, uefi or both (not {','.join(bad)})")
    kernel_path, moddir = kernel.find(kernel_path, modules)
    epoch = source_epoch(epoch)
    overlay = overlay or {}
    root = cache.cache_dir(cache_dir)
    built = False

    ikey = _initrd_key(moddir, tuple(features), overlay, epoch)
    idir = os.path.join(root, f"initrd-{ikey}")
    with cache.locked(root, f"initrd-{ikey}"):
        if not os.path.exists(os.path.join(idir, initrd.INITRD_NAME)):
            log.info("building the initrd (%s)", moddir)
            tmp = tempfile.mkdtemp(prefix=".initrd-", dir=root)
            initrd.build_initrd(tmp, moddir, features, epoch, overlay)
            shutil.rmtree(idir, ignore_errors=True)
            os.rename(tmp, idir)
            cache.prune(root, "initrd-")
            built = True
    initrd_path = os.path.join(idir, initrd.INITRD_NAME)
    manifest = os.path.join(idir, "initrd.manifest")
    media = os.path.join(idir, initrd.MEDIA_DIR)

    full_cmdline = " ".join(filter(None, [image.KERNEL_CMDLINE, cmdline]))
    kernel_digest = cache.file_digest(kernel_path)
    parts = [ikey, kernel_digest, sorted(firmware), full_cmdline, epoch]
    iso_cached = os.path.join(root, f"iso-{cache.key({'iso': parts})}.iso")
    with cache.locked(root, os.path.basename(iso_cached)):
        if not os.path.exists(iso_cached):
            log.info("mastering the ISO")
            tmp = iso_cached + ".tmp"
            _master(tmp, kernel_path, initrd_path, manifest, media, tuple(firmware),
                    full_cmdline, epoch)  # fmt: skip
            os.rename(tmp, iso_cached)
            cache.prune(root, "iso-")
            built = True
    target = iso_cached
    if out:
        shutil.copyfile(iso_cached, out)
        target = out
    return BuildResult(
        iso=target,
        initrd=initrd_path,
        manifest=manifest,
        kernel=kernel_path,
        modules=moddir,
        initrd_size=os.path.getsize(initrd_path),
        iso_size=os.path.getsize(iso_cached),
        cached=not built,
        seconds=time.monotonic() - started,
    )


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _master(out: str, kernel_path: str, initrd_path: str, manifest: str, media: str,
            firmware: tuple[str, ...], cmdline: str, epoch: int) -> None:  # fmt: skip
    iso = IsoImage(image.ISO_LABEL, epoch)
    iso.add(boot.KERNEL, _read(kernel_path))
    iso.add(boot.INITRD, _read(initrd_path))
    iso.add("/boot/initrd.manifest", _read(manifest))
    # the files the initrd leaves here, in a fixed order (the same ISO every time)
    for top, dirs, files in os.walk(media):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            iso.add("/" + os.path.relpath(path, media), _read(path), mode)
    catalog = {"bootcatfile": "/BOOT/BOOT.CAT;1", "rr_bootcatname": "boot.cat"}
    if "bios" in firmware:
        iso.add("/isolinux/isolinux.bin", _read(boot.ISOLINUX_BIN))
        iso.add("/isolinux/ldlinux.c32", _read(boot.LDLINUX_C32))
        iso.add("/isolinux/isolinux.cfg", boot.isolinux_cfg(cmdline))
        # isolinux patches its own location into the boot info table; 4 sectors is what
        # every BIOS expects to load for no-emulation boot
        iso.eltorito("/isolinux/isolinux.bin", boot_load_size=4, boot_info_table=True,
                     **catalog)  # fmt: skip
    if "uefi" in firmware:
        efi = boot.efiboot_img(cmdline, epoch)
        iso.add("/boot/efiboot.img", efi)
        iso.eltorito("/boot/efiboot.img", efi=True, boot_load_size=-(-len(efi) // 512),
                     **catalog)  # fmt: skip
    iso.write(out)
