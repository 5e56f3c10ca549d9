"""Running a campaign: plan, check, run every job on its backend, collect, write the catalog.

:func:`run_campaign` runs in the foreground; :class:`BackgroundRun` in a
thread, for notebooks, with a :meth:`~BackgroundRun.stop` that really stops.
Stopping leaves a store that the next run resumes: running jobs go on and are
re-attached.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ogc_upscaler.attributes import with_attributes
from ogc_upscaler.backends.base import Backend, BuildContext
from ogc_upscaler.backends.pool import Pool
from ogc_upscaler.campaign import Campaign
from ogc_upscaler.collect import collect, write_collection
from ogc_upscaler.cwl import Package, load_package
from ogc_upscaler.delivery import Delivering, Delivery
from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.estimate import SampleEstimate, sample_estimate
from ogc_upscaler.grid import TileSet
from ogc_upscaler.hooks import JobHooks
from ogc_upscaler.manager import Manager, Phase, Progress
from ogc_upscaler.plan import PlanReport, campaign_parts, is_planned, plan
from ogc_upscaler.sample import spread
from ogc_upscaler.store import Job, JobSpec, JobStore, State

#: Exit codes of ``ogc-upscaler run`` (documented in the README; a Kubernetes Job's pod failure policy uses them).
EXIT_DONE = 0
EXIT_FAILURES = 3  # it finished, but some jobs failed, are in doubt or were cancelled: `retry` or look at them
EXIT_STOPPED = 75  # stopped by a signal (EX_TEMPFAIL): run again to resume


@dataclass(frozen=True)
class RunResult:
    """What a run did: the plan it made (None when the store already held it), the final counts,
    where the catalog and the log are."""

    plan: PlanReport | None
    progress: Progress
    catalog: Path
    log: Path
    stopped: bool

    @property
    def exit_code(self) -> int:
        """0 when every job ended collected or with no inputs; :data:`EXIT_STOPPED` when stopped (resumable);
        :data:`EXIT_FAILURES` when it finished with jobs failed, in doubt, cancelled or left unfinished."""
        if self.stopped:
            return EXIT_STOPPED
        return EXIT_DONE if self.progress.complete else EXIT_FAILURES


def package_of(campaign: Campaign) -> Package:
    """The campaign's application package, loaded and checked."""
    if not campaign.process.application:
        raise InvalidConfig(
            "process.application is missing: nothing to run",
            hint="set process.application to a CWL application package (PATH.cwl[#workflow])",
        )
    return load_package(campaign.process.application)


def make_backend(campaign: Campaign) -> Backend:
    """The backend the config names, built by its own settings; several become one :class:`Pool`."""
    package = functools.cache(lambda: package_of(campaign))
    jobs = campaign.workdir / "jobs"
    s3 = campaign.inputs.s3 if campaign.inputs is not None else None
    if len(campaign.backends) == 1:
        return campaign.backend.build(BuildContext(jobs, package, s3))
    return Pool([b.build(BuildContext(jobs / b.label, package, s3)) for b in campaign.backends])


def spec_check(backend: Backend) -> Callable[[JobSpec], None]:
    """The backend's check of a planned job's inputs (it refuses, before anything runs, what cannot run)."""
    return lambda spec: backend.check(spec.job_id, json.loads(spec.inputs))


def preflight(store: JobStore, backend: Backend) -> None:
    """Check every job still to run against the package or the process description, before anything runs."""
    for job in store.jobs(State.PLANNED, State.WAITING):
        backend.check(job.job_id, dict(job.inputs))


def run_campaign(
    campaign: Campaign,
    *,
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_job_done: Callable[[Job], None] | None = None,
    on_job_error: Callable[[Job], None] | None = None,
    backend: Backend | None = None,
) -> RunResult:
    """Plan (unless the store holds this very plan), check, run and collect; resume whatever a stop left.

    Every job is checked against the backend before anything is written or run, so a refused
    run leaves the store as it was and a corrected config plans without conflict. ``on_job_done``
    and ``on_job_error`` are called once per job as it is collected or fails (see :mod:`ogc_upscaler.hooks`).
    ``backend`` runs the jobs instead of the config's (an :class:`~ogc_upscaler.backends.inprocess.
    InProcessBackend` calling a Python function per job); the run closes it.
    """
    stop = stop or threading.Event()
    backend = backend or make_backend(campaign)
    with JobStore.open(campaign.store) as store:
        report = None
        try:
            if is_planned(campaign, store):
                preflight(store, backend)
            else:
                report = plan(campaign, store, parts=_reported(campaign, on_progress), check=spec_check(backend))
        except BaseException:
            backend.close()
            raise
        hooks = JobHooks(on_job_done, on_job_error)
        log_path, progress = _manage(campaign, store, backend, stop, on_progress, hooks)
        catalog = write_catalog(campaign, store, items=False)
    return RunResult(report, progress, catalog, log_path, stop.is_set())


def run_sample(
    campaign: Campaign,
    n: int,
    *,
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> SampleRun:
    """Run ``n`` tiles spread over the AOI (each in every window and parameter set) in the campaign's own
    store, and estimate the whole campaign from them; their jobs count as done for the real run, which
    plans the rest. A store that holds other jobs still to run is refused: a sample comes first."""
    stop = stop or threading.Event()
    sample = spread(campaign.grid, campaign.aoi, n)
    tiles = with_attributes(sample.tiles, campaign.aoi)
    chosen = set(tiles.ids.tolist())
    backend = make_backend(campaign)
    with JobStore.open(campaign.store) as store:
        unfinished = (State.PLANNED, State.WAITING, State.SUBMITTED, State.RUNNING, State.SUCCEEDED)
        other = next((j for j in store.jobs(*unfinished) if j.tile_id not in chosen), None)
        if other is not None:
            backend.close()
            raise InvalidConfig(
                f"store {campaign.store}: holds jobs still to run beyond the sample (e.g. {other.job_id})",
                hint="run a sample before the campaign is planned (or give a new store), or `run` the campaign",
            )
        try:
            report = plan(campaign, store, parts=[tiles], check=spec_check(backend), partial=True)
        except BaseException:
            backend.close()
            raise
        log_path, progress = _manage(campaign, store, backend, stop, on_progress)
        catalog = write_catalog(campaign, store, items=False)
        jobs = sample.total * len(campaign.windows) * max(1, len(campaign.parameter_sets))
        found = sample_estimate(store, chosen, jobs, campaign.parallel, campaign.output)
    return SampleRun(RunResult(report, progress, catalog, log_path, stop.is_set()), found)


@dataclass(frozen=True)
class SampleRun:
    """What ``run --sample`` did, and what it predicts for the whole campaign."""

    result: RunResult
    estimate: SampleEstimate


def _manage(
    campaign: Campaign,
    store: JobStore,
    backend: Backend,
    stop: threading.Event,
    on_progress: Callable[[Progress], None] | None,
    hooks: JobHooks | None = None,
) -> tuple[Path, Progress]:
    """Run the store's jobs to their end (or a stop) with the run's log file; closes the backend."""
    log_path, handler = _log_file(campaign.workdir)
    delivery = Delivery.of(campaign)
    try:
        manager = Manager(
            store,
            backend,
            campaign.output,
            campaign.name,
            campaign.retries,
            on_progress=on_progress,
            traces=campaign.workdir / "logs" / "traces",
            hooks=hooks,
            collector=Delivering(delivery) if delivery else collect,
        )
        delivery.start(campaign)
        return log_path, manager.run(stop)
    finally:
        delivery.close()
        logging.getLogger("ogc_upscaler").removeHandler(handler)
        handler.close()
        backend.close()


def _reported(campaign: Campaign, on_progress: Callable[[Progress], None] | None) -> Iterator[TileSet]:
    """The campaign's parts as they are planned, each reported as jobs planned so far (phase ``planning``)."""
    progress = Progress(Counter(), phase=Phase.PLANNING)
    per_tile = len(campaign.windows) * max(1, len(campaign.parameter_sets))
    for part in campaign_parts(campaign):
        yield part
        progress.counts["planned"] += len(part) * per_tile
        if on_progress is not None:
            on_progress(progress)


def rebuild_catalog(campaign: Campaign, *, publish: bool = False) -> Path:
    """Write the campaign's STAC Collection again from the store (read-only), and upload it with every item
    to the campaign's bucket (skipping the objects it holds already); with ``publish``, publish them all to
    its STAC API again too."""
    with JobStore.read(campaign.store) as store:
        return write_catalog(campaign, store, items=True, publish=publish)


def write_catalog(campaign: Campaign, store: JobStore, *, items: bool, publish: bool = True) -> Path:
    """Write the STAC Collection from the store and deliver it (with ``items``, every item too: collecting
    delivered each as it came); ``publish`` to the STAC API as well as to the bucket."""
    catalog = write_collection(store, campaign.output, campaign.name)
    delivery = Delivery.of(campaign)
    try:
        if delivery:
            delivery.collection(campaign.output, items=items, publish=publish)
    finally:
        delivery.close()
    return catalog


class BackgroundRun:
    """A campaign running in a thread: ``progress`` while it runs, ``stop()`` to end it, ``result`` after;
    ``on_job_done`` and ``on_job_error`` are called (in that thread) once per job as it ends."""

    def __init__(
        self,
        campaign: Campaign,
        on_job_done: Callable[[Job], None] | None = None,
        on_job_error: Callable[[Job], None] | None = None,
    ) -> None:
        self.campaign = campaign
        self._hooks = JobHooks(on_job_done, on_job_error)
        self.progress: Progress | None = None
        self.result: RunResult | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"ogc-upscaler {campaign.name}", daemon=True)

    def start(self) -> BackgroundRun:
        """Start the run; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 60.0) -> RunResult | None:
        """Stop submitting, record the state, and wait for the thread to end."""
        self._stop.set()
        self._thread.join(timeout)
        return self.result

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """Wait for the run to end by itself; re-raise its error, if it had one."""
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def running(self) -> bool:
        """Whether the thread still runs."""
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            self.result = run_campaign(
                self.campaign,
                stop=self._stop,
                on_progress=self._seen,
                on_job_done=self._hooks.on_job_done,
                on_job_error=self._hooks.on_job_error,
            )
        except BaseException as err:
            self.error = err

    def _seen(self, progress: Progress) -> None:
        self.progress = progress


def _log_file(workdir: Path) -> tuple[Path, logging.Handler]:
    folder = workdir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("ogc_upscaler")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return path, handler
