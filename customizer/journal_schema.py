"""What a journal read back from the guest may say: its schema, checked in full before
vmtailor acts on any of it.

The journal lives in the guest, and the guest is untrusted: whoever controls it can write
any bytes there. So journal.json is parsed with bounds (size, nesting, numbers), every
field is type-checked (bool is not an int, a float is not a mode), and every path must be
one vmtailor itself could have recorded: absolute, normalized, no NUL, no `..`, never `/`
and never inside vmtailor's own folder. What the paths *are* in the guest now (symlinks,
mount points, backups that match their checksum) is checked by journal.py against the tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re

from .errors import VmtailorError

JOURNAL_DIR = "/var/lib/vmtailor"
JOURNAL_FILE = f"{JOURNAL_DIR}/journal.json"
ORIGINALS = f"{JOURNAL_DIR}/originals"
# 2: backups carry size and sha256, entries may be secret, the journal carries a digest.
# Format 1 is refused (see check_format): it has no checksums, so a format-1 journal
# would let anyone who can write the guest restore any bytes to any path.
# 3: entries may carry the path's atime_ns and mtime_ns, the journal the times of the
# folders whose content it changed (dir_times) and the mount points it made (mount_points).
# Format 2 journals (none of these) are still reverted: without their times.
FORMAT = 3
FORMATS = (2, 3)

MAX_JOURNAL_BYTES = 16 << 20
MAX_ENTRIES = 100_000
MAX_PATH = 4096
MAX_NAME = 255  # bytes in one path component (NAME_MAX)
MAX_LABEL = 4096
MAX_ID = 2**32 - 2  # uid/gid; 2**32-1 is (uid_t)-1, "leave unchanged" to chown
MAX_TIME = 2**63 - 1
MIN_TIME = -(2**63)  # a file's times may be before 1970
MAX_MOUNT_POINTS = 64
MAX_BACKUP_BYTES = 1 << 32

STATES = ("applying", "applied", "reverting", "reverted")
KINDS = ("file", "dir", "symlink", "absent")
ACTIONS = ("create", "modify", "delete", "mkdir", "symlink", "chmod")
# a backup's name in originals/: the index of its entry, as journal.py writes it
BACKUP_NAME = re.compile(r"\A[0-9]{5,9}\Z")
HEX = re.compile(r"\A[0-9a-f]*\Z")
# Directories begin() may create on the way to JOURNAL_DIR (recorded as journal_dirs).
JOURNAL_PARENTS = ("/var", "/var/lib")

_COMMON = {"path", "kind", "secret"}
_TIMES = ("atime_ns", "mtime_ns")  # optional (format 2 has none), both or neither
_OPTIONAL = {"secret", *_TIMES}
_KEYS = {
    "absent": _COMMON,
    "file": _COMMON | {"mode", "uid", "gid", "label", "backup", "sha256", "size", *_TIMES},
    "dir": _COMMON | {"mode", "uid", "gid", "label", *_TIMES},
    "symlink": _COMMON | {"mode", "uid", "gid", "target", *_TIMES},
}
_TOP = {
    "format", "state", "config_digest", "started", "finished", "last_changes",
    "journal_dirs", "entries", "digest", "dir_times", "mount_points",
}  # fmt: skip


class JournalError(VmtailorError):
    pass


def _refuse(what: str) -> JournalError:
    return JournalError(
        f"{JOURNAL_FILE} in the guest is not a journal vmtailor wrote: {what}; nothing changed",
        hint="if the guest was customized by vmtailor, restore the journal from a backup; "
        "otherwise remove /var/lib/vmtailor by hand",
    )


def digest(data: dict) -> str:
    """sha256 over the canonical JSON of everything but the digest itself.

    This only catches *accidental* damage (an editor, a half-restored backup): whoever can
    write the guest can recompute it. The protection against a forged journal is the
    validation here and in journal.py, which every journal must pass, digest or not."""
    body = {k: v for k, v in data.items() if k != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _no_duplicate_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def parse(raw: bytes) -> dict:
    """journal.json's bytes -> a journal every field of which is checked."""
    if len(raw) > MAX_JOURNAL_BYTES:
        raise _refuse(f"it is larger than {MAX_JOURNAL_BYTES} bytes")
    try:
        data = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise _refuse(f"not valid JSON ({_short(exc)})") from None
    except RecursionError:
        raise _refuse("JSON nested too deeply") from None
    check(data)
    return data


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:120]


def check(data) -> None:
    if not isinstance(data, dict):
        raise _refuse("not a JSON object")
    check_format(data.get("format"))
    unknown = sorted(set(data) - _TOP, key=repr)
    if unknown:
        raise _refuse(f"unknown field {_name(unknown[0])}")
    for key in ("state", "config_digest", "started", "entries", "journal_dirs", "digest"):
        if key not in data:
            raise _refuse(f"field {key!r} is missing")
    if data["state"] not in STATES:
        raise _refuse(f"state {_name(data['state'])} is not one of {', '.join(STATES)}")
    _hex(data["config_digest"], "config_digest", max_len=128)
    _hex(data["digest"], "digest", max_len=64, exact=True)
    _int(data["started"], "started", 0, MAX_TIME)
    if "finished" in data:
        _int(data["finished"], "finished", 0, MAX_TIME)
    _journal_dirs(data["journal_dirs"])
    dir_times(data.get("dir_times", {}), "dir_times", MAX_ENTRIES + len(JOURNAL_PARENTS) + 1)
    mount_points(data.get("mount_points", []), "mount_points")
    _last_changes(data.get("last_changes", []))
    _entries(data["entries"])


def check_format(value) -> None:
    if value == 1 and type(value) is int:
        raise JournalError(
            f"{JOURNAL_FILE} in the guest was written by an older vmtailor (format 1, "
            "without checksums of its backups); this vmtailor won't act on it",
            hint="revert it with the vmtailor version that applied it",
        )
    if value not in FORMATS or type(value) is not int:
        raise _refuse(f"unknown format {_name(value)}")


def _name(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int(value, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _refuse(f"{what} is {_name(value)}, not a whole number from {low} to {high}")
    return value


def _hex(value, what: str, max_len: int, exact: bool = False) -> None:
    ok = isinstance(value, str) and HEX.match(value) and len(value) <= max_len
    if not ok or (exact and len(value) != max_len):
        raise _refuse(f"{what} is {_name(value)}, not a hex digest")


def _str(value, what: str, max_len: int) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len or "\0" in value:
        raise _refuse(f"{what} is {_name(value)}, not a string of 1 to {max_len} characters")
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise _refuse(f"{what} {_name(value)} cannot be encoded") from None
    return value


def check_path(path, what: str = "path") -> str:
    """A path as vmtailor records them: absolute, normalized, resolved, never `/`."""
    _str(path, what, MAX_PATH)
    if not path.startswith("/") or path.startswith("//") or path == "/":
        raise _refuse(f"{what} {_name(path)} is not an absolute path below /")
    if posixpath.normpath(path) != path or "/../" in path + "/" or "/./" in path + "/":
        raise _refuse(f"{what} {_name(path)} is not a normalized path")
    for part in path[1:].split("/"):
        if len(os.fsencode(part)) > MAX_NAME:
            raise _refuse(f"{what} {_name(path)} has a name longer than {MAX_NAME} bytes")
    return path


def is_bookkeeping(path: str) -> bool:
    """vmtailor's own folder, or something in it."""
    return path == JOURNAL_DIR or path.startswith(JOURNAL_DIR + "/")


def _journal_dirs(value) -> None:
    if not isinstance(value, list) or len(value) > len(JOURNAL_PARENTS):
        raise _refuse("journal_dirs is not a short list")
    for d in value:
        if d not in JOURNAL_PARENTS:
            raise _refuse(f"journal_dirs names {_name(d)}, not a parent of {JOURNAL_DIR}")
    if len(set(value)) != len(value):
        raise _refuse("journal_dirs names a directory twice")


def times(value, what: str) -> tuple[int, int]:
    """[atime_ns, mtime_ns] as the journal and its markers record a path's times."""
    if not isinstance(value, list) or len(value) != 2:
        raise _refuse(f"{what} is {_name(value)}, not [atime_ns, mtime_ns]")
    atime = _int(value[0], f"{what} atime_ns", MIN_TIME, MAX_TIME)
    return atime, _int(value[1], f"{what} mtime_ns", MIN_TIME, MAX_TIME)


def dir_times(value, what: str, limit: int) -> dict[str, tuple[int, int]]:
    """{folder: [atime_ns, mtime_ns]}: folders whose content vmtailor changed, "/" too."""
    if not isinstance(value, dict) or len(value) > limit:
        raise _refuse(f"{what} is not a map of at most {limit} folders")
    out = {}
    for path, pair in value.items():
        if path != "/":
            check_path(path, f"a {what} folder")
        if is_bookkeeping(path):
            raise _refuse(f"{what} names vmtailor's own folder")
        out[path] = times(pair, f"{what} of {_name(path)}")
    return out


def mount_points(value, what: str) -> list[str]:
    """The mount points vmtailor made, in the order it made them."""
    if not isinstance(value, list) or len(value) > MAX_MOUNT_POINTS:
        raise _refuse(f"{what} is not a list of at most {MAX_MOUNT_POINTS} paths")
    for path in value:
        check_path(path, f"a {what} path")
        if is_bookkeeping(path):
            raise _refuse(f"{what} names {_name(path)}, vmtailor's own folder")
    if len(set(value)) != len(value):
        raise _refuse(f"{what} names a path twice")
    return value


def _last_changes(value) -> None:
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise _refuse("last_changes is not a list")
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and item[0] in ACTIONS):
            raise _refuse(f"last_changes holds {_name(item)}, not [action, path]")
        check_path(item[1], "a last_changes path")


def _entries(entries) -> None:
    if not isinstance(entries, list):
        raise _refuse("entries is not a list")
    if len(entries) > MAX_ENTRIES:
        raise _refuse(f"more than {MAX_ENTRIES} entries")
    paths: set[str] = set()
    backups: set[str] = set()
    for i, entry in enumerate(entries):
        check_entry(entry, i)
        if entry["path"] in paths:
            raise _refuse(f"entry {i} names {_name(entry['path'])} a second time")
        paths.add(entry["path"])
        if "backup" in entry:
            if entry["backup"] in backups:
                raise _refuse(f"entry {i} shares its backup {entry['backup']}")
            backups.add(entry["backup"])


def check_entry(entry, i: int) -> None:
    if not isinstance(entry, dict):
        raise _refuse(f"entry {i} is not an object")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise _refuse(f"entry {i} has kind {_name(kind)}, not one of {', '.join(KINDS)}")
    where = f"entry {i}"
    path = check_path(entry.get("path"), f"{where} path")
    where = f"entry {i} ({path})"
    missing = _KEYS[kind] - _OPTIONAL - set(entry)
    extra = set(entry) - _KEYS[kind]
    if missing or extra:
        key = sorted(missing)[0] if missing else _name(sorted(extra, key=repr)[0])
        raise _refuse(f"{where}: field {key} is {'missing' if missing else 'unknown'}")
    if is_bookkeeping(path):
        raise _refuse(f"{where} names vmtailor's own folder")
    if JOURNAL_DIR.startswith(path + "/") and kind != "dir":
        raise _refuse(f"{where} would replace a parent of {JOURNAL_DIR}")
    if "secret" in entry and type(entry["secret"]) is not bool:
        raise _refuse(f"{where}: secret is {_name(entry['secret'])}, not true or false")
    if kind == "absent":
        return
    if any(k in entry for k in _TIMES):
        if not all(k in entry for k in _TIMES):
            raise _refuse(f"{where}: atime_ns and mtime_ns come together")
        times([entry["atime_ns"], entry["mtime_ns"]], where)
    mode = _int(entry["mode"], f"{where} mode", 0, 0o7777)
    _int(entry["uid"], f"{where} uid", 0, MAX_ID)
    _int(entry["gid"], f"{where} gid", 0, MAX_ID)
    if kind != "symlink" and entry["label"] is not None:
        _str(entry["label"], f"{where} label", MAX_LABEL)
    if kind == "dir" and mode & 0o4000:
        # setgid and sticky directories are common (/var/mail, /tmp); setuid ones are not
        raise _refuse(f"{where}: a directory with the setuid bit")
    if kind == "symlink":
        _str(entry["target"], f"{where} target", MAX_PATH)
    if kind == "file":
        backup = entry["backup"]
        name = backup.removeprefix(ORIGINALS + "/") if isinstance(backup, str) else None
        if name is None or name == backup or not BACKUP_NAME.match(name):
            raise _refuse(f"{where}: backup {_name(backup)} is not in {ORIGINALS}/")
        _hex(entry["sha256"], f"{where} sha256", 64, exact=True)
        _int(entry["size"], f"{where} size", 0, MAX_BACKUP_BYTES)
