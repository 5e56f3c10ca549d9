"""The backend contract: what every backend must do, whatever runs the jobs, as tests any backend can run.

A :class:`Harness` gives a backend (a fresh instance each time, as a restarted manager builds
it), requests for jobs that are quick, slow or failing, and a way to see from outside what the
backend really did: how many times each job's work ran, and whether it still runs.
:class:`Contract` holds the tests; a backend's test module subclasses it with its harness.

The interruptions are those a manager killed at any instant leaves: before the submission,
after it but before the remote id was stored, while fetching results, while cancelling.
After each, a new backend instance must find out what happened without running anything twice.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import pytest

from ogc_upscaler.backends.base import FINISHED, Backend, JobRequest, RemoteState, RemoteStatus
from ogc_upscaler.boundary import job_errors
from ogc_upscaler.errors import BackendError

#: Seconds any one wait of the contract may take on a busy machine before it fails.
DEADLINE = 300.0


class Harness(ABC):
    """One backend under test, and an outside view of the work it runs."""

    #: Whether cancelling really stops work that runs (a server whose dismiss only forgets the job does not).
    cancel_stops: ClassVar[bool] = True
    #: Whether a job can be slow enough to be cancelled while it runs (an in-process call is over at once).
    runs_detached: ClassVar[bool] = True
    #: Whether a failed job is retried: a server that cannot say whether trying again may help (OGC API).
    failure_retryable: ClassVar[bool] = False

    def __init__(self) -> None:
        self.known: set[str] = set()  # the remote ids the campaign's store would hold

    def submit(self, backend: Backend, request: JobRequest) -> str:
        """Submit as a manager does: the remote id is recorded."""
        remote_id = backend.submit(request)
        self.known.add(remote_id)
        return remote_id

    def knows(self, remote_id: str) -> bool:
        return remote_id in self.known

    @abstractmethod
    def backend(self) -> Backend:
        """A new instance of the backend, as a manager started again builds it."""

    @abstractmethod
    def request(self, job_id: str, attempt: int = 1, *, seconds: float = 0.0, broken: bool = False) -> JobRequest:
        """A request for job ``job_id``: taking ``seconds``, or failing for good (``broken``)."""

    @abstractmethod
    def executions(self, job_id: str) -> int:
        """How many times the job's work started, seen from outside the backend."""

    @abstractmethod
    def running(self, job_id: str) -> bool:
        """Whether the job's work runs now, seen from outside the backend."""


def wait_for(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.2)


def settle(backend: Backend, remote_id: str) -> RemoteStatus:
    """Poll until the job finished; its last status."""
    seen: list[RemoteStatus] = []

    def finished() -> bool:
        status = backend.poll([remote_id]).get(remote_id)
        if status is not None:
            seen.append(status)
        return bool(seen) and seen[-1].state in FINISHED

    wait_for(finished, f"{remote_id} to finish")
    return seen[-1]


class Contract:
    """The tests every backend passes; subclasses provide the ``harness`` fixture."""

    @pytest.fixture
    def harness(self) -> Harness:
        raise NotImplementedError

    def test_a_job_runs_once_and_its_results_can_be_fetched_again(self, harness: Harness) -> None:
        backend = harness.backend()
        remote = harness.submit(backend, harness.request("once"))
        assert settle(backend, remote).state is RemoteState.SUCCEEDED
        first, second = backend.results(remote), harness.backend().results(remote)
        assert first.raw == second.raw and (first.catalog is None) == (second.catalog is None)
        assert harness.executions("once") == 1

    def test_interrupted_before_the_submission_nothing_is_found_and_it_runs_once(self, harness: Harness) -> None:
        request = harness.request("before")
        found = harness.backend().find(request, time.time(), harness.knows)
        assert found.remote_id is None and found.certain, found
        backend = harness.backend()
        assert settle(backend, harness.submit(backend, request)).state is RemoteState.SUCCEEDED
        assert harness.executions("before") == 1

    def test_interrupted_before_the_remote_id_was_stored_it_is_found_not_run_again(self, harness: Harness) -> None:
        request = harness.request("after")
        since = time.time()
        remote = harness.backend().submit(request)  # ...and the manager died before storing ``remote``
        restarted = harness.backend()
        found = restarted.find(request, since, harness.knows)
        assert found.remote_id is not None, found
        assert settle(restarted, found.remote_id).state is RemoteState.SUCCEEDED
        assert restarted.results(found.remote_id).raw == harness.backend().results(remote).raw
        assert harness.executions("after") == 1
        harness.known.add(found.remote_id)
        other = harness.request("after", attempt=2)  # another attempt's submission is not this one
        assert harness.backend().find(other, time.time(), harness.knows).remote_id is None

    def test_interrupted_while_fetching_results_they_are_fetched_again(self, harness: Harness) -> None:
        backend = harness.backend()
        remote = harness.submit(backend, harness.request("fetch"))
        settle(backend, remote)
        del backend  # the manager died while it fetched the results
        restarted = harness.backend()
        assert settle(restarted, remote).state is RemoteState.SUCCEEDED
        assert restarted.results(remote).raw is not None and harness.executions("fetch") == 1

    def test_a_failure_is_classified(self, harness: Harness) -> None:
        backend = harness.backend()
        try:
            with job_errors("submitting"):
                remote = harness.submit(backend, harness.request("broken", broken=True))
        except BackendError as err:  # refused at once: permanent
            assert not err.retryable, err.message
            return
        status = settle(backend, remote)
        assert status.state is RemoteState.FAILED and status.error, status
        assert status.retryable is harness.failure_retryable, status

    def test_cancel_stops_the_work_and_may_be_repeated(self, harness: Harness) -> None:
        if not harness.runs_detached:
            pytest.skip("this backend runs a job within its submission: there is nothing to cancel while it runs")
        backend = harness.backend()
        remote = harness.submit(backend, harness.request("slow", seconds=120))

        def started() -> bool:
            backend.poll([remote])  # as a manager would: some backends start queued work when polled
            return harness.running("slow") and harness.executions("slow") == 1

        wait_for(started, "the slow job to run")
        backend.cancel(remote)
        harness.backend().cancel(remote)  # the manager died while cancelling, and cancels again
        if harness.cancel_stops:
            wait_for(lambda: not harness.running("slow"), "the cancelled job to stop")
        status = settle(harness.backend(), remote)  # cancelled, killed, or forgotten by the server
        assert status.state in (RemoteState.CANCELLED, RemoteState.FAILED, RemoteState.LOST), status
        assert harness.executions("slow") == 1
        harness.backend().cancel(remote)  # a finished job: fine
