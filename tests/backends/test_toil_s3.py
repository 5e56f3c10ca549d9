"""Toil's own S3 job store, as Kubernetes needs it, against a real S3-compatible server on loopback: the
tiles of a campaign are staged through the job store (nodes never see the shared path) and come back
collected; each batch's bucket is Toil's, made and removed by Toil."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ogc_upscaler.config import load_campaign
from ogc_upscaler.run import run_campaign
from ogc_upscaler.store import JobStore, State

from ..conftest import demo_config
from .test_cwltool import flaky_config

pytestmark = pytest.mark.slow


def test_tiles_are_staged_through_a_toil_job_store_in_s3(tmp_path, s3_server, monkeypatch) -> None:
    for name, value in s3_server.credentials().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)  # boto3's own setting, which Toil's store takes
    toil = {"batch_system": "single_machine", "batch_size": 4, "staging": "jobstore"}
    toil["job_store"] = "aws:us-east-1:tiles"  # each batch's store: bucket tiles-BATCH--toil
    campaign = load_campaign(flaky_config(tmp_path, backend={"type": "toil", "parallel": 4, "toil": toil}))
    run_campaign(campaign)
    with JobStore.read(campaign.store) as store:
        jobs = list(store.jobs())
    assert jobs and all(j.state is State.COLLECTED for j in jobs), [(j.state, j.error) for j in jobs]
    batches = sorted((campaign.backend.toil.shared / "batches").iterdir())
    assert batches
    for batch in batches:
        command = json.loads((batch / "batch.json").read_text())
        leader_log = (batch / "leader.log").read_text()
        assert f"aws:us-east-1:tiles-{batch.name}" in json.dumps(command) + leader_log
    for job in jobs:
        assert (Path(job.remote_id) / "staged").exists(), "the tile went through the job store"


def test_toil_tiles_read_their_items_and_cogs_in_a_bucket(tmp_path, s3_server, archive_bucket, monkeypatch) -> None:
    """The Kubernetes path on one machine: tiles staged through Toil's S3 job store read their inputs where they
    are in the bucket, every client of every tile pointed at the store by the campaign's one setting."""
    for name, value in s3_server.credentials().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_S3_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    inputs = {"stac": archive_bucket, "collections": ["demo-s2-l2a"], "s3": {"endpoint_url": s3_server.endpoint}}
    toil = {"batch_system": "single_machine", "batch_size": 2, "staging": "jobstore", "job_store": "aws:us-east-1:s2"}
    backend = {"type": "toil", "parallel": 2, "toil": toil}
    campaign = load_campaign(
        demo_config(tmp_path, tmp_path, aoi="11.96,47.86,12.04,47.94", inputs=inputs, backend=backend)
    )
    run_campaign(campaign)
    with JobStore.read(campaign.store) as store:
        jobs = list(store.jobs())
    assert len(jobs) == 2 and all(j.state is State.COLLECTED for j in jobs), [(j.state, j.error) for j in jobs]
    for job in jobs:
        assert (Path(job.remote_id) / "staged").exists(), "the tile went through the job store"
        assert all(h.startswith("s3://archive-inputs/") for h in job.inputs["items"])
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".tif"]
    assert not [p for p in written if s3_server.secret.encode() in p.read_bytes()], "the secret key was written"
