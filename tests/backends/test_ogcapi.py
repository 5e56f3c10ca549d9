"""The OGC API – Processes client backend against a real pygeoapi on loopback (its hello-world process)."""

from __future__ import annotations

import json
from pathlib import Path

import pystac
import pytest

from ogc_upscaler.backends.base import JobRequest
from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import BackendError, InvalidConfig
from ogc_upscaler.run import run_campaign
from ogc_upscaler.store import JobStore

from ..conftest import write_config
from ..servers.faulty import FaultyServer

pytestmark = pytest.mark.slow


def hello_config(folder: Path, url: str, **inputs) -> Path:
    return write_config(
        folder,
        aoi="11.95,47.85,12.05,47.95",
        time={"start": "2024-01-01", "end": "2024-03-01", "step": "P1M"},
        process={"inputs": inputs or {"name": "{tile.id}", "message": "{window.key}"}},
        backend={"type": "ogcapi", "url": url, "process": "hello-world", "parallel": 3},
        retries={"attempts": 2, "backoff": 0.2, "time_limit": "PT2M"},
    )


def test_a_campaign_of_executions_against_a_process_we_did_not_write(tmp_path, pygeoapi_server) -> None:
    campaign = load_campaign(hello_config(tmp_path, pygeoapi_server))
    result = run_campaign(campaign)
    with JobStore.read(campaign.store) as store:
        rows = list(j.columns() for j in store.jobs(with_tile=True))
    assert rows and all(r["state"] == "collected" for r in rows)
    assert all(r["remote_id"].startswith(pygeoapi_server + "/jobs/") for r in rows)
    collection = pystac.Collection.from_file(str(result.catalog))
    items = list(collection.get_items())
    assert len(items) == len(rows)
    for item in items:
        results = json.loads(Path(item.assets["results"].get_absolute_href()).read_text())
        tile, window = item.properties["ogc_upscaler:tile"], item.id.split("_")[1]
        assert results["value"] == f"Hello {tile}! {window}"


@pytest.mark.parametrize(
    ("overrides", "inputs", "message"),
    [
        ({"process": "no-such-process"}, {"name": "{tile.id}"}, "no process 'no-such-process'"),
        ({}, {"message": "{tile.id}"}, "missing name"),
        ({}, {"name": "{tile.epsg}"}, "name takes a string"),
        ({}, {"name": "{tile.id}", "colour": "red"}, "unknown colour"),
    ],
)
def test_inputs_are_checked_against_the_process_description_before_anything_is_submitted(
    tmp_path, pygeoapi_server, overrides, inputs, message
) -> None:
    path = hello_config(tmp_path, pygeoapi_server, **inputs)
    if overrides:
        config = path.read_text().replace("process: hello-world", f"process: {overrides['process']}")
        path.write_text(config)
    campaign = load_campaign(path)
    with pytest.raises(InvalidConfig, match=message):
        run_campaign(campaign)
    if campaign.store.exists():
        with JobStore.read(campaign.store) as store:
            assert all(j.state.value == "planned" and j.attempts == 0 for j in store.jobs())


def test_a_campaign_survives_a_server_that_misbehaves(tmp_path, monkeypatch) -> None:
    token = "s3cr3t-" + "t0ken-4-tests"
    monkeypatch.setenv("UPSCALER_TEST_TOKEN", token)
    probe = load_campaign(write_config(tmp_path, aoi="11.9,47.8,12.1,47.95"))
    tiles = sorted(probe.grid.tiles(probe.aoi).ids)
    stuck = tiles[0]
    server = FaultyServer(token=token, stuck=(stuck,)).start()
    try:
        path = write_config(
            tmp_path,
            aoi="11.9,47.8,12.1,47.95",
            time={"start": "2024-01-01", "end": "2024-02-01", "step": "P1M"},
            process={"inputs": {"name": "{tile.id}"}},
            backend={
                "type": "ogcapi",
                "url": server.url,
                "process": "echo",
                "parallel": 3,
                "timeout": 1.5,
                "auth": {"type": "bearer", "token_env": "UPSCALER_TEST_TOKEN"},
            },
            retries={"attempts": 3, "backoff": 0.2, "time_limit": 15},
        )
        campaign = load_campaign(path)
        run_campaign(campaign)
    finally:
        server.stop()
    with JobStore.read(campaign.store) as store:
        rows = {r["tile_id"]: r for r in (j.columns() for j in store.jobs(with_tile=True))}
    assert set(rows) == set(tiles), "no job lost"
    for tile, row in rows.items():
        if tile == stuck:
            assert row["state"] == "failed" and row["attempts"] == 3 and row["error"], "failed for a stated reason"
            assert server.executions[tile] >= 1 and server.dismissed.count(tile) == server.executions[tile]
        else:
            assert row["state"] == "collected", (tile, row["error"])
            assert server.executions[tile] == 1, "no job executed twice without cause"
    assert server.unauthorised == 0
    for place in (campaign.workdir, campaign.output, campaign.store.parent):
        for file in place.rglob("*"):
            if file.is_file():
                assert token.encode() not in file.read_bytes(), f"the token leaked into {file}"


def test_without_the_token_the_run_stops_before_submitting(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("UPSCALER_TEST_TOKEN", raising=False)
    server = FaultyServer(token="x").start()
    try:
        path = write_config(
            tmp_path,
            process={"inputs": {"name": "{tile.id}"}},
            backend={
                "type": "ogcapi",
                "url": server.url,
                "process": "echo",
                "auth": {"type": "bearer", "token_env": "UPSCALER_TEST_TOKEN"},
            },
        )
        with pytest.raises(InvalidConfig, match=r"no secret found in auth\.token_env") as err:
            run_campaign(load_campaign(path))
        assert "x" not in err.value.message.split(":")[-1]
    finally:
        server.stop()
    assert not server.executions


def run_against(tmp_path: Path, server: FaultyServer, auth: dict, stop: bool = True) -> tuple[list[dict], Path]:
    """A small campaign of `echo` executions on ``server`` with ``auth``; its rows and its folder."""
    path = write_config(
        tmp_path,
        aoi="11.9,47.8,12.1,47.95",
        time={"start": "2024-01-01", "end": "2024-03-01", "step": "P1M"},
        process={"inputs": {"name": "{tile.id}-{window.key}"}},
        backend={"type": "ogcapi", "url": server.url, "process": "echo", "parallel": 4, "auth": auth},
        retries={"attempts": 2, "backoff": 0.2, "time_limit": 30},
    )
    campaign = load_campaign(path)
    try:
        run_campaign(campaign)
    finally:
        if stop:
            server.stop()
    with JobStore.read(campaign.store) as store:
        return list(j.columns() for j in store.jobs(with_tile=True)), tmp_path


def assert_secret_absent(folder: Path, secret: str) -> None:
    for file in folder.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), f"the secret leaked into {file}"


def test_http_basic_credentials_reach_the_server(tmp_path, monkeypatch) -> None:
    password = "b4sic-" + "passw0rd"
    monkeypatch.setenv("UPSCALER_TEST_PASSWORD", password)
    server = FaultyServer(basic=("scientist", password), faults=False, run_seconds=0.2).start()
    auth = {"type": "basic", "username": "scientist", "password_env": "UPSCALER_TEST_PASSWORD"}
    rows, folder = run_against(tmp_path, server, auth)
    assert rows and all(r["state"] == "collected" for r in rows), [r["error"] for r in rows]
    assert server.unauthorised == 0 and sum(server.executions.values()) == len(rows)
    assert_secret_absent(folder, password)


def test_oidc_client_credentials_are_refreshed_before_expiry_and_after_a_revocation(tmp_path, monkeypatch) -> None:
    secret = "oidc-" + "cl1ent-secret"
    monkeypatch.setenv("UPSCALER_TEST_CLIENT_SECRET", secret)
    # tokens live 61.5 s: the client renews 60 s before expiry, so every 1.5 s; every 9th request is refused
    server = FaultyServer(
        oidc=("upscaler", secret), token_lifetime=61.5, revoke_every=9, faults=False, run_seconds=1.0
    ).start()
    auth = {
        "type": "oidc",
        "token_url": f"{server.url}/token",
        "client_id": "upscaler",
        "client_secret_env": "UPSCALER_TEST_CLIENT_SECRET",
    }
    rows, folder = run_against(tmp_path, server, auth)
    assert rows and all(r["state"] == "collected" for r in rows), [r["error"] for r in rows]
    assert server.unauthorised > 0, "revocations happened"
    assert len(server.tokens) >= 3, "tokens were renewed"
    assert sum(server.executions.values()) >= len(rows)
    assert_secret_absent(folder, secret)
    for token in server.tokens:
        assert_secret_absent(folder, token)


def test_a_server_that_only_runs_synchronously(tmp_path, pygeoapi_sync_server) -> None:
    campaign = load_campaign(hello_config(tmp_path, pygeoapi_sync_server))
    run_campaign(campaign)
    with JobStore.read(campaign.store) as store:
        rows = list(j.columns() for j in store.jobs(with_tile=True))
    assert rows and all(r["state"] == "collected" for r in rows), [r["error"] for r in rows]
    assert all(r["remote_id"].startswith("sync:") for r in rows)
    item = next(pystac.Collection.from_file(str(campaign.output / "collection.json")).get_items())
    results = json.loads(Path(item.assets["results"].get_absolute_href()).read_text())
    assert results["value"].startswith("Hello ")


def test_the_job_list_replaces_status_requests_while_many_jobs_run(tmp_path) -> None:
    server = FaultyServer(faults=False, run_seconds=2.0).start()
    rows, _ = run_against(tmp_path, server, {"type": "none"})
    assert rows and all(r["state"] == "collected" for r in rows)
    assert server.routes["list"] > 0
    # without the list every job needs one status request or more; with it, only the last few do
    assert server.routes["status"] < len(rows) / 2, server.routes


def test_outputs_given_as_a_stac_catalog_are_fetched_and_collected(tmp_path) -> None:
    server = FaultyServer(faults=False, run_seconds=0.2, stac_results=True).start()
    rows, folder = run_against(tmp_path, server, {"type": "none"})
    assert rows and all(r["state"] == "collected" for r in rows), [r["error"] for r in rows]
    collection = pystac.Collection.from_file(str(folder / "test-catalog" / "collection.json"))
    for item in collection.get_items():
        data = item.assets["data"]
        assert data.media_type == pystac.MediaType.COG and item.properties["proj:code"] == "EPSG:32632"
        assert Path(data.get_absolute_href()).stat().st_size == data.extra_fields["file:size"]


def test_credentials_go_to_the_endpoints_origin_only(tmp_path, monkeypatch) -> None:
    """They used to go to every host an output link named (and broke S3 presigned URLs)."""
    monkeypatch.setenv("UPSCALER_TEST_TOKEN", "t0ken-" + "for-the-endpoint")
    outputs = FaultyServer(faults=False, stac_results=True).start()
    server = FaultyServer(token="t0ken-for-the-endpoint", faults=False, run_seconds=0.2, stac_results=True,
                          stac_url=outputs.url).start()  # fmt: skip
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        rows, _ = run_against(tmp_path / "a", server, {"type": "bearer", "token_env": "UPSCALER_TEST_TOKEN"}, False)
        assert rows and all(r["state"] == "collected" for r in rows), [r["error"] for r in rows]
        assert outputs.authorizations and set(outputs.authorizations) == {""}, "no credentials to another host"
        assert set(server.authorizations) <= {""} and server.unauthorised == 0
        outputs.authorizations.clear()
        server.jobs.clear()
        auth = {"type": "bearer", "token_env": "UPSCALER_TEST_TOKEN", "send_to": [outputs.url]}
        rows, _ = run_against(tmp_path / "b", server, auth)
        assert rows and all(r["state"] == "collected" for r in rows)
        assert set(outputs.authorizations) == {"Bearer t0ken-for-the-endpoint"}, "unless the config allows it"
    finally:
        outputs.stop()


def test_a_presigned_signature_never_reaches_the_store_or_the_logs(tmp_path) -> None:
    signature = "X-Amz-Signature=" + "0123456789abcdef"
    outputs = FaultyServer(faults=False, stac_results=True, stac_query="X-Amz-Expires=1").start()  # refuses ours
    server = FaultyServer(faults=False, run_seconds=0.2, stac_results=True, stac_url=outputs.url,
                          stac_query=signature).start()  # fmt: skip
    try:
        rows, folder = run_against(tmp_path, server, {"type": "none"})
    finally:
        outputs.stop()
    assert rows and all(r["state"] == "failed" for r in rows)
    assert all("HTTP 403" in r["error"] and "?…" in r["error"] for r in rows), rows[0]["error"]
    assert_secret_absent(folder, "0123456789abcdef")


def test_a_download_cut_half_way_is_fetched_again_and_the_job_never_runs_again(tmp_path) -> None:
    server = FaultyServer(faults=False, run_seconds=0.2, stac_results=True, cut_downloads=True).start()
    rows, folder = run_against(tmp_path, server, {"type": "none"})
    assert rows and all(r["state"] == "collected" for r in rows), [r["error"] for r in rows]
    assert len(server.cut) == len(rows) and set(server.executions.values()) == {1}
    collection = pystac.Collection.from_file(str(folder / "test-catalog" / "collection.json"))
    for item in collection.get_items():
        data = item.assets["data"]
        assert Path(data.get_absolute_href()).stat().st_size == data.extra_fields["file:size"] > 0


def test_an_oidc_answer_without_a_token_fails_the_jobs_not_the_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UPSCALER_TEST_CLIENT_SECRET", "s")
    server = FaultyServer(oidc=("upscaler", "s"), faults=False, broken_tokens=True).start()
    auth = {"type": "oidc", "token_url": f"{server.url}/token", "client_id": "upscaler",
            "client_secret_env": "UPSCALER_TEST_CLIENT_SECRET"}  # fmt: skip
    path = write_config(
        tmp_path,
        aoi="11.9,47.8,12.1,47.95",
        time={"start": "2024-01-01", "end": "2024-02-01", "step": "P1M"},
        process={"inputs": {"name": "{tile.id}"}},
        backend={"type": "ogcapi", "url": server.url, "process": "echo", "auth": auth},
        retries={"attempts": 2, "backoff": 0.05},
    )
    try:
        with pytest.raises(BackendError, match="without an access_token"):  # the description is read first
            run_campaign(load_campaign(path))
    finally:
        server.stop()
    assert not server.executions


def test_one_server_error_on_the_process_description_is_asked_again(tmp_path) -> None:
    server = FaultyServer(faults=False, run_seconds=0.2, describe_failures=2).start()
    rows, _ = run_against(tmp_path, server, {"type": "none"})
    assert rows and all(r["state"] == "collected" for r in rows)


def test_a_dismissal_that_fails_raises_so_it_is_tried_again(tmp_path) -> None:
    from ogc_upscaler.backends.ogcapi import OgcApiBackend

    server = FaultyServer(faults=False, stuck=("x",), delete_failures=3).start()  # beyond the HTTP retries
    try:
        backend = OgcApiBackend(server.url, "echo", tmp_path)
        remote = backend.submit(JobRequest("job", 1, {"name": "x"}))
        with pytest.raises(BackendError, match="502") as err:
            backend.cancel(remote)
        assert err.value.retryable and server.jobs
        backend.cancel(remote)
        assert not server.jobs and server.dismissed == ["x"]
        backend.cancel(remote)  # gone already: confirmed
    finally:
        server.stop()
