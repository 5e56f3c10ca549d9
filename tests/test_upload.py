"""A campaign whose output is a bucket: every collected job's COG and item are uploaded as it is collected,
with absolute hrefs that open (GDAL reads the COG where it is, through /vsis3/); the catalog run again puts
nothing twice; a bucket that refuses us is each job's retryable collection error, never a re-run."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import rasterio
from stac_geoparquet.arrow import stac_table_to_items

from ogc_upscaler.bucket import Bucket, OutputError
from ogc_upscaler.cli import cli
from ogc_upscaler.config import load_campaign
from ogc_upscaler.delivery import Delivery
from ogc_upscaler.run import rebuild_catalog, run_campaign
from ogc_upscaler.store import JobStore, State

from .backends.test_cwltool import flaky_config

pytestmark = pytest.mark.slow


@pytest.fixture
def credentials(s3_server, monkeypatch) -> None:
    for name, value in s3_server.credentials().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_collected_jobs_land_in_the_bucket_with_hrefs_that_open(tmp_path, s3_server, credentials, monkeypatch) -> None:
    name = s3_server.make_bucket("campaign-results")
    output = {"url": f"s3://{name}/runs/2024", "endpoint_url": s3_server.endpoint}
    config = flaky_config(tmp_path, aoi="11.9,47.8,12.1,48.0", output=output)
    campaign = load_campaign(config)
    collected = run_campaign(campaign).progress.counts["collected"]
    assert collected == 12  # 3 x 2 tiles on each side of the seam at 12°E
    bucket = Bucket(campaign.upload)
    collection = json.loads(bucket.read("collection.json"))
    self_link = next(link["href"] for link in collection["links"] if link["rel"] == "self")
    assert self_link == f"s3://{name}/runs/2024/collection.json"
    item_links = [link["href"] for link in collection["links"] if link["rel"] == "item"]
    assert len(item_links) == collected and all(h.startswith(f"s3://{name}/runs/2024/items/") for h in item_links)

    host = s3_server.endpoint.removeprefix("http://")
    gdal = {"AWS_S3_ENDPOINT": host, "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}
    for href in item_links:
        item = json.loads(bucket.read(href.removeprefix(f"s3://{name}/runs/2024/")))
        links = {link["rel"]: link["href"] for link in item["links"]}
        assert links["collection"] == self_link and links["self"] == href
        data = item["assets"]["data"]["href"]
        assert data.startswith(f"s3://{name}/runs/2024/items/")
        with rasterio.Env(**gdal), rasterio.open(data) as src:  # read where it is, as a user of the bucket would
            assert src.read(1).shape == (src.height, src.width) and src.crs is not None
        local = campaign.output / data.removeprefix(f"s3://{name}/runs/2024/")
        assert bucket.read(data.removeprefix(f"s3://{name}/runs/2024/")) == local.read_bytes()

    Delivery(bucket).collection(campaign.output, items=True, publish=False)
    assert bucket.puts == 0, "everything is there already: nothing put"
    rebuild_catalog(campaign)  # the catalog command: idempotent too
    assert json.loads(bucket.read("collection.json")) == collection

    # the collection as stac-geoparquet, for tools that read 100,000 items at once: hrefs into the bucket
    table = tmp_path / "items.parquet"
    assert cli.main(["export", str(config), "-o", str(table), "--stac-geoparquet"], standalone_mode=False) is None
    rows = list(stac_table_to_items(pq.read_table(table)))
    assert sorted(r["id"] for r in rows) == sorted(h.rsplit("/", 1)[1].removesuffix(".json") for h in item_links)
    assert all(r["assets"]["data"]["href"].startswith(f"s3://{name}/runs/2024/items/") for r in rows)
    assert rows[0]["geometry"]["type"] in ("Polygon", "MultiPolygon") and rows[0]["properties"]["datetime"]


def test_a_bucket_that_refuses_us_fails_collection_and_never_reruns_the_job(
    tmp_path, s3_server, credentials, monkeypatch
) -> None:
    name = s3_server.make_bucket("campaign-refused")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    output = {"url": f"s3://{name}/x", "endpoint_url": s3_server.endpoint}
    config = flaky_config(
        tmp_path, aoi="11.95,47.85,12.05,47.95", output=output, retries={"attempts": 1, "backoff": 0.01}
    )
    campaign = load_campaign(config)
    with pytest.raises(OutputError, match=f"upload s3://{name}/x/collection.json: .*privileges") as err:
        run_campaign(campaign)  # every job ends, then the collection cannot be uploaded either
    assert "wrong-secret" not in str(err.value)
    with JobStore.read(campaign.store) as store:
        jobs = list(store.jobs())
    assert jobs and all(j.state is State.FAILED and j.attempts == 1 for j in jobs), "run once, never again"
    assert all(j.error_kind == "collect:exhausted" and "upload s3://" in j.error for j in jobs)
    assert all("wrong-secret" not in j.error for j in jobs)
