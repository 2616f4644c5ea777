"""Stage `config`: find the config media by its label (a CD, a floppy or a disk; ISO 9660
or vfat), mount it read-only, and validate /vmtailor/config.json with the same parser
`vmtailor validate` uses. Files the config's `source:` items name are read from
/vmtailor/files/ on the media, when the engine asks for them."""

from __future__ import annotations

import json
import os
import posixpath
import re
import time

from vmtailor.customizer import config as configmod
from vmtailor.customizer.errors import PlanError
from vmtailor.customizer.run import run
from vmtailor.customizer.storage import discover

from .. import image
from . import Context, StageError, State, say

LABEL = image.CONFIG_LABEL
CONFIG_JSON = image.CONFIG_PATH.lstrip("/")
FILES = image.FILES_DIR.lstrip("/")
RUN_JSON = image.RUN_PATH.lstrip("/")
MEDIA_TYPES = ("iso9660", "vfat", "udf", "msdos")
RUN_TOKEN = re.compile(r"[0-9a-f]{16,64}")


def _seen(found: dict[str, dict[str, str]]) -> str:
    parts = []
    for path, props in found.items():
        what = props.get("TYPE", "nothing readable")
        label = f" {props['LABEL']!r}" if props.get("LABEL") else ""
        parts.append(f"{path} ({what}{label})")
    return ", ".join(parts) or "no block devices at all"


def wait_for_drivers(marker: str | None, wait: float) -> None:
    """Until /init's driver loading is done (the `marker` file exists): devices appear
    as their drivers load. After `wait` seconds, look anyway — find_media loads drivers
    itself when nothing is there."""
    deadline = time.monotonic() + wait
    while marker and not os.path.exists(marker):
        if time.monotonic() >= deadline:
            say(f"drivers still loading after {wait:g} s: looking for the media anyway")
            return
        time.sleep(0.02)


def floppy_controller(top: str = "/sys/bus") -> bool:
    """Is there a floppy controller (ISA PnP id PNP0700, as ACPI or PnP lists it) for the
    floppy driver to drive? Many VMs (q35, Hyper-V Gen 2, most UEFI ones) have none."""
    for bus, name in (("acpi", "modalias"), ("pnp", "id")):
        try:
            devices = os.listdir(os.path.join(top, bus, "devices"))
        except OSError:
            continue
        for device in devices:
            try:
                with open(os.path.join(top, bus, "devices", device, name)) as f:
                    if "PNP0700" in f.read():
                        return True
            except OSError:
                pass
    return False


def _media(paths: list[str], seen: dict[str, dict[str, str]]) -> tuple[str, str] | None:
    seen.update(discover.blkid_many(paths))
    for path in paths:
        props = seen[path]
        if props.get("LABEL") == LABEL and props.get("TYPE") in MEDIA_TYPES:
            return path, props["TYPE"]
    return None


def find_media(wait: float) -> tuple[str, str, dict[str, dict[str, str]]]:
    """(device, fstype) of the config media, polling until it appears or `wait` runs out
    (a CD or a SCSI disk can show up after the first look), and what blkid found on every
    device it probed on the way: the disks stage looks for the guest among them."""
    deadline = time.monotonic() + wait
    rounds = 0
    while True:
        seen: dict[str, dict[str, str]] = {}
        others = [b.path for b in discover.sys_block() if b.kind != "floppy" and b.size != 0]
        found = _media(others, seen)
        if not found:
            # floppies last: most VMs have a drive, reading an empty one costs an I/O
            # error and ~0.4 s, and coldplug leaves its driver out (initrd/etc/
            # modprobe.conf): a CD or disk holding the media ends the search before it
            if rounds == 0 and floppy_controller():
                run(["modprobe", "floppy"], check=False)
            floppies = [b.path for b in discover.sys_block() if b.kind == "floppy"]
            found = _media(floppies, seen)
        if found:
            return *found, seen
        if time.monotonic() >= deadline:
            raise StageError(
                f"no config media: no CD, floppy or disk labelled {LABEL} appeared in "
                f"{wait:g} s (found {_seen(seen)})",
                hint="attach the media `vmtailor media` made",
            )
        rounds += 1
        if rounds == 1 or rounds % 10 == 0:
            say(f"waiting for the config media (label {LABEL})")
            # a controller found late has drivers to load too
            run(["vmtailor-coldplug"], check=False)
        time.sleep(0.5)


def source_reader(top: str):
    base = os.path.join(top, FILES)

    def read(name: str) -> bytes:
        rel = posixpath.normpath(name)
        if rel.startswith(("/", "../")) or rel == "..":
            raise PlanError(
                f"source file {name!r}: must stay inside {image.FILES_DIR}/ on the media"
            )
        try:
            with open(os.path.join(base, rel), "rb") as f:
                return f.read()
        except OSError as exc:
            raise PlanError(f"source file {name!r} on the config media: {exc.strerror}") from None

    return read


def load_run(top: str, run_dir: str) -> str | None:
    """This run's token from the media's run.json (None: media `vmtailor media` made, or
    an unreadable file — the host then waits for power-off alone), and for /init the
    token and the reboot flag as files in `run_dir`. Read before the config, so that a
    config the initrd rejects still ends the host's wait at once."""
    try:
        with open(os.path.join(top, RUN_JSON), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    token = data.get("run") if isinstance(data, dict) else None
    if not isinstance(token, str) or not RUN_TOKEN.fullmatch(token):
        say(f"/{RUN_JSON} on the config media holds no run token: ignored")
        return None
    with open(os.path.join(run_dir, image.RUN_TOKEN_FILE), "w") as f:
        f.write(token + "\n")
    if data.get("reboot_stops") is True:
        with open(os.path.join(run_dir, image.REBOOT_STOPS_FILE), "w"):
            pass
    return token


def load_config(top: str):
    path = os.path.join(top, CONFIG_JSON)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise StageError(f"config media has no /{CONFIG_JSON}: {exc.strerror}") from None
    except ValueError as exc:
        raise StageError(f"/{CONFIG_JSON} on the config media is not JSON: {exc}") from None
    # rendered for this clone on the host: nothing in it is a template any more
    return configmod.parse_rendered(data)


def stage(state: State, ctx: Context) -> None:
    wait_for_drivers(ctx.drivers_loaded, ctx.wait)
    device, fstype, ctx.probed = find_media(ctx.wait)
    say(f"config media: {device} ({fstype})")
    state.config_device = device
    os.makedirs(ctx.media_dir, exist_ok=True)
    ctx.mounts.mount(device, ctx.media_dir, fstype, readonly=True)
    ctx.run = load_run(ctx.media_dir, ctx.run_dir)
    ctx.config = load_config(ctx.media_dir)
    ctx.sources = source_reader(ctx.media_dir)
    state.config_digest = configmod.digest(ctx.config)
