"""Items published to a real STAC API with transactions (stac-fastapi-pgstac on PostgreSQL with PostGIS,
started by the test setup): after a campaign a search by bbox and datetime returns exactly the collected
items, with hrefs that open; publishing again adds nothing; a rejected item is that job's error, with the
server's message."""

from __future__ import annotations

import json

import pytest
import rasterio
from pystac_client import Client

from ogc_upscaler.bucket import Bucket
from ogc_upscaler.cli import cli
from ogc_upscaler.config import load_campaign
from ogc_upscaler.run import run_campaign
from ogc_upscaler.stac_api import Publication, PublishError, StacApi
from ogc_upscaler.store import JobStore, State

from .backends.test_cwltool import flaky_config

pytestmark = pytest.mark.slow


def test_a_campaign_published_to_a_stac_api_is_found_by_search(
    tmp_path, s3_server, stac_transactions_api, monkeypatch
) -> None:
    for name, value in s3_server.credentials().items():
        monkeypatch.setenv(name, value)
    bucket = s3_server.make_bucket("published")
    output = {"url": f"s3://{bucket}/c1", "endpoint_url": s3_server.endpoint}
    publish = {"stac_api": stac_transactions_api, "collection": "upscaled-ndvi"}
    config = flaky_config(tmp_path, aoi="11.9,47.8,12.1,48.0", output=output, publish=publish)
    campaign = load_campaign(config)
    run_campaign(campaign)
    with JobStore.read(campaign.store) as store:
        collected = {j.job_id for j in store.jobs(State.COLLECTED)}
    assert len(collected) == 12

    api = Client.open(stac_transactions_api)
    search = api.search(collections=["upscaled-ndvi"], bbox=[11.9, 47.8, 12.1, 48.0], datetime="2024-01-01/2024-02-01")
    items = list(search.items())
    assert {item.id for item in items} == collected, "exactly the collected items"
    elsewhere = api.search(collections=["upscaled-ndvi"], bbox=[20.0, 40.0, 21.0, 41.0])
    assert list(elsewhere.items()) == []
    host = s3_server.endpoint.removeprefix("http://")
    with rasterio.Env(AWS_S3_ENDPOINT=host, AWS_HTTPS="NO", AWS_VIRTUAL_HOSTING="FALSE"):
        for item in items[:3]:
            with rasterio.open(item.assets["data"].href) as src:  # s3://published/c1/items/...
                assert src.read(1).size > 0
    collection = api.get_collection("upscaled-ndvi")
    assert collection.extent.spatial.bboxes[0][0] == pytest.approx(11.9, abs=0.3)

    answer = cli.main(["catalog", str(config), "--publish"], standalone_mode=False)
    assert answer is None
    again = api.search(collections=["upscaled-ndvi"], datetime="2024-01-01/2024-02-01")
    assert again.matched() == 12, "published again: no duplicate item"
    assert Bucket(campaign.upload).read("collection.json")


def test_an_item_the_api_rejects_is_an_error_with_the_servers_message(stac_transactions_api) -> None:
    api = StacApi(Publication(stac_transactions_api, "rejecting"))
    extent = {
        "spatial": {"bbox": [[11.0, 47.0, 13.0, 49.0]]},
        "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]},
    }
    api.put_collection({"type": "Collection", "stac_version": "1.1.0", "description": "d", "license": "other",
                        "extent": extent, "links": []})  # fmt: skip
    api.put_collection({"type": "Collection", "stac_version": "1.1.0", "description": "again", "license": "other",
                        "extent": extent, "links": []})  # fmt: skip
    item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": "t1",
        "geometry": {"type": "Point", "coordinates": [12.0, 48.0]},
        "bbox": [12.0, 48.0, 12.0, 48.0],
        "properties": {},  # no datetime
        "links": [],
        "assets": {},
    }
    with pytest.raises(
        PublishError, match=r"POST .*/collections/rejecting/items: the API answered 400: .*datetime"
    ) as err:
        api.put_item(item)
    assert not err.value.retryable, "the same item would be refused again"
    api.put_item({**item, "properties": {"datetime": "2024-01-01T00:00:00Z"}})
    api.put_item({**item, "properties": {"datetime": "2024-01-02T00:00:00Z"}})  # an upsert: the API holds it
    found = Client.open(stac_transactions_api).search(collections=["rejecting"]).item_collection()
    assert [i.id for i in found] == ["t1"] and found[0].datetime.day == 2


def test_a_token_that_is_not_set_is_refused_before_anything_is_sent(stac_transactions_api, monkeypatch) -> None:
    monkeypatch.delenv("STAC_TOKEN", raising=False)
    with pytest.raises(PublishError, match="STAC_TOKEN holding the API's token is unset"):
        StacApi(Publication(stac_transactions_api, "c", token_env="STAC_TOKEN"))
    monkeypatch.setenv("STAC_TOKEN", "secret-token-value")
    api = StacApi(Publication(stac_transactions_api, "c", token_env="STAC_TOKEN"))
    assert json.dumps(api.publication.__dict__).count("secret-token-value") == 0


def test_without_a_bucket_the_published_hrefs_are_the_files_on_this_machine(tmp_path, stac_transactions_api) -> None:
    publish = {"stac_api": stac_transactions_api, "collection": "local-results"}
    campaign = load_campaign(flaky_config(tmp_path, publish=publish))
    run_campaign(campaign)
    items = list(Client.open(stac_transactions_api).search(collections=["local-results"]).items())
    assert items
    for item in items:
        href = item.assets["data"].href
        assert href.startswith(str(campaign.output.resolve()))
        with rasterio.open(href) as src:
            assert src.count >= 1
