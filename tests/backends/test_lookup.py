"""Matching unanswered Part 1 submissions with the server's job list: by the order of submissions (no clock
compared), by a clock window after a restart, and never when the list cannot decide."""

from __future__ import annotations

from ogc_upscaler.backends.ogcapi.lookup import Ledger, Listed, Sent, find_listed


def url(job: str) -> str:
    return f"http://h/jobs/{job}"


def scenario(sent: list[tuple[str, str | None]], server: list[tuple[str, float]]) -> tuple[Ledger, list[Listed]]:
    """``sent``: (job, remote job or None when its answer was lost) in submission order; ``server``: its jobs
    and their creation times, on its own clock (ours is never compared in this order)."""
    ledger = Ledger()
    for i, (job, remote) in enumerate(sent):
        ledger.add(Sent(job, 1, 1000.0 + i, 1000.1 + i, url(remote) if remote else None))
    return ledger, [Listed(j, "count", "successful", created) for j, created in server]


def known_of(ledger: Ledger):
    return lambda u: any(s.remote == u for s in ledger.sent)


def find(ledger: Ledger, listed: list[Listed], job: str, window=(0.0, 0.0)):
    return find_listed(listed, url, known_of(ledger), ledger, job, 1, window)


SERVER_CLOCK = 5_000_000.0  # hours away from ours: only the server's own order is used


def test_one_lost_answer_between_two_answered_ones_is_the_one_new_job_between_them() -> None:
    ledger, listed = scenario(
        [("a", "r1"), ("b", None), ("c", "r3")],
        [("r1", SERVER_CLOCK + 1), ("r2", SERVER_CLOCK + 2), ("r3", SERVER_CLOCK + 3), ("older", SERVER_CLOCK - 50)],
    )
    assert find(ledger, listed, "b").remote_id == url("r2")


def test_several_lost_answers_in_a_row_match_their_jobs_in_order() -> None:
    ledger, listed = scenario(
        [("a", "r1"), ("b", None), ("c", None), ("d", "r4")],
        [("r1", SERVER_CLOCK + 1), ("r3", SERVER_CLOCK + 3), ("r2", SERVER_CLOCK + 2), ("r4", SERVER_CLOCK + 4)],
    )
    assert find(ledger, listed, "b").remote_id == url("r2")
    assert find(ledger, listed, "c").remote_id == url("r3")


def test_a_lost_request_the_server_never_got_leaves_no_new_job() -> None:
    ledger, listed = scenario([("a", "r1"), ("b", None), ("c", "r3")], [("r1", SERVER_CLOCK), ("r3", SERVER_CLOCK + 2)])
    found = find(ledger, listed, "b")
    assert found.remote_id is None and found.certain


def test_the_last_submission_before_a_restart_has_no_answered_one_after_it() -> None:
    ledger, listed = scenario([("a", "r1"), ("b", None)], [("r1", SERVER_CLOCK), ("r2", SERVER_CLOCK + 1)])
    assert find(ledger, listed, "b").remote_id == url("r2")


def test_more_new_jobs_than_lost_answers_cannot_be_decided() -> None:
    """Another client uses the same process: which new job is ours?"""
    ledger, listed = scenario(
        [("a", "r1"), ("b", None), ("c", "r3")],
        [("r1", SERVER_CLOCK + 1), ("x", SERVER_CLOCK + 1.5), ("r2", SERVER_CLOCK + 2), ("r3", SERVER_CLOCK + 3)],
    )
    found = find(ledger, listed, "b")
    assert found.remote_id is None and not found.certain and "2 jobs nobody here knows" in found.reason


def test_fewer_new_jobs_than_lost_answers_cannot_be_decided() -> None:
    ledger, listed = scenario(
        [("a", "r1"), ("b", None), ("c", None), ("d", "r4")],
        [("r1", SERVER_CLOCK + 1), ("r3", SERVER_CLOCK + 3), ("r4", SERVER_CLOCK + 4)],
    )
    assert not find(ledger, listed, "b").certain and not find(ledger, listed, "c").certain


def test_without_a_ledger_the_job_created_while_the_request_could_be_handled_is_found() -> None:
    listed = [Listed("mine", "count", "running", 1000.3), Listed("old", "count", "successful", 900.0)]
    found = find_listed(listed, url, lambda u: False, Ledger(), "b", 1, (1000.0, 1060.0))
    assert found.remote_id == url("mine")
    two = [*listed, Listed("another", "count", "running", 1001.0)]
    assert not find_listed(two, url, lambda u: False, Ledger(), "b", 1, (1000.0, 1060.0)).certain


def test_a_server_without_creation_times_cannot_decide() -> None:
    ledger, _ = scenario([("a", "r1"), ("b", None)], [])
    listed = [Listed("r1", "count", "successful", None), Listed("r2", "count", "running", None)]
    assert not find(ledger, listed, "b").certain
