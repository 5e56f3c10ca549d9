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
