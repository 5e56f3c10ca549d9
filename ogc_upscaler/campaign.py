"""A campaign: what to run where and when, as resolved objects.

Build one in Python, or read one from a config file with
:func:`ogc_upscaler.config.load_campaign`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from ogc_upscaler.aoi import AOI
from ogc_upscaler.grid import Grid
from ogc_upscaler.windows import Window


@dataclass(frozen=True)
class ParameterSet:
    """Named values handed to every job of this set (e.g. a threshold)."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """A short hash of the values: a changed value is a changed job."""
        return hashlib.sha256(json.dumps(self.values, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Process:
    """What each job runs: an application reference and per-job input templates."""

    application: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inputs:
    """Where each job's input items are searched: a static STAC catalog or a STAC API."""

    stac: str
    collections: tuple[str, ...] = ()
    base_dir: Path = Path(".")


class Auth(BaseModel):
    """How a remote backend authenticates; secrets are named (environment variables, files), never inline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["none", "bearer", "basic", "oidc"] = "none"
    token_env: str | None = None
    token_file: str | None = None
    username: str | None = None
    password_env: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    scope: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        needed = {
            "bearer": ["token_env|token_file"],
            "basic": ["username", "password_env"],
            "oidc": ["token_url", "client_id", "client_secret_env"],
        }.get(self.type, [])
        missing = [n for n in needed if not any(getattr(self, k) for k in n.split("|"))]
        if missing:
            raise ValueError(f"auth type {self.type} needs {', '.join(m.replace('|', ' or ') for m in missing)}")
        return self


@dataclass(frozen=True)
class SlurmOptions:
    """What Toil passes to ``sbatch`` for every tile job."""

    partition: str | None = None
    time: str | None = None
    account: str | None = None
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class KubernetesOptions:
    """Where Toil's Kubernetes batch system runs the tile jobs."""

    namespace: str = "default"
    job_store: str | None = None  # aws:REGION:NAME (S3 or S3-compatible): pods cannot reach a file: store
    image: str | None = None  # the Toil appliance image with ogc-upscaler and the packages' tools installed
    service_account: str | None = None
    host_path: str | None = None


@dataclass(frozen=True)
class ToilSettings:
    """The Toil backend's settings: batch system, shared path, batch size and the batch system's options."""

    batch_system: str = "single_machine"
    shared: Path = Path("toil")  # on a filesystem the leader and every node share
    batch_size: int = 50
    container: str = "none"
    staging: str = "shared"  # or "jobstore": tiles travel through Toil's job store to nodes without the shared path
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    kubernetes: KubernetesOptions = field(default_factory=KubernetesOptions)


@dataclass(frozen=True)
class Backend:
    """Where jobs run and how many at once: ``cwltool`` here, or an OGC API – Processes endpoint."""

    type: str = "cwltool"
    parallel: int = 2
    container: str = "none"
    url: str | None = None
    process: str | None = None
    requests_per_second: float | None = None
    timeout: float = 60.0
    auth: Auth = field(default_factory=Auth)
    name: str | None = None
    inputs: dict[str, Any] | None = None  # the execute inputs as templates over the job's: {job.NAME}
    toil: ToilSettings | None = None


@dataclass(frozen=True)
class Retries:
    """How often and how patiently a job is tried."""

    attempts: int = 3
    backoff_s: float = 10.0
    max_backoff_s: float = 600.0
    time_limit_s: float = 6 * 3600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``: exponential, capped."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** max(0, attempt - 1))


@dataclass(frozen=True)
class Campaign:
    """An upscaling campaign: an AOI on a grid, time windows, parameter sets, a process, a store.

    ``workdir`` holds each job's run folder and logs; ``output`` the STAC catalog of results.
    """

    name: str
    aoi: AOI
    grid: Grid
    windows: tuple[Window, ...]
    parameter_sets: tuple[ParameterSet, ...] = ()
    process: Process = field(default_factory=Process)
    store: Path = Path("upscaler.sqlite")
    inputs: Inputs | None = None
    backends: tuple[Backend, ...] = (Backend(),)
    retries: Retries = field(default_factory=Retries)
    workdir: Path = Path("runs")
    output: Path = Path("catalog")

    @property
    def backend(self) -> Backend:
        """The first (usually the only) backend."""
        return self.backends[0]

    @property
    def parallel(self) -> int:
        """How many jobs may run at once over all backends."""
        return sum(b.parallel for b in self.backends)
