"""ogc-upscaler: run an Earth-observation algorithm over large areas, tile by tile.

The public surface is what ``__all__`` lists; every other module is an
implementation detail that may change.

>>> from ogc_upscaler import grid_from_spec, load_aoi
>>> len(grid_from_spec("laea-100km").tiles(load_aoi("5,45,15,55")))
99
"""

from ogc_upscaler.aoi import AOI, load_aoi
from ogc_upscaler.campaign import Campaign, ParameterSet, Process
from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import (
    BackendError,
    InvalidAOI,
    InvalidConfig,
    InvalidGrid,
    InvalidInput,
    InvalidPackage,
    JobError,
    PlanConflict,
    StoreError,
    StoreLocked,
    UpscalerError,
)
from ogc_upscaler.export import export
from ogc_upscaler.grid import FileGrid, Grid, ProjectedGrid, Tile, TileSet, UTMGrid, custom_grid, grid_from_spec
from ogc_upscaler.plan import PlanReport, job_specs, plan
from ogc_upscaler.run import BackgroundRun, RunResult, rebuild_catalog, run_campaign
from ogc_upscaler.status import Status
from ogc_upscaler.store import Job, JobStore, Move, State
from ogc_upscaler.windows import Window, windows_from_range

__all__ = [
    "AOI",
    "BackendError",
    "BackgroundRun",
    "Campaign",
    "FileGrid",
    "Grid",
    "InvalidAOI",
    "InvalidConfig",
    "InvalidGrid",
    "InvalidInput",
    "InvalidPackage",
    "Job",
    "JobError",
    "JobStore",
    "Move",
    "ParameterSet",
    "PlanConflict",
    "PlanReport",
    "Process",
    "ProjectedGrid",
    "RunResult",
    "State",
    "Status",
    "StoreError",
    "StoreLocked",
    "Tile",
    "TileSet",
    "UTMGrid",
    "UpscalerError",
    "Window",
    "custom_grid",
    "export",
    "grid_from_spec",
    "job_specs",
    "load_aoi",
    "load_campaign",
    "plan",
    "rebuild_catalog",
    "run_campaign",
    "windows_from_range",
]
