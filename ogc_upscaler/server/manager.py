"""A pygeoapi job manager whose jobs survive the web server and can really be stopped.

pygeoapi's managers run asynchronous jobs as threads of the web worker: a restart loses
them (their rows stay ``running`` for ever) and ``DELETE`` deletes the row while the
thread goes on. This manager instead

- checks the inputs first (:meth:`JobProcessor.check`): a bad request is a 400 and
  nothing is recorded or run;
- records the job in :class:`EndpointJobs` (SQLite) and runs it in a detached worker
  process, for asynchronous and synchronous requests alike (a synchronous request
  waits for its worker);
- reconciles whenever a job is read: an active job whose worker is gone (killed, or the
  machine restarted) is started again, up to ``max_restarts`` times, then failed with a
  reason; workers resume from their folders (cwltool runs are re-attached, campaigns
  resume from their store), so no job is reported running for ever;
- dismisses by marking the job, stopping its worker (SIGTERM, then SIGKILL), and calling
  the processor's :meth:`dismiss` to stop what the job started, before deleting it.

Configured in pygeoapi as ``server.manager.name: ogc_upscaler.server.manager.UpscalerManager``
with ``connection`` (the SQLite file; job folders go beside it, in ``jobs/``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from pygeoapi.process.base import JobNotFoundError, JobResultNotFoundError
from pygeoapi.process.manager.base import BaseManager
from pygeoapi.util import JobStatus, RequestedProcessExecutionMode, RequestedResponse

from ogc_upscaler.backends.runner import descendants, is_alive
from ogc_upscaler.errors import InvalidInput
from ogc_upscaler.server.jobs import EndpointJob, EndpointJobs
from ogc_upscaler.server.processes import request_error
from ogc_upscaler.server.worker import launch, processor_for

LOG = logging.getLogger(__name__)
#: How long a launched worker may take to record itself before it counts as gone.
START_GRACE = 60.0
#: How long a dismissed worker has to stop by itself before it is killed.
STOP_GRACE = 10.0


class UpscalerManager(BaseManager):
    """Jobs in SQLite, work in detached processes; see the module's documentation."""

    def __init__(self, manager_def: dict[str, Any]) -> None:
        super().__init__(manager_def)
        self.is_async = True
        self.supports_subscribing = False
        if not manager_def.get("connection"):
            raise ValueError("server.manager.connection: give the path of the endpoint's job database")
        self.jobs = EndpointJobs(Path(manager_def["connection"]))
        self.folder = self.jobs.path.parent / "jobs"
        self.max_restarts = int(manager_def.get("max_restarts", 3))
        self.poll = float(manager_def.get("sync_poll", 0.2))

    # -- execution ----------------------------------------------------------------------------

    def execute_process(
        self,
        process_id: str,
        data_dict: dict[str, Any],
        execution_mode: RequestedProcessExecutionMode | None = None,
        requested_outputs: dict[str, Any] | None = None,
        subscriber: Any = None,
        requested_response: str | None = RequestedResponse.raw.value,
    ) -> tuple[str, str, Any, JobStatus, dict[str, str] | None]:
        """Check, record, start the worker; answer at once (async) or when it ends (sync)."""
        processor = self.get_processor(process_id)
        try:
            values = processor.check(data_dict)
        except InvalidInput as err:
            raise request_error(err) from None
        job_id = str(uuid.uuid4())
        self.jobs.add(job_id, process_id, values, self.processes[process_id]["processor"], self.folder / job_id)
        job = self.jobs.get(job_id)
        assert job is not None
        launch(self.jobs.path, job)
        offers_async = "async-execute" in processor.metadata.get("jobControlOptions", [])
        if execution_mode == RequestedProcessExecutionMode.respond_async and offers_async:
            return job_id, "application/json", None, JobStatus.accepted, {"Preference-Applied": "respond-async"}
        headers = {"Preference-Applied": "wait"} if execution_mode else None
        job = self._wait(job_id)
        if job.status == JobStatus.successful.value:
            return job_id, "application/json", self._result(job), JobStatus.successful, headers
        failure = {"type": "NoApplicableCode", "code": "NoApplicableCode", "description": job.message}
        return job_id, "application/json", failure, JobStatus.failed, headers

    # -- jobs ---------------------------------------------------------------------------------

    def get_jobs(self, status: JobStatus | None = None, limit: int | None = None, offset: int | None = None) -> dict:
        """Jobs, newest first, reconciled."""
        for job in self.jobs.active():
            self._reconcile(job)
        rows, total = self.jobs.list(limit, offset or 0)
        return {"jobs": [r.as_pygeoapi() for r in rows], "numberMatched": total}

    def get_job(self, job_id: str) -> dict:
        """One job, reconciled; :class:`JobNotFoundError` if unknown."""
        return self._get(job_id).as_pygeoapi()

    def add_job(self, job_metadata: dict) -> str:
        """Not used: :meth:`execute_process` records its jobs itself."""
        raise NotImplementedError("UpscalerManager records jobs in execute_process")

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        """Not used: workers update their own rows."""
        raise NotImplementedError("UpscalerManager's workers update their own jobs")

    def get_job_result(self, job_id: str) -> tuple[str | None, Any]:
        """The results document of a successful job."""
        job = self._get(job_id)
        if job.status != JobStatus.successful.value:
            return (None, None)
        return "application/json", self._result(job)

    def delete_job(self, job_id: str) -> bool:
        """Dismiss: stop the worker and what the job started, then forget the job and its files."""
        job = self._get(job_id)
        if job.active:
            self.jobs.finish(job_id, JobStatus.dismissed.value, "dismissed")
            self._stop_worker(job)
        self._stop_leftovers(job)
        if job.folder.is_dir() and job.folder.resolve().is_relative_to(self.folder.resolve()):
            shutil.rmtree(job.folder, ignore_errors=True)
        self.jobs.delete(job_id)
        return True

    # -- internals ----------------------------------------------------------------------------

    def _get(self, job_id: str) -> EndpointJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return self._reconcile(job)

    def _reconcile(self, job: EndpointJob) -> EndpointJob:
        """Restart an active job whose worker is gone, or fail it after ``max_restarts``."""
        if not job.active or (job.worker and is_alive(job.worker)):
            return job
        if not job.worker and time.time() - job.launched < START_GRACE:
            return job
        if job.restarts >= self.max_restarts:
            reason = f"its worker stopped {_times(job.restarts + 1)} without finishing; see {job.folder / 'worker.log'}"
            if self.jobs.finish(job.identifier, JobStatus.failed.value, reason):
                self._stop_leftovers(job)
        elif self.jobs.relaunch(job.identifier, job.worker):
            LOG.warning("job %s: its worker is gone; starting it again", job.identifier)
            fresh = self.jobs.get(job.identifier)
            assert fresh is not None
            launch(self.jobs.path, fresh)
        return self.jobs.get(job.identifier) or job

    def _wait(self, job_id: str) -> EndpointJob:
        while True:
            job = self._get(job_id)
            if not job.active:
                return job
            time.sleep(self.poll)

    def _result(self, job: EndpointJob) -> Any:
        try:
            return json.loads(Path(job.location or "").read_text())
        except (OSError, json.JSONDecodeError):
            raise JobResultNotFoundError(job.identifier) from None

    def _stop_leftovers(self, job: EndpointJob) -> None:
        """Stop what the job started that outlives its worker (the processor knows what that is)."""
        try:
            processor_for(job.processor).dismiss(job.identifier, job.folder)
        except Exception:
            LOG.exception("job %s: stopping what it started failed", job.identifier)

    def _stop_worker(self, job: EndpointJob) -> None:
        if not job.worker or not is_alive(job.worker):
            return
        pid = int(job.worker.split()[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and is_alive(job.worker):
            time.sleep(0.1)
        if is_alive(job.worker):
            for member in [pid, *descendants(pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, signal.SIGKILL)

    def __repr__(self) -> str:
        return f"<UpscalerManager> {self.jobs.path}"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"
