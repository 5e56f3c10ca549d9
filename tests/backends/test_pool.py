"""Several OGC API endpoints sharing one campaign: jobs spread over both, one endpoint's back-pressure
and errors slow only it, every job runs exactly once, and the config refuses pools that cannot work."""

from __future__ import annotations

from collections import Counter

import pytest

from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.run import run_campaign
from ogc_upscaler.store import JobStore

from ..conftest import free_port, write_config
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


def test_an_unreachable_endpoint_takes_no_jobs_and_the_others_do_them(tmp_path) -> None:
    """A pool with one unreachable member used to fail every job."""
    calm = FaultyServer(faults=False, run_seconds=0.2).start()
    try:
        path = write_config(
            tmp_path,
            aoi="11.9,47.8,12.1,47.95",
            time={"start": "2024-01-01", "end": "2024-03-01", "step": "P1M"},
            process={"inputs": {"name": "{tile.id}-{window.key}"}},
            backend=[endpoint("down", f"http://127.0.0.1:{free_port()}"), endpoint("calm", calm.url)],
            retries={"attempts": 2, "backoff": 0.2, "time_limit": 30},
        )
        result = run_campaign(load_campaign(path))
    finally:
        calm.stop()
    assert result.progress.complete and result.exit_code == 0
    with JobStore.read(load_campaign(path).store) as store:
        jobs = list(store.jobs())
    assert {j.remote_id.split("|")[0] for j in jobs} == {"calm"} and {j.attempts for j in jobs} == {1}


def test_an_endpoint_that_goes_down_during_a_run_is_paused_while_the_others_go_on(tmp_path) -> None:
    from ogc_upscaler.backends.ogcapi import OgcApiBackend
    from ogc_upscaler.backends.pool import Pool
    from ogc_upscaler.campaign import Retries
    from ogc_upscaler.collect import Collected
    from ogc_upscaler.manager import Manager

    from ..test_store import fill

    calm = FaultyServer(faults=False, run_seconds=0.1).start()
    down = OgcApiBackend(f"http://127.0.0.1:{free_port()}", "echo", tmp_path / "down", slots=3, name="down")
    pool = Pool([down, OgcApiBackend(calm.url, "echo", tmp_path / "calm", slots=2, name="calm")])
    try:
        with JobStore.open(tmp_path / "jobs.sqlite") as store:
            fill(store, 9)
            retries = Retries(attempts=1, backoff_s=0.05)
            Manager(store, pool, tmp_path, "t", retries, collector=lambda *_: Collected("x")).run()
            jobs = list(store.jobs())
    finally:
        calm.stop()
    assert all(j.state.value == "collected" and j.attempts == 1 for j in jobs), [j.error for j in jobs]
    assert {j.remote_id.split("|")[0] for j in jobs} == {"calm"} and "down" in pool.paused


def test_a_job_held_by_a_backend_no_longer_in_the_config_is_lost_alone(tmp_path) -> None:
    calm = FaultyServer(faults=False, run_seconds=0.1).start()
    path = write_config(
        tmp_path,
        aoi="11.9,47.8,12.1,47.95",
        time={"start": "2024-01-01", "end": "2024-02-01", "step": "P1M"},
        process={"inputs": {"name": "{tile.id}"}},
        backend=[endpoint("a", calm.url), endpoint("b", calm.url)],
        retries={"attempts": 1, "backoff": 0.1},
    )
    campaign = load_campaign(path)
    from ogc_upscaler.plan import plan
    from ogc_upscaler.store import Move

    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        first = next(store.jobs()).job_id
        store.move(first, Move.SUBMIT, backend="pool", remote_id="removed|http://gone/jobs/1")
    try:
        result = run_campaign(campaign)
    finally:
        calm.stop()
    with JobStore.read(campaign.store) as store:
        lost = store.get(first)
        others = [j for j in store.jobs() if j.job_id != first]
    assert lost.state.value == "failed" and "names no backend of this pool" in lost.error
    assert others and all(j.state.value == "collected" for j in others) and result.exit_code == 3
