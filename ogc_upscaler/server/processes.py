"""pygeoapi processors: one per application package, and ``upscale`` for whole campaigns.

A processor here does three things pygeoapi's own do not separate:

- :meth:`JobProcessor.check` turns the request's inputs into checked values, or raises
  :class:`InvalidRequest` (400, nothing runs);
- :meth:`JobProcessor.work` runs the job in its folder, in a worker process
  (:mod:`ogc_upscaler.server.worker`), reporting progress and stopping when asked;
- :meth:`JobProcessor.dismiss` stops what a dismissed job left running (cwltool runs,
  a campaign's tile jobs): the hook pygeoapi lacks.

``execute`` is kept, so the processors also run under pygeoapi's own managers (synchronously).

Processor definitions (the ``processor:`` mapping of the pygeoapi config, written by
:mod:`ogc_upscaler.server.settings`) carry ``state`` (the server's folder), ``url`` (its
public URL), ``data_roots`` (local folders inputs may name), ``allow_internal_urls``
(whether URLs of loopback, private and link-local hosts may be read), ``container``,
``parallel``, and ``package`` (a package process) or ``packages`` and ``max_tiles``
(``upscale``).
"""

from __future__ import annotations

import functools
import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pystac
from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from ogc_upscaler.backends.base import FINISHED, JobRequest, RemoteState
from ogc_upscaler.backends.cwltool import CwltoolBackend
from ogc_upscaler.campaign import Campaign
from ogc_upscaler.config import ConfigFile, resolve
from ogc_upscaler.cwl import Package, check_names, check_values, load_package
from ogc_upscaler.errors import InvalidInput, InvalidPackage, InvalidRequest, UpscalerError
from ogc_upscaler.grid.named import NAMED_GRIDS, is_grid_name
from ogc_upscaler.s3_stac_io import stac_io_for
from ogc_upscaler.server.campaign_size import DEFAULT_MAX_TILES, check_campaign_size
from ogc_upscaler.server.describe import COG, package_description, upscale_description
from ogc_upscaler.server.inputs import ReadPolicy, check_assets, check_href, check_inputs, check_text

Report = Callable[[int, str], None]
POLL = 0.5


class Dismissed(Exception):
    """The job was dismissed while it ran."""


class ProcessFailed(UpscalerError):
    """The job ran and failed; the message says why (it becomes the job's status message)."""


class JobProcessor(BaseProcessor):
    """What both kinds of process share: settings from the definition, job folders, output links."""

    def __init__(self, processor_def: dict[str, Any], metadata: dict[str, Any]) -> None:
        super().__init__(processor_def, metadata)
        self.definition = processor_def
        self.state = Path(processor_def["state"])
        self.url = str(processor_def.get("url", "")).rstrip("/")
        self.data_roots = ReadPolicy.from_definition(processor_def)  # the roots; may internal hosts be read
        self.container = str(processor_def.get("container", "none"))
        self.job_id: str | None = None

    def set_job_id(self, job_id: str) -> None:
        self.job_id = job_id

    def check(self, data: Any) -> dict[str, Any]:
        """The request's inputs, checked; :class:`InvalidRequest` otherwise."""
        return check_inputs(self.metadata, data)

    def work(self, job_id: str, values: dict[str, Any], folder: Path, report: Report, stop: threading.Event) -> Any:
        """Run the job in ``folder``; return its results document."""
        raise NotImplementedError

    def dismiss(self, job_id: str, folder: Path) -> None:
        """Stop whatever the job started that outlives its worker."""

    def execute(self, data: dict[str, Any], outputs: dict[str, Any] | None = None) -> tuple[str, Any]:
        """Run synchronously in this thread (for pygeoapi's own managers)."""
        try:
            values = self.check(data)
        except InvalidInput as err:
            raise request_error(err) from None
        job_id = self.job_id or str(uuid.uuid4())
        folder = self.state / "jobs" / job_id
        folder.mkdir(parents=True, exist_ok=True)
        try:
            return "application/json", self.work(job_id, values, folder, lambda *_: None, threading.Event())
        except UpscalerError as err:
            raise ProcessorExecuteError(user_msg=err.message) from None

    def link(self, job_id: str, path: Path, folder: Path, media_type: str, rel: str = "item") -> dict[str, str]:
        """A link to a file in the job's ``outputs`` folder, served at ``/outputs/<job id>/...``."""
        relative = path.resolve().relative_to((folder / "outputs").resolve())
        return {"href": f"{self.url}/outputs/{job_id}/{relative.as_posix()}", "type": media_type, "rel": rel}


class PackageProcessor(JobProcessor):
    """An application package as a process, run with cwltool in the job's folder."""

    def __init__(self, processor_def: dict[str, Any]) -> None:
        package = _package(processor_def["package"])
        process_id = processor_def.get("id") or package.workflow
        super().__init__(processor_def, package_description(package, process_id))
        self.package = package

    def check(self, data: Any) -> dict[str, Any]:
        values = super().check(data)
        for parameter in self.package.inputs:
            value, kind, where = values.get(parameter.id), parameter.type, f"input {parameter.id!r}"
            if value is None:
                continue
            if kind.is_("Directory") or kind.array_of("Directory"):
                groups = [_groups(value)] if kind.is_("Directory") else [_groups(v) for v in value]
                checked = [[check_href(h, self.data_roots, where) for h in g] for g in groups]
                for group in checked:
                    self._check_items(group, parameter.id)
                values[parameter.id] = checked[0] if kind.is_("Directory") else checked
            elif kind.is_("File"):
                values[parameter.id] = check_href(value, self.data_roots, where)
            elif kind.array_of("File"):
                values[parameter.id] = [check_href(v, self.data_roots, f"{where}[{i}]") for i, v in enumerate(value)]
            elif kind.is_("string") and isinstance(value, str):
                check_text(value, where)
        try:
            check_values(self.package, values)
        except InvalidPackage as err:
            raise InvalidRequest(err.message.split(": ", 1)[-1], hint=err.hint) from None
        return values

    def work(self, job_id: str, values: dict[str, Any], folder: Path, report: Report, stop: threading.Event) -> Any:
        # each endpoint job is a worker of its own: a warm server would serve it one job, so cwltool starts cold
        backend = CwltoolBackend(self.package, folder / "run", slots=1, container=self.container, warm=False)
        remote = backend.started(job_id, 1) or backend.submit(JobRequest(job_id, 1, values))  # items: staged in the run
        report(10, "running the package with cwltool (stage-in, the package, stage-out)")
        while True:
            status = backend.poll([remote])[remote]
            if status.state in FINISHED:
                break
            if stop.wait(POLL):
                backend.cancel(remote)
                raise Dismissed
        if status.state is not RemoteState.SUCCEEDED:
            raise ProcessFailed(f"the package failed: {status.error or status.raw}")
        return self._results(job_id, backend.results(remote).raw, folder)

    def dismiss(self, job_id: str, folder: Path) -> None:
        backend = CwltoolBackend(self.package, folder / "run", slots=1, container=self.container, warm=False)
        remote = backend.started(job_id, 1)
        if remote:
            backend.cancel(remote)

    def _check_items(self, hrefs: list[str], input_id: str) -> None:
        """Read each STAC item now and check its assets, so that a job whose tool would read outside what the
        server may read is refused at request time (400, nothing recorded), not accepted and failed later."""
        for href in hrefs:
            try:
                item = pystac.Item.from_file(href, stac_io=stac_io_for(href))
            except Exception as err:  # whatever reading a document the client named raises
                raise InvalidRequest(
                    f"input {input_id!r}: {href} is not a STAC Item this server can read ({type(err).__name__}: "
                    f"{str(err)[:200]})",
                    hint="each href names a STAC Item (JSON) by a URL or a file under a data root",
                ) from None
            check_assets(item, self.data_roots, f"input {input_id!r}: ")

    def _results(self, job_id: str, raw: dict[str, Any], folder: Path) -> dict[str, Any]:
        outputs = folder / "outputs"
        results: dict[str, Any] = {}
        for parameter in self.package.outputs:
            value = raw.get(parameter.id)
            if isinstance(value, dict) and value.get("class") in ("Directory", "File"):
                target = outputs / parameter.id
                if target.exists():
                    shutil.rmtree(target) if target.is_dir() else target.unlink()
                target.parent.mkdir(parents=True, exist_ok=True)
                if value["class"] == "Directory":
                    shutil.copytree(value["path"], target)
                    results[parameter.id] = self._directory_links(job_id, target, folder)
                else:
                    shutil.copy2(value["path"], target)
                    results[parameter.id] = self.link(job_id, target, folder, COG)
            else:
                results[parameter.id] = value
        return results

    def _directory_links(self, job_id: str, target: Path, folder: Path) -> list[dict[str, str]]:
        links = [self.link(job_id, tif, folder, COG) for tif in sorted(target.rglob("*.tif"))]
        catalog = target / "catalog.json"
        if catalog.exists():
            links.append(self.link(job_id, catalog, folder, "application/json", rel="related"))
        return links


class UpscaleProcessor(JobProcessor):
    """A whole campaign as one process: tiles, windows, the manager, a STAC Collection."""

    def __init__(self, processor_def: dict[str, Any]) -> None:
        packages = dict(processor_def.get("packages", {}))
        super().__init__(processor_def, upscale_description(sorted(packages)))
        self.packages = packages
        self.parallel = int(processor_def.get("parallel", 2))
        self.max_tiles = int(processor_def.get("max_tiles", DEFAULT_MAX_TILES))

    def check(self, data: Any) -> dict[str, Any]:
        values = super().check(data)
        grid = values["grid"]
        if not is_grid_name(grid):
            raise InvalidRequest(
                f"input 'grid': unknown grid {grid!r}",
                hint=f"give one of {', '.join(NAMED_GRIDS)}, or EPSG:CODE:TILE_SIZE in metres",
            )
        values["stac"] = check_href(values["stac"], self.data_roots, "input 'stac'")
        package = _package(self.packages[values["process"]])
        try:
            check_names(package, values["templates"])
        except InvalidInput as err:
            raise InvalidRequest(f"input 'templates': {err.message}", hint=err.hint) from None
        campaign = self.campaign(values, self.state / "jobs" / "check")  # the AOI, the grid and the time range
        check_campaign_size(campaign.aoi, campaign.grid, self.max_tiles)
        return values

    def campaign(self, values: dict[str, Any], folder: Path) -> Campaign:
        """The campaign the inputs describe, with its store, work and outputs in ``folder``."""
        aoi = values["aoi"]
        time_range = {"start": values["start"], "end": values["end"]}
        config = {
            "name": "upscale",
            "aoi": aoi if isinstance(aoi, dict) else ",".join(str(float(v)) for v in aoi),
            "grid": values["grid"],
            "resolution": values.get("resolution"),
            "time": {**time_range, "step": values["step"]} if values.get("step") else {"windows": [time_range]},
            "inputs": {"stac": values["stac"], "collections": values.get("collections", [])},
            "process": {"application": self.packages[values["process"]], "inputs": values["templates"]},
            "backend": {"type": "cwltool", "parallel": self.parallel, "container": self.container},
            "store": "campaign.sqlite",
            "workdir": "work",
            "output": "outputs/catalog",
        }
        try:
            return resolve(ConfigFile.model_validate(config), folder / "campaign.yaml")
        except InvalidInput as err:
            raise InvalidRequest(err.message.replace("config ", "", 1), hint=err.hint) from None
        except ValueError as err:  # pydantic
            raise InvalidRequest(f"the inputs do not make a campaign: {err}") from None

    def work(self, job_id: str, values: dict[str, Any], folder: Path, report: Report, stop: threading.Event) -> Any:
        from ogc_upscaler.run import run_campaign  # the manager and its backends, only where a job runs

        campaign = self.campaign(values, folder)
        (folder / "campaign.json").write_text(json.dumps(values))
        report(0, "planning: searching the input catalog")
        self._plan_and_check(campaign)

        def seen(progress: Any) -> None:
            if progress.total:
                done = progress.done
                report(int(100 * done / progress.total), f"{done} of {progress.total} tile jobs finished")

        result = run_campaign(campaign, stop=stop, on_progress=_every(2.0, seen))
        if stop.is_set():
            raise Dismissed
        counts = {state: n for state, n in result.progress.counts.items() if n}
        return {
            "catalog": self.link(job_id, result.catalog, folder, "application/json", rel="root"),
            "jobs": counts,
        }

    def _plan_and_check(self, campaign: Campaign) -> None:
        """Plan (unless planned), then check that every STAC item and asset the jobs would read is allowed."""
        from ogc_upscaler.plan import is_planned, plan
        from ogc_upscaler.store import JobStore

        hrefs: set[str] = set()
        with JobStore.open(campaign.store) as store:
            if not is_planned(campaign, store):
                plan(campaign, store)
            for job in store.jobs():
                for value in job.inputs.values():
                    if isinstance(value, list):
                        hrefs.update(v for v in value if isinstance(v, str))
        for href in sorted(hrefs):
            check_href(href, self.data_roots, "a STAC item of the input catalog")
            check_assets(pystac.Item.from_file(href, stac_io=stac_io_for(href)), self.data_roots, "")

    def dismiss(self, job_id: str, folder: Path) -> None:
        from ogc_upscaler.cancel import cancel_jobs
        from ogc_upscaler.store import JobStore

        if not (folder / "campaign.json").exists() or not (folder / "campaign.sqlite").exists():
            return
        campaign = self.campaign(json.loads((folder / "campaign.json").read_text()), folder)
        with JobStore.open(campaign.store) as store:
            cancel_jobs(campaign, store)


def _groups(value: Any) -> list[str]:
    """A Directory's value as a request gives it: one STAC item URL or a list of them."""
    return [value] if isinstance(value, str) else list(value)


def request_error(err: UpscalerError) -> ProcessorExecuteError:
    """A 400 with the OGC exception code for a bad input and the error's message and hint."""
    error = ProcessorExecuteError(user_msg=f"{err.message} ({err.hint})" if err.hint else err.message)
    error.http_status_code = 400
    error.ogc_exception_code = "InvalidParameterValue"
    return error


@functools.lru_cache(maxsize=64)
def _package(path: str) -> Package:
    """Packages are loaded once per process: pygeoapi builds a processor for every request."""
    return load_package(path, validate=False)


def _every(seconds: float, report: Callable[[Any], None]) -> Callable[[Any], None]:
    """``report`` at most every ``seconds`` (progress arrives after every job move)."""
    last = [0.0]

    def throttled(progress: Any) -> None:
        if time.monotonic() - last[0] >= seconds:
            last[0] = time.monotonic()
            report(progress)

    return throttled
