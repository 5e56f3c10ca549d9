"""A pygeoapi job manager whose jobs survive the web server and can really be stopped.

pygeoapi's managers run asynchronous jobs as threads of the web worker: a restart loses
them (their rows stay ``running`` for ever) and ``DELETE`` deletes the row while the
thread goes on. This manager instead

- checks the inputs first (:meth:`JobProcessor.check`): a bad request is a 400 and
  nothing is recorded or run;
- records the job in :class:`EndpointJobs` (SQLite) and runs it in a detached worker
  process, for asynchronous and synchronous requests alike (a synchronous request
  waits for its worker);
- offers OGC API – Processes Part 4's two steps (:meth:`create_job`, then
  :meth:`start_job`): a job created and not yet started is ``created``, never run by
  itself, and a start repeated after a lost answer starts nothing twice;
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
from ogc_upscaler.server.jobs import CREATED, EndpointJob, EndpointJobs
from ogc_upscaler.server.processes import request_error
from ogc_upscaler.server.worker import launch, processor_for

LOG = logging.getLogger(__name__)
#: How long an accepted job may wait with no worker recorded (its launcher died before recording the worker
#: it started) before it counts as lost. A recorded worker counts as lost only once it is gone.
START_GRACE = 120.0
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
        definition = {"inputs": data_dict, "outputs": requested_outputs, "response": requested_response}
        try:
            job_id = self._record(process_id, processor, definition, start=True).identifier
        except InvalidInput as err:
            raise request_error(err) from None
        offers_async = "async-execute" in processor.metadata.get("jobControlOptions", [])
        if execution_mode == RequestedProcessExecutionMode.respond_async and offers_async:
            return job_id, "application/json", None, JobStatus.accepted, {"Preference-Applied": "respond-async"}
        headers = {"Preference-Applied": "wait"} if execution_mode else None
        job = self._wait(job_id)
        if job.status == JobStatus.successful.value:
            return job_id, "application/json", self._result(job), JobStatus.successful, headers
        failure = {"type": "NoApplicableCode", "code": "NoApplicableCode", "description": job.message}
        return job_id, "application/json", failure, JobStatus.failed, headers

    def create_job(self, process_id: str, definition: dict[str, Any], *, start: bool) -> EndpointJob:
        """Part 4's ``POST /jobs``: check the inputs of ``definition`` (an execute request naming the process),
        record the job ``created``, and with ``start`` start it at once; :class:`InvalidInput` on bad inputs
        (nothing is recorded)."""
        return self._record(process_id, self.get_processor(process_id), definition, start=start)

    def start_job(self, job_id: str) -> EndpointJob:
        """Part 4's ``POST /jobs/{id}/results``: launch a created job's worker. A job started already (or
        ended) is left as it is, so a start repeated after a lost answer never runs the job twice."""
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        if self.jobs.start(job_id):
            self._launch(job_id)
        return self._get(job_id)

    def job(self, job_id: str) -> EndpointJob:
        """One job, reconciled; :class:`JobNotFoundError` if unknown."""
        return self._get(job_id)

    def list_jobs(
        self, *, process_ids: list[str], statuses: list[str], limit: int | None, offset: int
    ) -> tuple[list[EndpointJob], int]:
        """Jobs, newest first, reconciled, filtered by process and status; and how many match."""
        for job in self.jobs.active():
            self._reconcile(job)
        return self.jobs.list(limit, offset, process_ids=process_ids, statuses=statuses)

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
        if job.active and self.jobs.finish(job_id, JobStatus.dismissed.value, "dismissed"):
            # no worker can claim the job any more: the one recorded now is the one to stop (it may have
            # claimed the job after it was read above)
            job = self.jobs.get(job_id) or job
            self._stop_worker(job)
        self._stop_leftovers(job)
        if job.folder.is_dir() and job.folder.resolve().is_relative_to(self.folder.resolve()):
            shutil.rmtree(job.folder, ignore_errors=True)
        self.jobs.delete(job_id)
        return True

    # -- internals ----------------------------------------------------------------------------

    def _record(self, process_id: str, processor: Any, definition: dict[str, Any], *, start: bool) -> EndpointJob:
        """Check the inputs of ``definition`` (the execute request), record the job (accepted, or created
        unless ``start``) and, when started, launch its worker; :class:`InvalidInput` on bad inputs."""
        values = processor.check(definition.get("inputs"))
        job_id = str(uuid.uuid4())
        folder = self.folder / job_id
        status = "accepted" if start else CREATED
        processor_def = self.processes[process_id]["processor"]
        stored = {"process": process_id, **definition}
        self.jobs.add(job_id, process_id, values, processor_def, folder, definition=stored, status=status)
        if start:
            self._launch(job_id)
        job = self.jobs.get(job_id)
        assert job is not None
        return job

    def _launch(self, job_id: str) -> None:
        """Start the worker of an accepted job and record it."""
        job = self.jobs.get(job_id)
        if job is not None and job.active:
            self.jobs.launched(job_id, launch(self.jobs.path, job))

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
            self._launch(job.identifier)
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
