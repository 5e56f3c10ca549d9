"""Requests to the manager: left beside the store, claimed, applied at most once, answered; and the manager
applying them (pause, resume, retry of one cause of failure, cancel) while it runs or when it starts."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from ogc_upscaler.backends.base import JobRequest
from ogc_upscaler.causes import job_cause
from ogc_upscaler.control import Action, Request, Requests
from ogc_upscaler.errors import InvalidInput
from ogc_upscaler.store import JobStore

from .conftest import wait_for
from .test_manager import manager
from .test_store import fill


def states(store: JobStore) -> Counter[str]:
    return Counter(job.state.value for job in store.jobs())


def test_a_request_waits_is_claimed_once_and_shows_its_answer(tmp_path) -> None:
    requests = Requests(tmp_path / "jobs.sqlite")
    asked = requests.ask(Request.new("retry", "run: bad bbox #"))
    assert [(s.request, s.answer) for s in requests.shown()] == [(asked, None)]
    taken = list(requests.take())
    assert taken == [asked] and list(requests.take()) == []  # claimed: nobody takes it again
    requests.answered(asked, True, "2 failed jobs back to planned")
    (shown,) = requests.shown()
    assert shown.request == asked and shown.answer.applied and shown.answer.message.startswith("2 failed")


def test_a_request_claimed_by_a_manager_that_died_is_answered_lost_never_applied_again(tmp_path) -> None:
    requests = Requests(tmp_path / "jobs.sqlite")
    asked = requests.ask(Request.new("cancel"))
    next(iter(requests.take()))  # claimed, then the manager dies before answering
    assert list(Requests(tmp_path / "jobs.sqlite").take()) == []
    (shown,) = requests.shown()
    assert shown.request.action is Action.CANCEL and not shown.answer.applied and "lost" in shown.answer.message
    assert shown.request == asked


@pytest.mark.parametrize(
    ("action", "cause_", "message"),
    [("restart", None, "unknown action 'restart'"), ("pause", "run: x", "a cause only narrows a retry")],
)
def test_a_bad_request_is_refused_saying_what_is_allowed(action, cause_, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        Request.new(action, cause_)


@pytest.fixture
def store(tmp_path):
    with JobStore.open(tmp_path / "jobs.sqlite") as s:
        fill(s, 12)
        yield s


def running(path, function) -> threading.Thread:
    """A manager running in a thread, on its own connection to the store at ``path``."""

    def go() -> None:
        with JobStore.open(path) as store:
            manager(store, function).run()

    thread = threading.Thread(target=go)
    thread.start()
    return thread


def meta(path, key):
    with JobStore.read(path) as store:
        return store.get_meta(key)


def read_states(path) -> Counter[str]:
    with JobStore.read(path) as store:
        return states(store)


def paused(tmp_path, function) -> tuple[Path, Requests, threading.Thread]:
    """A manager of 12 planned jobs running in a thread, once it has applied a request to pause."""
    path = tmp_path / "jobs.sqlite"
    with JobStore.open(path) as store:
        fill(store, 12)
    requests = Requests(path)
    requests.ask(Request.new("pause"))
    thread = running(path, function)
    wait_for(lambda: bool(meta(path, "paused")))
    return path, requests, thread


def test_a_paused_manager_submits_nothing_until_resumed(tmp_path) -> None:
    ran: list[str] = []
    path, requests, thread = paused(tmp_path, lambda job: ran.append(job.job_id))
    assert ran == [] and thread.is_alive()  # paused with planned jobs left: it waits, it does not end
    requests.ask(Request.new("resume"))
    thread.join(60)
    assert not thread.is_alive() and len(ran) == 12 and read_states(path) == {"collected": 12}
    answers = [s.answer.message for s in requests.shown()]
    assert answers == ["submissions resumed", "submissions paused; jobs already submitted go on"]
    assert meta(path, "paused") is False


def test_a_retry_of_one_cause_requeues_only_its_jobs_when_the_next_manager_starts(store) -> None:
    def broken(job: JobRequest) -> None:
        if job.job_id in {"job-000002", "job-000005"}:
            raise ValueError(f"band B08 missing in /data/{job.job_id}.tif")
        if job.job_id == "job-000007":
            raise ValueError("no space left on device")

    manager(store, broken).run()
    assert states(store) == {"collected": 9, "failed": 3}
    missing = job_cause(store.get("job-000002"))
    assert missing == job_cause(store.get("job-000005")) == "run: band B08 missing in <path>"
    requests = Requests(store.path)
    requests.ask(Request.new("retry", missing))
    again: list[str] = []
    manager(store, lambda job: again.append(job.job_id)).run()  # no manager ran: the next one takes it first
    assert sorted(again) == ["job-000002", "job-000005"]
    assert states(store) == {"collected": 11, "failed": 1} and store.get("job-000007").state.value == "failed"
    assert store.get("job-000002").attempts == 1
    (shown,) = requests.shown()
    assert shown.answer.message.startswith("2 failed jobs of cause")


def test_a_cancel_withdraws_every_unfinished_job_and_ends_the_run(tmp_path) -> None:
    path, requests, thread = paused(tmp_path, lambda job: None)
    requests.ask(Request.new("cancel"))
    thread.join(60)
    assert not thread.is_alive() and read_states(path) == {"cancelled": 12}
    assert requests.shown()[0].answer.message == "12 unfinished jobs cancelled"


def test_a_file_that_is_no_request_is_answered_never_raised_and_named_by_its_file(tmp_path) -> None:
    requests = Requests(tmp_path / "jobs.sqlite")
    requests.folder.mkdir()
    (requests.folder / "0001-list.json").write_text("[1, 2]")
    (requests.folder / "0002-null.json").write_text('{"request_id": "other", "action": "pause", "asked_at": null}')
    (requests.folder / "0003-cause.json").write_text('{"action": "retry", "cause": 5}')
    taken = list(requests.take())
    assert [r.request_id for r in taken] == ["0002-null"] and taken[0].action is Action.PAUSE
    requests.answered(taken[0], True, "paused")
    answers = {s.request.request_id: s.answer for s in requests.shown()}
    assert set(answers) == {"0001-list", "0002-null", "0003-cause"}
    assert not answers["0001-list"].applied and "unreadable" in answers["0001-list"].message
    assert answers["0002-null"].applied
    assert sorted(p.suffix for p in requests.folder.iterdir()) == [".done"] * 3  # no claim left behind
    assert list(requests.take()) == []


def test_a_claim_left_beside_its_answer_is_let_go_not_answered_lost(tmp_path) -> None:
    requests = Requests(tmp_path / "jobs.sqlite")
    asked = requests.ask(Request.new("pause"))
    (request,) = requests.take()
    requests.answered(request, True, "submissions paused")
    (requests.folder / f"{asked.request_id}.taken").write_text(asked.to_json())  # died before unlinking it
    assert list(requests.take()) == []
    (shown,) = requests.shown()
    assert shown.answer.applied and not (requests.folder / f"{asked.request_id}.taken").exists()
