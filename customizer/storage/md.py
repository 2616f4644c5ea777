"""Linux md RAID: a guest's arrays assembled from its own member devices only, read-only
until something on them is mounted read-write, and never resynced or updated.

Clones carry the same array UUIDs, as they carry the same filesystem UUIDs: `mdadm
--assemble --scan` over every device (what the libguestfs appliance runs at launch) can
build one array from two clones' members. So each array is assembled from the members
named on the command line, found by their superblocks (`mdadm --examine`) among one
guest's devices, with `--config=none`: no mdadm.conf and no scan of anything else.

mdadm is reached through a `Shell` (argv -> exit status, output): customizer.run here and
in the initrd, the appliance's shell offline (vmtailor.offline.devices)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..root import Root, RootError
from ..run import run
from .devices import BlockDevice, from_blkid
from .errors import StorageError

log = logging.getLogger("vmtailor.storage")

# argv -> (exit status, stdout and stderr together)
Shell = Callable[[Sequence[str]], tuple[int, str]]

# The personality module each level needs; the kernel would ask for it by alias, but on
# the ISO a module is only there once the stages have mounted it.
LEVEL_MODULES = {
    "raid0": "raid0",
    "raid1": "raid1",
    "raid10": "raid10",
    "raid4": "raid456",
    "raid5": "raid456",
    "raid6": "raid456",
    "linear": "linear",
}
# Arrays are assembled at /dev/md<N> from here up: the guest's own names (md0, md/root)
# are aliases, so nothing the guest wrote decides a device path here.
FIRST_MINOR = 100


@dataclass(frozen=True)
class Member:
    """One member device's superblock, as `mdadm --examine` reports it."""

    path: str
    uuid: str  # the array's, mdadm's form: 2c2336f7:e0bbbb3f:59c9db0b:835459a9
    name: str = ""  # homehost:name (metadata 1.x); "" for 0.90
    level: str = ""
    raid_devices: int = 0
    events: str = ""
    state: str = ""  # clean, active (= not shut down cleanly) …
    preferred_minor: int | None = None  # metadata 0.90: /dev/md<N>
    # a resync or a rebuild onto this member was cut off: md resumes it once writable
    interrupted: bool = False


@dataclass(frozen=True)
class Array:
    """One array of a guest: its members as found, before or after assembly."""

    uuid: str
    name: str
    level: str
    raid_devices: int
    members: tuple[Member, ...]

    @property
    def clean(self) -> bool:
        return all(
            m.state.split(",")[0].strip() == "clean" and not m.interrupted for m in self.members
        )

    @property
    def short_name(self) -> str:
        """The name without its homehost (web01:root -> root)."""
        return self.name.rpartition(":")[2]

    def describe(self) -> str:
        name = self.short_name or self.uuid
        return f"md array {name} ({self.level}, {len(self.members)} of {self.raid_devices})"


_BLOCK_HEAD = re.compile(r"^(/\S+):\s*$")
# "Key : value", indented to align the colons: 0.90's "Preferred Minor" starts at column 0
_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s+:\s?(.*)$")


def _blocks(text: str) -> dict[str, dict[str, str]]:
    """mdadm's "Key : value" report per device: {device: {key: value}}."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        head = _BLOCK_HEAD.match(line)
        if head:
            current = out.setdefault(head.group(1), {})
            continue
        field = _FIELD.match(line)
        if field and current is not None:
            current.setdefault(field.group(1), field.group(2).strip())
    return out


def _int(text: str) -> int:
    m = re.match(r"\d+", text or "")
    return int(m.group(0)) if m else 0


def parse_examine(text: str) -> list[Member]:
    """`mdadm --examine DEV…` output: the superblock of each member it recognised (a
    device without one gets a "No md superblock" line on stderr and no block)."""
    out = []
    for path, keys in _blocks(text).items():
        uuid = keys.get("Array UUID") or keys.get("UUID")  # 1.x / 0.90
        if not uuid:
            continue
        minor = keys.get("Preferred Minor")
        out.append(
            Member(
                path=path,
                uuid=uuid.split()[0],
                name=keys.get("Name", "").split("  (")[0].strip(),
                level=keys.get("Raid Level", ""),
                raid_devices=_int(keys.get("Raid Devices", "")),
                events=keys.get("Events", ""),
                state=keys.get("State", ""),
                preferred_minor=int(minor) if minor and minor.isdigit() else None,
                interrupted=bool(keys.get("Resync Offset") or keys.get("Recovery Offset")),
            )
        )
    return out


@dataclass(frozen=True)
class Detail:
    """An assembled (or half-assembled) array, as `mdadm --detail` reports it."""

    state: str  # "clean", "clean, degraded", "active, resyncing", "inactive" …
    raid_devices: int
    active_devices: int

    @property
    def running(self) -> bool:
        return bool(self.state) and "inactive" not in self.state

    @property
    def degraded(self) -> bool:
        return "degraded" in self.state or self.active_devices < self.raid_devices


def parse_detail(text: str) -> Detail:
    keys = next(iter(_blocks(text).values()), {})
    return Detail(
        state=keys.get("State", "").strip(),
        raid_devices=_int(keys.get("Raid Devices", "")),
        active_devices=_int(keys.get("Active Devices", "")),
    )


def group_arrays(members: Iterable[Member]) -> list[Array]:
    """The arrays `members` make up, in the order their first member came."""
    by_uuid: dict[str, list[Member]] = {}
    for member in members:
        by_uuid.setdefault(member.uuid, []).append(member)
    out = []
    for uuid, group in by_uuid.items():
        first = group[0]
        out.append(Array(uuid, first.name, first.level, first.raid_devices, tuple(group)))
    return out


# Where the guest's mdadm reads its configuration: Debian's, then RHEL's (and upstream's).
CONF_PATHS = ("/etc/mdadm/mdadm.conf", "/etc/mdadm.conf")
CONF_LIMIT = 256 << 10  # a real one is a few lines; the guest's file is read to this only
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


def _uuid_key(uuid: str) -> str:
    """An array UUID in any of its spellings (mdadm's 8:8:8:8, blkid's dashed) as its 32
    hex digits, "" when it is none."""
    digits = re.sub(r"[:\-]", "", uuid.strip().lower())
    return digits if re.fullmatch(r"[0-9a-f]{32}", digits) else ""


def _md_names(name: str) -> list[str]:
    """The names udev and mdadm give an array named `name` (NAME or /dev/md/NAME, or
    /dev/mdN): both spellings of a numbered one. Nothing for a name that could leave
    /dev/md (a slash, "..") or name anything but an md device."""
    name = name.removeprefix("/dev/md/")
    numbered = re.fullmatch(r"/dev/md(\d+)", name)
    if numbered:
        name = numbered.group(1)
    if not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
        return []
    return [f"/dev/md/{name}", f"/dev/md{name}"] if name.isdigit() else [f"/dev/md/{name}"]


def parse_mdadm_conf(text: str) -> dict[str, list[str]]:
    """The device names a guest's mdadm.conf gives its arrays: {uuid: [/dev/md0, …]}
    (ARRAY lines, continued on indented lines; UUIDs as their 32 hex digits). Only md
    names (/dev/mdN, /dev/md/NAME): the guest's file is untrusted, and a line naming
    /dev/sda or /dev/md/../sda names nothing."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]
        if line[:1].isspace() and lines:
            lines[-1] += " " + line.strip()
        elif line.strip():
            lines.append(line.strip())
    out: dict[str, list[str]] = {}
    for line in lines:
        words = line.split()
        if words[0].upper() != "ARRAY" or len(words) < 2:
            continue
        keys = dict(w.partition("=")[::2] for w in words[1:] if "=" in w)
        uuid = _uuid_key(keys.get("UUID") or keys.get("uuid") or "")
        names = _md_names(words[1]) if words[1].startswith("/dev/md") else []
        if uuid and names:
            out.setdefault(uuid, []).extend(n for n in names if n not in out[uuid])
    return out


def guest_names(array: Array, conf: dict[str, list[str]] | None = None) -> tuple[str, ...]:
    """The names the guest may use for `array` in its fstab: /dev/md/NAME from a 1.x
    superblock, /dev/md<N> from a 0.90 one, and its mdadm.conf's."""
    names = _md_names(array.short_name) if array.short_name else []
    minor = array.members[0].preferred_minor if array.members else None
    if minor is not None:
        names += [f"/dev/md{minor}", f"/dev/md/{minor}"]
    names += (conf or {}).get(_uuid_key(array.uuid), [])
    return tuple(dict.fromkeys(names))


def read_conf(root: Root) -> str | None:
    """The text of the guest's mdadm.conf (`root` opened on its root filesystem), None
    when it has none. Followed only inside the guest, read to CONF_LIMIT only: a file
    that cannot be read is no conf, and costs the guest only the names it gives."""
    for path in CONF_PATHS:
        try:
            if root.is_file(path):
                return root.read_bytes(path, CONF_LIMIT).decode("utf-8", "replace")
        except RootError as exc:
            log.warning("the guest's %s is ignored: %s", path, exc)
            return None
    return None


def with_conf_names(devices: Sequence[BlockDevice], conf_text: str | None) -> list[BlockDevice]:
    """`devices` with the names the guest's mdadm.conf gives its arrays added to the
    arrays' own. The conf only names arrays already assembled from the guest's own
    members, found by their UUID; other devices are left as they are. A name the conf
    gives one array is taken from any other that had it from its superblock: at boot the
    guest's mdadm names its arrays as the conf says first."""
    conf = parse_mdadm_conf(conf_text or "")
    given = {d.path: conf.get(_uuid_key(d.array_uuid), []) for d in devices if d.array_uuid}
    taken = {name for names in given.values() for name in names}
    out = []
    for device in devices:
        own = given.get(device.path)
        if own is not None:
            kept = [a for a in device.aliases if a not in taken or a in own]
            device = device.with_(aliases=tuple(dict.fromkeys([*kept, *own])))
        out.append(device)
    return out


def assemble_argv(array: Array, target: str, *, run_degraded: bool = False) -> list[str]:
    """Assemble `array` at `target` from exactly its members, read-only: no resync, no
    superblock written, until `mdadm --readwrite`. No --update, no --force; --run only
    for a degraded array, which the caller reports."""
    argv = ["mdadm", "--assemble", "--readonly", "--config=none", target]
    if run_degraded:
        argv.append("--run")
    return [*argv, f"--uuid={array.uuid}", *(m.path for m in array.members)]


def local_shell(argv: Sequence[str]) -> tuple[int, str]:
    proc = run(list(argv), check=False, timeout=120)
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")


@dataclass
class Assembled:
    """The arrays of one guest, running read-only: (array, device path) in order."""

    arrays: list[tuple[Array, str]]
    warnings: list[str]

    @property
    def paths(self) -> list[str]:
        return [path for _, path in self.arrays]


def examine(paths: Sequence[str], shell: Shell = local_shell) -> list[Member]:
    if not paths:
        return []
    _, out = shell(["mdadm", "--examine", "--config=none", *paths])
    found = {m.path: m for m in parse_examine(out)}
    unread = [p for p in paths if p not in found]
    if unread:  # blkid saw a member there: a superblock mdadm cannot read is no array
        said = [line for line in out.splitlines() if unread[0] in line and "mdadm" in line]
        raise StorageError(
            f"cannot read the md superblock of {', '.join(unread)}"
            + (f": {said[0].removeprefix('mdadm: ')}" if said else "")
        )
    return [found[p] for p in paths]


def _detail(path: str, shell: Shell) -> Detail:
    return parse_detail(shell(["mdadm", "--detail", path])[1])


def assemble(
    members: Sequence[str],
    shell: Shell = local_shell,
    first: int = FIRST_MINOR,
    examined: Sequence[Member] | None = None,
) -> Assembled:
    """Assemble the arrays `members` (one guest's linux_raid_member devices; `examined`:
    their superblocks, read already) make up, read-only. A degraded array (a member
    missing) is started only with a warning; an array that cannot start at all is an
    error naming it. On any error, what was assembled is stopped again."""
    done = Assembled([], [])
    if examined is None:
        examined = examine(members, shell)
    try:
        for i, array in enumerate(group_arrays(examined)):
            target = f"/dev/md{first + i}"
            done.warnings += _assemble_one(array, target, shell)
            done.arrays.append((array, target))
    except BaseException:
        stop(done.paths, shell, check=False)  # the error on its way says more
        raise
    return done


def _free(array: Array, shell: Shell) -> None:
    """Stop any array holding `array`'s members: where udev runs (the libguestfs
    appliance), its incremental assembly takes a member of an array that was stopped or
    failed to start into a new, inactive one, and mdadm then finds it busy."""
    folders = [f"/sys/class/block/{m.path.rpartition('/')[2]}/holders" for m in array.members]
    _, out = shell(["ls", *folders])  # one process: each folder's names under its own header
    for holder in sorted(set(re.findall(r"^(md\d+)$", out, re.M))):
        shell(["mdadm", "--stop", f"/dev/{holder}"])


def _assemble_one(array: Array, target: str, shell: Shell) -> list[str]:
    _free(array, shell)
    status, out = shell(assemble_argv(array, target))
    detail = _detail(target, shell)
    if detail.running and not detail.degraded:
        return []
    # not started (members missing: mdadm waits for them without --run) or degraded
    if not detail.running:
        shell(["mdadm", "--stop", target])
        _free(array, shell)
        status, out = shell(assemble_argv(array, target, run_degraded=True))
        detail = _detail(target, shell)
        if not detail.running:
            shell(["mdadm", "--stop", target])
            last = out.strip().splitlines()[-1:] or [f"exit status {status}"]
            raise StorageError(f"cannot assemble {array.describe()}: {last[0]}")
    return [
        f"{array.describe()} is degraded ({detail.active_devices} of {detail.raid_devices} "
        "members): started read-only without the missing ones; what is written to it "
        "the guest will copy to them when they come back"
    ]


def readwrite(array: Array, path: str, shell: Shell = local_shell) -> None:
    """Let `path` be written: only for an array that was shut down cleanly, since md
    resyncs an unclean one as soon as it may write."""
    if not array.clean:
        raise StorageError(
            f"{array.describe()} was not shut down cleanly (a clone of a running guest?) "
            "or was resyncing: writing to it would start a resync of its members",
            hint="shut the template down cleanly and clone it again",
        )
    status, out = shell(["mdadm", "--readwrite", path])
    if status != 0:
        raise StorageError(f"cannot make {array.describe()} writable: {out.strip()}")


def stop(paths: Sequence[str], shell: Shell = local_shell, *, check: bool = True) -> None:
    """Stop arrays, the last assembled first: stopping is when md marks them clean."""
    failed = []
    for path in reversed(paths):
        status, out = shell(["mdadm", "--stop", path])
        if status != 0:
            failed.append(f"{path}: {out.strip() or f'exit status {status}'}")
    if failed and check:
        raise StorageError(f"cannot stop md arrays: {'; '.join(failed)}")


def as_device(array: Array, path: str, props: dict[str, str], group: str) -> BlockDevice:
    """The assembled `array` at `path` as a device (blkid's `props` for what is on it):
    its members are its parents, the guest's names for it its aliases."""
    return from_blkid(
        path,
        props,
        array=array.short_name or array.uuid,
        array_uuid=array.uuid,
        parents=tuple(m.path for m in array.members),
        aliases=guest_names(array),
        group=group,
    )


def holding(targets: Iterable[str], devices: Sequence[BlockDevice]) -> set[str]:
    """The md arrays (device paths) under the devices at `targets`, through LVs' PVs."""
    by_path = {d.path: d for d in devices}
    out: set[str] = set()
    todo = list(targets)
    seen: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        device = by_path.get(path)
        if device is None:
            continue
        if device.array:
            out.add(path)
        todo += device.parents
    return out
