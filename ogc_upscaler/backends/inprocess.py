"""A backend that runs a Python function in this process, one call per job.

For quick per-tile functions from a notebook, and for measuring the manager's
own overhead (``bench/bench_manager.py``). The function gets the job and returns
the path of the STAC catalog it wrote (or None); an exception fails the job,
retryable unless it is a :class:`ValueError` or :class:`TypeError`; a
:class:`BackPressure` it raises is passed on, as a busy remote backend's would be.

Finished jobs are remembered, status and outputs, for the last :data:`REMEMBERED`
jobs only: enough for every job in flight to be polled and fetched again, while memory
stays flat however many jobs a campaign has.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from ogc_upscaler.backends.base import (
    NOT_THERE,
    Backend,
    BackPressure,
    Found,
    JobRequest,
    Outputs,
    RemoteState,
    RemoteStatus,
)
from ogc_upscaler.errors import BackendError

PERMANENT = (ValueError, TypeError)
#: Finished jobs whose status and outputs are kept.
REMEMBERED = 10_000


class InProcessBackend(Backend):
    """Calls ``function(job)`` at submission; the last :data:`REMEMBERED` finished jobs are kept."""

    def __init__(self, function: Callable[[JobRequest], Path | None], slots: int = 1, name: str = "inprocess") -> None:
        self.name = name
        self.slots = slots
        self.poll_interval = 0.0
        self.function = function
        self._ids = itertools.count(1)
        self._finished: OrderedDict[str, RemoteStatus] = OrderedDict()
        self._outputs: dict[str, Path | None] = {}
        self._by_job: dict[tuple[str, int], str] = {}
        self._job_of: dict[str, tuple[str, int]] = {}

    def submit(self, job: JobRequest) -> str:
        """Run the function now; its outcome is reported by the next poll."""
        remote_id = f"{self.name}-{next(self._ids)}"
        try:
            outputs = self.function(job)
        except BackPressure:
            raise
        except PERMANENT as err:
            self._remember(remote_id, job, RemoteStatus(RemoteState.FAILED, type(err).__name__, str(err), False))
        except Exception as err:
            self._remember(remote_id, job, RemoteStatus(RemoteState.FAILED, type(err).__name__, str(err), True))
        else:
            self._remember(remote_id, job, RemoteStatus(RemoteState.SUCCEEDED, "returned"))
            self._outputs[remote_id] = outputs
        return remote_id

    def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        """Every job has finished by the time it is polled."""
        unknown = RemoteStatus(RemoteState.LOST, "unknown", "not known to this process", True)
        return {rid: self._finished.get(rid, unknown) for rid in remote_ids}

    def results(self, remote_id: str) -> Outputs:
        """The catalog the function returned."""
        if remote_id not in self._outputs:
            raise BackendError(f"{remote_id}: no results in this process", retryable=True)
        return Outputs(self._outputs[remote_id], {})

    def cancel(self, remote_id: str) -> None:
        """Nothing runs in the background; forget the job."""
        self._forget(remote_id)

    def find(self, job: JobRequest, since: float, known: Callable[[str], bool]) -> Found:
        """Submissions of this process only."""
        remote_id = self._by_job.get((job.job_id, job.attempt))
        return Found(remote_id) if remote_id else NOT_THERE

    def _remember(self, remote_id: str, job: JobRequest, status: RemoteStatus) -> None:
        self._finished[remote_id] = status
        self._by_job[(job.job_id, job.attempt)] = remote_id
        self._job_of[remote_id] = (job.job_id, job.attempt)
        while len(self._finished) > REMEMBERED:
            self._forget(next(iter(self._finished)))

    def _forget(self, remote_id: str) -> None:
        self._finished.pop(remote_id, None)
        self._outputs.pop(remote_id, None)
        self._by_job.pop(self._job_of.pop(remote_id, ("", 0)), None)
