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

from ogc_upscaler.aoi import AOI
from ogc_upscaler.backends import registry
from ogc_upscaler.backends.base import BackendSettings
from ogc_upscaler.bucket import S3Output
from ogc_upscaler.grid import Grid
from ogc_upscaler.s3_access import S3Access
from ogc_upscaler.stac_api import Publication
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
    """Where each job's input items are searched: a static STAC catalog or a STAC API; ``s3``: how the
    ``s3://`` catalog, items and assets are reached (None: as the environment says)."""

    stac: str
    collections: tuple[str, ...] = ()
    base_dir: Path = Path(".")
    s3: S3Access | None = None


@dataclass(frozen=True)
class Retries:
    """How often and how patiently a job is tried.

    ``time_limit_s`` bounds an attempt's running time, ``queue_limit_s`` the time it waits in
    the backend's queue before it runs (SLURM may queue for hours). ``on_doubt`` says what
    happens to a submission the backend can neither find nor rule out: ``wait`` for a person
    (``retry --in-doubt``), ``resubmit`` (it may then run twice) or ``fail``. After an attempt ran
    out of memory the next asks ``oom_factor`` times more (1 fails it at once instead).
    """

    attempts: int = 3
    backoff_s: float = 10.0
    max_backoff_s: float = 600.0
    time_limit_s: float = 6 * 3600.0
    queue_limit_s: float = 2 * 86400.0
    on_doubt: Literal["wait", "resubmit", "fail"] = "wait"
    oom_factor: float = 1.5

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``: exponential, capped."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** max(0, attempt - 1))


@dataclass(frozen=True)
class Campaign:
    """An upscaling campaign: an AOI on a grid, time windows, parameter sets, a process, a store.

    ``workdir`` holds each job's run folder and logs; ``output`` the STAC catalog of results, mirrored to
    the bucket of ``upload`` when there is one.
    """

    name: str
    aoi: AOI
    grid: Grid
    windows: tuple[Window, ...]
    parameter_sets: tuple[ParameterSet, ...] = ()
    process: Process = field(default_factory=Process)
    store: Path = Path("upscaler.sqlite")
    inputs: Inputs | None = None
    backends: tuple[BackendSettings, ...] = field(default_factory=lambda: (registry.parse({}),))
    retries: Retries = field(default_factory=Retries)
    workdir: Path = Path("runs")
    output: Path = Path("catalog")
    #: The bucket results are uploaded to as they are collected (``output`` then holds the local working copy).
    upload: S3Output | None = None
    #: The STAC API each collected item is published to.
    publish: Publication | None = None
    #: A numeric tile attribute ordering the plan, and so the runs: highest first.
    priority: str | None = None

    @property
    def backend(self) -> BackendSettings:
        """The first (usually the only) backend."""
        return self.backends[0]

    @property
    def parallel(self) -> int:
        """How many jobs may run at once over all backends."""
        return sum(b.parallel for b in self.backends)
