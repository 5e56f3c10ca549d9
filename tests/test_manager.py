"""The manager's loop with an in-process backend: retries, failures, stop and resume, reconciliation,
the error boundary, follow-ups retried without re-running, time limits, and memory after running out of it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from ogc_upscaler.backends.base import (
    NOT_THERE,
    BackPressure,
    Found,
    InDoubt,
    JobRequest,
    Outputs,
    RemoteState,
    RemoteStatus,
)
from ogc_upscaler.backends.inprocess import InProcessBackend
from ogc_upscaler.campaign import Retries
from ogc_upscaler.collect import Collected, collect
from ogc_upscaler.errors import BackendError
from ogc_upscaler.manager import Manager
from ogc_upscaler.store import JobStore, Move, State

from .test_store import fill

FAST = Retries(attempts=3, backoff_s=0.01, max_backoff_s=0.05, time_limit_s=60)


def recorded(job, outputs, output, campaign) -> Collected:
    """A collector that records what it was given instead of copying COGs."""
    return Collected(f"items/{job.job_id}.json")


def manager(store: JobStore, function, **kwargs) -> Manager:
    backend = InProcessBackend(function, slots=kwargs.pop("slots", 3))
    return Manager(store, backend, Path("unused"), "test", kwargs.pop("retries", FAST), collector=recorded, **kwargs)


@pytest.fixture
def store(tmp_path):
    with JobStore.open(tmp_path / "jobs.sqlite") as s:
        fill(s, 12)
        yield s


def states(store: JobStore) -> Counter[str]:
    return Counter(job.state.value for job in store.jobs())


def test_every_job_runs_once_and_is_collected_in_plan_order(store) -> None:
    seen: list[str] = []
    progress = manager(store, lambda job: seen.append(job.job_id)).run()
    assert seen == sorted(seen) and len(seen) == 12
    assert progress.counts["collected"] == 12 and states(store) == {"collected": 12} and progress.complete
    job = store.get("job-000000")
    assert job.attempts == 1 and job.outputs.item == "items/job-000000.json" and job.at(State.COLLECTED)


def test_a_job_that_fails_twice_then_succeeds_is_retried_with_back_off(store) -> None:
    calls: Counter[str] = Counter()

    def flaky(job: JobRequest) -> None:
        calls[job.job_id] += 1
        if job.job_id == "job-000004" and calls[job.job_id] <= 2:
            raise RuntimeError("the service is busy")

    manager(store, flaky).run()
    job = store.get("job-000004")
    assert job.state is State.COLLECTED and job.attempts == 3 and calls["job-000004"] == 3
    assert job.error == "the service is busy" and job.at(State.WAITING)
    assert states(store) == {"collected": 12}


def test_one_failing_job_never_stops_the_others(store) -> None:
    def broken(job: JobRequest) -> None:
        if job.job_id == "job-000007":
            raise RuntimeError("always broken")

    progress = manager(store, broken).run()
    assert states(store) == {"collected": 11, "failed": 1} and not progress.complete
    job = store.get("job-000007")
    assert job.attempts == 3 and job.error_kind == "run:exhausted" and "always broken" in job.error


def test_a_permanent_error_fails_at_once(store) -> None:
    def invalid(job: JobRequest) -> None:
        if job.job_id == "job-000002":
            raise ValueError("bad bbox")

    manager(store, invalid).run()
    job = store.get("job-000002")
    assert job.state is State.FAILED and job.attempts == 1 and job.error_kind == "run:permanent"


def test_stop_stops_and_the_next_run_resumes(store) -> None:
    stop = threading.Event()
    done: list[str] = []

    def slow(job: JobRequest) -> None:
        done.append(job.job_id)
        if len(done) == 5:
            stop.set()

    manager(store, slow).run(stop)
    first = states(store)
    assert first["collected"] >= 5 and first["planned"] > 0
    manager(store, slow).run()
    assert states(store) == {"collected": 12}
    assert len(done) == 12


def test_a_submission_that_never_reached_the_backend_is_submitted_again(store) -> None:
    # the manager died after writing `submitted` and before the backend was called
    assert store.move("job-000000", Move.SUBMIT, backend="inprocess")
    calls: Counter[str] = Counter()
    manager(store, lambda job: calls.update([job.job_id])).run()
    job = store.get("job-000000")
    assert job.state is State.COLLECTED and calls["job-000000"] == 1 and job.attempts == 1
    assert states(store) == {"collected": 12}


def test_succeeded_jobs_left_uncollected_are_collected_on_resume(store) -> None:
    store.move("job-000001", Move.SUBMIT, backend="inprocess", remote_id="r")
    store.move("job-000001", Move.SUCCEED)
    calls: Counter[str] = Counter()
    backend = InProcessBackend(lambda job: calls.update([job.job_id]), slots=3)
    backend._outputs["r"] = None  # the results this process still holds
    Manager(store, backend, Path("unused"), "test", FAST, collector=recorded).run()
    assert store.get("job-000001").state is State.COLLECTED and calls["job-000001"] == 0


def test_a_run_killed_while_collecting_a_pass_keeps_none_of_it_and_the_next_runs_nothing_again(store) -> None:
    calls: Counter[str] = Counter()
    collected: list[str] = []

    def dies_at_the_fifth(job, outputs, output, campaign) -> Collected:
        collected.append(job.job_id)
        if len(collected) == 5:
            raise KeyboardInterrupt  # the manager dies here, in the middle of its second pass's collections
        return recorded(job, outputs, output, campaign)

    backend = InProcessBackend(lambda job: calls.update([job.job_id]), slots=3)
    with pytest.raises(KeyboardInterrupt):
        Manager(store, backend, Path("unused"), "test", FAST, collector=dies_at_the_fifth).run()
    assert states(store) == {"collected": 3, "succeeded": 3, "planned": 6}  # the 4th's collection went with its pass
    Manager(store, backend, Path("unused"), "test", FAST, collector=recorded).run()
    assert states(store) == {"collected": 12} and set(calls.values()) == {1}


def test_progress_counts_match_the_store(store) -> None:
    def broken(job: JobRequest) -> None:
        if job.job_id.endswith("3"):
            raise ValueError("no")

    progress = manager(store, broken).run()
    assert +progress.counts == states(store)
    assert progress.done == 12 and progress.finished_this_run == 12


def test_back_pressure_delays_submissions_without_costing_attempts(store) -> None:
    refusals: Counter[str] = Counter()

    def busy(job: JobRequest) -> None:
        if job.job_id == "job-000005" and refusals[job.job_id] < 2:
            refusals[job.job_id] += 1
            raise BackPressure("HTTP 429", retry_after=0.1)

    start = time.monotonic()
    manager(store, busy).run()
    job = store.get("job-000005")
    assert job.state is State.COLLECTED and job.attempts == 1 and refusals["job-000005"] == 2
    assert job.error_kind == "backpressure" and time.monotonic() - start >= 0.2
    assert states(store) == {"collected": 12}


class CountingStore(JobStore):
    """A store that counts the queries the manager makes (to catch busy loops)."""

    queries = 0

    def due(self, limit: int, at: str):
        CountingStore.queries += 1
        return super().due(limit, at)

    def next_retry(self):
        CountingStore.queries += 1
        return super().next_retry()


def test_the_manager_sleeps_while_the_backend_asks_it_to_wait(tmp_path) -> None:
    """A job due again while the backend asked for a pause made the manager spin (121,998 store queries and
    2 s of CPU in a pause of 2.6 s, measured on the code before the fix)."""
    with CountingStore.open(tmp_path / "jobs.sqlite") as store:
        fill(store, 2)
        seen: Counter[str] = Counter()

        def busy(job: JobRequest) -> None:  # the first job fails once (due again at once), the second is refused
            seen[job.job_id] += 1
            if job.job_id == "job-000000" and seen[job.job_id] == 1:
                raise RuntimeError("flaky")
            if job.job_id == "job-000001" and seen[job.job_id] == 1:
                raise BackPressure("HTTP 429", retry_after=1.0)

        CountingStore.queries = 0
        start, cpu = time.monotonic(), time.process_time()
        manager(store, busy).run()
        elapsed = time.monotonic() - start
        assert states(store) == {"collected": 2} and elapsed >= 1.0
        assert CountingStore.queries < 100, f"{CountingStore.queries} store queries in {elapsed:.1f} s"
        assert time.process_time() - cpu < 0.5


# -- the boundary: whatever a backend or the collector raises is one job's error ----------------


class Faulty(InProcessBackend):
    """An in-process backend whose calls raise what lower libraries raise, for the jobs named."""

    def __init__(self, faults: dict[str, BaseException], where: str, **kwargs) -> None:
        super().__init__(lambda job: None, slots=3, **kwargs)
        self.faults, self.where = faults, where
        self.owner: dict[str, str] = {}

    def submit(self, job: JobRequest) -> str:
        if self.where == "submit" and job.job_id in self.faults:
            raise self.faults[job.job_id]
        remote_id = super().submit(job)
        self.owner[remote_id] = job.job_id
        return remote_id

    def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        if self.where == "poll" and any(self.owner.get(r) in self.faults for r in remote_ids):
            self.where = "done"  # one broken poll; the next one answers
            raise KeyError("jobs")
        return super().poll(remote_ids)

    def results(self, remote_id: str) -> Outputs:
        if self.where == "results" and self.owner.get(remote_id) in self.faults:
            raise self.faults[self.owner[remote_id]]
        return super().results(remote_id)


@pytest.mark.parametrize(
    ("where", "error", "kind"),
    [
        ("submit", FileNotFoundError(2, "No such file or directory: 'cwltool'"), "submit:exhausted"),
        ("submit", KeyError("access_token"), "submit:permanent"),
        ("results", TypeError("'NoneType' object is not subscriptable"), "results:permanent"),
    ],
)
def test_an_unexpected_exception_fails_its_job_alone_with_its_traceback(tmp_path, where, error, kind) -> None:
    with JobStore.open(tmp_path / "jobs.sqlite") as store:
        fill(store, 6)
        backend = Faulty({"job-000002": error}, where)
        traces = tmp_path / "traces"
        progress = Manager(store, backend, tmp_path, "test", FAST, collector=recorded, traces=traces).run()
        assert progress.counts["collected"] == 5 and progress.counts["failed"] == 1
        job = store.get("job-000002")
        assert job.state is State.FAILED and job.error_kind == kind, job.error
        assert type(error).__name__ in job.error and "traceback:" in job.error
        trace = sorted(traces.glob("job-000002-attempt-*.txt"))[-1]
        assert "Traceback" in trace.read_text() and type(error).__name__ in trace.read_text()


def test_a_poll_that_breaks_is_asked_again(store) -> None:
    backend = Faulty({"job-000003": KeyError("x")}, "poll")
    Manager(store, backend, Path("unused"), "test", FAST, collector=recorded).run()
    assert states(store) == {"collected": 12} and backend.where == "done"


def test_an_output_the_collector_cannot_read_fails_that_job_alone_on_every_run(tmp_path) -> None:
    """A complex64 COG (pystac has no such raster data type) used to end `run` on every resume."""
    folder = tmp_path / "outputs"
    folder.mkdir()

    def produce(job: JobRequest) -> Path:
        import pystac

        kind = "complex64" if job.job_id == "job-000001" else "float32"
        out = folder / job.job_id
        out.mkdir()
        profile = dict(driver="COG", width=32, height=32, count=1, dtype=kind, crs="EPSG:32632",
                       transform=from_origin(600000, 5300000, 10, 10))  # fmt: skip
        with rasterio.open(out / "data.tif", "w", **profile) as dst:
            dst.write(np.ones((32, 32), dtype=kind), 1)
        item = pystac.Item(job.job_id, None, None, pystac.utils.str_to_datetime("2024-01-01T00:00:00Z"), {})
        item.add_asset("data", pystac.Asset(str(out / "data.tif"), media_type=pystac.MediaType.COG, roles=["data"]))
        catalog = pystac.Catalog("out", "outputs")
        catalog.add_item(item)
        catalog.normalize_and_save(str(out), pystac.CatalogType.SELF_CONTAINED)
        return out / "catalog.json"

    with JobStore.open(tmp_path / "jobs.sqlite") as store:
        fill(store, 3)
        for _ in range(2):  # and again, as a resume would
            backend = InProcessBackend(produce, slots=3)
            Manager(store, backend, tmp_path / "catalog", "test", FAST, collector=collect).run()
        assert states(store) == {"collected": 2, "failed": 1}
        job = store.get("job-000001")
        assert job.error_kind == "collect:permanent" and "complex64" in job.error and "not run again" in job.error


# -- follow-ups: results fetched with back-off, never re-run; dismissals confirmed -------------------


class Remote(InProcessBackend):
    """An in-process backend with remote manners: results that fail a few times, jobs that stay queued or
    run until dismissed, dismissals that fail a few times."""

    def __init__(self, *, result_failures: int = 0, dismiss_failures: int = 0, hold: str = "", started=True):
        super().__init__(self._run, slots=3)
        self.runs: Counter[str] = Counter()
        self.result_failures, self.dismiss_failures = result_failures, dismiss_failures
        self.hold, self.started = hold, started
        self.dismiss_calls = 0
        self.dismissed: set[str] = set()

    def _run(self, job: JobRequest) -> None:
        self.runs[job.job_id] += 1

    def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        held = [r for r in remote_ids if self._job_of.get(r, ("", 0))[0] == self.hold and r not in self.dismissed]
        out = super().poll([r for r in remote_ids if r not in held])
        state = RemoteState.RUNNING if self.started else RemoteState.QUEUED
        return {**out, **{r: RemoteStatus(state, state.value) for r in held}}

    def results(self, remote_id: str) -> Outputs:
        if self.result_failures:
            self.result_failures -= 1
            raise BackendError("fetching results: HTTP 500", retryable=True)
        return super().results(remote_id)

    def cancel(self, remote_id: str) -> None:
        self.dismiss_calls += 1
        if self.dismiss_failures:
            self.dismiss_failures -= 1
            raise BackendError("DELETE: HTTP 502", retryable=True)
        self.dismissed.add(remote_id)
        super().cancel(remote_id)


def test_results_that_cannot_be_fetched_for_a_while_are_fetched_later_never_run_again(store) -> None:
    backend = Remote(result_failures=7)
    Manager(store, backend, Path("unused"), "test", FAST, collector=recorded).run()
    assert states(store) == {"collected": 12}
    assert set(backend.runs.values()) == {1}


def test_results_that_never_come_fail_the_job_without_running_it_again(store) -> None:
    backend = Remote(result_failures=10_000)
    Manager(store, backend, Path("unused"), "test", FAST, collector=recorded).run()
    assert states(store) == {"failed": 12} and set(backend.runs.values()) == {1}
    job = store.get("job-000000")
    assert job.error_kind == "results:exhausted" and "not run again" in job.error


def test_a_job_over_its_time_limit_is_dismissed_with_retries_before_it_runs_again(store) -> None:
    limits = Retries(attempts=2, backoff_s=0.01, max_backoff_s=0.05, time_limit_s=0.3)
    backend = Remote(dismiss_failures=3, hold="job-000004")
    Manager(store, backend, Path("unused"), "test", limits, collector=recorded).run()
    job = store.get("job-000004")
    assert job.state is State.FAILED and "time limit" in job.error and backend.runs["job-000004"] == 2
    assert backend.dismiss_calls == 2 * 1 + 3  # two attempts dismissed, after three failed tries
    assert states(store) == {"collected": 11, "failed": 1}


def test_a_dismissal_given_up_names_the_remote_job(store, caplog) -> None:
    limits = Retries(attempts=1, backoff_s=0.01, max_backoff_s=0.02, time_limit_s=0.2)
    backend = Remote(dismiss_failures=100, hold="job-000004")
    Manager(store, backend, Path("unused"), "test", limits, collector=recorded).run()
    job = store.get("job-000004")
    assert job.state is State.FAILED and "could not be dismissed" in job.error and job.remote_id in job.error
    assert any("gave up dismissing" in r.message and job.remote_id in r.message for r in caplog.records)


def test_queue_time_and_running_time_have_their_own_limits(store) -> None:
    limits = Retries(attempts=1, backoff_s=0.01, time_limit_s=60, queue_limit_s=0.3)
    backend = Remote(hold="job-000006", started=False)
    Manager(store, backend, Path("unused"), "test", limits, collector=recorded).run()
    assert "queue limit" in store.get("job-000006").error
    with JobStore.open(store.path.with_name("other.sqlite")) as other:
        fill(other, 3)
        long_queue = Retries(attempts=1, backoff_s=0.01, time_limit_s=0.3, queue_limit_s=60)
        backend = Remote(hold="job-000001", started=True)
        Manager(other, backend, Path("unused"), "test", long_queue, collector=recorded).run()
        assert "running for more than" in other.get("job-000001").error


class OutOfMemory(InProcessBackend):
    """Fails a job for memory until it is given at least ``enough`` times the package's memory."""

    def __init__(self, enough: float) -> None:
        super().__init__(lambda job: None, slots=2)
        self.enough = enough
        self.asked: list[float] = []

    def submit(self, job: JobRequest) -> str:
        self.asked.append(job.memory_scale)
        remote_id = super().submit(job)
        if job.memory_scale < self.enough:
            self._finished[remote_id] = RemoteStatus(RemoteState.FAILED, "OUT_OF_MEMORY", out_of_memory=True)
        return remote_id


def test_a_job_out_of_memory_is_retried_with_more_memory(tmp_path) -> None:
    with JobStore.open(tmp_path / "jobs.sqlite") as store:
        fill(store, 1)
        backend = OutOfMemory(enough=2.0)
        limits = Retries(attempts=3, backoff_s=0.01, oom_factor=1.5)
        Manager(store, backend, tmp_path, "test", limits, collector=recorded).run()
        assert backend.asked == [1.0, 1.5, 2.25] and store.get("job-000000").state is State.COLLECTED


def test_a_job_out_of_memory_fails_with_the_reason_when_memory_may_not_grow(tmp_path) -> None:
    with JobStore.open(tmp_path / "jobs.sqlite") as store:
        fill(store, 1)
        backend = OutOfMemory(enough=2.0)
        limits = Retries(attempts=3, backoff_s=0.01, oom_factor=1.0)
        Manager(store, backend, tmp_path, "test", limits, collector=recorded).run()
        job = store.get("job-000000")
        assert backend.asked == [1.0] and job.state is State.FAILED and "oom_factor" in job.error


# -- submissions whose answer was lost ------------------------------------------------------------


class Lossy(InProcessBackend):
    """Creates every job, but loses the answer for the jobs named; ``find`` answers as told."""

    def __init__(self, lost: set[str], finds: Callable[[JobRequest, str | None], Found]) -> None:
        super().__init__(self._run, slots=3)
        self.lost, self.finds = lost, finds
        self.runs: Counter[str] = Counter()
        self.created: dict[tuple[str, int], str] = {}

    def _run(self, job: JobRequest) -> None:
        self.runs[job.job_id] += 1

    def submit(self, job: JobRequest) -> str:
        remote_id = super().submit(job)
        self.created[(job.job_id, job.attempt)] = remote_id
        if job.job_id in self.lost:
            self.lost.discard(job.job_id)
            raise InDoubt("POST: RemoteDisconnected after the request was sent")
        return remote_id

    def find(self, job: JobRequest, since: float, known: Callable[[str], bool]) -> Found:
        return self.finds(job, self.created.get((job.job_id, job.attempt)))


def test_a_lost_answer_found_in_the_backend_is_adopted_not_sent_again(store) -> None:
    backend = Lossy({"job-000003", "job-000007"}, lambda job, created: Found(created))
    Manager(store, backend, Path("unused"), "test", FAST, collector=recorded).run()
    assert states(store) == {"collected": 12} and set(backend.runs.values()) == {1}
    assert store.get("job-000003").attempts == 1


def test_a_lost_submission_the_backend_never_got_is_sent_again(store) -> None:
    backend = Lossy({"job-000003"}, lambda job, created: NOT_THERE)
    Manager(store, backend, Path("unused"), "test", FAST, collector=recorded).run()
    assert states(store) == {"collected": 12} and store.get("job-000003").attempts == 1


@pytest.mark.parametrize(
    ("policy", "state", "runs"),
    [("wait", State.IN_DOUBT, 1), ("fail", State.FAILED, 1), ("resubmit", State.COLLECTED, 2)],
)
def test_a_submission_that_cannot_be_decided_follows_on_doubt(store, policy, state, runs) -> None:
    undecided = Found(None, certain=False, reason="2 jobs nobody here knows appeared")
    backend = Lossy({"job-000003"}, lambda job, created: undecided)
    retries = Retries(attempts=3, backoff_s=0.01, on_doubt=policy)
    progress = Manager(store, backend, Path("unused"), "test", retries, collector=recorded).run()
    job = store.get("job-000003")
    assert job.state is state and backend.runs["job-000003"] == runs
    assert "in doubt" in job.error and "nobody here knows" in job.error and job.error_kind.startswith("doubt")
    assert progress.counts["collected"] == 11 + (policy == "resubmit")


def test_a_job_in_doubt_is_sent_again_after_retry_in_doubt(store) -> None:
    undecided = Found(None, certain=False, reason="no job list")
    backend = Lossy({"job-000003"}, lambda job, created: undecided)
    Manager(store, backend, Path("unused"), "test", FAST, collector=recorded).run()
    assert store.get("job-000003").state is State.IN_DOUBT
    assert store.resubmit_in_doubt() == 1
    Manager(store, backend, Path("unused"), "test", FAST, collector=recorded).run()
    assert store.get("job-000003").state is State.COLLECTED and backend.runs["job-000003"] == 2
