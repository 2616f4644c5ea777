"""One worker's share of a batch: its clones put into as few appliances as the drive
limit allows, each clone opened, checked against its journal, customized and closed in
turn. A clone's failure is its own Outcome; only an appliance that will not start (or
dies) touches its neighbours — and then they are retried in a fresh one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..customizer import engine, lock
from ..customizer.errors import VmtailorError
from ..customizer.journal import Journal
from . import images
from .appliance import DRIVE_MARGIN, Appliance, ApplianceError, Drive, GuestSpec
from .inventory import Clone

log = logging.getLogger("vmtailor.offline")

# guestfs handles take 255 drives (max_disks()); a batch does not ask the handle first
MAX_DRIVES = 255 - DRIVE_MARGIN
# a launch that fails is retried once, after the clones' images are checked again (a VM
# started meanwhile holds one of them); an appliance that dies mid-batch is relaunched
LAUNCH_ATTEMPTS = 2


@dataclass
class Outcome:
    clone: str
    status: str  # ok | skipped | failed
    changes: int = 0
    seconds: float = 0.0
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    created: bool = False  # its image was made from the master in this run
    diff: str = ""

    def __post_init__(self) -> None:
        self.reason = " ".join(self.reason.split())  # one line, for the table

    def to_dict(self) -> dict:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 2)
        return data


@dataclass
class Job:
    clone: Clone
    drives: tuple[Drive, ...]
    sources: Callable[[str], bytes]
    created: bool = False

    @property
    def spec(self) -> GuestSpec:
        return GuestSpec(self.clone.name, self.drives)


@dataclass(frozen=True)
class Options:
    force: bool = False
    dry_run: bool = False
    diff: bool = False
    fold_diff: bool = False  # skel copies and first-boot helpers one line each


# Events a worker reports: ("launch", clones in it, seconds it took) or ("done", Outcome)
Report = Callable[[tuple], None]


def customize(app: Appliance, job: Job, opts: Options) -> Outcome:
    """One clone in a running appliance. Never raises: whatever goes wrong is its reason."""
    name = job.clone.name
    started = time.monotonic()
    out = Outcome(name, "failed", created=job.created)
    try:
        # one writer per guest: another vmtailor run on one of its images fails this clone
        paths = [drive.path for drive in job.drives]
        with lock.hold(paths, name, shared=opts.dry_run), app.open(name) as guest:
            out.warnings = list(guest.warnings)
            done = Journal(guest.root).applied_digest()
            if done == job.clone.digest and not opts.force:
                out.status, out.reason = "skipped", "already applied (same config)"
            else:
                result = engine.apply(job.clone.config, guest.root, dry_run=opts.dry_run,
                                      diff=opts.diff, fold_diff=opts.fold_diff,
                                      sources=job.sources)  # fmt: skip
                out.status, out.changes = "ok", len(result.changes)
                out.warnings += result.warnings
                out.diff = result.diff
                if opts.dry_run:
                    out.reason = "dry run: nothing written"
    except VmtailorError as exc:
        out.reason = " ".join(str(exc).split())
    except Exception as exc:  # one clone's bug must not stop the others
        log.exception("%s: internal error", name)
        out.reason = f"internal error: {exc!r}"
    out.seconds = time.monotonic() - started
    return out


def _recheck(jobs: list[Job], report: Report, opts: Options) -> list[Job]:
    """The jobs whose images still pass the checks; the others are reported failed."""
    keep = []
    for job in jobs:
        try:
            for drive in job.drives:
                image = images.info(drive.path, drive.format)
                if not opts.dry_run:
                    images.check_writable(image)
            keep.append(job)
        except images.ImageError as exc:
            report(("done", Outcome(job.clone.name, "failed", reason=str(exc))))
    return keep


def _run_appliance(pending: list[Job], opts: Options, report: Report) -> None:
    """Customize `pending` in one appliance, removing each job as it is reported. Raises
    ApplianceError when the appliance won't start or dies, the rest left in `pending`."""
    started = time.monotonic()
    app = Appliance([job.spec for job in pending], readonly=opts.dry_run)
    app.launch()
    report(("launch", len(pending), time.monotonic() - started))
    try:
        while pending:
            outcome = customize(app, pending.pop(0), opts)
            if outcome.status == "failed" and not app.alive():
                # not retried: whatever it holds may be what brought the appliance down
                outcome.reason += " (the appliance died)"
                report(("done", outcome))
                raise ApplianceError(f"the appliance died while customizing {outcome.clone}")
            report(("done", outcome))
    finally:
        try:
            app.close()
        except ApplianceError as exc:
            # each clone was flushed to its image before it was reported: log, don't fail them
            log.warning("%s", exc)


def _chunks(jobs: list[Job]) -> list[list[Job]]:
    chunks: list[list[Job]] = [[]]
    for job in jobs:
        if chunks[-1] and sum(len(j.drives) for j in chunks[-1]) + len(job.drives) > MAX_DRIVES:
            chunks.append([])
        chunks[-1].append(job)
    return [c for c in chunks if c]


def run_jobs(jobs: list[Job], opts: Options, report: Report) -> None:
    """Every job, in appliances of at most MAX_DRIVES drives, one after another."""
    for pending in _chunks(jobs):
        for attempt in range(1, LAUNCH_ATTEMPTS + 1):
            try:
                _run_appliance(pending, opts, report)
                break
            except ApplianceError as exc:
                if attempt == LAUNCH_ATTEMPTS:
                    for job in pending:
                        report(("done", Outcome(job.clone.name, "failed", reason=str(exc))))
                    break
                log.warning("%s; checking the images and trying again", exc)
                pending[:] = _recheck(pending, report, opts)
            if not pending:
                break
