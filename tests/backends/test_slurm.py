"""SLURM's command line against real daemons (scripts/slurm.sh): states in bulk, exit codes, cancel."""

from __future__ import annotations

import time

import pytest

from ogc_upscaler.backends import slurm as sl
from ogc_upscaler.backends.base import RemoteState
from ogc_upscaler.errors import BackendError

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("slurm")]


def test_states_of_many_jobs_in_one_call(tmp_path) -> None:
    def submit(name: str, script: str) -> str:
        return sl.submit(script, name=name, output=str(tmp_path / f"{name}.log"), workdir=str(tmp_path),
                         options=["--mem=50"])  # fmt: skip

    ok = submit("ok", "#!/bin/sh\necho done\n")
    bad = submit("bad", "#!/bin/sh\necho broken >&2\nexit 3\n")
    slow = submit("slow", "#!/bin/sh\nsleep 120\n")
    deadline = time.monotonic() + 90
    while True:
        found = sl.states([ok, bad, slow, "999999"])
        if found[ok].remote_state is RemoteState.SUCCEEDED and found[bad].remote_state is RemoteState.FAILED:
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.5)
    assert "999999" not in found
    assert found[ok].name == "ok" and found[bad].exit_code == 3 and not found[bad].retryable
    assert found[slow].remote_state in (RemoteState.QUEUED, RemoteState.RUNNING)
    assert (tmp_path / "bad.log").read_text().strip() == "broken"
    sl.cancel([slow, ok])  # a finished job in the list is fine
    deadline = time.monotonic() + 30
    while sl.states([slow])[slow].remote_state is not RemoteState.CANCELLED:
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_a_refused_submission_says_why(tmp_path) -> None:
    with pytest.raises(BackendError, match=r"sbatch refused the job: .*partition") as err:
        sl.submit("#!/bin/sh\ntrue\n", name="x", output=str(tmp_path / "x.log"), workdir=str(tmp_path),
                  options=["--partition=no-such-partition"])  # fmt: skip
    assert not err.value.retryable


def test_live_jobs_are_found_by_where_they_log(tmp_path) -> None:
    logs = tmp_path / "batch" / "logs"
    logs.mkdir(parents=True)
    ours = [
        sl.submit("#!/bin/sh\nsleep 120\n", name=f"ours{i}", output=f"{logs}/tile.{i}.%j.log", workdir=str(tmp_path))
        for i in range(3)
    ]
    other = sl.submit("#!/bin/sh\nsleep 120\n", name="other", output=str(tmp_path / "other.log"), workdir=str(tmp_path))
    try:
        found = sl.live_jobs_logging_to(str(logs))
        assert sorted(j.id for j in found) == sorted(ours), "every job of the batch, and only those"
        assert all(j.remote_state in (RemoteState.QUEUED, RemoteState.RUNNING) for j in found)
        assert sl.live_jobs_logging_to(str(tmp_path / "batch" / "log")) == [], "a prefix of the name is not enough"
    finally:
        sl.cancel([*ours, other])
    deadline = time.monotonic() + 30
    while sl.live_jobs_logging_to(str(logs)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sl.live_jobs_logging_to(str(logs)) == [], "cancelled jobs are no longer live"
