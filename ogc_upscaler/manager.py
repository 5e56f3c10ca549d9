"""The manager loop: fill free slots in plan order, poll, retry, time out, collect, resume.

The manager is the only writer of job state. Every transition is written
before the manager acts on it: a job is ``submitted`` (with no remote id) before
the backend is called, so a crash between the two leaves a job *in doubt* that
resume reconciles through :meth:`Backend.find` instead of submitting it again.
Its memory holds only the active jobs (at most the backend's slots).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ogc_upscaler.backends.base import Backend, JobRequest, Outputs, RemoteState, RemoteStatus
from ogc_upscaler.backends.ogcapi import BackPressure
from ogc_upscaler.campaign import Retries
from ogc_upscaler.collect import CollectError, collect
from ogc_upscaler.errors import BackendError
from ogc_upscaler.store import JobStore, State

log = logging.getLogger("ogc_upscaler.manager")

#: Polling backs off from the backend's poll interval by this factor while nothing changes.
POLL_GROWTH = 1.5
#: Fetching a succeeded job's results is tried this often before the attempt counts as failed.
RESULT_FETCHES = 5


@dataclass
class Progress:
    """Counts of jobs per state as the manager sees them, and what this run did."""

    counts: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    finished_this_run: int = 0

    @property
    def total(self) -> int:
        """All jobs of the campaign."""
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        """Jobs that reached a terminal state."""
        return sum(self.counts[s] for s in ("collected", "failed", "cancelled", "no_inputs"))

    def moved(self, before: str, after: str) -> None:
        """Record one job's move between states."""
        self.counts[before] -= 1
        self.counts[after] += 1
        if after in {"collected", "failed", "cancelled"}:
            self.finished_this_run += 1


@dataclass(frozen=True)
class Active:
    """A job the backend holds."""

    job_id: str
    remote_id: str
    attempt: int
    state: State
    submitted: float


class Manager:
    """Runs a planned campaign on one backend until every job is terminal, or until told to stop.

    ``collector(job, outputs, output, campaign)`` turns a succeeded job's outputs
    into what the store records (by default: :func:`ogc_upscaler.collect.collect`).
    """

    def __init__(
        self,
        store: JobStore,
        backend: Backend,
        output: Path,
        campaign: str,
        retries: Retries,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        clock: Callable[[], float] = time.time,
        collector: Callable[[dict[str, Any], Outputs, Path, str], dict[str, Any]] = collect,
    ) -> None:
        self.store = store
        self.backend = backend
        self.output = output
        self.campaign = campaign
        self.retries = retries
        self.on_progress = on_progress or (lambda _: None)
        self.clock = clock
        self.collector = collector
        self.paused_until = 0.0
        self.result_failures: dict[str, int] = {}
        self.active: dict[str, Active] = {}
        self.progress = Progress(Counter())
        for state, _, n in store.counts():
            self.progress.counts[state] += n

    def run(self, stop: threading.Event | None = None) -> Progress:
        """Loop until no job is left to run or ``stop`` is set; return the final counts."""
        stop = stop or threading.Event()
        self._resume()
        self._poll()  # learn where re-attached jobs are before submitting more (a pool balances on it)
        self._collect_pending()
        poll_min = self.backend.poll_interval
        poll_every = poll_min
        last_poll = 0.0
        while not stop.is_set():
            changed = self._fill(stop)
            if time.monotonic() - last_poll >= poll_every:
                changed |= self._poll()
                changed |= self._enforce_time_limit()
                last_poll = time.monotonic()
                poll_every = poll_min if changed else min(self.backend.poll_max, max(poll_every, 0.01) * POLL_GROWTH)
            self.on_progress(self.progress)
            if not self.active and not self._work_left():
                break
            if not changed:
                stop.wait(self._idle_seconds(poll_every, last_poll))
        self.on_progress(self.progress)
        return self.progress

    # -- resume -------------------------------------------------------------------------------

    def _resume(self) -> None:
        """Re-attach jobs the store says the backend holds; reconcile those in doubt."""
        for row in self.store.active():
            if row["backend"] not in (None, self.backend.name):
                continue
            remote_id = row["remote_id"] or self.backend.find(row["job_id"], row["attempts"])
            if remote_id is None:
                log.info(
                    "%s: submission of attempt %d never reached %s; back to waiting",
                    row["job_id"],
                    row["attempts"],
                    self.backend.name,
                )
                self._to(
                    row["job_id"],
                    row["state"],
                    State.WAITING,
                    retry_at=_iso(self.clock()),
                    error="the submission did not reach the backend (the manager stopped)",
                    error_kind="lost",
                )
                continue
            if row["remote_id"] is None:
                self.store.update(row["job_id"], state=State(row["state"]), remote_id=remote_id)
            submitted = _epoch(row["submitted_at"]) if row["submitted_at"] else self.clock()
            self.active[row["job_id"]] = Active(
                row["job_id"], remote_id, row["attempts"], State(row["state"]), submitted
            )
        if self.active:
            log.info("re-attached %d running jobs", len(self.active))

    def _collect_pending(self) -> None:
        """Collect jobs that succeeded but were not collected before the last stop."""
        for row in list(self.store.rows(("*",), state=State.SUCCEEDED)):
            recorded = json.loads(row["outputs"] or "{}")
            catalog = Path(recorded["catalog"]) if recorded.get("catalog") else None
            self._collect(row, Outputs(catalog, recorded.get("raw") or {}))

    # -- submitting ---------------------------------------------------------------------------

    def _fill(self, stop: threading.Event) -> bool:
        if self.clock() < self.paused_until:
            return False
        free = self.backend.slots - len(self.active)
        jobs = self.store.due(free, _iso(self.clock())) if free > 0 else []
        for job in jobs:
            if stop.is_set():
                break
            self._submit(job)
        return bool(jobs)

    def _submit(self, job: dict[str, Any]) -> None:
        job_id, attempt, before = job["job_id"], job["attempts"] + 1, job["state"]
        if not self.store.transition(job_id, State.SUBMITTED, backend=self.backend.name, remote_id=None):
            return
        self.progress.moved(before, "submitted")
        request = JobRequest(job_id, attempt, json.loads(job["inputs"]))
        try:
            remote_id = self.backend.submit(request)
        except BackPressure as err:
            self.paused_until = self.clock() + err.retry_after
            log.info("%s: %s; no submissions for %.0f s", job_id, err.message, err.retry_after)
            self._to(
                job_id,
                "submitted",
                State.WAITING,
                refund=True,
                retry_at=_iso(self.paused_until),
                error=err.message,
                error_kind="backpressure",
            )
            return
        except BackendError as err:
            log.warning("%s: submission failed: %s", job_id, err.message)
            self._failed(job_id, State.SUBMITTED, attempt, err.message, err.retryable, kind="submit")
            return
        self.store.update(job_id, state=State.SUBMITTED, remote_id=remote_id, backend_status="submitted")
        self.active[job_id] = Active(job_id, remote_id, attempt, State.SUBMITTED, self.clock())
        log.info("%s: attempt %d submitted to %s as %s", job_id, attempt, self.backend.name, remote_id)

    # -- polling ------------------------------------------------------------------------------

    def _poll(self) -> bool:
        if not self.active:
            return False
        by_remote = {a.remote_id: a for a in self.active.values()}
        try:
            statuses = self.backend.poll(list(by_remote))
        except BackendError as err:
            log.warning("polling %s failed (will retry): %s", self.backend.name, err.message)
            return False
        changed = False
        for remote_id, status in statuses.items():
            job = by_remote.get(remote_id)
            if job is not None:
                changed |= self._apply(job, status)
        return changed

    def _apply(self, job: Active, status: RemoteStatus) -> bool:
        if status.state in (RemoteState.QUEUED, RemoteState.RUNNING):
            if job.state is State.SUBMITTED and status.state is RemoteState.RUNNING:
                self._to(
                    job.job_id,
                    "submitted",
                    State.RUNNING,
                    attempt=job.attempt,
                    backend_status=status.raw,
                    log_path=status.log_path,
                )
                self.active[job.job_id] = Active(job.job_id, job.remote_id, job.attempt, State.RUNNING, job.submitted)
                return True
            return False
        del self.active[job.job_id]
        if status.state is RemoteState.SUCCEEDED:
            self._succeeded(job, status)
        elif status.state is RemoteState.CANCELLED:
            self._to(job.job_id, job.state.value, State.CANCELLED, attempt=job.attempt, backend_status=status.raw)
        else:
            self._failed(
                job.job_id,
                job.state,
                job.attempt,
                status.error or status.raw,
                status.retryable,
                kind="run",
                backend_status=status.raw,
                log_path=status.log_path,
            )
        return True

    def _succeeded(self, job: Active, status: RemoteStatus) -> None:
        try:
            outputs = self.backend.results(job.remote_id)
        except BackendError as err:
            fetches = self.result_failures.get(job.job_id, 0) + 1
            if err.retryable and fetches < RESULT_FETCHES:
                # the job succeeded remotely: fetch its results again, never run it again
                self.result_failures[job.job_id] = fetches
                self.active[job.job_id] = job
                log.warning("%s: fetching results failed (%s); trying again", job.job_id, err.message)
                return
            self.result_failures.pop(job.job_id, None)
            self._failed(
                job.job_id, job.state, job.attempt, err.message, err.retryable, kind="results", log_path=status.log_path
            )
            return
        self.result_failures.pop(job.job_id, None)
        recorded = {"catalog": str(outputs.catalog) if outputs.catalog else None, "raw": outputs.raw}
        if not self._to(
            job.job_id,
            job.state.value,
            State.SUCCEEDED,
            attempt=job.attempt,
            backend_status=status.raw,
            outputs=recorded,
            log_path=status.log_path,
        ):
            return
        row = self.store.get(job.job_id)
        assert row is not None
        self._collect(row, outputs)

    def _collect(self, row: dict[str, Any], produced: Outputs) -> None:
        job_id = row["job_id"]
        try:
            outputs = self.collector(row, produced, self.output, self.campaign)
        except CollectError as err:
            log.error("%s: collecting failed: %s", job_id, err.message)
            self._to(job_id, "succeeded", State.FAILED, error=f"collect: {err.message}", error_kind="collect")
            return
        outputs["catalog"] = str(produced.catalog) if produced.catalog else None
        self._to(job_id, "succeeded", State.COLLECTED, outputs=outputs)
        log.info("%s: collected %s", job_id, outputs.get("item", "its outputs"))

    def _failed(
        self, job_id: str, current: State, attempt: int, error: str, retryable: bool, *, kind: str, **fields: Any
    ) -> None:
        if retryable and attempt < self.retries.attempts:
            delay = self.retries.delay(attempt)
            log.warning("%s: attempt %d failed (%s); retry in %.0f s", job_id, attempt, error, delay)
            self._to(
                job_id,
                current.value,
                State.WAITING,
                attempt=attempt,
                error=error,
                error_kind=f"{kind}:retryable",
                retry_at=_iso(self.clock() + delay),
                **fields,
            )
        else:
            why = "permanent" if not retryable else f"no attempts left ({attempt} of {self.retries.attempts})"
            log.error("%s: failed (%s): %s", job_id, why, error)
            self._to(
                job_id,
                current.value,
                State.FAILED,
                attempt=attempt,
                error=error,
                error_kind=f"{kind}:{'permanent' if not retryable else 'exhausted'}",
                **fields,
            )

    def _enforce_time_limit(self) -> bool:
        now = self.clock()
        late = [a for a in self.active.values() if now - a.submitted > self.retries.time_limit_s]
        for job in late:
            log.warning("%s: over the time limit of %.0f s; cancelling", job.job_id, self.retries.time_limit_s)
            self.backend.cancel(job.remote_id)
            del self.active[job.job_id]
            self._failed(
                job.job_id,
                job.state,
                job.attempt,
                f"over the time limit of {self.retries.time_limit_s:.0f} s",
                True,
                kind="timeout",
            )
        return bool(late)

    # -- bookkeeping --------------------------------------------------------------------------

    def _to(self, job_id: str, before: str, to: State, **fields: Any) -> bool:
        moved = self.store.transition(job_id, to, **fields)
        if moved:
            self.progress.moved(before, to.value)
        return moved

    def _work_left(self) -> bool:
        return self.progress.counts["planned"] > 0 or self.progress.counts["waiting"] > 0

    def _idle_seconds(self, poll_every: float, last_poll: float) -> float:
        until_poll = max(0.0, poll_every - (time.monotonic() - last_poll))
        next_retry = self.store.next_retry()
        if next_retry is not None and len(self.active) < self.backend.slots:
            return max(0.0, min(until_poll, _epoch(next_retry) - self.clock()))
        return until_poll


def _iso(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
