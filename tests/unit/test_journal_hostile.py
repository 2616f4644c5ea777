"""Forged and malformed journals: the journal is read back from the guest, so whoever
controls the guest can write any bytes there. Each one must end in one clear JournalError
from revert and from apply, with nothing changed in the guest and nothing outside it."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import tree_digest
from tests.unit.test_journal import _guest as _small_guest
from vmtailor.customizer import config, engine
from vmtailor.customizer.journal import JOURNAL_FILE, JournalError
from vmtailor.customizer.journal_schema import digest
from vmtailor.customizer.localroot import LocalRoot

CONFIG = {
    "hostname": "web01",
    "files": [
        {"path": "/etc/motd", "content": "hello\n"},
        {"path": "/etc/old.conf", "delete": True},
        {"path": "/srv/www/html", "mkdir": True},
        {"path": "/etc/alt", "symlink": "/etc/motd"},
        {"path": "/etc/ssh", "permissions": "0700"},
        {"path": "/etc/secret.conf", "permissions": "0600", "owner": "1000:1000"},
    ],
}
JOURNAL = JOURNAL_FILE.lstrip("/")
ORIG = "var/lib/vmtailor/originals"


def _guest(top: Path) -> Path:
    _small_guest(top)
    (top / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    os.symlink("hostname", top / "etc/alt")
    return top


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A box holding a sentinel host-like tree and a guest vmtailor has applied CONFIG to."""
    box = tmp_path_factory.mktemp("template")
    for f in ("etc/shadow", "etc/passwd", "originals/00000"):
        (box / "sentinel" / f).parent.mkdir(parents=True, exist_ok=True)
        (box / "sentinel" / f).write_text(f"sentinel {f}\n")
    top = _guest(box / "guest")
    engine.apply(config.parse(CONFIG), LocalRoot(str(top)))
    return box


def _entry(data: dict, path: str) -> dict:
    return next(e for e in data["entries"] if e["path"] == path)


def _file_entry(data: dict) -> dict:
    return _entry(data, "/etc/hostname")


def _set(path: str, key: str, value) -> Callable:
    def mutate(data, top):
        _entry(data, path)[key] = value

    return mutate


def _share_backup(path: str, other: str) -> Callable:
    """`path` names `other`'s backup as its own (whichever was journaled first)."""

    def mutate(data, top):
        _entry(data, path)["backup"] = _entry(data, other)["backup"]

    return mutate


def _top(key: str, value) -> Callable:
    def mutate(data, top):
        data[key] = value

    return mutate


def _add(entry: dict) -> Callable:
    def mutate(data, top):
        data["entries"].append(entry)

    return mutate


def _forge_file(path: str, content: bytes = b"forged\n", mode: int = 0o644, **extra):
    """A 'file' entry with a backup that really verifies: only the tree rules stop it."""

    def mutate(data, top):
        name = f"{len(data['entries']):05d}"
        (top / ORIG / name).write_bytes(content)
        entry = {
            "path": path, "kind": "file", "mode": mode, "uid": 0, "gid": 0, "label": None,
            "backup": f"/{ORIG}/{name}", "sha256": hashlib.sha256(content).hexdigest(),
            "size": len(content),
        }  # fmt: skip
        entry.update(extra)
        data["entries"].append(entry)

    return mutate


def _raw(text: bytes) -> Callable:
    def mutate(data, top):
        return text

    return mutate


def _tree(fn: Callable[[Path], None], then: Callable | None = None) -> Callable:
    """Change the guest tree (and maybe the journal) before the revert."""

    def mutate(data, top):
        fn(top)
        return then(data, top) if then else None

    return mutate


def _symlink_originals_out(top: Path) -> None:
    orig = top / ORIG
    sentinel = top.parent / "sentinel" / "originals"
    for name in os.listdir(orig):
        shutil.copy(orig / name, sentinel / name)
    shutil.rmtree(orig)
    os.symlink(str(sentinel), orig)


def _journal_elsewhere(kind: str) -> Callable[[Path], None]:
    def change(top: Path) -> None:
        journal = top / JOURNAL
        if kind == "symlink":
            journal.rename(top / "etc/journal.json")
            os.symlink("/etc/journal.json", journal)
        elif kind == "fifo":
            journal.unlink()
            os.mkfifo(journal)
        elif kind == "dir":
            journal.unlink()
            journal.mkdir()
            (journal / "x").write_text("x")

    return change


def _dir_symlinked(top: Path) -> None:
    """/var/lib/vmtailor replaced by a link to a copy: vmtailor won't write through it."""
    real = top / "var/lib/vmtailor"
    real.rename(top / "var/lib/elsewhere")
    os.symlink("elsewhere", real)


def _deep(n: int) -> bytes:
    return b'{"format": 2, "entries": ' + b"[" * n + b"]" * n + b"}"


def _lnk(top: Path) -> None:
    os.symlink("/etc", top / "lnk")


def _fifo_at_motd(top: Path) -> None:
    (top / "etc/motd").unlink()
    os.mkfifo(top / "etc/motd")


def _swap_backup_for_link(top: Path) -> None:
    os.unlink(top / ORIG / "00000")
    os.symlink("/etc/hostname", top / ORIG / "00000")


def _forged_motd_backup(top: Path) -> None:
    (top / ORIG / "00000").write_text("evil\n")


HUGE = "/" + "a" * 5000
CASES: dict[str, Callable] = {
    # -- not JSON, or not a journal at all
    "not-json": _raw(b"{"),
    "empty-file": _raw(b""),
    "not-utf8": _raw(b'{"format": 2, "x": "\xff"}'),
    "top-level-list": _raw(b"[]"),
    "deep-nesting": _raw(_deep(200_000)),
    "huge-file": _raw(b" " * (17 << 20) + b"{}"),
    "nan": _raw(b'{"format": NaN}'),
    "duplicate-keys": _raw(b'{"format": 2, "format": 2}'),
    "huge-int-literal": _raw(b'{"format": ' + b"9" * 5000 + b"}"),
    "format-1": _top("format", 1),
    "format-string": _top("format", "2"),
    "format-true": _top("format", True),
    "state-unknown": _top("state", "done"),
    "state-missing": lambda d, t: d.pop("state"),
    "entries-not-list": _top("entries", {"path": "/etc/hostname"}),
    "entries-null": _top("entries", None),
    "entry-not-object": _top("entries", ["/etc/hostname"]),
    "too-many-entries": _top(
        "entries", [{"path": f"/x{i}", "kind": "absent"} for i in range(100_001)]
    ),
    "unknown-top-field": _top("hook", "rm -rf /"),
    "journal-dirs-etc": _top("journal_dirs", ["/etc"]),
    "config-digest-not-hex": _top("config_digest", "not hex!"),
    "started-negative": _top("started", -5),
    "last-changes-garbage": _top("last_changes", [["explode", "/etc"]]),
    # -- paths vmtailor never records
    "path-root": _add({"path": "/", "kind": "absent"}),
    "path-root-file": _forge_file("/"),
    "path-etc-file": _forge_file("/etc"),
    "path-ssh-file": _forge_file("/etc/ssh"),
    "path-dotdot": _add({"path": "..", "kind": "absent"}),
    "path-dotdot-inside": _add({"path": "/etc/../etc/passwd", "kind": "absent"}),
    "path-dotdot-up": _add({"path": "/../../etc/passwd", "kind": "absent"}),
    "path-relative": _add({"path": "etc/passwd", "kind": "absent"}),
    "path-double-slash": _add({"path": "//etc/passwd", "kind": "absent"}),
    "path-dot": _add({"path": "/etc/./passwd", "kind": "absent"}),
    "path-trailing-slash": _add({"path": "/etc/passwd/", "kind": "absent"}),
    "path-nul": _add({"path": "/etc/pass\0wd", "kind": "absent"}),
    "path-huge": _add({"path": HUGE, "kind": "absent"}),
    "path-long-name": _add({"path": "/" + "n" * 300, "kind": "absent"}),
    "path-not-str": _add({"path": 123, "kind": "absent"}),
    "path-list": _add({"path": ["/etc"], "kind": "absent"}),
    "path-surrogate": _add({"path": "/etc/\ud800", "kind": "absent"}),
    "path-own-journal": _add({"path": JOURNAL_FILE, "kind": "absent"}),
    "path-own-folder": _add({"path": "/var/lib/vmtailor", "kind": "absent"}),
    "path-var-lib-link": _add(
        {"path": "/var/lib", "kind": "symlink", "mode": 0o777, "uid": 0, "gid": 0, "target": "/"}
    ),
    "path-through-symlink": _tree(_lnk, _forge_file("/lnk/passwd")),
    "duplicate-paths": _add({"path": "/etc/hostname", "kind": "absent"}),
    # -- kinds and fields
    "kind-unknown": _set("/etc/hostname", "kind", "fifo"),
    "kind-missing": lambda d, t: _file_entry(d).pop("kind"),
    "field-missing": lambda d, t: _file_entry(d).pop("sha256"),
    "field-unknown": _set("/etc/hostname", "exec", "/bin/sh"),
    "absent-with-backup": _set("/etc/motd", "backup", f"/{ORIG}/00000"),
    "secret-not-bool": _set("/etc/motd", "secret", "yes"),
    "symlink-etc-to-host": _add(
        {"path": "/etc", "kind": "symlink", "mode": 0o777, "uid": 0, "gid": 0, "target": "/"}
    ),
    "symlink-ssh-to-host": _forge_file("/etc/ssh", b"x"),
    "symlink-target-nul": _set("/etc/alt", "target", "/etc/sha\0dow"),
    "symlink-target-int": _set("/etc/alt", "target", 7),
    "label-int": _set("/etc/hostname", "label", 123),
    "label-nul": _set("/etc/hostname", "label", "system_u\0"),
    # -- backups
    "backup-outside-originals": _set("/etc/hostname", "backup", "/etc/shadow"),
    "backup-dotdot": _set("/etc/hostname", "backup", f"/{ORIG}/../../../../etc/shadow"),
    "backup-host-path": _set("/etc/hostname", "backup", "/../../sentinel/originals/00000"),
    "backup-bad-name": _set("/etc/hostname", "backup", f"/{ORIG}/x"),
    "backup-shared": _share_backup("/etc/hosts", "/etc/hostname"),
    "backup-sha-mismatch": _tree(_forged_motd_backup),
    "backup-size-mismatch": _set("/etc/hostname", "size", 3),
    "backup-missing": _tree(lambda t: os.unlink(t / ORIG / "00000")),
    "backup-is-symlink": _tree(_swap_backup_for_link),
    "originals-symlink-out": _tree(_symlink_originals_out),
    # -- modes and owners
    "setuid-dir": _set("/etc/ssh", "mode", 0o4755),
    "setuid-file-unverified": _tree(_forged_motd_backup, _set("/etc/hostname", "mode", 0o4755)),
    "mode-too-big": _set("/etc/hostname", "mode", 0o17777),
    "mode-negative": _set("/etc/hostname", "mode", -1),
    "mode-string": _set("/etc/hostname", "mode", "0644"),
    "mode-float": _set("/etc/hostname", "mode", 420.0),
    "uid-negative": _set("/etc/hostname", "uid", -1),
    "uid-huge": _set("/etc/hostname", "uid", 2**64),
    "gid-minus-one-unsigned": _set("/etc/hostname", "gid", 2**32 - 1),
    "uid-bool": _set("/etc/hostname", "uid", True),
    "uid-null": _set("/etc/hostname", "uid", None),
    # -- times (format 3)
    "format-4": _top("format", 4),
    "mtime-float": _set("/etc/hostname", "mtime_ns", 1.5),
    "mtime-string": _set("/etc/hostname", "mtime_ns", "1700000000"),
    "mtime-huge": _set("/etc/hostname", "mtime_ns", 2**63),
    "atime-bool": _set("/etc/hostname", "atime_ns", True),
    "atime-without-mtime": lambda d, t: _file_entry(d).pop("mtime_ns"),
    "times-on-absent": _set("/etc/motd", "mtime_ns", 0),
    "dir-times-not-map": _top("dir_times", [["/etc", 0, 0]]),
    "dir-times-relative": _top("dir_times", {"etc": [0, 0]}),
    "dir-times-dotdot": _top("dir_times", {"/etc/../..": [0, 0]}),
    "dir-times-own-folder": _top("dir_times", {"/var/lib/vmtailor": [0, 0]}),
    "dir-times-not-pair": _top("dir_times", {"/etc": [0]}),
    "dir-times-null": _top("dir_times", {"/etc": None}),
    "dir-times-huge": _top("dir_times", {"/etc": [0, -(2**63) - 1]}),
    "mount-points-not-list": _top("mount_points", "/home"),
    "mount-points-relative": _top("mount_points", ["home"]),
    "mount-points-own-folder": _top("mount_points", ["/var/lib/vmtailor/x"]),
    "mount-points-twice": _top("mount_points", ["/home", "/home"]),
    # -- the journal file and the tree
    "journal-symlink": _tree(_journal_elsewhere("symlink")),
    "journal-fifo": _tree(_journal_elsewhere("fifo")),
    "journal-dir": _tree(_journal_elsewhere("dir")),
    "journal-folder-symlink": _tree(_dir_symlinked),
    "special-file-at-entry": _tree(_fifo_at_motd),
}


def _box(template: Path, tmp_path: Path) -> Path:
    box = tmp_path / "box"
    shutil.copytree(template, box, symlinks=True)
    return box


def _forge(box: Path, mutate: Callable, redigest: bool = True) -> None:
    top = box / "guest"
    path = top / JOURNAL
    data = json.loads(path.read_text())
    raw = mutate(data, top)
    if isinstance(raw, bytes):
        path.write_bytes(raw)
        return
    if not path.is_file() or path.is_symlink():
        return  # the case replaced journal.json itself
    if redigest:
        data["digest"] = digest(data)
    path.write_text(json.dumps(data))


def _assert_refused(box: Path, *, apply_too: bool = True) -> list[str]:
    """Revert and apply both refuse with one line; the whole box is unchanged after each."""
    top = box / "guest"
    before = tree_digest(box)
    messages = []
    runs = [lambda: engine.revert(LocalRoot(str(top)))]
    if apply_too:
        runs.append(lambda: engine.apply(config.parse({"hostname": "x"}), LocalRoot(str(top))))
    for run in runs:
        with pytest.raises(JournalError) as info:
            run()
        text = str(info.value)
        assert "\n" not in text and len(text) < 600, text
        messages.append(text)
        assert tree_digest(box) == before
    return messages


def test_there_are_fifty_hostile_journals():
    assert len(CASES) >= 50


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_journal_is_refused(template, tmp_path, name):
    box = _box(template, tmp_path)
    _forge(box, CASES[name])
    if name == "journal-folder-symlink":
        # the journal vmtailor wrote is not at its place: nothing to revert, nothing written
        before = tree_digest(box)
        with pytest.raises(JournalError, match="nothing to revert"):
            engine.revert(LocalRoot(str(box / "guest")))
        with pytest.raises(JournalError, match="symbolic link"):
            engine.apply(config.parse({"hostname": "x"}), LocalRoot(str(box / "guest")))
        assert tree_digest(box) == before
        return
    _assert_refused(box)


def test_a_journal_edited_by_hand_is_reported_as_such(template, tmp_path):
    box = _box(template, tmp_path)
    _forge(box, _set("/etc/hostname", "mode", 0o600), redigest=False)
    messages = _assert_refused(box)
    assert all("modified outside vmtailor" in m for m in messages)


def test_unforged_template_reverts_to_the_original(template, tmp_path):
    """The control: the same box, not forged, reverts cleanly to the pristine guest."""
    box = _box(template, tmp_path)
    pristine = tree_digest(_guest(tmp_path / "pristine"))
    engine.revert(LocalRoot(str(box / "guest")))
    assert tree_digest(box / "guest") == pristine


def test_a_consistent_forgery_of_one_file_stays_inside_the_guest(template, tmp_path):
    """A consistent forgery (backup, sha and digest all right) of one plain file is what
    a revert may do; it still never goes above the root or into another entry."""
    box = _box(template, tmp_path)
    _forge(box, _forge_file("/etc/newfile", b"x\n", mode=0o644))
    outside = tree_digest(box / "sentinel")
    engine.revert(LocalRoot(str(box / "guest")))
    assert (box / "guest/etc/newfile").read_bytes() == b"x\n"
    assert tree_digest(box / "sentinel") == outside


def _mutations(data: dict, rng: random.Random) -> dict:
    pool = [None, -1, 2**70, 1.5, True, "", "/", "..", "/etc", [], {}, "x" * 5000, "a\0b",
            "/var/lib/vmtailor/originals/00000", 0o4755]  # fmt: skip
    data = json.loads(json.dumps(data))
    for _ in range(rng.randint(1, 3)):
        entries = data.get("entries")
        entries = entries if isinstance(entries, list) else []
        target = rng.choice([data, *[e for e in entries if isinstance(e, dict) and e]])
        key = rng.choice(sorted(target))
        action = rng.random()
        if action < 0.6:
            target[key] = rng.choice(pool)
        elif action < 0.8:
            del target[key]
        else:
            target[rng.choice(["extra", "kind", "path", "mode"])] = rng.choice(pool)
    data["digest"] = digest(data)
    return data


def test_random_mutations_never_end_in_an_internal_error(template, tmp_path):
    rng = random.Random(1717)
    original = json.loads((template / "guest" / JOURNAL).read_text())
    refused = 0
    for i in range(120):
        box = tmp_path / f"m{i}"
        shutil.copytree(template, box, symlinks=True)
        (box / "guest" / JOURNAL).write_text(json.dumps(_mutations(original, rng)))
        before = tree_digest(box)
        outside = tree_digest(box / "sentinel")
        try:
            engine.revert(LocalRoot(str(box / "guest")))
        except JournalError as exc:
            assert "\n" not in str(exc)
            assert tree_digest(box) == before, f"mutation {i} changed the guest: {exc}"
            refused += 1
        assert tree_digest(box / "sentinel") == outside
        shutil.rmtree(box)
    assert refused > 100  # nearly every mutation breaks a rule


def test_random_byte_flips_are_refused(template, tmp_path):
    rng = random.Random(4242)
    raw = (template / "guest" / JOURNAL).read_bytes()
    for i in range(60):
        box = tmp_path / f"f{i}"
        shutil.copytree(template, box, symlinks=True)
        flipped = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(flipped))
            flipped[at] = rng.randrange(256)
        if bytes(flipped) == raw:
            continue
        (box / "guest" / JOURNAL).write_bytes(bytes(flipped))
        _assert_refused(box, apply_too=False)
        shutil.rmtree(box)
