"""OGC API – Processes Part 4 on our endpoint, over plain HTTP on loopback: a job is created, found in the
job list, read back, started (once, however often and however concurrently it is started) and run; the
job list filters and pages; a created job can be dismissed; bad requests record nothing."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pystac
import pytest
import requests

from ..conftest import running_endpoint

pytestmark = pytest.mark.slow
JSON = {"Accept": "application/json"}
CREATED = {"Prefer": 'status="created"', **JSON}
DEADLINE = 900.0  # seconds: generous, for a loaded machine; the tests wait on conditions, never on time
PART1 = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory, demo_archive) -> Any:
    """Our endpoint, allowed to read loopback URLs (the STAC API of these tests runs on loopback)."""
    state = tmp_path_factory.mktemp("part4")
    with running_endpoint(state, (demo_archive.parent,), allow_internal_urls=True) as url:
        yield url, state


def flaky(tile: str = "T1", seconds: float = 0.0, **changes: Any) -> dict[str, Any]:
    inputs = {"tile_id": tile, "bbox": "0,0,640,640", "epsg": 32632, "state_dir": "counts", "fail_times": 0,
              "broken_tile": "none", "seconds": seconds}  # fmt: skip
    return {**inputs, **changes}


def create(url: str, inputs: dict[str, Any], process: str = "flaky", headers: dict | None = None) -> requests.Response:
    body = {"process": f"{url}/processes/{process}", "inputs": inputs}
    return requests.post(f"{url}/jobs", json=body, headers=headers or CREATED, timeout=120)


def status(url: str, job_id: str) -> dict[str, Any]:
    return requests.get(f"{url}/jobs/{job_id}", headers=JSON, timeout=60).json()


def until_ended(url: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while (info := status(url, job_id))["status"] in ("accepted", "running"):
        assert time.monotonic() < deadline, f"job {job_id} still {info['status']}"
        time.sleep(0.3)
    return info


def runs(state: Path, job_id: str) -> tuple[int, int]:
    """How often the job's worker claimed it, and how often its tool ran to the end (from the job's folder)."""
    folder = state / "jobs" / job_id
    log = folder / "worker.log"
    claims = log.read_text().count("claimed by worker") if log.exists() else 0
    tools = sum(p.read_text().count("flaky: T") for p in folder.rglob("stderr.log"))
    return claims, tools


def job_ids(url: str, **params: Any) -> list[str]:
    listing = requests.get(f"{url}/jobs", params={"limit": 1000, **params}, headers=JSON, timeout=60).json()
    return [job["jobID"] for job in listing["jobs"]]


def test_create_list_read_start_run_once_and_get_the_results(endpoint) -> None:
    url, state = endpoint
    reply = create(url, flaky())
    assert reply.status_code == 201, reply.text
    info = reply.json()
    job_id = info["jobID"]
    assert reply.headers["Location"] == f"{url}/jobs/{job_id}"
    assert reply.headers["Preference-Applied"] == 'status="created"'
    assert info["status"] == "created" and info["processID"] == "flaky" and info["type"] == "process"
    assert info["created"] and {"self", "up"} <= {link["rel"] for link in info["links"]}
    assert job_id in job_ids(url, status="created") and job_id not in job_ids(url, status="accepted")
    assert not (state / "jobs" / job_id).exists(), "a created job has no worker, so no folder"
    definition = requests.get(f"{url}/jobs/{job_id}/definition", headers=JSON, timeout=60).json()
    assert definition["process"] == f"{url}/processes/flaky" and definition["inputs"] == flaky()
    not_ready = requests.get(f"{url}/jobs/{job_id}/results", headers=JSON, timeout=60)
    assert not_ready.status_code == 404 and "POST" in not_ready.json()["description"]

    started = requests.post(f"{url}/jobs/{job_id}/results", headers=JSON, timeout=60)
    assert started.status_code == 200 and started.json()["status"] in ("accepted", "running", "successful")
    assert until_ended(url, job_id)["status"] == "successful"
    assert runs(state, job_id) == (1, 1)
    results = requests.get(f"{url}/jobs/{job_id}/results", headers=JSON, timeout=60).json()
    assert results["result"][0]["href"] == f"{url}/outputs/{job_id}/result/T1.tif"


def test_a_start_repeated_and_two_concurrent_starts_run_the_job_once(endpoint) -> None:
    url, state = endpoint
    job_id = create(url, flaky(seconds=1)).json()["jobID"]
    barrier = threading.Barrier(2)
    answers: list[requests.Response] = []

    def start() -> None:
        barrier.wait()
        answers.append(requests.post(f"{url}/jobs/{job_id}/results", headers=JSON, timeout=120))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200]
    assert until_ended(url, job_id)["status"] == "successful"
    again = requests.post(f"{url}/jobs/{job_id}/results", headers=JSON, timeout=60)
    assert again.status_code == 200 and again.json()["status"] == "successful", "a finished job is not restarted"
    assert status(url, job_id)["status"] == "successful"
    log = (state / "jobs" / job_id / "worker.log").read_text()
    assert runs(state, job_id) == (1, 1) and "not claimed" not in log, "one worker was launched, and ran once"


def test_a_created_job_waits_while_others_run_and_can_be_dismissed(endpoint) -> None:
    url, state = endpoint
    waiting = create(url, flaky(tile="T2")).json()["jobID"]
    other = create(url, flaky(tile="T3"), headers=JSON)  # no preference: created and started at once
    assert other.status_code == 201 and other.json()["status"] in ("accepted", "running")
    assert until_ended(url, other.json()["jobID"])["status"] == "successful"  # the listing reconciled meanwhile
    job_ids(url)  # and once more
    assert status(url, waiting)["status"] == "created"
    assert not (state / "jobs" / waiting).exists(), "never launched"
    dismissed = requests.delete(f"{url}/jobs/{waiting}", headers=JSON, timeout=60)
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    assert dismissed.headers["Content-Type"].startswith("application/json")
    assert requests.get(f"{url}/jobs/{waiting}", headers=JSON, timeout=60).status_code == 404
    assert requests.post(f"{url}/jobs/{waiting}/results", headers=JSON, timeout=60).status_code == 404
    assert waiting not in job_ids(url)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"process": "flaky", "inputs": {**flaky(), "epsg": "EPSG:4326"}}, "input 'epsg': expected integer"),
        ({"process": "flaky", "inputs": {**flaky(), "state_dir": "/etc"}}, "outside the job's folder"),
        ({"process": "nope", "inputs": flaky()}, "process 'nope' is not served here"),
        ({"process": "https://elsewhere.example/processes/other", "inputs": flaky()}, "is not served here"),
        ({"inputs": flaky()}, "names no process"),
        ({"process": "flaky", "inputs": [1, 2]}, "'inputs' must be a JSON object"),
        ([{"process": "flaky"}], "must be a JSON object, got an array"),
    ],
)
def test_bad_requests_to_create_answer_400_and_record_nothing(endpoint, body, message) -> None:
    url, state = endpoint
    before, folders = job_ids(url), set((state / "jobs").iterdir())
    reply = requests.post(f"{url}/jobs", json=body, headers=CREATED, timeout=120)
    assert reply.status_code == 400, reply.text
    assert reply.json()["code"] == "InvalidParameterValue" and message in reply.json()["description"]
    assert job_ids(url) == before and set((state / "jobs").iterdir()) == folders


def test_a_deeply_nested_body_answers_400_with_an_ogc_exception(endpoint) -> None:
    url, _ = endpoint
    for path in ("/jobs", "/processes/flaky/execution"):
        reply = requests.post(f"{url}{path}", data="[" * 10_000 + "]" * 10_000, headers=CREATED, timeout=120)
        assert reply.status_code == 400 and reply.headers["Content-Type"].startswith("application/json")
        assert "nests deeper than" in reply.json()["description"]


def test_unknown_jobs_answer_404_with_an_ogc_exception(endpoint) -> None:
    url, _ = endpoint
    for method, path in [("POST", "results"), ("GET", "definition")]:
        reply = requests.request(method, f"{url}/jobs/no-such-job/{path}", headers=JSON, timeout=60)
        assert reply.status_code == 404 and reply.json()["code"] == "NoSuchJob"


def test_the_job_list_filters_by_process_and_status_and_pages(endpoint, demo_archive) -> None:
    url, _ = endpoint
    mine = [create(url, flaky(tile=f"P{i}")).json()["jobID"] for i in range(3)]
    created = job_ids(url, processID="flaky", status="created")
    assert set(mine) <= set(created)
    assert not set(mine) & set(job_ids(url, processID="ndvi")), "another process's jobs only"
    assert set(job_ids(url, status=["created", "successful"])) >= set(mine), "status is repeatable"
    assert job_ids(url, type="process") == job_ids(url) and job_ids(url, type="other") == []
    first = requests.get(f"{url}/jobs", params={"status": "created", "limit": 2}, headers=JSON, timeout=60).json()
    assert len(first["jobs"]) == 2 and first["numberMatched"] == len(created)
    following = next(link["href"] for link in first["links"] if link["rel"] == "next")
    second = requests.get(following, headers=JSON, timeout=60).json()
    assert not {j["jobID"] for j in first["jobs"]} & {j["jobID"] for j in second["jobs"]}
    assert all(j["status"] == "created" and j["processID"] and j["created"] for j in second["jobs"])
    refused = requests.get(f"{url}/jobs", params={"status": "sleeping"}, headers=JSON, timeout=60)
    assert refused.status_code == 400 and "not a job status" in refused.json()["description"]
    for job_id in mine:
        requests.delete(f"{url}/jobs/{job_id}", headers=JSON, timeout=60)


def test_conformance_declares_job_management_job_list_and_dismiss(endpoint) -> None:
    url, _ = endpoint
    classes = requests.get(f"{url}/conformance", headers=JSON, timeout=60).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-processes-4/1.0/conf/job-management" in classes
    assert {f"{PART1}/job-list", f"{PART1}/dismiss", f"{PART1}/core", f"{PART1}/json"} <= set(classes)


def test_an_execution_keeps_its_definition_too(endpoint) -> None:
    url, _ = endpoint
    reply = requests.post(
        f"{url}/processes/flaky/execution", json={"inputs": flaky(tile="E1")}, headers={"Prefer": "respond-async"}
    )
    job_id = reply.headers["Location"].rsplit("/", 1)[1]
    definition = requests.get(f"{url}/jobs/{job_id}/definition", headers=JSON, timeout=60).json()
    assert definition["process"] == f"{url}/processes/flaky" and definition["inputs"]["tile_id"] == "E1"
    assert until_ended(url, job_id)["status"] == "successful"


def test_loopback_item_urls_are_read_when_the_operator_allows_internal_urls(endpoint, stac_api) -> None:
    url, _ = endpoint
    items = requests.get(f"{stac_api}/collections/demo-s2-l2a/items", timeout=60).json()["features"][:2]
    hrefs = [next(link["href"] for link in item["links"] if link["rel"] == "self") for item in items]
    assert all(h.startswith("http://127.0.0.1:") for h in hrefs)
    pystac.Item.from_file(hrefs[0])  # a real STAC Item over loopback HTTP
    inputs = {"items": hrefs, "bbox": "700000,5320000,720000,5340000", "epsg": 32632, "resolution": 20,
              "tile_id": "UTM20KM-32N-E700N5320", "datetime": "2024-04-01/2024-05-01"}  # fmt: skip
    reply = create(url, inputs, process="ndvi")
    assert reply.status_code == 201, reply.text
    job_id = reply.json()["jobID"]
    stored = requests.get(f"{url}/jobs/{job_id}/definition", headers=JSON, timeout=60).json()
    assert json.dumps(stored["inputs"]["items"]) == json.dumps(hrefs)
    requests.delete(f"{url}/jobs/{job_id}", headers=JSON, timeout=60)


def test_a_failed_job_says_the_tools_own_error_and_links_its_log(endpoint) -> None:
    url, _ = endpoint
    reply = create(url, flaky(tile="B9", broken_tile="B9"), headers=JSON)
    assert reply.status_code == 201, reply.text
    info = until_ended(url, reply.json()["jobID"])
    assert info["status"] == "failed" and "flaky: tile B9 is broken" in info["message"], info["message"]
    assert "permanentFail" not in info["message"], "the cause, not cwltool's summary"
    (log,) = [link for link in info["links"] if link["rel"] == "log"]
    assert log["type"] == "text/plain"
    text = requests.get(log["href"], timeout=60)
    assert text.status_code == 200 and text.headers["Content-Type"].startswith("text/plain")
    assert "flaky: tile B9 is broken" in text.text and "Final process status is permanentFail" in text.text
