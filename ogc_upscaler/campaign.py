"""A campaign: what to run where and when, as resolved objects.

Build one in Python, or read one from a config file with
:func:`ogc_upscaler.config.load_campaign`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
class Campaign:
    """An upscaling campaign: an AOI on a grid, time windows, parameter sets, a process, a store."""

    name: str
    aoi: AOI
    grid: Grid
    windows: tuple[Window, ...]
    parameter_sets: tuple[ParameterSet, ...] = ()
    process: Process = field(default_factory=Process)
    store: Path = Path("upscaler.sqlite")
