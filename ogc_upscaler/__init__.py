"""ogc-upscaler: run an Earth-observation algorithm over large areas, tile by tile.

The public surface is what ``__all__`` lists; every other module is an
implementation detail that may change.

>>> from ogc_upscaler import grid_from_spec, load_aoi
>>> len(grid_from_spec("laea-100km").tiles(load_aoi("5,45,15,55")))
99
"""

from typing import TYPE_CHECKING

from ogc_upscaler.lazy import attach

if TYPE_CHECKING:
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
    from ogc_upscaler.records import campaign_from_records
    from ogc_upscaler.run import BackgroundRun, RunResult, rebuild_catalog, run_campaign
    from ogc_upscaler.status import Status
    from ogc_upscaler.store import Job, JobStore, Move, State
    from ogc_upscaler.windows import Window, windows_from_range

#: Where each public name lives: imported on first use, so that `import ogc_upscaler` (and the
#: console scripts a CWL run starts per tile) cost milliseconds, not the seconds rasterio and maps take.
_HOMES = {
    "AOI": "ogc_upscaler.aoi",
    "BackendError": "ogc_upscaler.errors",
    "BackgroundRun": "ogc_upscaler.run",
    "Campaign": "ogc_upscaler.campaign",
    "campaign_from_records": "ogc_upscaler.records",
    "custom_grid": "ogc_upscaler.grid",
    "export": "ogc_upscaler.export",
    "FileGrid": "ogc_upscaler.grid",
    "Grid": "ogc_upscaler.grid",
    "grid_from_spec": "ogc_upscaler.grid",
    "InvalidAOI": "ogc_upscaler.errors",
    "InvalidConfig": "ogc_upscaler.errors",
    "InvalidGrid": "ogc_upscaler.errors",
    "InvalidInput": "ogc_upscaler.errors",
    "InvalidPackage": "ogc_upscaler.errors",
    "Job": "ogc_upscaler.store",
    "job_specs": "ogc_upscaler.plan",
    "JobError": "ogc_upscaler.errors",
    "JobStore": "ogc_upscaler.store",
    "load_aoi": "ogc_upscaler.aoi",
    "load_campaign": "ogc_upscaler.config",
    "Move": "ogc_upscaler.store",
    "ParameterSet": "ogc_upscaler.campaign",
    "plan": "ogc_upscaler.plan",
    "PlanConflict": "ogc_upscaler.errors",
    "PlanReport": "ogc_upscaler.plan",
    "Process": "ogc_upscaler.campaign",
    "ProjectedGrid": "ogc_upscaler.grid",
    "rebuild_catalog": "ogc_upscaler.run",
    "run_campaign": "ogc_upscaler.run",
    "RunResult": "ogc_upscaler.run",
    "State": "ogc_upscaler.store",
    "Status": "ogc_upscaler.status",
    "StoreError": "ogc_upscaler.errors",
    "StoreLocked": "ogc_upscaler.errors",
    "Tile": "ogc_upscaler.grid",
    "TileSet": "ogc_upscaler.grid",
    "UpscalerError": "ogc_upscaler.errors",
    "UTMGrid": "ogc_upscaler.grid",
    "Window": "ogc_upscaler.windows",
    "windows_from_range": "ogc_upscaler.windows",
}

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
    "campaign_from_records",
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


attach(__name__, _HOMES)
