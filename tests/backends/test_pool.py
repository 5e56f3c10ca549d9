"""Several OGC API endpoints sharing one campaign: jobs spread over both, one endpoint's back-pressure
and errors slow only it, every job runs exactly once, and the config refuses pools that cannot work."""

from __future__ import annotations

from collections import Counter

import pytest

from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.run import run_campaign
from ogc_upscaler.store import JobStore

from ..conftest import write_config
from ..servers.faulty import FaultyServer

pytestmark = pytest.mark.slow


def endpoint(name: str, url: str, parallel: int = 3) -> dict:
    return {"type": "ogcapi", "name": name, "url": url, "process": "echo", "parallel": parallel, "timeout": 2}


def test_two_endpoints_share_a_campaign_and_every_job_runs_once(tmp_path) -> None:
    calm = FaultyServer(faults=False, run_seconds=0.5, input_name="label").start()
    moody = FaultyServer(faults=True, run_seconds=0.5).start()  # 500s, 429s, 503s, bad JSON, slow answers
    try:
        path = write_config(
            tmp_path,
            aoi="11.9,47.8,12.1,47.95",
            time={"start": "2024-01-01", "end": "2024-04-01", "step": "P1M"},
            process={"inputs": {"name": "{tile.id}-{window.key}"}},
            backend=[
                {**endpoint("calm", calm.url), "inputs": {"label": "{job.name}"}},  # its input has another name
                endpoint("moody", moody.url),
            ],
            retries={"attempts": 4, "backoff": 0.2, "time_limit": 30},
        )
        campaign = load_campaign(path)
        assert campaign.parallel == 6
        run_campaign(campaign)
    finally:
        calm.stop()
        moody.stop()
    with JobStore.read(campaign.store) as store:
        rows = list(j.columns() for j in store.jobs(with_tile=True))
    assert rows and all(r["state"] == "collected" for r in rows), [r["error"] for r in rows]
    placed = Counter(r["remote_id"].split("|")[0] for r in rows)
    assert set(placed) == {"calm", "moody"}, placed
    executions = calm.executions + moody.executions
    assert all(n == 1 for n in executions.values()) and len(executions) == len(rows), "each job executed exactly once"


def test_an_endpoint_whose_inputs_differ_is_refused_before_anything_runs(tmp_path) -> None:
    other = FaultyServer(faults=False, input_name="label").start()
    try:
        path = write_config(
            tmp_path,
            process={"inputs": {"name": "{tile.id}"}},
            backend=[endpoint("same", other.url), {**endpoint("mapped", other.url), "inputs": {"label": "{job.nam}"}}],
        )
        with pytest.raises(InvalidConfig, match=r"inputs do not match process 'echo': unknown name; missing label"):
            run_campaign(load_campaign(path))
        path = write_config(
            tmp_path,
            process={"inputs": {"name": "{tile.id}"}},
            backend=[{**endpoint("mapped", other.url), "inputs": {"label": "{job.nam}"}}, endpoint("b", other.url)],
        )
        with pytest.raises(InvalidConfig, match=r"backend mapped: job .* has no input 'nam'"):
            run_campaign(load_campaign(path))
    finally:
        other.stop()
    assert not other.executions


@pytest.mark.parametrize(
    ("backends", "message"),
    [
        ([], "the list is empty"),
        ([{"type": "cwltool", "name": "a"}, endpoint("a", "http://127.0.0.1:9")], "names repeat"),
        ([endpoint("a", "http://127.0.0.1:9"), endpoint("a", "http://127.0.0.1:8")], "names repeat"),
    ],
)
def test_pools_that_cannot_work_are_refused(tmp_path, backends, message) -> None:
    with pytest.raises(InvalidConfig, match=message):
        load_campaign(write_config(tmp_path, backend=backends))
