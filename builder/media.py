"""Config media: the validated config as canonical JSON at /vmtailor/config.json and each
file its `source:` items name under /vmtailor/files/, on a small ISO, a 1.44 MB floppy or
a vfat disk image, labelled VMTCONFIG — what the initrd's config stage looks for.

All in-process (pycdlib, builder.fat), so media for many clones cost no subprocess each:
batch and deploy call write_media() once per clone."""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
from collections.abc import Callable, Mapping
from typing import Any

from ..customizer.config import Config, canonical_json
from ..customizer.errors import VmtailorError
from ..initrd.image import CONFIG_LABEL, CONFIG_PATH, FILES_DIR, RUN_PATH
from . import fat
from .iso import source_epoch
from .isofs import IsoImage

FORMATS = ("iso", "floppy", "vfat")
FILE_MODE = 0o600  # the config may hold password hashes and keys: root only
DIR_MODE = 0o700
IMAGE_MODE = 0o600  # the image file on the host, for the same reason


def media_files(config: Config, sources: Callable[[str], bytes]) -> dict[str, bytes]:
    """{path on the media: content}: the config and every source file it names."""
    files = {CONFIG_PATH: canonical_json(config).encode()}
    for i, item in enumerate(config.files):
        if item.source is None:
            continue
        rel = posixpath.normpath(item.source)
        if rel.startswith(("/", "../")) or rel == "..":
            raise VmtailorError(
                f"files[{i}].source {item.source!r}: leaves the config's folder",
                hint="keep source files beside the config (or below it) to carry them on media",
            )
        files[f"{FILES_DIR}/{rel}"] = sources(item.source)
    return files


def render(files: dict[str, bytes], fmt: str, epoch: int) -> bytes | IsoImage:
    if fmt == "floppy":
        try:
            return fat.make_fat(files, CONFIG_LABEL, floppy=True, epoch=epoch)
        except ValueError as exc:
            raise VmtailorError(f"config media: {exc}", hint="use --format iso or vfat") from None
    if fmt == "vfat":
        return fat.make_fat(files, CONFIG_LABEL, epoch=epoch)
    if fmt == "iso":
        iso = IsoImage(CONFIG_LABEL, epoch)
        for path, data in sorted(files.items()):
            iso.add(path, data, FILE_MODE, DIR_MODE)
        return iso
    raise VmtailorError(f"media format {fmt!r}: one of {', '.join(FORMATS)}")


def write_media(
    config: Config,
    sources: Callable[[str], bytes],
    out: str,
    fmt: str = "iso",
    epoch: int | None = None,
    run: Mapping[str, Any] | None = None,
) -> str:
    """Write config media for one clone to `out` and return `out`.

    `config` is already rendered for the clone (its vars applied) and validated;
    `sources(name)` returns the bytes of a `source:` file (cli.configfile.LoadedConfig's
    `sources`). `fmt`: "iso" (ISO 9660 + Rock Ridge, files 0600), "floppy" (1.44 MB FAT12)
    or "vfat" (a FAT disk image sized to fit, no partition table). The same config gives
    byte-identical media (timestamps from SOURCE_DATE_EPOCH or a fixed date). `run`:
    what `deploy` tells this one boot (initrd.image.RUN_PATH), None for reusable media."""
    files = media_files(config, sources)
    if run is not None:
        files[RUN_PATH] = json.dumps(dict(run), sort_keys=True).encode()
    image = render(files, fmt, source_epoch(epoch))
    tmp = f"{out}.tmp{os.getpid()}"
    try:
        # the image carries password hashes and secret files' content: readable by its
        # owner only, from the moment it exists (and whatever was at `out` is replaced)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # a stale one, of a crashed run with our pid
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, IMAGE_MODE))
        if isinstance(image, IsoImage):
            image.write(tmp)
        else:
            with open(tmp, "wb") as f:
                f.write(image)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
