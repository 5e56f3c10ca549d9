"""Pictures of a plan: the AOI and its tiles, coloured by state, drawn in longitude/latitude."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import shapely
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ogc_upscaler.basemap import basemap
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
    # edges in the face colour close the hairline a renderer leaves between touching polygons
    edges = colours or "#c6dbef"
    ax.add_collection(PolyCollection(polys, facecolors=colours or "#c6dbef", edgecolors=edges, linewidths=0.3))
    ax.add_collection(PolyCollection(polys, facecolors="none", edgecolors="#4a6785", linewidths=0.4))
    for ring in _rings([aoi], None)[0]:
        ax.plot(ring[:, 0], ring[:, 1], color="#000000", linewidth=1.2)
    if labels is not None and len(labels) <= MAX_LABELS:
        _label(ax, np.asarray(footprints, dtype=object), labels)
    xmin, ymin, xmax, ymax = shapely.total_bounds(np.asarray([aoi, *footprints], dtype=object))
    pad = 0.03 * max(xmax - xmin, ymax - ymin)
    _frame(ax, (xmin - pad, ymin - pad, xmax + pad, ymax + pad))
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(title)
    handles = [Patch(facecolor="none", edgecolor="#000000", label="AOI")]
    if states is not None:
        counts = {s: 0 for s in ORDER}
        for state in states:
            counts[state] = counts.get(state, 0) + 1
        handles += [
            Patch(facecolor=STATE_COLOURS.get(s, "#dddddd"), edgecolor="#4a6785", label=f"{s.replace('_', ' ')}: {n:,}")
            for s, n in counts.items()
            if n or s in {"failed", "no_inputs", "collected"}
        ]
    else:
        handles.append(Patch(facecolor="#c6dbef", edgecolor="#4a6785", label=f"tiles ({len(footprints):,})"))
    if basemap() is not None:
        handles.append(Line2D([], [], color="#5b6f80", linewidth=0.8, label="coasts, borders (Natural Earth)"))
    ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9, title="tiles" if states else None)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def mosaic_lonlat(rasters: Sequence[Path], pixels: int = 900) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The first band of ``rasters`` (tiles in any CRS) warped into one longitude/latitude grid of about
    ``pixels`` across, NaN where no raster has data, and its bounds (west, south, east, north).

    Every raster is warped straight into the one grid, each output pixel taking the value of the raster
    its centre falls in: tiles that touch leave no gap. (Warping each tile on its own and merging the
    results resampled twice and left lines of empty pixels along the tiles' edges.)
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin
    from rasterio.warp import reproject, transform_bounds

    sources = [rasterio.open(str(r)) for r in rasters]
    try:
        bounds = np.array([transform_bounds(s.crs, "EPSG:4326", *s.bounds, densify_pts=21) for s in sources])
        west, south, east, north = bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max()
        res = max(east - west, north - south) / pixels
        width, height = int(np.ceil((east - west) / res)), int(np.ceil((north - south) / res))
        transform = from_origin(west, north, res, res)
        mosaic = np.full((height, width), np.nan, dtype="float32")
        for source in sources:
            warped = np.full_like(mosaic, np.nan)
            reproject(
                rasterio.band(source, 1),
                warped,
                src_nodata=source.nodata,
                dst_transform=transform,
                dst_crs="EPSG:4326",
                dst_nodata=np.nan,
                resampling=Resampling.nearest,
            )
            empty = np.isnan(mosaic)
            mosaic[empty] = warped[empty]
    finally:
        for s in sources:
            s.close()
    return mosaic, (west, north - height * res, west + width * res, north)


def _frame(ax: Any, bounds: tuple[float, float, float, float]) -> None:
    """Limits and aspect of a longitude/latitude map, with Natural Earth's coastlines and borders over it
    (when the watch page's basemap was built)."""
    west, south, east, north = bounds
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(1.0 / max(0.05, np.cos(np.radians((south + north) / 2))))
    world = basemap()
    if world is not None:
        ax.add_collection(LineCollection(world.borders, colors="#8a8a8a", linewidths=0.5, zorder=3))
        ax.add_collection(LineCollection(world.coastlines, colors="#5b6f80", linewidths=0.8, zorder=3))


def placed_labels(footprints: np.ndarray, labels: Sequence[str]) -> list[tuple[str, float, float]]:
    """Where tile ids go on a map: inside each tile, leaving out slivers cut at zone seams (under half the
    median tile's area), whose labels ran over their neighbours'; a label is the id without the grid's name."""
    areas = shapely.area(footprints)
    big = areas >= 0.5 * np.median(areas)
    points = shapely.point_on_surface(footprints)
    return [
        (label.split("-", 1)[-1], point.x, point.y)
        for label, point, keep in zip(labels, points, big, strict=True)
        if keep
    ]


def _label(ax: Any, footprints: np.ndarray, labels: Sequence[str]) -> None:
    for text, x, y in placed_labels(footprints, labels):
        ax.annotate(text, (x, y), ha="center", va="center", fontsize=6, zorder=4)


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
    aoi: shapely.Geometry | None = None,
) -> None:
    """Draw single-band rasters (tiles in any CRS) as one mosaic in longitude/latitude, with the AOI's
    outline, and save a PNG."""

    mosaic, (west, south, east, north) = mosaic_lonlat(rasters, pixels)
    fig, ax = plt.subplots(figsize=(9, 8), dpi=110)
    shown = ax.imshow(
        mosaic, extent=(west, east, south, north), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
    )
    if aoi is not None:
        for ring in _rings([aoi], None)[0]:
            ax.plot(ring[:, 0], ring[:, 1], color="#000000", linewidth=1.0)
    _frame(ax, (west, south, east, north))
    fig.colorbar(shown, ax=ax, shrink=0.7, label="NDVI")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(title)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
