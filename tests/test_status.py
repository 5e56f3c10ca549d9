"""Status as plain records and as a pandas DataFrame, for notebooks."""

from __future__ import annotations

from ogc_upscaler.config import load_campaign
from ogc_upscaler.plan import plan
from ogc_upscaler.status import RECORD_COLUMNS, Status
from ogc_upscaler.store import JobStore, Move, State


def test_records_and_dataframe(config_path) -> None:
    campaign = load_campaign(config_path)
    with JobStore.open(campaign.store) as store:
        report = plan(campaign, store)
        first = next(store.jobs()).job_id
        store.move(first, Move.SUBMIT, backend="cwltool", remote_id="r")
    with JobStore.read(campaign.store) as store:
        records = Status.records(store)
        frame = Status.dataframe(store)
        submitted = Status.records(store, State.SUBMITTED)
        status = Status.of(store)
    assert len(records) == report.jobs and set(records[0]) == set(RECORD_COLUMNS)
    assert [r["job_id"] for r in submitted] == [first]
    assert len(frame) == report.jobs and str(frame["planned_at"].dtype) == "datetime64[us, UTC]"
    assert status.by_state["submitted"] == 1 and status.by_state["planned"] == report.jobs - 1
    assert {"state": "submitted", "backend": "cwltool", "jobs": 1} in status.by_backend


def test_status_says_whether_a_manager_is_attached_and_what_a_dead_one_left_running(config_path) -> None:
    import os
    import signal
    import subprocess
    import sys

    campaign = load_campaign(config_path)
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        first = next(store.jobs()).job_id
        store.move(first, Move.SUBMIT, backend="cwltool", remote_id="r")
        with JobStore.read(campaign.store) as reader:
            here = Status.of(reader)
        assert here.manager is not None and here.manager.attached and here.manager.pid == os.getpid()
    script = (
        "import sys, time; from ogc_upscaler.store import JobStore; "
        f"s = JobStore.open({str(campaign.store)!r}); print('open', flush=True); time.sleep(600)"
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "open"
        with JobStore.read(campaign.store) as reader:
            alive = Status.of(reader)
        assert alive.manager is not None and alive.manager.attached and alive.manager.pid == writer.pid
        assert f"manager: attached (pid {writer.pid} on " in alive.table()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)
    with JobStore.read(campaign.store) as reader:
        dead = Status.of(reader)
    assert dead.manager is not None and dead.manager.attached is False and dead.manager.pid == writer.pid
    assert "manager: none attached; the store changed" in dead.table()
    assert "1 jobs were submitted or running when it stopped: `run` re-attaches them" in dead.table()
    assert dead.as_dict()["manager"]["attached"] is False
