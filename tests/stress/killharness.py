"""Real-kill harness: SIGKILL `vmtailor apply` and `vmtailor revert` at random moments and
check what the journal promises (ARCHITECTURE.md, "Journal"):

- apply killed anywhere, then re-run: the guest is what one uninterrupted apply makes
  (and a revert of that still gives the pristine guest back);
- apply killed anywhere, then revert: the pristine guest, byte for byte (content, mode,
  owner, SELinux label, link targets), with no /var/lib/vmtailor left behind;
- revert killed anywhere, then revert again: the pristine guest.

"The pristine guest" includes every path's mtime (revert puts times back; the atimes it
puts back too, but this harness reads every file to compare it, which moves them).

Unlike tests/unit/test_journal.py, which cuts a run at each journal step from inside, this
runs the real command line as a child process and kills it with SIGKILL, so a cut also
lands inside a write (temp file made, not renamed yet), between a mkdir and its chmod, in
Python's start-up and while the process is exiting.

Every trial follows from one integer seed (guest, what is killed, when): a failure names
the seed, and VMTAILOR_KILL_SEED=<seed> runs that trial alone. Timing makes where a kill
lands vary a little from run to run; the delay is the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.conftest import tree_digest

CONFIG = Path(__file__).with_name("config.yaml")
# systemd + SELinux + NetworkManager (rocky), systemd + ifupdown (debian), upstart with
# rc.local + network-scripts (EL6), sysvinit (debian 7: host keys and machine-id remade by
# first-boot scripts), netplan (ubuntu), wicked without user-private groups (opensuse),
# OpenRC + busybox (alpine)
GUESTS = ("debian-12", "rocky-9", "centos-6", "debian-7", "ubuntu-22.04", "opensuse-leap-15.5",
          "alpine-3.20")  # fmt: skip
JOURNAL_DIR = "var/lib/vmtailor"
TEMP_MARK = ".vmtailor-"  # root.py's temp files: .NAME.vmtailor-PID.tmp
# a fixed day for shadow's "last changed" field, so every run writes the same bytes
ENV = {**os.environ, "LC_ALL": "C.UTF-8", "SOURCE_DATE_EPOCH": "1767225600"}

CHUNK = 10
# Each chunk of CHUNK trials has a fixed mix, by the seed's position in its chunk:
# - "anywhere": apply killed after a delay uniform over one uninterrupted apply's run time
#   (Python's start-up, planning, the journal, the exit all get their share);
# - "journal": apply killed while the journal is written, aimed by progress rather than
#   time (the machine is shared and a run's speed varies several times over): once the
#   journal holds `step` entries, plus a delay within one step's time, so kills land
#   inside writes as well as between them;
# - "revert": revert killed once it restored `step` paths, plus a delay within one step;
# - "revert-end": revert killed within 3 ms of its first change to the journal itself
#   (journal.json or originals/): a revert cut while removing it must still be re-runnable.
MIX = ("anywhere",) * 2 + ("journal",) * 5 + ("revert",) * 2 + ("revert-end",)
END_WINDOW = 0.003


@dataclass(frozen=True)
class Trial:
    seed: int
    guest: str
    aim: str  # "anywhere" | "journal" (kill apply) | "revert" | "revert-end" (kill revert)
    fraction: float  # where in the aimed span the kill lands, 0..1
    jitter: float  # "journal": where within one step's time, 0..1

    @classmethod
    def from_seed(cls, seed: int) -> Trial:
        rng = random.Random(seed)
        return cls(seed, rng.choice(GUESTS), MIX[seed % CHUNK], rng.random(), rng.random())

    def step(self, entries: int) -> int:
        """For "journal" and "revert": kill once the journal holds this many entries (0..entries)."""
        return min(int(self.fraction * (entries + 1)), entries)

    @property
    def command(self) -> str:
        return "revert" if self.aim.startswith("revert") else "apply"

    def describe(self, delay: float, mark: str) -> str:
        return (
            f"seed {self.seed} ({self.guest}: SIGKILL `vmtailor {self.command}` "
            f"{delay * 1000:.1f} ms after {mark}; rerun: VMTAILOR_KILL_SEED={self.seed})"
        )


def trial_seeds(kills: int, base: int = 0) -> list[list[int]]:
    """Seeds for `kills` trials in chunks of CHUNK (one pytest case each)."""
    seeds = [base + i for i in range(kills)]
    return [seeds[i : i + CHUNK] for i in range(0, len(seeds), CHUNK)]


# -- running and copying -------------------------------------------------------------------
def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vmtailor", *args]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), capture_output=True, text=True, env=ENV)


def copy_tree(src: Path, dst: Path) -> None:
    """An exact copy: owners, modes, xattrs (SELinux labels) and symlinks as they are."""
    subprocess.run(["cp", "-a", "--", str(src), str(dst)], check=True)


# -- comparing -----------------------------------------------------------------------------
def leftovers(top: Path) -> list[str]:
    """vmtailor's temp files anywhere in the tree (they must never outlive a run)."""
    found = []
    for dirpath, _dirs, files in os.walk(top):
        found += [
            str(Path(dirpath, n).relative_to(top))
            for n in files
            if n.startswith(".") and TEMP_MARK in n and n.endswith(".tmp")
        ]
    return sorted(found)


def journal_digest(top: Path) -> dict | None:
    """The journal's meaning, without its timestamps and its last run's list of changes:
    its state, its config, and per path the saved original (backup file by content)."""
    path = top / JOURNAL_DIR / "journal.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    entries = {}
    for entry in data.get("entries", []):
        entry = dict(entry)
        # the times it saved are the copy's (the trees are copies); revert compares them
        entry.pop("atime_ns", None)
        entry.pop("mtime_ns", None)
        backup = entry.pop("backup", None)
        if backup is not None:
            f = top / backup.lstrip("/")
            st = f.lstat()
            entry["backup"] = (hashlib.sha256(f.read_bytes()).hexdigest(), st.st_mode, st.st_uid)
        entries[entry["path"]] = entry
    keep = ("format", "state", "config_digest", "journal_dirs")
    return {**{k: data.get(k) for k in keep}, "entries": entries}


def mtimes(top: Path) -> dict[str, int]:
    """Every path's mtime below `top` (lstat only: nothing is read)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            out[str(path.relative_to(top))] = path.lstat().st_mtime_ns
    return out


def mtime_differences(want: dict[str, int], got: dict[str, int], limit: int = 8) -> list[str]:
    out = [f"mtime of {rel}" for rel in sorted(want) if rel in got and got[rel] != want[rel]]
    if len(out) > limit:
        out = [*out[:limit], f"... and {len(out) - limit} more"]
    return out


def differences(want: dict[str, tuple], got: dict[str, tuple], limit: int = 8) -> list[str]:
    """What differs between two tree_digest() results, one short line per path."""
    out = []
    for rel in sorted(set(want) | set(got)):
        a, b = want.get(rel), got.get(rel)
        if a == b:
            continue
        if a is None:
            out.append(f"extra {rel} ({b[0]})")
        elif b is None:
            out.append(f"missing {rel} ({a[0]})")
        else:
            what = [n for n, x, y in zip(("kind", "content", "mode", "uid", "gid", "label"),
                                         a, b, strict=True) if x != y]  # fmt: skip
            if a[0] == b[0] == "link":
                what = ["target" if w == "content" else w for w in what]
            out.append(f"differs {rel} ({', '.join(what)})")
    if len(out) > limit:
        out = [*out[:limit], f"... and {len(out) - limit} more"]
    return out


# -- the reference: one guest, pristine and applied without interruption --------------------
@dataclass
class Reference:
    guest: str
    pristine: Path
    applied: Path
    pristine_digest: dict
    applied_digest: dict  # without /var/lib/vmtailor (compared by journal_digest)
    applied_journal: dict
    apply_total: float  # seconds, process start to exit
    apply_begin: float  # seconds, process start to journal.json appearing
    applied_entries: list[dict]  # the journal's entries after one apply
    revert_total: float
    revert_first: float  # seconds, process start to its first change to the guest


def watch_path(top: Path, journal: dict) -> Path:
    """The path a revert changes first: the last one the journal holds."""
    return top / journal["entries"][-1]["path"].lstrip("/")


def _signature(path: Path) -> tuple | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns)


def start_and_watch(argv: list[str], changed, timeout: float = 60.0):
    """Start argv; return (process, seconds until `changed()` first held or None)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    while proc.poll() is None:
        if changed():
            return proc, t0, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"{' '.join(argv)} ran for over {timeout} s")
        time.sleep(0.0005)
    return proc, t0, None


def build_reference(guest: str, work: Path, runs: int = 2) -> Reference:
    """Build the guest, then time `runs` uninterrupted applies and reverts of fresh copies
    (the faster of them: a kill aimed past the end of a run is a wasted trial, one aimed
    short of it just lands earlier)."""
    import fixture_roots

    pristine = work / f"{guest}-pristine"
    pristine.mkdir(parents=True)
    fixture_roots.build(guest, pristine)
    totals, begins, rtotals, rfirsts = [], [], [], []
    applied = work / f"{guest}-applied"
    for i in range(runs):
        tree = work / f"{guest}-measure-{i}"
        copy_tree(pristine, tree)
        journal = tree / JOURNAL_DIR / "journal.json"
        proc, t0, begin = start_and_watch(cli("apply", str(CONFIG), "--root", str(tree)),
                                          journal.exists)  # fmt: skip
        if proc.wait() != 0 or begin is None:
            raise AssertionError(f"{guest}: an uninterrupted apply failed or made no journal")
        totals.append(time.monotonic() - t0)
        begins.append(begin)
        if i == 0:
            copy_tree(tree, applied)
        watched = watch_path(tree, json.loads(journal.read_text()))
        proc, t0, first = start_and_watch(cli("revert", "--root", str(tree)),
                                          _changed(watched))  # fmt: skip
        if proc.wait() != 0 or first is None:
            raise AssertionError(f"{guest}: an uninterrupted revert failed")
        diff = differences(tree_digest(pristine), tree_digest(tree))
        if diff := diff + mtime_differences(mtimes(pristine), mtimes(tree)):
            raise AssertionError(f"{guest}: an uninterrupted revert left {'; '.join(diff)}")
        rtotals.append(time.monotonic() - t0)
        rfirsts.append(first)
        shutil.rmtree(tree)
    return Reference(
        guest,
        pristine,
        applied,
        tree_digest(pristine),
        tree_digest(applied, skip=(JOURNAL_DIR,)),
        journal_digest(applied),
        min(totals),
        min(begins),
        json.loads((applied / JOURNAL_DIR / "journal.json").read_text())["entries"],
        min(rtotals),
        min(rfirsts),
    )


def _changed(path: Path):
    """A test for `path` having changed since now."""
    before = _signature(path)
    return lambda: _signature(path) != before


def _any_changed(paths):
    tests = [_changed(p) for p in paths]
    return lambda: any(t() for t in tests)


# -- one trial -----------------------------------------------------------------------------
@dataclass
class Outcome:
    """What one trial did, and what it found wrong (`problems` empty: it passed)."""

    seed: int
    guest: str
    aim: str
    mark: str = "start"  # what the delay counts from
    delay: float = 0.0
    killed: bool = False  # False: the process had exited before the kill
    landed: str = ""  # where the kill left the guest (see _landed)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _landed(tree: Path) -> str:
    """Where a kill of apply left the guest: before the journal, in it, or after."""
    journal = tree / JOURNAL_DIR / "journal.json"
    if journal.exists():
        return "journal-" + str(json.loads(journal.read_text()).get("state"))
    return "journal-dir-only" if (tree / JOURNAL_DIR).exists() else "before-journal"


class JournalProgress:
    """Called: whether the journal being written holds `step` entries yet (it is re-read
    only when it was replaced since)."""

    def __init__(self, path: Path, step: int):
        self.path = path
        self.step = step
        self.seen: tuple | None = None
        self.count = -1

    def __call__(self) -> bool:
        return self.entries() >= self.step

    def entries(self) -> int:
        sig = _signature(self.path)
        if sig is not None and sig != self.seen:
            try:
                self.count = len(json.loads(self.path.read_text())["entries"])
                self.seen = sig
            except (OSError, ValueError):
                pass  # replaced while read: next time
        return self.count


def kill_at(argv: list[str], start, delay: float) -> tuple[bool, float]:
    """Run argv; once `start()` holds (or at once when start is None), wait `delay` and
    SIGKILL it. Returns (whether it was still running, seconds from start to the kill)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        if start is not None:
            while proc.poll() is None and not start():
                time.sleep(0.0005)
            t0 = time.monotonic()
        deadline = t0 + delay
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(min(0.001, max(0.0, deadline - time.monotonic())))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        status = proc.wait()
    return status == -signal.SIGKILL, time.monotonic() - t0


def run_trial(trial: Trial, ref: Reference, work: Path) -> Outcome:
    work.mkdir(parents=True)
    out = Outcome(trial.seed, trial.guest, trial.aim)
    if trial.command == "revert":
        _revert_trial(trial, ref, work, out)
    else:
        _apply_trial(trial, ref, work, out)
    return out


# A trial whose process ended before its kill is tried again with the delay halved, so
# every trial is a kill (the same seed makes the same attempts).
ATTEMPTS = 4


def _apply_trial(trial: Trial, ref: Reference, work: Path, out: Outcome) -> None:
    tree, copy = work / "rerun", work / "revert"
    for attempt in range(ATTEMPTS):
        if attempt:
            shutil.rmtree(tree)
        copy_tree(ref.pristine, tree)
        argv = cli("apply", str(CONFIG), "--root", str(tree))
        if trial.aim == "anywhere":
            out.delay = trial.fraction * ref.apply_total / 2**attempt
            out.killed, _ = kill_at(argv, None, out.delay)
        else:
            entries = len(ref.applied_entries)
            step = trial.step(entries)
            out.mark = f"the journal held {step} of {entries} entries"
            span = (ref.apply_total - ref.apply_begin) / entries
            out.delay = trial.jitter * span / 2**attempt
            reached = JournalProgress(tree / JOURNAL_DIR / "journal.json", step)
            out.killed, _ = kill_at(argv, reached, out.delay)
        if out.killed:
            break
    out.landed = _landed(tree)
    copy_tree(tree, copy)

    # (a) re-run to completion: what an uninterrupted apply makes
    result = run("apply", str(CONFIG), "--root", str(tree))
    if result.returncode != 0:
        out.problems.append(f"re-run apply: failed: {_last_line(result)}")
    else:
        _compare_applied(ref, tree, out)
        # ... and the journal the re-run completed still reverts to the pristine guest
        _revert_to_pristine(ref, tree, out, "revert after the re-run")
    # (b) revert the killed guest straight away: the pristine guest
    _revert_to_pristine(ref, copy, out, "revert of the killed apply")


def _revert_trial(trial: Trial, ref: Reference, work: Path, out: Outcome) -> None:
    tree = work / "revert"
    entries = ref.applied_entries
    # aimed by progress, like "journal" for apply: revert restores the entries last to
    # first, so once the step-th from last has changed, `step` are done (killing Python's
    # start-up is what the kills of apply aimed "anywhere" already try)
    step = trial.step(len(entries) - 1)
    out.mark = f"it restored {step + 1} of {len(entries)} paths"
    if trial.aim == "revert-end":
        out.mark = "it first changed the journal (journal.json or originals/)"
    for attempt in range(ATTEMPTS):
        if attempt:
            shutil.rmtree(tree)
        copy_tree(ref.applied, tree)
        if trial.aim == "revert-end":
            changed = _any_changed(tree / JOURNAL_DIR / n for n in ("journal.json", "originals"))
            out.delay = trial.jitter * END_WINDOW / 2**attempt
        else:
            changed = _changed(tree / entries[-1 - step]["path"].lstrip("/"))
            span = (ref.revert_total - ref.revert_first) / len(entries)
            out.delay = trial.jitter * span / 2**attempt
        out.killed, _ = kill_at(cli("revert", "--root", str(tree)), changed, out.delay)
        if out.killed:
            break
    out.landed = "revert-started" if changed() else "revert-not-started"
    if not (tree / JOURNAL_DIR / "journal.json").exists():
        out.landed = "revert-journal-gone"
    _revert_to_pristine(ref, tree, out, "revert after the killed revert")


def _revert_to_pristine(ref: Reference, tree: Path, out: Outcome, what: str) -> None:
    had_journal = (tree / JOURNAL_DIR / "journal.json").exists()
    result = run("revert", "--root", str(tree))
    # with no journal there is nothing to revert, and saying so is right when the guest
    # is pristine already (the tree comparison below decides)
    if result.returncode != 0 and (had_journal or "nothing to revert" not in result.stderr):
        out.problems.append(f"{what}: failed: {_last_line(result)}")
        return
    temps = leftovers(tree)
    if temps:
        out.problems.append(f"{what}: temp files left: {', '.join(temps[:4])}")
    diff = differences(ref.pristine_digest, tree_digest(tree))
    diff += mtime_differences(mtimes(ref.pristine), mtimes(tree))
    if diff:
        out.problems.append(f"{what}: not the pristine guest: {'; '.join(diff)}")


def _compare_applied(ref: Reference, tree: Path, out: Outcome) -> None:
    temps = leftovers(tree)
    if temps:
        out.problems.append(f"re-run apply: temp files left: {', '.join(temps[:4])}")
    diff = differences(ref.applied_digest, tree_digest(tree, skip=(JOURNAL_DIR,)))
    if diff:
        out.problems.append(f"re-run apply: not what one apply makes: {'; '.join(diff)}")
    got = journal_digest(tree)
    if got != ref.applied_journal:
        out.problems.append(
            f"re-run apply: journal differs: {_journal_diff(ref.applied_journal, got)}"
        )


def _journal_diff(want: dict, got: dict | None) -> str:
    if got is None:
        return "no journal.json"
    top = [k for k in want if k != "entries" and want[k] != got.get(k)]
    paths = sorted(
        p
        for p in set(want["entries"]) | set(got["entries"])
        if want["entries"].get(p) != got["entries"].get(p)
    )
    return "; ".join([*(f"{k}: {want[k]!r} vs {got.get(k)!r}" for k in top),
                      *(f"entry {p}" for p in paths[:6])])  # fmt: skip


def _last_line(result: subprocess.CompletedProcess) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"
