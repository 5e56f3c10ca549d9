"""The manager loop: fill free slots in plan order, poll, retry, time out, collect, resume.

The manager is the only writer of job state. Every transition is written
before the manager acts on it: a job is ``submitted`` (with no remote id), committed on
its own, before the backend is called, so a crash between the two leaves a job whose
submission is looked up through :meth:`Backend.find` on resume instead of being sent again.
The moves that follow one poll, and the collections of one pass, are each one transaction
(:meth:`JobStore.batch`): nothing is asked of a backend on their strength before they commit,
and a crash that loses a pass's collections leaves those jobs succeeded, to be collected again
on resume, never run again.
A submission whose answer was lost is looked up the same way; one the backend cannot
find or rule out is *in doubt*, and ``retries.on_doubt`` says what happens to it
(by default it waits for a person: it is never paid for twice).

Every call into the backend or the collector crosses one boundary,
:func:`ogc_upscaler.boundary.job_errors`: whatever goes wrong there is that job's error,
classified, with the traceback of an unexpected one in a file beside the run's log.

Three kinds of follow-up are retried with back-off without re-running anything:
looking up a submission in doubt, fetching and collecting a job that succeeded, and
dismissing a job over its time limit (it is not rescheduled before the backend confirmed
or the manager gave up, with a warning naming the remote job).
Memory holds only the jobs in flight (at most the backend's slots).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ogc_upscaler.backends.base import (
    Backend,
    BackPressure,
    InDoubt,
    JobRequest,
    Outputs,
    RemoteState,
    RemoteStatus,
    Submission,
)
from ogc_upscaler.boundary import job_errors
from ogc_upscaler.campaign import Retries
from ogc_upscaler.causes import job_cause
from ogc_upscaler.collect import Collected, CollectError, collect
from ogc_upscaler.control import Action, Request, Requests
from ogc_upscaler.errors import BackendError, JobError
from ogc_upscaler.hooks import JobHooks
from ogc_upscaler.store import MOVES, Job, JobOutputs, JobStore, Move, State
from ogc_upscaler.withdraw import withdraw

log = logging.getLogger("ogc_upscaler.manager")

#: Polling backs off from the backend's poll interval by this factor while nothing changes.
POLL_GROWTH = 1.5
#: Tries to fetch and collect a job that succeeded before it fails (it is never run again).
FINISH_TRIES = 10
#: Tries to dismiss a job over its time limit before giving up on stopping it.
DISMISS_TRIES = 8
#: Tries to look up a submission in doubt when the lookup itself fails, before it is in doubt.
LOOKUP_TRIES = 5
#: Seconds of recorded submissions before the earliest unanswered one that a backend is told of on resume.
HISTORY = 600.0
#: Longest the loop sleeps before it looks for requests (a retry or a pause asked from the watch page).
REQUESTS_EVERY = 1.0

Collector = Callable[[Job, Outputs, Path, str], Collected]


class Phase(StrEnum):
    """What a run is doing."""

    PLANNING = "planning"
    REATTACHING = "re-attaching"  # to the jobs an earlier run left with the backend
    RUNNING = "running"


@dataclass
class Progress:
    """Counts of jobs per state as the manager sees them, and what this run did."""

    counts: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    finished_this_run: int = 0
    #: What the run is doing (while planning, ``counts`` holds the jobs planned so far).
    phase: Phase = Phase.RUNNING

    @property
    def total(self) -> int:
        """All jobs of the campaign."""
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        """Jobs that reached a terminal state (or wait, in doubt, for a person)."""
        return sum(self.counts[s] for s in ("collected", "failed", "cancelled", "no_inputs", "in_doubt"))

    @property
    def complete(self) -> bool:
        """Whether every job ended collected or with no inputs."""
        return self.counts["collected"] + self.counts["no_inputs"] == self.total

    def moved(self, before: str, after: str) -> None:
        """Record one job's move between states."""
        self.counts[before] -= 1
        self.counts[after] += 1
        if after in {"collected", "failed", "cancelled", "in_doubt"}:
            self.finished_this_run += 1


@dataclass(frozen=True)
class Active:
    """A job the backend holds: since when it was submitted and, once seen running, since when it runs."""

    job_id: str
    remote_id: str
    attempt: int
    state: State
    submitted: float
    started: float | None = None


@dataclass
class Later:
    """A follow-up of one job retried with back-off: a lookup, a fetch-and-collect, or a dismissal."""

    job_id: str
    attempt: int
    state: State
    remote_id: str | None
    due: float
    since: float = 0.0  # when the submission began (lookups)
    tries: int = 0
    reason: str = ""  # why a dismissal was asked
    log_path: str | None = None
    raw_status: str = ""


class Manager:
    """Runs a planned campaign on one backend until every job is settled, or until told to stop.

    ``collector(job, outputs, output, campaign)`` turns a succeeded job's outputs into its
    STAC item (by default :func:`ogc_upscaler.collect.collect`). ``traces`` is the folder where
    the traceback of an unexpected error is written, one file per job attempt.
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
        collector: Collector = collect,
        traces: Path | None = None,
        hooks: JobHooks | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.output = output
        self.campaign = campaign
        self.retries = retries
        self.on_progress = on_progress or (lambda _: None)
        self.clock = clock
        self.collector = collector
        self.traces = traces
        self.hooks = hooks or JobHooks()
        self.paused_until = 0.0
        self.paused = False  # by a request, until one asks to resume (a new manager starts unpaused)
        self.requests = Requests(store.path)
        self.active: dict[str, Active] = {}
        self.lookups: dict[str, Later] = {}
        self.finishing: dict[str, Later] = {}
        self.dismissing: dict[str, Later] = {}
        self.progress = Progress(Counter())
        self._recount()

    def run(self, stop: threading.Event | None = None) -> Progress:
        """Loop until no job is left to run or ``stop`` is set; return the final counts."""
        stop = stop or threading.Event()
        self.progress.phase = Phase.REATTACHING
        self.on_progress(self.progress)
        self._resume()
        self._poll()  # learn where re-attached jobs are before submitting more (a pool balances on it)
        self.progress.phase = Phase.RUNNING
        poll_min = self.backend.poll_interval
        poll_every = poll_min
        last_poll = 0.0
        if store_paused := self.store.get_meta("paused"):
            log.info("submissions were paused by a request to the last manager; this one submits again")
        if store_paused is not None:
            self.store.set_meta("paused", False)
        while not stop.is_set():
            changed = self._answer_requests()
            changed |= self._follow_up()
            changed |= self._fill(stop)
            if time.monotonic() - last_poll >= poll_every:
                changed |= self._poll()
                changed |= self._enforce_time_limits()
                last_poll = time.monotonic()
                poll_every = poll_min if changed else min(self.backend.poll_max, max(poll_every, 0.01) * POLL_GROWTH)
            self.on_progress(self.progress)
            if changed:
                self.hooks.tell(self.store)
            if not self._in_flight() and not self._work_left():
                break
            if not changed:
                stop.wait(min(REQUESTS_EVERY, self._idle_seconds(poll_every, last_poll)))
        self.hooks.tell(self.store)
        self.on_progress(self.progress)
        return self.progress

    # -- resume -------------------------------------------------------------------------------

    def _resume(self) -> None:
        """Re-attach jobs the store says the backend holds; look up those whose submission is unanswered;
        finish those that succeeded but were not collected."""
        now = self.clock()
        for job in self.store.active():
            if job.backend not in (None, self.backend.name):
                continue
            submitted = _epoch(job.at(State.SUBMITTED)) or now
            if job.remote_id is None:
                self.lookups[job.job_id] = Later(job.job_id, job.attempts, job.state, None, now, since=submitted)
                continue
            started = _epoch(job.at(State.RUNNING)) if job.state is State.RUNNING else None
            self.active[job.job_id] = Active(job.job_id, job.remote_id, job.attempts, job.state, submitted, started)
        for job in self.store.jobs(State.SUCCEEDED):
            self.finishing[job.job_id] = Later(job.job_id, job.attempts, job.state, job.remote_id, now)
        if self.lookups:  # the backend places each unanswered submission among those the store recorded
            earliest = min(later.since for later in self.lookups.values()) - HISTORY
            recorded = self.store.submitted_since(self.backend.name, _iso(earliest))
            self.backend.remember(
                [Submission(j.job_id, j.attempts, _epoch(j.at(State.SUBMITTED)) or now, j.remote_id) for j in recorded]
            )
        if self.active or self.lookups:
            log.info("re-attached %d running jobs; %d submissions to look up", len(self.active), len(self.lookups))

    # -- requests -----------------------------------------------------------------------------

    def _answer_requests(self) -> bool:
        """Apply the requests left beside the store (retry, cancel, pause, resume), each once, and answer them."""
        changed = False
        for request in self.requests.take():
            message = self._grant(request)
            log.info("request %s (%s): %s", request.request_id, request.action.value, message)
            self.requests.answered(request, True, message)
            changed = True
        return changed

    def _grant(self, request: Request) -> str:
        if request.action is Action.PAUSE:
            self.paused = True
            self.store.set_meta("paused", True)
            return "submissions paused; jobs already submitted go on"
        if request.action is Action.RESUME:
            self.paused = False
            self.store.set_meta("paused", False)
            return "submissions resumed"
        if request.action is Action.RETRY:
            chosen = [
                job.job_id
                for job in self.store.jobs(State.FAILED)
                if request.cause is None or job_cause(job) == request.cause
            ]
            n = self.store.requeue({State.FAILED}, job_ids=chosen)
            self._recount()
            of = f" of cause {request.cause!r}" if request.cause else ""
            return f"{n:,} failed jobs{of} back to planned, with fresh attempts"
        cancelled = withdraw(self.store, lambda: self.backend)
        for job_id in cancelled:  # asked to stop on the backend just now: no dismissal or lookup goes on
            self.active.pop(job_id, None)
            self.lookups.pop(job_id, None)
            self.dismissing.pop(job_id, None)
        self._recount()
        return f"{len(cancelled):,} unfinished jobs cancelled"

    def _recount(self) -> None:
        counts: Counter[str] = Counter()
        for state, _, n in self.store.counts():
            counts[state] += n
        self.progress.counts = counts

    # -- submitting ---------------------------------------------------------------------------

    def _fill(self, stop: threading.Event) -> bool:
        if self.paused or self.clock() < self.paused_until:
            return False
        free = self.backend.slots - len(self.active) - len(self.dismissing) - len(self.lookups)
        jobs = self.store.due(free, _iso(self.clock())) if free > 0 else []
        for job in jobs:
            if stop.is_set() or self.clock() < self.paused_until:
                break
            self._submit(job)
        return bool(jobs)

    def _submit(self, job: Job) -> None:
        attempt = job.attempts + 1
        if not self.store.move(job.job_id, Move.SUBMIT, backend=self.backend.name, remote_id=None):
            return
        self.progress.moved(job.state.value, "submitted")
        since = self.clock()
        request = JobRequest(job.job_id, attempt, dict(job.inputs), self._memory_scale(job))
        try:
            with job_errors(f"submitting job {job.job_id}"):
                remote_id = self.backend.submit(request)
        except BackPressure as err:
            self.paused_until = self.clock() + err.retry_after
            log.info("%s: %s; no submissions for %.0f s", job.job_id, err.message, err.retry_after)
            self._move(
                job.job_id,
                State.SUBMITTED,
                Move.DEFER,
                refund=True,
                retry_at=_iso(self.paused_until),
                error=err.message,
                error_kind="backpressure",
            )
            return
        except InDoubt as err:
            log.warning("%s: %s; looking it up before anything is sent again", job.job_id, err.message)
            self.lookups[job.job_id] = Later(
                job.job_id, attempt, State.SUBMITTED, None, self.clock() + err.settle, since=since, reason=err.message
            )
            return
        except JobError as err:
            log.warning("%s: submission failed: %s", job.job_id, err.message)
            self._failed(job.job_id, State.SUBMITTED, attempt, err, kind="submit")
            return
        self.store.note(job.job_id, state=State.SUBMITTED, remote_id=remote_id, backend_status="submitted")
        self.active[job.job_id] = Active(job.job_id, remote_id, attempt, State.SUBMITTED, since)
        log.info("%s: attempt %d submitted to %s as %s", job.job_id, attempt, self.backend.name, remote_id)

    def _memory_scale(self, job: Job) -> float:
        """How much more memory than the package asks this attempt gets, after running out of it."""
        kind = job.error_kind or ""
        if not kind.startswith("run:out_of_memory:"):
            return 1.0
        return self.retries.oom_factor ** int(kind.rsplit(":", 1)[1])

    # -- follow-ups ---------------------------------------------------------------------------

    def _follow_up(self) -> bool:
        """Do the lookups, fetches and dismissals that are due."""
        now = self.clock()
        changed = False
        for later in [x for x in self.lookups.values() if x.due <= now]:
            changed |= self._look_up(later)
        changed |= self._finish_due()
        for later in [x for x in self.dismissing.values() if x.due <= now]:
            changed |= self._dismiss(later)
        return changed

    def _look_up(self, later: Later) -> bool:
        """Find out whether a submission whose answer never came reached the backend."""
        job = self.store.get(later.job_id)
        if job is None or job.state is not State.SUBMITTED or job.attempts != later.attempt:
            del self.lookups[later.job_id]
            return True
        request = JobRequest(job.job_id, later.attempt, dict(job.inputs))
        try:
            with job_errors(f"looking up the submission of job {job.job_id}"):
                found = self.backend.find(request, later.since, self.store.knows_remote)
        except JobError as err:
            later.tries += 1
            if later.tries < LOOKUP_TRIES:
                later.due = self.clock() + self.retries.delay(later.tries)
                log.warning("%s: looking up its submission failed (%s); trying again", job.job_id, err.message)
                return False
            found_reason = f"it could not be looked up ({err.message})"
            del self.lookups[job.job_id]
            self._doubt(job.job_id, later, found_reason)
            return True
        del self.lookups[job.job_id]
        if found.remote_id is not None:
            log.info("%s: its submission reached %s as %s", job.job_id, self.backend.name, found.remote_id)
            self.store.note(job.job_id, state=State.SUBMITTED, remote_id=found.remote_id, backend_status="found")
            self.active[job.job_id] = Active(job.job_id, found.remote_id, later.attempt, State.SUBMITTED, later.since)
        elif found.certain:
            log.info("%s: its submission never reached %s; it is sent again", job.job_id, self.backend.name)
            self._move(
                job.job_id,
                State.SUBMITTED,
                Move.DEFER,
                refund=True,
                attempt=later.attempt,
                retry_at=_iso(self.clock()),
                error="the submission did not reach the backend",
                error_kind="lost",
            )
        else:
            self._doubt(job.job_id, later, found.reason)
        return True

    def _doubt(self, job_id: str, later: Later, why: str) -> None:
        """A submission that may or may not have reached the backend: what ``retries.on_doubt`` says."""
        reason = f"in doubt: {later.reason or 'its submission was not answered'}; {why}"
        policy = self.retries.on_doubt
        log.warning("%s: %s (on_doubt: %s)", job_id, reason, policy)
        if policy == "resubmit":
            self._move(
                job_id,
                State.SUBMITTED,
                Move.DEFER,
                attempt=later.attempt,
                retry_at=_iso(self.clock()),
                error=reason,
                error_kind="doubt:resubmitted",
            )
        elif policy == "fail":
            self._move(
                job_id, State.SUBMITTED, Move.FAIL, attempt=later.attempt, error=reason, error_kind="doubt:failed"
            )
        else:
            self._move(
                job_id,
                State.SUBMITTED,
                Move.DOUBT,
                attempt=later.attempt,
                error=reason + " (`ogc-upscaler retry CONFIG --in-doubt` sends it again)",
                error_kind="doubt",
            )

    def _finish_due(self) -> bool:
        """Fetch and collect the succeeded jobs that are due, recording it as one transaction: a crash before
        it commits leaves them succeeded, and the next run collects them again (it runs none of them again)."""
        now = self.clock()
        due = [x for x in self.finishing.values() if x.due <= now]
        changed = False
        if due:
            with self.store.batch():
                for later in due:
                    changed |= self._finish(later)
        return changed

    def _finish(self, later: Later) -> bool:
        """Fetch a succeeded job's results (unless stored already) and collect them; retried, never re-run."""
        job = self.store.get(later.job_id)
        if job is None or job.state is not State.SUCCEEDED:
            del self.finishing[later.job_id]
            return True
        try:
            outputs = self._results(job, later)
            with job_errors(f"collecting job {job.job_id}", CollectError):
                collected = self.collector(job, outputs, self.output, self.campaign)
        except BackPressure as err:
            later.due = self.clock() + err.retry_after
            return False
        except JobError as err:
            later.tries += 1
            if err.retryable and later.tries < FINISH_TRIES:
                later.due = self.clock() + self.retries.delay(later.tries)
                log.warning("%s: %s; trying again (it is not run again)", job.job_id, err.message)
                return False
            del self.finishing[job.job_id]
            self._trace(job.job_id, later.attempt, err)
            kind = "collect" if isinstance(err, CollectError) else "results"
            why = "permanent" if not err.retryable else f"{later.tries} tries"
            log.error("%s: succeeded but could not be finished (%s): %s", job.job_id, why, err.message)
            self._move(
                job.job_id,
                State.SUCCEEDED,
                Move.FAIL,
                error=f"{kind}: {err.message} (the job succeeded on {job.backend}; it was not run again)",
                error_kind=f"{kind}:{'permanent' if not err.retryable else 'exhausted'}",
            )
            return True
        del self.finishing[job.job_id]
        recorded = JobOutputs(
            catalog=str(outputs.catalog) if outputs.catalog else None,
            raw=outputs.raw,
            item=collected.item,
            cog=collected.cog,
            results=collected.results,
        )
        if self._move(job.job_id, State.SUCCEEDED, Move.COLLECT, outputs=recorded):
            log.info("%s: collected %s", job.job_id, collected.item)
        return True

    def _results(self, job: Job, later: Later) -> Outputs:
        """The job's outputs: as recorded when it succeeded, else fetched now (and recorded)."""
        if job.outputs is not None:
            return Outputs(Path(job.outputs.catalog) if job.outputs.catalog else None, dict(job.outputs.raw))
        if job.remote_id is None:
            raise BackendError(f"job {job.job_id} succeeded without a remote id to fetch it from", retryable=False)
        with job_errors(f"fetching the results of job {job.job_id}"):
            outputs = self.backend.results(job.remote_id)
        kept = JobOutputs(catalog=str(outputs.catalog) if outputs.catalog else None, raw=outputs.raw)
        self.store.note(job.job_id, state=State.SUCCEEDED, outputs=kept)
        return outputs

    def _dismiss(self, later: Later) -> bool:
        """Cancel a job over its time limit; reschedule it once the backend confirmed, or after giving up."""
        assert later.remote_id is not None
        try:
            with job_errors(f"dismissing job {later.job_id}"):
                self.backend.cancel(later.remote_id)
        except JobError as err:
            later.tries += 1
            if err.retryable and later.tries < DISMISS_TRIES:
                later.due = self.clock() + self.retries.delay(later.tries)
                log.warning("%s: dismissing %s failed (%s); trying again", later.job_id, later.remote_id, err.message)
                return False
            log.warning(
                "%s: gave up dismissing remote job %s after %d tries (%s): it may still run there",
                later.job_id,
                later.remote_id,
                later.tries,
                err.message,
            )
            later.reason += f"; remote job {later.remote_id} could not be dismissed and may still run"
        del self.dismissing[later.job_id]
        error = BackendError(later.reason, retryable=True)
        self._failed(later.job_id, later.state, later.attempt, error, kind="timeout")
        return True

    # -- polling ------------------------------------------------------------------------------

    def _poll(self) -> bool:
        if not self.active:
            return False
        by_remote = {a.remote_id: a for a in self.active.values()}
        try:
            with job_errors(f"polling {self.backend.name}"):
                statuses = self.backend.poll(list(by_remote))
        except JobError as err:
            log.warning("polling %s failed (will retry): %s", self.backend.name, err.message)
            return False
        changed = False
        with self.store.batch():  # nothing is asked of the backend on the strength of these moves
            for remote_id, status in statuses.items():
                job = by_remote.get(remote_id)
                if job is not None and job.job_id in self.active:
                    changed |= self._apply(job, status)
        return self._finish_due() or changed

    def _apply(self, job: Active, status: RemoteStatus) -> bool:
        if status.state in (RemoteState.QUEUED, RemoteState.RUNNING):
            if job.state is State.SUBMITTED and status.state is RemoteState.RUNNING:
                self._move(
                    job.job_id,
                    job.state,
                    Move.START,
                    attempt=job.attempt,
                    backend_status=status.raw,
                    log_path=status.log_path,
                )
                self.active[job.job_id] = replace(job, state=State.RUNNING, started=self.clock())
                return True
            return False
        del self.active[job.job_id]
        if status.state is RemoteState.SUCCEEDED:
            if self._move(
                job.job_id,
                job.state,
                Move.SUCCEED,
                attempt=job.attempt,
                backend_status=status.raw,
                log_path=status.log_path,
            ):
                self.finishing[job.job_id] = Later(
                    job.job_id, job.attempt, State.SUCCEEDED, job.remote_id, self.clock()
                )
        elif status.state is RemoteState.CANCELLED:
            self._move(job.job_id, job.state, Move.CANCEL, attempt=job.attempt, backend_status=status.raw)
        elif status.out_of_memory:
            self._out_of_memory(job, status)
        else:
            error = BackendError(status.error or status.raw, retryable=status.retryable)
            self._failed(
                job.job_id,
                job.state,
                job.attempt,
                error,
                kind="run",
                backend_status=status.raw,
                log_path=status.log_path,
            )
        return True

    def _out_of_memory(self, job: Active, status: RemoteStatus) -> None:
        """Retry with ``retries.oom_factor`` times the memory of the last attempt, or fail saying so."""
        record = self.store.get(job.job_id)
        kind = record.error_kind if record else None
        ooms = int(kind.rsplit(":", 1)[1]) + 1 if kind and kind.startswith("run:out_of_memory:") else 1
        message = status.error or f"out of memory ({status.raw})"
        if self.retries.oom_factor <= 1.0:
            message += "; retrying with the same memory would fail again: set retries.oom_factor (e.g. 1.5)"
            error = BackendError(message, retryable=False)
        else:
            message += f"; the next attempt asks {self.retries.oom_factor**ooms:g}× the package's memory"
            error = BackendError(message, retryable=True)
        fields = {"backend_status": status.raw, "log_path": status.log_path}
        self._failed(
            job.job_id, job.state, job.attempt, error, kind="run", error_kind=f"run:out_of_memory:{ooms}", **fields
        )

    def _failed(
        self,
        job_id: str,
        current: State,
        attempt: int,
        err: JobError,
        *,
        kind: str,
        error_kind: str | None = None,
        **fields: Any,
    ) -> None:
        self._trace(job_id, attempt, err)
        if err.retryable and attempt < self.retries.attempts:
            delay = self.retries.delay(attempt)
            log.warning("%s: attempt %d failed (%s); retry in %.0f s", job_id, attempt, err.message, delay)
            self._move(
                job_id,
                current,
                Move.DEFER,
                attempt=attempt,
                error=err.message,
                error_kind=error_kind or f"{kind}:retryable",
                retry_at=_iso(self.clock() + delay),
                **fields,
            )
        else:
            why = "permanent" if not err.retryable else f"no attempts left ({attempt} of {self.retries.attempts})"
            log.error("%s: failed (%s): %s", job_id, why, err.message)
            self._move(
                job_id,
                current,
                Move.FAIL,
                attempt=attempt,
                error=err.message,
                error_kind=error_kind or f"{kind}:{'permanent' if not err.retryable else 'exhausted'}",
                **fields,
            )

    def _enforce_time_limits(self) -> bool:
        """Dismiss jobs queued longer than ``retries.queue_limit_s`` or running longer than ``time_limit_s``."""
        now = self.clock()
        late = []
        for job in self.active.values():
            if job.started is not None and now - job.started > self.retries.time_limit_s:
                late.append((job, f"running for more than the time limit of {self.retries.time_limit_s:.0f} s"))
            elif job.started is None and now - job.submitted > self.retries.queue_limit_s:
                late.append((job, f"queued for more than the queue limit of {self.retries.queue_limit_s:.0f} s"))
        for job, reason in late:
            log.warning("%s: %s; dismissing %s", job.job_id, reason, job.remote_id)
            del self.active[job.job_id]
            self.dismissing[job.job_id] = Later(job.job_id, job.attempt, job.state, job.remote_id, now, reason=reason)
            self._dismiss(self.dismissing[job.job_id])
        return bool(late)

    # -- bookkeeping --------------------------------------------------------------------------

    def _move(self, job_id: str, before: State, move: Move, **fields: Any) -> bool:
        moved = self.store.move(job_id, move, **fields)
        if moved:
            self.progress.moved(before.value, MOVES[move].target.value)
        return moved

    def _trace(self, job_id: str, attempt: int, err: JobError) -> None:
        """Write the traceback of an unexpected error where the job's error message says it is."""
        if err.trace is None:
            return
        log.error("%s: %s\n%s", job_id, err.message, err.trace)
        if self.traces is None:
            return
        self.traces.mkdir(parents=True, exist_ok=True)
        path = self.traces / f"{job_id}-attempt-{attempt}.txt"
        path.write_text(err.trace)
        err.message += f" (traceback: {path})"

    def _in_flight(self) -> bool:
        return bool(self.active or self.lookups or self.finishing or self.dismissing)

    def _work_left(self) -> bool:
        return self.progress.counts["planned"] > 0 or self.progress.counts["waiting"] > 0

    def _idle_seconds(self, poll_every: float, last_poll: float) -> float:
        now = self.clock()
        waits = [max(0.0, poll_every - (time.monotonic() - last_poll))]
        waits += [
            later.due - now for queue in (self.lookups, self.finishing, self.dismissing) for later in queue.values()
        ]
        free = len(self.active) + len(self.dismissing) + len(self.lookups) < self.backend.slots
        if free and not self.paused and self._work_left():  # paused: nothing to submit until resumed
            if now < self.paused_until:
                waits.append(self.paused_until - now)  # never busy-loop while the backend asks us to wait
            elif self.progress.counts["planned"] > 0:
                waits.append(0.0)
            elif (next_retry := self.store.next_retry()) is not None:
                waits.append(_epoch(next_retry) - now)
        return max(0.0, min(waits))


def _iso(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
