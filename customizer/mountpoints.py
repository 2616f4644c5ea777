"""Mount points vmtailor makes, and takes away again.

A guest's fstab may mount a filesystem where its root has no folder: a btrfs /home
subvolume whose root subvolume has no /home (the guest's systemd makes it at boot). To
customize the guest as it runs, vmtailor mounts it there too — users' homes then land in
the /home subvolume — so it makes the folder. That is a change to the guest like any other
and goes through the journal, which is not open yet when the mounts are made (/var may be
one of them). So:

1. Before the mkdir, MARKER (on the root filesystem: mounted first, unmounted last) names
   the folders about to be made, with the times of the folder each is made in, and of /,
   where the marker is (a revert puts them back).
2. An apply's journal takes them over when it begins (journal_dirs-style: the marker is
   folded into journal.json, then removed). From then on they are the journal's.
3. A revert removes those no longer mounted on; the others cannot be removed while a
   filesystem is mounted on them, so it names them in MARKER again, before journal.json
   goes.
4. Whoever mounted the guest (the appliance, the initrd), after unmounting each filesystem
   and before unmounting the one beneath it, removes the folders MARKER names there that
   are empty and no longer mount points; last, the marker, and puts the times back.

A mount point no journal took (an apply with nothing to change, a failed or killed run)
stays in MARKER and step 4 of that run, or of the next, removes it: a folder vmtailor made
outlives its run only when the journal says so. Step 4 removes only empty folders on the
way to one of the guest's own mount points: a forged marker can make it do no more.
`inspect` and dry runs mount read-only and make nothing (their mounts are left out).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field

from .journal_schema import JournalError, dir_times, mount_points
from .root import Root, RootError

MARKER = "/.vmtailor-mount-points.json"
MAX_MARKER = 64 << 10


@dataclass
class Made:
    """What MARKER says: the folders vmtailor made to mount on, in the order it made them,
    and the times of the folders they were made in (and of /)."""

    paths: list[str] = field(default_factory=list)
    times: dict[str, list[int]] = field(default_factory=dict)


def read(root: Root) -> Made | None:
    """MARKER's content, checked like the journal (it is in the guest), or None."""
    try:
        st = root.lstat(MARKER)
        if st is None:
            return None
        if st.kind != "file" or st.size > MAX_MARKER:
            raise ValueError("not a small file")
        data = json.loads(root.read_bytes(MARKER))
        if not isinstance(data, dict) or set(data) != {"made", "times"}:
            raise ValueError("not an object of made and times")
        paths = mount_points(data["made"], "made")
        times = dir_times(data["times"], "times", 2 * len(paths) + 1)
    except (ValueError, RecursionError, JournalError, RootError) as exc:
        raise JournalError(f"{MARKER} in the guest is not vmtailor's: {_reason(exc)}") from None
    return Made(paths, {k: list(v) for k, v in times.items()})


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if isinstance(exc, JournalError) and ": " in text else text


def write(root: Root, made: Made) -> None:
    text = json.dumps({"made": made.paths, "times": made.times}, sort_keys=True)
    root.write_bytes(MARKER, text.encode(), 0o600, 0, 0)


def make(root: Root, path: str) -> None:
    """Make the folder `path` (resolved, missing) and every missing one above it, named in
    MARKER first, with the times of the folder the first is made in and of /."""
    chain = []
    cur = path
    while root.lstat(cur) is None:
        chain.append(cur)
        cur = posixpath.dirname(cur)
    chain.reverse()
    made = read(root) or Made()
    for folder in (cur, "/"):
        times = (
            root.times(folder) if folder not in made.times and folder not in made.paths else None
        )
        if times is not None:
            made.times[folder] = list(times)
    made.paths += [p for p in chain if p not in made.paths]
    write(root, made)
    for folder in chain:
        root.mkdir(folder, 0o755, 0, 0)


def remove_unmounted(root: Root, targets: list[str]) -> None:
    """Step 4, after each unmount: remove the folders MARKER names that are empty, not
    mount points (any more), and on the way to one of the guest's mount points (`targets`,
    resolved). Deepest first; a folder on a filesystem unmounted already is not there."""
    made = read(root)
    if made is None:
        return
    for path in reversed(made.paths):
        if not any(t == path or t.startswith(path + "/") for t in targets):
            continue
        if root.resolve_parent(path) != path or root.is_mount_point(path):
            continue
        st = root.lstat(path)
        if st is not None and st.kind == "dir" and not root.listdir(path):
            root.remove(path)


def finish(root: Root) -> None:
    """Last of step 4, every filesystem but / unmounted: the marker goes, and the folders
    the mount points were made in get their times back (/ last: the marker was there)."""
    made = read(root)
    if made is None:
        return
    for folder in sorted(made.times, key=len, reverse=True):
        if folder != "/" and root.resolve_parent(folder) == folder and root.is_dir(folder):
            root.set_times(folder, *made.times[folder])
    root.remove(MARKER)
    if "/" in made.times:
        root.set_times("/", *made.times["/"])
