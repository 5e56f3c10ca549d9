"""Our endpoint on loopback, used by OWSLib (a client we did not write), by our own client running the
demo campaign, and by plain HTTP: 400s that run nothing (bad inputs, bodies that are not execute
requests, items whose assets the server may not read, internal hosts, campaigns over the tile limit),
upscale with progress, dismissal that stops."""

from __future__ import annotations

import json
import re
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pystac
import pytest
import requests
from owslib.ogcapi.processes import Processes
from rio_cogeo.cogeo import cog_validate

from ogc_upscaler.config import load_campaign
from ogc_upscaler.plan import plan
from ogc_upscaler.run import run_campaign
from ogc_upscaler.store import JobStore

from ..conftest import demo_config, running_endpoint

pytestmark = pytest.mark.slow
JSON = {"Accept": "application/json"}
ASYNC = {"Prefer": "respond-async", **JSON}
DEADLINE = 900.0  # seconds: generous, for a loaded machine; the tests wait on conditions, never on time
TEMPLATES = {
    "items": "{inputs.stac_items}",
    "bbox": "{tile.bbox}",
    "epsg": "{tile.epsg}",
    "resolution": "{tile.pixel_size}",
    "tile_id": "{tile.id}",
    "datetime": "{window.interval}",
}


@pytest.fixture(scope="module")
def watched(tmp_path_factory, demo_archive) -> Path:
    """A campaign planned from the command line, whose page the endpoint is told to serve."""
    config = demo_config(tmp_path_factory.mktemp("watched"), demo_archive, name="told-about")
    with JobStore.open(load_campaign(config).store) as store:
        plan(load_campaign(config), store)
    return config


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory, demo_archive, watched, s3_server, archive_bucket) -> Any:
    """The endpoint, started as an operator whose bucket is an S3-compatible store would start it: the AWS
    SDKs' own AWS_ENDPOINT_URL and the keys in its environment."""
    state = tmp_path_factory.mktemp("endpoint")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**s3_server.credentials(), "AWS_ENDPOINT_URL": s3_server.endpoint}.items():
            patch.setenv(name, value)
        with running_endpoint(state, (demo_archive.parent,), watched=(watched,)) as url:
            yield url, state


def test_a_campaign_the_endpoint_was_told_about_has_its_page(endpoint, watched) -> None:
    url, _ = endpoint
    page = f"{url}/watch/campaigns/told-about/"
    summary = requests.get(f"{page}api/summary", timeout=30).json()
    assert summary["campaign"] == "told-about" and summary["counts"] == {"planned": 13}
    assert "watch-token" in requests.get(page, timeout=30).text
    assert requests.get(f"{url}/watch/campaigns/nobody/api/summary", timeout=30).status_code == 404


@pytest.fixture(scope="module")
def tile_inputs(tmp_path_factory, demo_archive) -> dict[str, Any]:
    """The inputs of one demo tile job, as our client would send them."""
    campaign = load_campaign(demo_config(tmp_path_factory.mktemp("tile"), demo_archive))
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        rows = [dict(job.inputs) for job in store.jobs()]
    return next(r for r in rows if len(r["items"]) >= 2)


def wait_for(url: str, job_id: str, timeout: float = DEADLINE) -> tuple[dict, list[int]]:
    """Poll a job until it ends; its last status and every progress seen."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = requests.get(f"{url}/jobs/{job_id}", params={"f": "json"}, timeout=10).json()
        seen.append(status["progress"])
        if status["status"] not in ("accepted", "running"):
            return status, seen
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {status['status']} after {timeout} s")


def test_owslib_lists_describes_and_executes_our_processes(endpoint, tile_inputs) -> None:
    url, _ = endpoint
    client = Processes(url)
    assert {"ndvi", "flaky", "upscale"} <= {p["id"] for p in client.processes()}
    description = client.process("ndvi")
    assert description["inputs"]["epsg"]["schema"]["type"] == "integer"
    assert description["outputs"]["ndvi"]["schema"]["items"]["contentMediaType"].startswith("image/tiff")
    result = client.execute("ndvi", inputs=tile_inputs)  # synchronous, response=document
    cogs = [link for link in result["ndvi"] if link["type"].startswith("image/tiff")]
    assert len(cogs) == 1 and cogs[0]["href"].startswith(url + "/outputs/")
    reply = requests.get(cogs[0]["href"], timeout=30)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("image/tiff")
    local = Path("/tmp") / f"owslib-{time.monotonic_ns()}.tif"
    local.write_bytes(reply.content)
    try:
        assert cog_validate(str(local), quiet=True)[0]
    finally:
        local.unlink()


def test_items_in_a_bucket_are_read_where_they_are(endpoint, tile_inputs, demo_archive, archive_bucket) -> None:
    """The same tile with its items at s3://: the server checks them (reading each item), stage-in stages them
    and the tool reads their COGs through /vsis3/, all from the server's AWS_ENDPOINT_URL; the COG is the
    one the local items give."""
    url, _ = endpoint
    root = archive_bucket.removesuffix("catalog.json")
    in_bucket = [root + Path(h).relative_to(demo_archive.parent).as_posix() for h in tile_inputs["items"]]
    cogs = []
    for items in (tile_inputs["items"], in_bucket):
        reply = requests.post(
            f"{url}/processes/ndvi/execution", json={"inputs": {**tile_inputs, "items": items}}, headers=JSON
        )
        assert reply.status_code == 200, reply.text
        (cog,) = [link["href"] for link in reply.json()["ndvi"] if link["type"].startswith("image/tiff")]
        cogs.append(requests.get(cog, timeout=30).content)
    assert _same_pixels(*cogs)
    missing = [*in_bucket[:-1], root + "demo-s2-l2a/NOTHING/NOTHING.json"]
    reply = requests.post(f"{url}/processes/ndvi/execution", json={"inputs": {**tile_inputs, "items": missing}})
    assert reply.status_code == 400 and "no such object in the bucket" in reply.json()["description"]


def _same_pixels(first: bytes, second: bytes) -> bool:
    from rasterio.io import MemoryFile

    with MemoryFile(first) as a, MemoryFile(second) as b, a.open() as x, b.open() as y:
        return x.profile == y.profile and x.read().tobytes() == y.read().tobytes()


@pytest.mark.parametrize(
    ("process", "change", "message"),
    [
        ("ndvi", {"epsg": "32632; touch /tmp/pwned"}, "input 'epsg': expected integer"),
        ("ndvi", {"items": ["/etc/passwd"]}, "not a file this server may read"),
        ("ndvi", {"items": ["file:///etc/passwd"]}, "not a file this server may read"),
        ("ndvi", {"tile_id": "../../../escape"}, "outside the job's folder"),
        ("ndvi", {"colour": "red"}, "unknown input 'colour'"),
        ("upscale", {"grid": "/etc/passwd"}, "unknown grid"),
        ("upscale", {"aoi": [10, 50, 10, 40]}, "south"),
        ("upscale", {"templates": {"bbox": "{tile.bbox}"}}, "missing items, epsg"),
        ("upscale", {"stac": "/etc/stac.json"}, "not a file this server may read"),
    ],
)
def test_bad_requests_get_400_with_an_ogc_exception_and_run_nothing(
    endpoint, tile_inputs, demo_archive, process, change, message
) -> None:
    url, state = endpoint
    inputs = {**tile_inputs, **change} if process == "ndvi" else {**upscale_inputs(demo_archive), **change}
    before = job_count(url)
    folders = set((state / "jobs").iterdir())
    reply = requests.post(
        f"{url}/processes/{process}/execution", json={"inputs": inputs}, headers={"Prefer": "respond-async", **JSON}
    )
    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == "InvalidParameterValue" and message in body["description"]
    assert job_count(url) == before
    assert set((state / "jobs").iterdir()) == folders
    assert not Path("/tmp/pwned").exists()


def job_count(url: str) -> int:
    return len(requests.get(f"{url}/jobs", params={"f": "json", "limit": 1000}, timeout=10).json()["jobs"])


def upscale_inputs(archive: Path) -> dict[str, Any]:
    aoi = json.loads((resources.files("ogc_upscaler") / "data" / "demo-aoi.geojson").read_text())
    return {
        "process": "ndvi",
        "aoi": aoi,
        "grid": "utm-20km",
        "resolution": 20,
        "start": "2024-04-01",
        "end": "2024-05-01",
        "stac": str(archive),
        "collections": ["demo-s2-l2a"],
        "templates": TEMPLATES,
    }


def test_upscale_runs_a_campaign_reports_progress_and_links_its_catalog_and_page(
    endpoint, demo_archive, browser
) -> None:
    url, _ = endpoint
    reply = requests.post(
        f"{url}/processes/upscale/execution",
        json={"inputs": upscale_inputs(demo_archive)},
        headers={"Prefer": "respond-async", **JSON},
    )
    assert reply.status_code == 201 and reply.headers["Preference-Applied"] == "respond-async"
    job_id = reply.headers["Location"].rsplit("/", 1)[1]
    status, seen = wait_for(url, job_id)
    assert status["status"] == "successful", status["message"]
    assert any(0 < p < 100 for p in seen), seen
    results = requests.get(f"{url}/jobs/{job_id}/results", params={"f": "json"}, timeout=10).json()
    assert results["jobs"] == {"collected": 13}
    collection = pystac.Collection.from_file(results["catalog"]["href"])  # read over HTTP
    items = list(collection.get_items())
    assert len(items) == 13
    cog = requests.get(items[0].assets["data"].get_absolute_href(), timeout=30)
    assert cog.status_code == 200 and len(cog.content) == items[0].assets["data"].extra_fields["file:size"]

    # its watch page, linked from its status, reads its campaign's store; requests need the page's token
    (watch,) = [link["href"] for link in status["links"] if link["rel"] == "monitor"]
    assert watch == f"{url}/watch/{job_id}/"
    assert requests.get(f"{watch}api/summary", timeout=30).json()["counts"] == {"collected": 13}
    assert requests.post(f"{watch}api/requests", json={"action": "pause"}, timeout=30).status_code == 403
    token = re.search(r'name="watch-token" content="([^"]+)"', requests.get(watch, timeout=30).text)[1]
    asked = requests.post(f"{watch}api/requests", json={"action": "pause"}, headers={"X-Watch-Token": token})
    assert asked.status_code == 202
    assert requests.get(f"{url}/watch/{'0' * 36}/", timeout=30).status_code == 404
    page = browser.new_page()
    try:
        page.goto(watch)
        page.evaluate("window.ogcWatch.ready")
        assert page.get_attribute('#legend li[data-state="collected"]', "data-count") == "13"
        assert page.query_selector('#requests li[data-answered="false"]') is not None  # waits: no manager runs
    finally:
        page.close()


def test_our_client_runs_the_demo_campaign_against_our_endpoint(
    tmp_path, endpoint, demo_archive, offline_stac_validator
) -> None:
    url, _ = endpoint
    backend = {"type": "ogcapi", "url": url, "process": "ndvi", "parallel": 3}
    campaign = load_campaign(demo_config(tmp_path, demo_archive, backend=backend))
    result = run_campaign(campaign)
    assert result.progress.counts["collected"] == 13, dict(result.progress.counts)
    collection = pystac.Collection.from_file(str(result.catalog))
    assert collection.validate()
    items = list(collection.get_items())
    assert len(items) == 13
    for item in items:
        assert item.validate()
        assert cog_validate(item.assets["data"].get_absolute_href(), quiet=True)[0]
    with JobStore.read(campaign.store) as store:
        assert all((job.remote_id or "").startswith(url + "/jobs/") for job in store.jobs())


def processes_touching(folder: Path) -> list[str]:
    """Command lines of live processes that name ``folder`` or run in it."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = str((proc / "cwd").resolve())
        except OSError:
            continue
        if str(folder) in cmdline or cwd.startswith(str(folder)):
            found.append(cmdline)
    return found


def test_dismissing_a_job_really_stops_it(endpoint) -> None:
    url, state = endpoint
    inputs = {
        "tile_id": "T1",
        "bbox": "0,0,640,640",
        "epsg": 32632,
        "state_dir": "counts",
        "fail_times": 0,
        "broken_tile": "none",
        "seconds": 120,
    }
    reply = requests.post(
        f"{url}/processes/flaky/execution", json={"inputs": inputs}, headers={"Prefer": "respond-async", **JSON}
    )
    assert reply.status_code == 201
    job_id = reply.headers["Location"].rsplit("/", 1)[1]
    folder = state / "jobs" / job_id
    deadline = time.monotonic() + DEADLINE
    while not any("flaky.py" in c for c in processes_touching(folder)):
        assert time.monotonic() < deadline, "the tool never started"
        time.sleep(0.3)
    reply = requests.delete(f"{url}/jobs/{job_id}", params={"f": "json"}, timeout=300)
    assert reply.status_code == 200 and json.loads(reply.text)["status"] == "dismissed"
    assert processes_touching(folder) == []
    assert not folder.exists()
    assert requests.get(f"{url}/jobs/{job_id}", params={"f": "json"}, timeout=10).status_code == 404


def test_dismissing_an_upscale_job_stops_its_tile_jobs(endpoint, demo_archive) -> None:
    url, state = endpoint
    reply = requests.post(
        f"{url}/processes/upscale/execution",
        json={"inputs": upscale_inputs(demo_archive)},
        headers={"Prefer": "respond-async", **JSON},
    )
    job_id = reply.headers["Location"].rsplit("/", 1)[1]
    folder = state / "jobs" / job_id
    deadline = time.monotonic() + DEADLINE
    while not any("ndvi-tile" in c or "cwltool" in c for c in processes_touching(folder)):
        assert time.monotonic() < deadline, "no tile job started"
        time.sleep(0.3)
    reply = requests.delete(f"{url}/jobs/{job_id}", params={"f": "json"}, timeout=300)
    assert reply.status_code == 200
    assert processes_touching(folder) == []
    assert not folder.exists()


def test_an_input_catalog_pointing_outside_the_data_roots_fails_before_any_tile_runs(
    endpoint, demo_archive, tmp_path
) -> None:
    url, state = endpoint
    # a catalog inside the data root whose items' assets point elsewhere
    rogue = demo_archive.parent / "rogue"
    if not rogue.exists():
        original = pystac.Catalog.from_file(str(demo_archive))
        catalog = original.full_copy()
        for item in catalog.get_items(recursive=True):
            for asset in item.assets.values():
                asset.href = "/etc/hostname"
        catalog.normalize_hrefs(str(rogue))
        catalog.save(pystac.CatalogType.SELF_CONTAINED)
    inputs = {**upscale_inputs(demo_archive), "stac": str(rogue / "catalog.json")}
    reply = requests.post(
        f"{url}/processes/upscale/execution", json={"inputs": inputs}, headers={"Prefer": "respond-async", **JSON}
    )
    job_id = reply.headers["Location"].rsplit("/", 1)[1]
    status, _ = wait_for(url, job_id)
    assert status["status"] == "failed" and "'/etc/hostname' is not a file this server may read" in status["message"]
    assert not (state / "jobs" / job_id / "work" / "jobs").exists(), "no tile job ran"


def refused(url: str, state: Path, process: str, inputs: dict[str, Any], message: str, **post: Any) -> str:
    """POST an execution that must answer 400 with ``message`` and record nothing; the description."""
    before, folders = job_count(url), set((state / "jobs").iterdir())
    reply = requests.post(f"{url}/processes/{process}/execution", json={"inputs": inputs}, headers=ASYNC, **post)
    if reply.status_code == 201:  # a regression: stop the job before failing, or it runs on (a global campaign)
        requests.delete(reply.headers["Location"], params={"f": "json"}, timeout=300)
    assert reply.status_code == 400, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json()
    assert body["code"] == "InvalidParameterValue" and message in body["description"], body
    assert job_count(url) == before and set((state / "jobs").iterdir()) == folders
    return body["description"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2, 3]", "must be a JSON object, got an array"),
        (b'[{"inputs": {}}]', "must be a JSON object, got an array"),
        (b'"inputs"', "must be a JSON object, got a string"),
        (b"42", "must be a JSON object, got a number"),
        (b"[" * 10_000 + b"]" * 10_000, "nests deeper than 64 levels"),
        (b'{"inputs": ' + b"[" * 100 + b"]" * 100 + b"}", "nests deeper than 64 levels"),
        (b'{"inputs": {}, "subscriber": ["x"]}', "'subscriber' must be a JSON object"),
        (b"{not json", "not JSON"),
    ],
)
def test_bodies_that_are_not_execute_requests_answer_400_with_an_ogc_exception(endpoint, body, message) -> None:
    url, _ = endpoint
    before = job_count(url)
    reply = requests.post(f"{url}/processes/ndvi/execution", data=body, headers=ASYNC, timeout=120)
    assert reply.status_code == 400 and reply.headers["Content-Type"].startswith("application/json"), reply.text
    assert message in reply.json()["description"]
    assert job_count(url) == before


def test_a_package_job_whose_items_assets_lie_outside_the_data_roots_is_refused_at_request_time(
    endpoint, tile_inputs, demo_archive
) -> None:
    url, state = endpoint
    rogue = demo_archive.parent / "rogue-items"
    rogue.mkdir(exist_ok=True)
    hrefs = []
    for href in tile_inputs["items"]:  # the tile's items, copied inside the data root, their assets pointed out
        item = json.loads(Path(href).read_text())
        item["links"] = []
        for asset in item["assets"].values():
            asset["href"] = "/etc/hostname"
        (rogue / f"{item['id']}.json").write_text(json.dumps(item))
        hrefs.append(str(rogue / f"{item['id']}.json"))
    description = refused(url, state, "ndvi", {**tile_inputs, "items": hrefs}, "'/etc/hostname' is not a file")
    assert "input 'items'" in description


@pytest.mark.parametrize(
    ("process", "change", "host"),
    [
        ("ndvi", {"items": ["http://127.0.0.1:9/item.json"]}, "127.0.0.1"),
        ("ndvi", {"items": ["http://localhost:9/item.json"]}, "localhost (127.0.0.1)"),
        ("ndvi", {"items": ["http://[::1]:9/item.json"]}, "::1"),
        ("ndvi", {"items": ["http://169.254.169.254/latest/meta-data"]}, "169.254.169.254"),
        ("ndvi", {"items": ["http://10.1.2.3/item.json"]}, "10.1.2.3"),
        ("upscale", {"stac": "http://127.0.0.1:9/stac"}, "127.0.0.1"),
    ],
)
def test_urls_of_internal_hosts_are_refused_unless_the_operator_allows_them(
    endpoint, tile_inputs, demo_archive, process, change, host
) -> None:
    url, state = endpoint
    inputs = {**tile_inputs, **change} if process == "ndvi" else {**upscale_inputs(demo_archive), **change}
    description = refused(url, state, process, inputs, f"the host {host} is an internal address")
    assert "--allow-internal-urls" in description and "allow_internal_urls" in description


def test_an_upscale_campaign_over_the_tile_limit_is_refused_before_any_planning(endpoint, demo_archive) -> None:
    url, state = endpoint
    inputs = {**upscale_inputs(demo_archive), "aoi": [-180, -80, 180, 84], "grid": "utm-10km"}
    start = time.monotonic()
    description = refused(url, state, "upscale", inputs, "tiles of utm-10km; this endpoint takes at most 20,000")
    assert time.monotonic() - start < 120, "refused from the AOI's area, without listing the tiles"
    assert "the campaign covers about 5,0" in description  # about 5 million tiles
