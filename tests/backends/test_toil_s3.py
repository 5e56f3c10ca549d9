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
