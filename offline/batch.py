"""`vmtailor batch`: many clones customized offline, N appliances at a time.

Stages: the inventory is loaded and every clone's config rendered and validated (before
any image is touched) → images: missing clones created as overlays of the master, every
image checked (exists, is an image, is writable, is not held by a running VM, is not
damaged) — a clone that fails here is reported and never opened → the remaining clones
are dealt round-robin to `jobs` workers, each a process with its own libguestfs handle
(a handle is not shared across processes) running appliance after appliance → outcomes,
in inventory order."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import images
from .appliance import Drive
from .inventory import Clone, Inventory
from .worker import Job, Options, Outcome, run_jobs

log = logging.getLogger("vmtailor.offline")

# Progress events for the caller: ("launch", clones, seconds), ("done", Outcome)
Progress = Callable[[tuple], None]


@dataclass
class BatchResult:
    outcomes: list[Outcome]
    seconds: float
    launches: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(o.status == "failed" for o in self.outcomes)

    def to_dict(self) -> dict:
        return {
            "failed": self.failed,
            "seconds": round(self.seconds, 2),
            "appliances": self.launches,
            "clones": [o.to_dict() for o in self.outcomes],
        }


class _Master:
    """The master image, looked at once and only when a clone needs it."""

    def __init__(self, path: str | None):
        self.path = path
        self._image: images.Image | None = None

    def image(self) -> images.Image:
        if self.path is None:
            raise images.ImageError("no such image, and the inventory names no master")
        if self._image is None:
            self._image = images.info(self.path)
        return self._image


def _drives(clone: Clone, master: _Master, dry_run: bool) -> tuple[tuple[Drive, ...], bool]:
    """The clone's drives, its image created from the master first when it is missing
    (in a dry run the master itself is read instead). Raises ImageError."""
    missing = [p for p in clone.images if not os.path.exists(p)]
    if missing and (len(clone.images) > 1 or master.path is None):
        raise images.ImageError(f"{missing[0]}: no such image")
    if missing and dry_run:
        base = master.image()
        return (Drive(base.path, base.format),), False
    created = False
    if missing:
        images.create_overlay(master.image(), clone.images[0])
        created = True
    drives = []
    for path in clone.images:
        image = images.info(path, "qcow2" if created else clone.format)
        if not dry_run:
            images.check_writable(image)
        images.check_consistent(image)
        drives.append(Drive(image.path, image.format))
    return tuple(drives), created


def prepare(inventory: Inventory, opts: Options) -> tuple[list[Job], list[Outcome]]:
    """Jobs for the clones whose images are fit, and outcomes for those that are not."""
    master = _Master(inventory.master)
    sources = inventory.sources()
    jobs, refused = [], []
    for clone in inventory.clones:
        try:
            drives, created = _drives(clone, master, opts.dry_run)
        except images.ImageError as exc:
            refused.append(Outcome(clone.name, "failed", reason=str(exc)))
            continue
        jobs.append(Job(clone, drives, sources, created))
    return jobs, refused


def _deal(jobs: list[Job], workers: int) -> list[list[Job]]:
    """Round-robin, so that every worker gets as many clones and finishes about together."""
    hands: list[list[Job]] = [[] for _ in range(workers)]
    for i, job in enumerate(jobs):
        hands[i % workers].append(job)
    return [h for h in hands if h]


def _in_processes(hands: list[list[Job]], opts: Options, progress: Progress) -> None:
    # fork, not spawn: the parent holds no guestfs handle yet and jobs carry configs and
    # source readers that need not be pickled; each child opens its own handle.
    ctx = multiprocessing.get_context("fork")
    events = ctx.Queue()
    procs = [
        ctx.Process(target=run_jobs, args=(hand, opts, events.put), daemon=True) for hand in hands
    ]
    for proc in procs:
        proc.start()
    reported: set[str] = set()
    try:
        while True:
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            if event[0] == "done":
                reported.add(event[1].clone)
            progress(event)
        for proc, hand in zip(procs, hands, strict=True):
            proc.join()
            for job in hand:  # a worker that crashed leaves its clones unreported
                if job.clone.name not in reported:
                    why = f"worker process ended (exit {proc.exitcode}) before this clone"
                    progress(("done", Outcome(job.clone.name, "failed", reason=why)))
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join()


def run_batch(
    inventory: Inventory, opts: Options, *, jobs: int = 1, progress: Progress | None = None
) -> BatchResult:
    started = time.monotonic()
    outcomes: dict[str, Outcome] = {}
    launches: list[dict] = []

    def record(event: tuple) -> None:
        if event[0] == "done":
            outcomes[event[1].clone] = event[1]
        elif event[0] == "launch":
            launches.append({"clones": event[1], "launch_seconds": round(event[2], 1)})
        if progress:
            progress(event)

    work, refused = prepare(inventory, opts)
    for outcome in refused:
        record(("done", outcome))
    hands = _deal(work, max(1, jobs))
    if len(hands) == 1:
        run_jobs(hands[0], opts, record)  # in this process: no fork for one appliance
    elif hands:
        _in_processes(hands, opts, record)
    ordered = [outcomes[c.name] for c in inventory.clones if c.name in outcomes]
    return BatchResult(ordered, time.monotonic() - started, launches)
