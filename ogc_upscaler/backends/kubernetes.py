"""The Kubernetes jobs a batch's Toil leader submits, found and deleted from our side.

Toil's Kubernetes batch system names each tile's job ``OWNER-toil-RUN-N`` (``RUN`` a uuid
per leader run, ``N`` Toil's job number), and the Toil backend sets ``OWNER`` per batch
(``TOIL_KUBERNETES_OWNER``, :func:`owner`). Jobs outlive a leader that died (Toil issue
#3498), so before a batch's leader is started again, or when every tile of a batch is
cancelled, its jobs are listed by that name and deleted with their pods. Only the calls
the Role in ``k8s/base`` grants are made: list and delete ``batch`` jobs in one namespace.
"""

from __future__ import annotations

import re
from typing import Any

from ogc_upscaler.errors import BackendError

#: Kubernetes object names that also label pods: DNS-1123 labels, at most 63 characters.
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: A Toil run id: a uuid4.
RUN_ID_LENGTH = 36


def owner(batch: str) -> str:
    """The owner Toil marks a batch's jobs with: short, so its job names fit 63 characters."""
    return f"ogc-{batch}"


def longest_job_name(batch: str, jobs: int) -> str:
    """The longest name Toil gives one of ``jobs`` jobs of ``batch`` (for checking it fits)."""
    return f"{owner(batch)}-toil-{'f' * RUN_ID_LENGTH}-{jobs}"


def batch_api() -> Any:
    """A ``BatchV1Api`` from the pod's service account, else from the kubeconfig."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise BackendError(
            "the kubernetes client is not installed", retryable=False, hint="pip install 'ogc-upscaler[toil]'"
        ) from None
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as err:
            raise BackendError(
                f"no Kubernetes configuration: {err}",
                retryable=False,
                hint="run inside the cluster (a service account) or set KUBECONFIG",
            ) from None
    return client.BatchV1Api()


def batch_jobs(api: Any, namespace: str, batch: str) -> list[str]:
    """The names of the jobs the leaders of ``batch`` submitted, page by page."""
    prefix = f"{owner(batch)}-toil-"
    names: list[str] = []
    token = None
    while True:
        page = _call(api.list_namespaced_job, namespace, limit=500, _continue=token)
        names += [j.metadata.name for j in page.items if j.metadata.name.startswith(prefix)]
        token = page.metadata._continue
        if not token:
            return names


def delete_batch_jobs(api: Any, namespace: str, batch: str) -> list[str]:
    """Delete the jobs of ``batch`` and their pods; the names deleted (already gone ones count)."""
    from kubernetes.client import V1DeleteOptions

    names = batch_jobs(api, namespace, batch)
    for name in names:
        _call(
            api.delete_namespaced_job, name, namespace, body=V1DeleteOptions(propagation_policy="Background"), gone=True
        )
    return names


def _call(method: Any, *args: Any, gone: bool = False, **kwargs: Any) -> Any:
    """Call the API; its errors become :class:`BackendError` (a 404 is fine when ``gone``)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return method(*args, **kwargs)
    except ApiException as err:
        if gone and err.status == 404:
            return None
        retryable = err.status is None or err.status >= 500 or err.status == 429
        hint = "the service account needs the Role in k8s/base (batch jobs: list, delete)" if err.status == 403 else ""
        raise BackendError(
            f"Kubernetes API: {method.__name__} answered {err.status} {err.reason}", retryable=retryable, hint=hint
        ) from None
    except HTTPError as err:
        raise BackendError(f"Kubernetes API unreachable: {err}", retryable=True) from None
