"""What vmtailor knows about each filesystem, one record apiece: the driver the initrd
loads for it and whether that driver waits on the ISO, the options that keep a look
inside from writing, whether unmounting it flushes its disk, and how to tell that its
journal needs replaying. The initrd (its features and stages), storage/ and offline/ all
read this table; nothing else names a filesystem's properties.

Stdlib only: it ships in the initrd, and the initrd's features (declarations read at
build time) import it too."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

# read(offset, size) -> bytes: the device's bytes there (os.pread in the initrd,
# g.pread_device offline); OSError when they cannot be read
Read = Callable[[int, int], bytes]

EXT_MAGIC = 0xEF53
EXT_INCOMPAT_RECOVER = 0x4
BTRFS_MAGIC = b"_BHRfS_M"


def ext_needs_recovery(sb: bytes) -> bool:
    """`sb`: the 1024-byte ext2/3/4 superblock. True when its journal must be replayed."""
    if len(sb) < 0x64 or int.from_bytes(sb[0x38:0x3A], "little") != EXT_MAGIC:
        raise ValueError("not an ext2/3/4 superblock")
    return bool(int.from_bytes(sb[0x60:0x64], "little") & EXT_INCOMPAT_RECOVER)


def btrfs_needs_recovery(sb: bytes) -> bool:
    """`sb`: the btrfs superblock at 64 KiB. A log tree holds fsync()ed writes that the
    last transaction did not commit: the filesystem was not unmounted cleanly."""
    if len(sb) < 0x68 or sb[0x40:0x48] != BTRFS_MAGIC:
        raise ValueError("not a btrfs superblock")
    return int.from_bytes(sb[0x60:0x68], "little") != 0


@dataclass(frozen=True)
class Journal:
    """How to tell that a filesystem's journal (log, log tree) waits to be replayed, and
    the one sentence both the initrd and offline/ give when it does.

    Either the superblock says so — `superblock` (offset, size) read and handed to
    `unclean` — or only a tool can tell, and the tool differs by side: `tools` names it
    for each ("initrd", "offline"); the side runs it and passes needs_recovery() the
    result as `log_dirty`."""

    why: str
    superblock: tuple[int, int] | None = None
    unclean: Callable[[bytes], bool] | None = None
    tools: tuple[tuple[str, str], ...] = ()  # (side, command)

    def tool(self, side: str) -> str | None:
        return dict(self.tools).get(side)


@dataclass(frozen=True)
class Filesystem:
    """What vmtailor knows about one filesystem type, read by the initrd, storage/ and
    offline/ alike. (The docstring also spares the initrd's dataclasses from importing
    inspect to write one.)"""

    name: str  # blkid's TYPE, as fstab and mount -t spell it
    # the kernel module the initrd has for it (ext2 and ext3 are ext4's); None: the
    # initrd has none, the kernel loads one on demand if it can
    driver: str | None = None
    modules: tuple[str, ...] = ()  # loaded with the driver: what mounting it asks for
    on_iso: bool = False  # the driver stays on the ISO until a guest has one
    linux: bool = True  # may hold a Linux root, /boot, /var …: probing looks inside
    # a look inside must never write: no journal replay, no log recovery
    no_replay: tuple[str, ...] = ()
    always: tuple[str, ...] = ()  # on every mount, read-only or not
    # unmounting it (barriers on, the default) flushes its disk's cache, which QEMU
    # turns into an fdatasync of the image: a write there needs no g.sync()
    flushed_on_unmount: bool = False
    journal: Journal | None = None


EXT_JOURNAL = Journal(
    "its ext4 journal needs recovery", superblock=(1024, 1024), unclean=ext_needs_recovery
)

FILESYSTEMS: dict[str, Filesystem] = {
    fs.name: fs
    for fs in (
        Filesystem("ext2", driver="ext4"),  # no journal to replay
        *(
            Filesystem(
                name,
                driver="ext4",
                no_replay=("noload",),
                flushed_on_unmount=True,
                journal=EXT_JOURNAL,
            )
            for name in ("ext3", "ext4")
        ),
        Filesystem(
            "xfs",
            driver="xfs",
            on_iso=True,
            no_replay=("norecovery", "nouuid"),
            # XFS refuses a second filesystem with a UUID already mounted: clones share UUIDs
            always=("nouuid",),
            flushed_on_unmount=True,
            # XFS's superblock does not say: the log's head and tail do. xfs_logprint -t
            # finds them without reading anything else; libguestfs has no call for it,
            # and offline xfs_repair -n tells (after checking the whole filesystem, and
            # failing on a damaged one too)
            journal=Journal(
                "its XFS log is dirty",
                tools=(("initrd", "xfs_logprint -t"), ("offline", "xfs_repair -n")),
            ),
        ),
        Filesystem(
            "btrfs",
            driver="btrfs",
            on_iso=True,
            no_replay=("rescue=nologreplay",),
            flushed_on_unmount=True,
            journal=Journal(
                "its btrfs log tree needs replaying",
                superblock=(0x10000, 4096),
                unclean=btrfs_needs_recovery,
            ),
        ),
        Filesystem("f2fs"),
        Filesystem("jfs"),
        Filesystem("reiserfs"),
        Filesystem("nilfs2"),
        Filesystem("bcachefs"),
        # an ESP or a config disk: FAT's default codepage and iocharset (Debian's
        # kernel: cp437, ascii) with it, as the kernel would ask for them
        Filesystem("vfat", driver="vfat", modules=("nls_cp437", "nls_ascii"), linux=False),
    )
}

# Filesystems a Linux root (or /boot, /var …) can live on; probing mounts only these.
LINUX_FILESYSTEMS = frozenset(name for name, fs in FILESYSTEMS.items() if fs.linux)


def record(fstype: str | None) -> Filesystem | None:
    return FILESYSTEMS.get(fstype or "")


def drivers(*, on_iso: bool) -> tuple[str, ...]:
    """The initrd's drivers (with what each asks for) in the initrd itself, or on the ISO."""
    out: list[str] = []
    for fs in FILESYSTEMS.values():
        if fs.driver and fs.on_iso == on_iso:
            out += [m for m in (fs.driver, *fs.modules) if m not in out]
    return tuple(out)


def modules_for(fstypes: Iterable[str | None]) -> list[str]:
    """The modules to load for filesystems of `fstypes`: the drivers, then what they ask
    for. Only what the initrd has (a name modprobe cannot find is an error)."""
    found = [fs for fs in map(record, sorted(t for t in set(fstypes) if t)) if fs and fs.driver]
    out = sorted({fs.driver for fs in found if fs.driver})
    return out + [m for fs in found for m in fs.modules if m not in out]


def mount_options(fstype: str | None, options: Iterable[str], *, readonly: bool) -> list[str]:
    """ro or rw, then `options`, then the record's: a read-only mount is a look inside
    and replays nothing (a needs-recovery filesystem is refused later, not repaired)."""
    fs = record(fstype)
    extra = () if fs is None else fs.no_replay if readonly else fs.always
    out = ["ro" if readonly else "rw"]
    for opt in [*options, *extra]:
        if opt not in out:
            out.append(opt)
    return out


def needs_recovery(
    fstype: str | None, read: Read, log_dirty: Callable[[], bool] | None = None
) -> str | None:
    """Why a filesystem of `fstype` cannot be mounted read-write without a journal replay,
    or None. Its superblock comes from `read`; where only a tool can tell (XFS), the side
    passes that tool's verdict as `log_dirty` (raising OSError when it cannot run)."""
    fs = record(fstype)
    journal = fs.journal if fs else None
    if journal is None:
        return None
    if journal.superblock is None or journal.unclean is None:
        if log_dirty is None:
            raise ValueError(f"a {fstype} log is checked with {journal.tools}: pass log_dirty")
        try:
            dirty = log_dirty()
        except OSError as exc:
            return f"it cannot be checked ({exc})"
        return journal.why if dirty else None
    try:
        dirty = journal.unclean(read(*journal.superblock))
    except OSError as exc:
        return f"its superblock cannot be read ({exc})"
    except ValueError as exc:
        return f"its superblock is not what blkid said ({exc})"
    return journal.why if dirty else None
