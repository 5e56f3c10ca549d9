"""Pictures of a plan: the AOI and its tiles, coloured by state, drawn in longitude/latitude."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import shapely
from matplotlib.collections import PolyCollection
from matplotlib.patches import Patch

from ogc_upscaler.tile_states import COLOURS, ORDER, per_tile

STATE_COLOURS = COLOURS  # kept for callers of maps


MAX_LABELS = 60


def draw(
    path: Path,
    aoi: shapely.Geometry,
    footprints: Sequence[shapely.Geometry] | np.ndarray,
    states: Sequence[str] | None = None,
    title: str = "",
    labels: Sequence[str] | None = None,
) -> None:
    """Draw the AOI outline over the tile footprints and save a PNG, atomically.

    ``labels`` (tile ids) are written on the tiles when there are few enough to read.
    """
    fig, ax = plt.subplots(figsize=(9, 8), dpi=110)
    faces = [STATE_COLOURS.get(s, "#dddddd") for s in states] if states is not None else None
    polys, colours = _rings(footprints, faces)
    ax.add_collection(PolyCollection(polys, facecolors=colours or "#c6dbef", edgecolors="#4a6785", linewidths=0.4))
    for ring in _rings([aoi], None)[0]:
        ax.plot(ring[:, 0], ring[:, 1], color="#000000", linewidth=1.2)
    if labels is not None and len(labels) <= MAX_LABELS:
        points = shapely.point_on_surface(np.asarray(footprints, dtype=object))
        for label, point in zip(labels, points, strict=True):
            ax.annotate(label.split("-", 1)[-1], (point.x, point.y), ha="center", va="center", fontsize=6)
    xmin, ymin, xmax, ymax = shapely.total_bounds(np.asarray([aoi, *footprints], dtype=object))
    pad = 0.03 * max(xmax - xmin, ymax - ymin)
    ax.set_xlim(xmin - pad, xmax + pad)
    ax.set_ylim(ymin - pad, ymax + pad)
    ax.set_aspect(1.0 / max(0.05, np.cos(np.radians((ymin + ymax) / 2))))
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(title)
    handles = [Patch(facecolor="none", edgecolor="#000000", label="AOI")]
    if states is not None:
        shown = [s for s in ORDER if s in set(states)]
        handles += [Patch(facecolor=STATE_COLOURS[s], edgecolor="#4a6785", label=s) for s in shown]
    else:
        handles.append(Patch(facecolor="#c6dbef", edgecolor="#4a6785", label=f"tiles ({len(footprints):,})"))
    ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def _rings(
    geoms: Sequence[shapely.Geometry] | np.ndarray, faces: list[str] | None
) -> tuple[list[np.ndarray], list[str]]:
    polys: list[np.ndarray] = []
    colours: list[str] = []
    for i, geom in enumerate(geoms):
        for part in shapely.get_parts(geom):
            if isinstance(part, shapely.Polygon):
                polys.append(np.asarray(part.exterior.coords)[:, :2])
                if faces is not None:
                    colours.append(faces[i])
    return polys, colours


def tile_states(tile_ids: Sequence[str], states: Sequence[str]) -> dict[str, str]:
    """One state per tile: failed if any job failed, else its least advanced job's state."""
    return per_tile(zip(tile_ids, states, strict=True))


def draw_mosaic(
    path: Path,
    rasters: Sequence[Path],
    title: str = "",
    cmap: str = "RdYlGn",
    vmin: float = -0.5,
    vmax: float = 1.0,
    pixels: int = 900,
) -> None:
    """Draw single-band rasters (tiles in any CRS) as one mosaic in longitude/latitude, and save a PNG."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.merge import merge
    from rasterio.vrt import WarpedVRT

    sources = [rasterio.open(str(r)) for r in rasters]
    try:
        vrts = [WarpedVRT(s, crs=CRS.from_epsg(4326), resampling=Resampling.nearest) for s in sources]
        bounds = np.array([v.bounds for v in vrts])
        west, south, east, north = bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max()
        res = max(east - west, north - south) / pixels
        mosaic, _ = merge(vrts, res=res, nodata=np.nan, dtype="float32")
        for v in vrts:
            v.close()
    finally:
        for s in sources:
            s.close()
    fig, ax = plt.subplots(figsize=(9, 8), dpi=110)
    shown = ax.imshow(
        mosaic[0], extent=(west, east, south, north), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
    )
    ax.set_aspect(1.0 / max(0.05, np.cos(np.radians((south + north) / 2))))
    fig.colorbar(shown, ax=ax, shrink=0.7, label="NDVI")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(title)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
