"""Inputs read where they are in a bucket: a static STAC catalog at ``s3://`` on a real S3-compatible server
(ministack, signatures checked), its items staged by each job's stage-in and its COGs opened by the package's
tool through GDAL's ``/vsis3/``, every client pointed at the endpoint by one setting; the keys never written."""

from __future__ import annotations

import numpy as np
import pytest

from ogc_upscaler.config import load_campaign
from ogc_upscaler.discovery import StaticCatalog
from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.run import run_campaign
from ogc_upscaler.s3_access import CredentialsError, S3Access, job_environment
from ogc_upscaler.store import JobStore, State

from .conftest import checked_ndvi, demo_config


@pytest.fixture
def credentials(s3_server, monkeypatch) -> None:
    for name, value in s3_server.credentials().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_S3_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def test_one_endpoint_setting_points_gdal_obstore_and_boto3_at_the_store() -> None:
    env = job_environment(S3Access("http://127.0.0.1:9000", region="eu-north-1"), environ={})
    assert env["AWS_S3_ENDPOINT"] == "127.0.0.1:9000" and env["AWS_HTTPS"] == "NO"  # GDAL
    assert env["AWS_VIRTUAL_HOSTING"] == "FALSE" and env["AWS_ALLOW_HTTP"] == "true"  # path-style; obstore
    assert env["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9000"  # boto3, Toil
    assert env["AWS_REGION"] == "eu-north-1"
    # AWS_ENDPOINT_URL alone in the environment (the SDKs' own setting) is enough: GDAL's are derived from it
    derived = job_environment(environ={"AWS_ENDPOINT_URL": "https://s3.example.org", "HOME": "/root"})
    assert derived["AWS_S3_ENDPOINT"] == "s3.example.org" and derived["AWS_HTTPS"] == "YES" and "HOME" not in derived
    # what the user set explicitly wins over what is derived
    own = job_environment(environ={"AWS_ENDPOINT_URL": "http://a:1", "AWS_VIRTUAL_HOSTING": "TRUE"})
    assert own["AWS_VIRTUAL_HOSTING"] == "TRUE"


def test_a_profiles_keys_reach_the_jobs_because_a_job_has_its_own_home(tmp_path, monkeypatch) -> None:
    shared = tmp_path / "credentials"
    shared.write_text("[inputs]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s3cr3t\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    env = job_environment(S3Access(profile="inputs"), environ={})
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE" and env["AWS_SECRET_ACCESS_KEY"] == "s3cr3t"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("AWS_PROFILE", "inputs")  # the environment's profile, as the SDKs take it
    assert job_environment(environ={"AWS_PROFILE": "inputs"})["AWS_SECRET_ACCESS_KEY"] == "s3cr3t"
    with pytest.raises(CredentialsError, match=r"profile 'other' is not in .*credentials"):
        job_environment(S3Access(profile="other"), environ={})  # a profile the config names must be there
    monkeypatch.setenv("AWS_PROFILE", "unrelated")  # one set for another use does not stop a campaign
    assert job_environment(environ={"AWS_PROFILE": "unrelated"}) == {"AWS_PROFILE": "unrelated"}


def test_a_static_catalog_in_a_bucket_is_searched_where_it_is(s3_server, archive_bucket, credentials) -> None:
    source = StaticCatalog(archive_bucket, ["demo-s2-l2a"], S3Access(s3_server.endpoint))
    assert len(source.hrefs) == 6 and all(h.startswith("s3://archive-inputs/s2/demo-s2-l2a/") for h in source.hrefs)
    assert source.coverage().collections == ("demo-s2-l2a",)


def test_a_catalog_the_store_refuses_is_a_config_error_naming_it(s3_server, archive_bucket, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(InvalidConfig, match=r"cannot read the STAC catalog s3://archive-inputs/s2/catalog.json") as err:
        StaticCatalog(archive_bucket, None, S3Access(s3_server.endpoint))
    assert "not-the-secret" not in str(err.value) and "403 Forbidden" in str(err.value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    with pytest.raises(InvalidConfig, match=r"nothing/catalog\.json: no such object in the bucket"):
        StaticCatalog("s3://archive-inputs/nothing/catalog.json", None, S3Access(s3_server.endpoint))


@pytest.mark.slow
def test_a_campaign_reads_its_items_and_cogs_in_the_bucket(tmp_path, s3_server, archive_bucket, credentials) -> None:
    inputs = {"stac": archive_bucket, "collections": ["demo-s2-l2a"], "s3": {"endpoint_url": s3_server.endpoint}}
    config = demo_config(tmp_path, tmp_path, aoi="11.96,47.86,12.04,47.94", inputs=inputs)
    campaign = load_campaign(config)
    assert campaign.inputs is not None and campaign.inputs.s3 == S3Access(s3_server.endpoint)
    progress = run_campaign(campaign).progress
    assert progress.counts["collected"] == progress.total == 2, progress.counts  # a tile each side of 12°E
    with JobStore.open(campaign.store) as store:
        jobs = list(store.jobs(State.COLLECTED))
        assert all(h.startswith("s3://") for j in jobs for h in j.inputs["items"])  # staged from the bucket
    rng = np.random.default_rng(3)
    checked = sum(checked_ndvi(cog, 4, rng, 200) for cog in sorted(campaign.output.rglob("*.tif")))
    assert checked > 100  # the COGs hold the NDVI of the scenes read from the bucket
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix not in (".tif", ".sqlite-wal", ".sqlite-shm")]
    leaked = [p for p in written if s3_server.secret.encode() in p.read_bytes()]
    assert not leaked, "the secret key was written to disk"  # job files, logs, store, catalog
    assert s3_server.secret.encode() not in campaign.store.read_bytes()


@pytest.mark.slow
def test_a_job_whose_items_the_store_refuses_fails_with_the_stores_words(
    tmp_path, s3_server, archive_bucket, credentials, monkeypatch
) -> None:
    inputs = {"stac": archive_bucket, "collections": ["demo-s2-l2a"], "s3": {"endpoint_url": s3_server.endpoint}}
    config = demo_config(
        tmp_path, tmp_path, aoi="11.96,47.86,11.99,47.89", inputs=inputs, retries={"attempts": 1, "backoff": 0.1}
    )
    campaign = load_campaign(config)
    from ogc_upscaler.plan import plan

    with JobStore.open(campaign.store) as store:
        plan(campaign, store)  # the search reads the catalog with the right keys
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")  # then the jobs are signed with a wrong one
    progress = run_campaign(campaign).progress
    assert progress.counts["failed"] == progress.total == 1
    with JobStore.open(campaign.store) as store:
        (job,) = store.jobs(State.FAILED)
        assert "stage-in" in job.error and "s3://archive-inputs/s2/demo-s2-l2a/" in job.error, job.error
        assert "not-the-secret" not in job.error
