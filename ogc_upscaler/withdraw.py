"""Withdrawing a campaign's unfinished jobs: stopped on the backend that holds them, cancelled in the store."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ogc_upscaler.backends.base import Backend
from ogc_upscaler.boundary import job_errors
from ogc_upscaler.errors import JobError
from ogc_upscaler.store import JobStore, Move, State

log = logging.getLogger(__name__)


def withdraw(store: JobStore, backend: Callable[[], Backend]) -> list[str]:
    """Cancel every unfinished job: on the backend if it holds it, then in the store; the ids cancelled.

    ``backend`` gives the backend when a job needs it (none is made when no job is held). A job the
    backend could not be asked to stop is still cancelled here, with a warning naming its remote job.
    Jobs that succeeded and wait to be collected are left to be collected.
    """
    cancelled: list[str] = []
    made: Backend | None = None
    for job in list(store.jobs(State.SUBMITTED, State.RUNNING, State.IN_DOUBT)):
        status = "cancelled by user"
        if job.remote_id:
            made = made or backend()
            try:
                with job_errors(f"cancelling job {job.job_id}"):
                    made.cancel(job.remote_id)
            except JobError as err:
                log.warning("%s: remote job %s may still run: %s", job.job_id, job.remote_id, err.message)
                status = f"cancelled by user; the backend was not told ({err.message})"
        if store.move(job.job_id, Move.CANCEL, backend_status=status):
            cancelled.append(job.job_id)
    cancelled += [
        job.job_id for job in list(store.jobs(State.PLANNED, State.WAITING)) if store.move(job.job_id, Move.CANCEL)
    ]
    return cancelled
