"""Cancelling a campaign: stop its running manager, cancel its jobs on the backend, record it."""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from pathlib import Path

from ogc_upscaler.boundary import job_errors
from ogc_upscaler.campaign import Campaign
from ogc_upscaler.errors import JobError, StoreLocked
from ogc_upscaler.run import make_backend
from ogc_upscaler.store import JobStore, Move, State, lock_holder

log = logging.getLogger(__name__)


def stop_running_manager(store: Path, timeout: float = 60.0) -> int | None:
    """SIGTERM the manager holding the store's lock on this host and wait for it to let go; its pid.

    A manager on another host (a store on a shared filesystem) is never signalled: a pid means
    nothing there.
    """
    try:
        JobStore.open(store).close()
        return None
    except StoreLocked:
        pass
    holder = lock_holder(store)
    if holder is None:
        raise StoreLocked(f"store {store} is locked by an unknown process", hint="stop it, then cancel again")
    pid, host = holder
    if host != socket.gethostname():
        raise StoreLocked(
            f"store {store} is being written by pid {pid} on {host}, not on this host ({socket.gethostname()})",
            hint=f"run `ogc-upscaler cancel` on {host}, or stop that manager there, then cancel again",
        )
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            JobStore.open(store).close()
            return pid
        except StoreLocked:
            time.sleep(0.2)
    raise StoreLocked(f"the manager (pid {pid}) did not stop within {timeout:.0f} s", hint=f"kill {pid}, then cancel")


def cancel_jobs(campaign: Campaign, store: JobStore) -> int:
    """Cancel every unfinished job: on the backend if it holds it, then in the store; how many.

    A job the backend could not be asked to stop is still cancelled here, with a warning naming
    its remote job.
    """
    held = [job for job in store.jobs(State.SUBMITTED, State.RUNNING, State.IN_DOUBT) if job.remote_id]
    backend = make_backend(campaign) if held else None
    n = 0
    for job in store.jobs(State.SUBMITTED, State.RUNNING, State.IN_DOUBT):
        status = "cancelled by user"
        if backend is not None and job.remote_id:
            try:
                with job_errors(f"cancelling job {job.job_id}"):
                    backend.cancel(job.remote_id)
            except JobError as err:
                log.warning("%s: remote job %s may still run: %s", job.job_id, job.remote_id, err.message)
                status = f"cancelled by user; the backend was not told ({err.message})"
        n += store.move(job.job_id, Move.CANCEL, backend_status=status)
    for job in list(store.jobs(State.PLANNED, State.WAITING)):
        n += store.move(job.job_id, Move.CANCEL)
    if backend is not None:
        backend.close()
    return n
