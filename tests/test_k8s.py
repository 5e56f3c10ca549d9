"""The Kubernetes base, checked as far as possible without a cluster: strict schema validation of every
manifest (and of what kustomize renders), the Kubernetes client's models, least-privilege RBAC, and the
commands, config and Toil settings the manifests hand to ogc-upscaler."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import click
import kubernetes_validate
import pytest
import yaml
from kubernetes.client import ApiClient

from ogc_upscaler.backends.toil import ToilBackend
from ogc_upscaler.cli import cli
from ogc_upscaler.config import ConfigFile, resolve
from ogc_upscaler.cwl import load_package

ROOT = Path(__file__).parents[1]
BASE = ROOT / "k8s" / "base"
VERSIONS = ["1.30.0", "1.32.0", "1.34.0"]
MANIFESTS = sorted(p for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")


def load(name: str) -> dict:
    return yaml.safe_load((BASE / name).read_text())


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    """``kubectl kustomize k8s/base`` (Debian's kubernetes-client is installed when kubectl is missing)."""
    if shutil.which("kubectl") is None:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "kubernetes-client"],
                       check=True, capture_output=True, timeout=600)  # fmt: skip
    out = subprocess.run(["kubectl", "kustomize", str(BASE)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates_strictly(manifest, version) -> None:
    kubernetes_validate.validate(yaml.safe_load(manifest.read_text()), version, strict=True)


def test_kustomize_renders_the_base_and_the_result_validates(rendered) -> None:
    kinds = sorted(d["kind"] for d in rendered)
    assert kinds == sorted(
        ["Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "PersistentVolumeClaim", "Job",
         "Deployment", "Service"]
    )  # fmt: skip
    for document in rendered:
        kubernetes_validate.validate(document, VERSIONS[-1], strict=True)
        assert document["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ogc-upscaler"
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "ogc-upscaler"
    images = {
        c["image"]
        for d in rendered
        if d["kind"] in ("Job", "Deployment")
        for c in d["spec"]["template"]["spec"].get("initContainers", []) + d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example.org/ogc-upscaler:0.1.0"}


@pytest.mark.parametrize(("name", "model"), [("job.yaml", "V1Job"), ("deployment.yaml", "V1Deployment"),
                                              ("role.yaml", "V1Role"), ("service.yaml", "V1Service")])  # fmt: skip
def test_the_kubernetes_client_models_accept_the_manifests(name, model) -> None:
    client = ApiClient()
    obj = client.deserialize(json.dumps(load(name)), model, "application/json")
    assert client.sanitize_for_serialization(obj)["metadata"]["name"] == load(name)["metadata"]["name"]


def test_rbac_is_namespaced_and_least_privilege() -> None:
    role, binding = load("role.yaml"), load("rolebinding.yaml")
    assert not list(BASE.glob("cluster*.yaml")), "no cluster-wide rights"
    for rule in role["rules"]:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}  # fmt: skip
    # what Toil 9.6's kubernetes batch system calls
    needed = {("batch", "jobs", v) for v in ("create", "get", "list", "watch", "delete", "deletecollection")}
    needed |= {("", "pods", v) for v in ("list", "delete")} | {("", "pods/log", "get")}
    assert needed <= granted
    assert not any(r in ("secrets", "roles", "rolebindings", "pods/exec") for _, r, _ in granted)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ogc-upscaler"}]
    for name in ("job.yaml", "deployment.yaml"):
        assert load(name)["spec"]["template"]["spec"]["serviceAccountName"] == "ogc-upscaler"


def test_the_campaign_config_in_the_configmap_makes_a_toil_campaign_on_kubernetes(tmp_path) -> None:
    text = load("configmap.yaml")["data"]["campaign.yaml"]
    campaign = resolve(ConfigFile.model_validate(yaml.safe_load(text)), tmp_path / "campaign.yaml")
    settings = campaign.backend.toil
    assert campaign.backend.type == "toil" and settings is not None and settings.batch_system == "kubernetes"
    backend = ToilBackend(load_package(ROOT / "app_packages" / "ndvi" / "ndvi.cwl", validate=False), campaign.backend)
    assert backend.slots == campaign.backend.parallel
    batch = settings.shared / "batches" / "b1"
    options = backend.toil_options(batch)
    assert options[0] == "aws:eu-west-1:ogc-upscaler-jobstores-b1"
    assert options[options.index("--batchSystem") + 1] == "kubernetes"
    assert options[options.index("--kubernetesServiceAccount") + 1] == "ogc-upscaler"
    env = backend.leader_environment(batch)
    job = load("job.yaml")["spec"]["template"]["spec"]
    assert env["TOIL_APPLIANCE_SELF"] == "registry.example.org/ogc-upscaler:0.1.0", "tile pods run our image"
    assert env["KUBERNETES_NAMESPACE"] == load("namespace.yaml")["metadata"]["name"]
    mounts = {m["mountPath"] for m in job["containers"][0]["volumeMounts"]}
    assert str(settings.shared).startswith("/work") and "/work" in mounts, "the shared path is on the volume"
    assert str(campaign.store).startswith("/work") and str(campaign.output).startswith("/work")


def test_the_containers_run_real_ogc_upscaler_commands() -> None:
    job = load("job.yaml")["spec"]["template"]["spec"]["containers"][0]
    deployment = load("deployment.yaml")["spec"]["template"]["spec"]
    for args in (job["args"], deployment["initContainers"][0]["args"]):
        command = cli.get_command(click.Context(cli), args[0])
        assert command is not None
        command.make_context(args[0], list(args[1:]))  # parses, or raises on an unknown option
    assert job["args"][1] == "/config/campaign.yaml" and job["volumeMounts"][0]["mountPath"] == "/config"
    endpoint = deployment["containers"][0]
    env = {e["name"]: e["value"] for e in endpoint["env"]}
    state = deployment["initContainers"][0]["args"][2]
    assert env["PYGEOAPI_CONFIG"] == f"{state}/pygeoapi.yml" and env["PYGEOAPI_OPENAPI"] == f"{state}/openapi.yml"
    assert endpoint["args"][-1] == "ogc_upscaler.server.app:APP"


def test_the_dockerfile_installs_what_the_manifests_run() -> None:
    text = (ROOT / "k8s" / "Dockerfile").read_text()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert 'pip install --no-cache-dir ".[server,toil]" /opt/app_packages/ndvi' in text
    assert {"server", "toil"} <= set(declared)
    assert "FROM python:3.11" in text and "USER 1000" in text and 'ENTRYPOINT ["ogc-upscaler"]' in text


def test_the_campaign_job_restarts_only_what_a_restart_can_finish() -> None:
    """`run`'s exit codes drive the Job's pod failure policy: stopped (resumable) is restarted, finished with
    failures or a bad config is not (with restartPolicy OnFailure the failures were retried for ever)."""
    from ogc_upscaler.run import EXIT_FAILURES, EXIT_STOPPED

    spec = load("job.yaml")["spec"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    rules = {rule["action"]: rule for rule in spec["podFailurePolicy"]["rules"] if "onExitCodes" in rule}
    assert set(rules["FailJob"]["onExitCodes"]["values"]) == {2, EXIT_FAILURES}
    assert rules["Ignore"]["onExitCodes"]["values"] == [EXIT_STOPPED]
    assert all(r["onExitCodes"]["containerName"] == "manager" for r in rules.values())
