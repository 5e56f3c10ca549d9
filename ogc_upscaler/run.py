"""Running a campaign: plan, check, run every job on its backend, collect, write the catalog.

:func:`run_campaign` runs in the foreground; :class:`BackgroundRun` in a
thread, for notebooks, with a :meth:`~BackgroundRun.stop` that really stops.
Stopping leaves a store that the next run resumes: running jobs go on and are
re-attached.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ogc_upscaler.backends.base import Backend
from ogc_upscaler.backends.cwltool import CwltoolBackend
from ogc_upscaler.backends.ogcapi import OgcApiBackend
from ogc_upscaler.backends.pool import Pool
from ogc_upscaler.backends.toil import ToilBackend
from ogc_upscaler.campaign import Backend as BackendSettings
from ogc_upscaler.campaign import Campaign
from ogc_upscaler.collect import write_collection
from ogc_upscaler.cwl import Package, check_values, load_package
from ogc_upscaler.errors import InvalidConfig, InvalidPackage
from ogc_upscaler.manager import Manager, Progress
from ogc_upscaler.plan import PlanReport, is_planned, plan
from ogc_upscaler.store import JobStore, State


@dataclass(frozen=True)
class RunResult:
    """What a run did: the plan it made (None when the store already held it), the final counts,
    where the catalog and the log are."""

    plan: PlanReport | None
    progress: Progress
    catalog: Path
    log: Path
    stopped: bool


def package_of(campaign: Campaign) -> Package:
    """The campaign's application package, loaded and checked."""
    if not campaign.process.application:
        raise InvalidConfig(
            "process.application is missing: nothing to run",
            hint="set process.application to a CWL application package (PATH.cwl[#workflow])",
        )
    return load_package(campaign.process.application)


def make_backend(campaign: Campaign) -> Backend:
    """The backend the config names; several endpoints become one :class:`Pool`."""
    if len(campaign.backends) > 1:
        return Pool([_endpoint(b, campaign.workdir / "jobs" / str(b.name)) for b in campaign.backends])
    settings = campaign.backend
    if settings.type == "ogcapi":
        return _endpoint(settings, campaign.workdir / "jobs")
    if settings.type == "toil":
        assert settings.toil is not None
        return ToilBackend(package_of(campaign), settings.toil, settings.parallel)
    return CwltoolBackend(package_of(campaign), campaign.workdir / "jobs", settings.parallel, settings.container)


def _endpoint(settings: BackendSettings, workdir: Path) -> OgcApiBackend:
    assert settings.url and settings.process
    return OgcApiBackend(
        settings.url,
        settings.process,
        workdir,
        slots=settings.parallel,
        requests_per_second=settings.requests_per_second,
        timeout=settings.timeout,
        auth=settings.auth,
        name=settings.name or "ogcapi",
        inputs=settings.inputs,
    )


def preflight(store: JobStore, backend: Backend) -> None:
    """Check every job still to run against the package or the process description, before anything runs."""
    members = list(backend.members.values()) if isinstance(backend, Pool) else [backend]
    if all(isinstance(m, OgcApiBackend) for m in members):
        described = [(m, m.describe()) for m in members]  # type: ignore[attr-defined]

        def check(job_id: str, values: dict) -> None:
            for member, description in described:
                member.check_inputs(description, values, job_id)
    else:
        package = backend.package  # type: ignore[attr-defined]

        def check(job_id: str, values: dict) -> None:
            try:
                check_values(package, values)
            except InvalidPackage as err:
                raise InvalidPackage(f"job {job_id}: {err.message}", hint=err.hint) from None

    for state in (State.PLANNED, State.WAITING):
        for row in store.rows(("job_id", "inputs"), state=state):
            check(row["job_id"], json.loads(row["inputs"]))


def run_campaign(
    campaign: Campaign,
    *,
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunResult:
    """Plan (unless the store holds this very plan), check, run and collect; resume whatever a stop left."""
    stop = stop or threading.Event()
    backend = make_backend(campaign)
    with JobStore.open(campaign.store) as store:
        report = None if is_planned(campaign, store) else plan(campaign, store)
        preflight(store, backend)
        log_path, handler = _log_file(campaign.workdir)
        try:
            manager = Manager(store, backend, campaign.output, campaign.name, campaign.retries, on_progress=on_progress)
            progress = manager.run(stop)
        finally:
            logging.getLogger("ogc_upscaler").removeHandler(handler)
            handler.close()
            backend.close()
        catalog = write_collection(store, campaign.output, campaign.name)
    return RunResult(report, progress, catalog, log_path, stop.is_set())


def rebuild_catalog(campaign: Campaign) -> Path:
    """Write the campaign's STAC Collection again from the store (read-only)."""
    with JobStore.read(campaign.store) as store:
        return write_collection(store, campaign.output, campaign.name)


class BackgroundRun:
    """A campaign running in a thread: ``progress`` while it runs, ``stop()`` to end it, ``result`` after."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
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
            self.result = run_campaign(self.campaign, stop=self._stop, on_progress=self._seen)
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
