"""The Kubernetes calls the Toil backend makes (list and delete a batch's jobs), against a loopback stand-in
for the Kubernetes API with the real API's shapes, through the real ``kubernetes`` client. An opt-in test runs
against a real cluster when ``OGC_UPSCALER_KUBECONFIG`` names a kubeconfig."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from kubernetes import client

from ogc_upscaler.backends import kubernetes
from ogc_upscaler.backends.toil import K8S_BATCH_MAX
from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import BackendError
from ogc_upscaler.run import make_backend

from ..conftest import demo_config
from ..servers.kube_api import KubeApi


def api_of(fake: KubeApi) -> client.BatchV1Api:
    configuration = client.Configuration()
    configuration.host = fake.url
    return client.BatchV1Api(client.ApiClient(configuration))


def toil_job(batch: str, n: int, run: str = "0f8b3c1e-8d9a-4d55-9b0e-1c1f0a6f7e21") -> str:
    return f"{kubernetes.owner(batch)}-toil-{run}-{n}"


#: Jobs of another batch, of another user's Toil, and of another workload: never ours to delete.
THEIRS = [toil_job("ffffeeeedddd", 1), "someone-toil-0f8b3c1e-8d9a-4d55-9b0e-1c1f0a6f7e21-1", "web-7f9c"]


@pytest.fixture
def fake():
    ours = [toil_job("a1b2c3d4e5f6", n) for n in range(1, 1203)]  # more than two pages of 500
    api = KubeApi({"eo": ours + THEIRS}, forbidden=("locked",))
    yield api
    api.close()


def test_a_batch_s_jobs_are_found_page_by_page_and_deleted_with_their_pods(fake) -> None:
    api = api_of(fake)
    deleted = kubernetes.delete_batch_jobs(api, "eo", "a1b2c3d4e5f6")
    assert len(deleted) == 1202
    assert sorted(fake.jobs["eo"]) == sorted(THEIRS), "other batches', users' and workloads' jobs are left alone"
    lists = [p for m, p, _ in fake.requests if m == "GET"]
    assert len(lists) == 3 and all("limit=500" in p for p in lists), "listed in pages of 500"
    deletes = [b for m, _, b in fake.requests if m == "DELETE"]
    assert deletes and all(b.get("propagationPolicy") == "Background" for b in deletes), "pods go with their jobs"


def test_a_job_already_gone_is_fine_and_a_forbidden_namespace_says_what_to_grant(fake) -> None:
    api = api_of(fake)
    name = toil_job("a1b2c3d4e5f6", 1)
    fake.jobs["eo"].remove(name)
    kubernetes._call(api.delete_namespaced_job, name, "eo", body=client.V1DeleteOptions(), gone=True)
    with pytest.raises(BackendError, match="403") as raised:
        kubernetes.batch_jobs(api, "locked", "a1b2c3d4e5f6")
    assert not raised.value.retryable and "Role in k8s/base" in raised.value.hint


def test_an_unreachable_api_is_a_retryable_error() -> None:
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # nothing listens on the discard port
    configuration.retries = 0
    api = client.BatchV1Api(client.ApiClient(configuration))
    with pytest.raises(BackendError, match="unreachable") as raised:
        kubernetes.batch_jobs(api, "eo", "a1b2c3d4e5f6")
    assert raised.value.retryable


def test_toil_job_names_fit_kubernetes_for_the_largest_batch() -> None:
    name = kubernetes.longest_job_name("a1b2c3d4e5f6", 3 * K8S_BATCH_MAX + 1)  # stage in, run, stage out; root
    assert kubernetes.NAME.match(name) and len(name) <= 63, name


def test_cancelling_every_tile_of_a_batch_deletes_its_pods(tmp_path, demo_archive, fake) -> None:
    settings = {"namespace": "eo", "job_store": "aws:eu-west-1:upscaler", "image": "registry.example.org/up:1"}
    backend_config = {"type": "toil", "toil": {"batch_system": "kubernetes", "kubernetes": settings}}
    backend = make_backend(load_campaign(demo_config(tmp_path, demo_archive, backend=backend_config)))
    backend.kubernetes_api = lambda: api_of(fake)
    batch = backend.shared / "batches" / "a1b2c3d4e5f6"
    batch.mkdir(parents=True)
    tiles = [backend.shared / "tiles" / f"t{i}" / "attempt-1" for i in range(3)]
    for tile in tiles:
        tile.mkdir(parents=True)
        (tile / "batch").write_text(f"{batch}\n")
    (batch / "batch.json").write_text(json.dumps({"tiles": [{"folder": str(t)} for t in tiles]}))
    (tiles[2] / "exit_code").write_text("0\n")  # one tile already ended

    backend.cancel(str(tiles[0]))
    assert not fake.requests, "a tile of the batch is still to run: the batch goes on"
    backend.cancel(str(tiles[1]))
    assert (tiles[0] / "cancelled").exists() and (tiles[1] / "cancelled").exists()
    assert fake.jobs["eo"] == THEIRS, "the batch's jobs are gone, and only those"
    assert backend.leader_environment(batch)["TOIL_KUBERNETES_OWNER"] == kubernetes.owner("a1b2c3d4e5f6")


@pytest.mark.skipif(not os.environ.get("OGC_UPSCALER_KUBECONFIG"), reason="set OGC_UPSCALER_KUBECONFIG to a cluster")
def test_against_a_real_cluster(tmp_path) -> None:
    """Opt-in: create two jobs named as Toil names a batch's, find them, delete them, in a scratch namespace."""
    from kubernetes import config

    config.load_kube_config(os.environ["OGC_UPSCALER_KUBECONFIG"])
    core, api = client.CoreV1Api(), client.BatchV1Api()
    namespace = f"ogc-upscaler-test-{Path(tmp_path).name[-8:].lower().replace('_', '-')}".rstrip("-")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        container = client.V1Container(name="c", image="busybox", command=["sleep", "60"])
        spec = client.V1PodSpec(containers=[container], restart_policy="Never")
        for n in (1, 2):
            job = client.V1Job(
                metadata=client.V1ObjectMeta(name=toil_job("a1b2c3d4e5f6", n)),
                spec=client.V1JobSpec(template=client.V1PodTemplateSpec(spec=spec), backoff_limit=0),
            )
            api.create_namespaced_job(namespace, job)
        expected = [toil_job("a1b2c3d4e5f6", n) for n in (1, 2)]
        assert sorted(kubernetes.batch_jobs(api, namespace, "a1b2c3d4e5f6")) == expected
        kubernetes.delete_batch_jobs(api, namespace, "a1b2c3d4e5f6")
        assert kubernetes.batch_jobs(api, namespace, "a1b2c3d4e5f6") == []
    finally:
        core.delete_namespace(namespace)
