"""How many tiles an ``upscale`` request's campaign covers, found cheaply enough to refuse it at request time.

Planning a campaign costs in proportion to its tiles (a global campaign on a 10 km grid
took 6.9 GB and 21 minutes), so the endpoint bounds the count from the AOI's area and
outline first, in the grid's plane, and counts exactly (``grid.tiles(aoi)``) only when
the limit lies between the bounds:

- at least ``A / s²`` tiles: the tiles cover the AOI (area ``A``, tiles of side ``s``);
- at most ``A / s² + 2√2 · P / s + 2π · k``: every tile meeting the AOI lies within ``s√2``
  of it, and that band around ``k`` rings of total length ``P`` has at most
  ``A + 2√2 · s · P + 2π · s² · k`` of area (Steiner's bound for tubes around curves).

On UTM grids the zone seams count as outline (each tile cut there is two), the area is
measured in an equal-area projection and lengths on the ellipsoid, with the projection's
scale as slack.

>>> from ogc_upscaler.aoi import load_aoi
>>> from ogc_upscaler.grid import grid_from_spec
>>> bounds = tile_bounds(load_aoi("11.5,47.5,12.5,48.0"), grid_from_spec("laea-20km"))
>>> bounds.lower <= 20 <= bounds.upper
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Geod

from ogc_upscaler.aoi import AOI
from ogc_upscaler.errors import InvalidRequest
from ogc_upscaler.grid import Grid, ProjectedGrid, UTMGrid
from ogc_upscaler.projection import WGS84, densify_degrees, project

#: The most tiles one ``upscale`` campaign may cover unless the operator says otherwise (``serve --max-tiles``).
DEFAULT_MAX_TILES = 20_000
#: UTM zones are 6° wide and split at the equator; their scale lies within 0.9996 and about 1.001.
UTM_ZONE_WIDTH = 6.0
UTM_SCALE_SLACK = 1.002
METRES_PER_DEGREE = 111_320.0
#: Beyond this many times the limit, the upper bound is not worth an exact count: the AOI's outline is absurd.
COUNT_FACTOR = 10
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class TileBounds:
    """A lower and an upper bound of the tiles a grid has over an AOI (``exact`` when both are the count)."""

    lower: float
    upper: float
    exact: bool = False


def check_campaign_size(aoi: AOI, grid: Grid, max_tiles: int) -> int | None:
    """Refuse (:class:`InvalidRequest`) a campaign of more than ``max_tiles`` tiles; the exact count when it
    had to be taken, else None (the bounds decided)."""
    bounds = tile_bounds(aoi, grid)
    if bounds.lower > max_tiles:
        raise _too_big(f"covers about {bounds.lower:,.0f}", grid, max_tiles)
    if bounds.upper <= max_tiles:
        return None
    if bounds.upper > COUNT_FACTOR * max_tiles:  # an outline this long is not worth listing the tiles of
        raise _too_big(f"may cover up to {bounds.upper:,.0f}", grid, max_tiles, "; the AOI's outline is very long")
    count = len(grid.tiles(aoi))
    if count > max_tiles:
        raise _too_big(f"covers {count:,}", grid, max_tiles)
    return count


def tile_bounds(aoi: AOI, grid: Grid) -> TileBounds:
    """Bounds of ``len(grid.tiles(aoi))`` from the AOI's area and outline; exact for other kinds of grid."""
    if isinstance(grid, ProjectedGrid):
        return _projected_bounds(aoi, grid)
    if isinstance(grid, UTMGrid):
        return _utm_bounds(aoi, grid)
    count = len(grid.tiles(aoi))
    return TileBounds(count, count, exact=True)


def _projected_bounds(aoi: AOI, grid: ProjectedGrid) -> TileBounds:
    """In the grid's own plane, where its tiles are exact squares (the mask ``grid.tiles`` uses)."""
    mask = project(densify_degrees(aoi.geometry), WGS84, grid.epsg)
    if not np.all(np.isfinite(shapely.get_coordinates(mask))):
        return TileBounds(0.0, math.inf)  # grid.tiles says what cannot be projected
    area, length = float(shapely.area(mask)), float(shapely.length(mask))
    return _bounds(area, length, _rings(aoi.geometry), grid.tile_size, slack=1.0)


def _utm_bounds(aoi: AOI, grid: UTMGrid) -> TileBounds:
    """On the ellipsoid; the zone seams (meridians every 6°, the equator) within each part's bounds count as
    outline on both of their sides."""
    area = aoi.area_km2 * 1e6  # equal-area; the ellipsoid's polygon area is ambiguous for rings round the globe
    length = _GEOD.geometry_length(densify_degrees(aoi.geometry))
    west, south, east, north = shapely.bounds(shapely.get_parts(aoi.geometry)).T
    meridians = np.floor(east / UTM_ZONE_WIDTH) - np.floor(west / UTM_ZONE_WIDTH)
    equator = (south < 0.0) & (north > 0.0)
    seam_length = float(np.sum(meridians * (north - south) + equator * (east - west))) * METRES_PER_DEGREE
    zones = int(np.sum((meridians + 1) * (1 + equator)))
    outline = length + 2 * seam_length
    return _bounds(area, outline, _rings(aoi.geometry) + zones, grid.tile_size, slack=UTM_SCALE_SLACK)


def _bounds(area: float, length: float, rings: int, size: float, slack: float) -> TileBounds:
    lower = area / (size * size) / slack**2
    upper = slack**2 * (area / (size * size) + 2 * math.sqrt(2) * length / size) + 2 * math.pi * rings
    return TileBounds(lower, upper)


def _rings(geometry: shapely.Geometry) -> int:
    parts = shapely.get_parts(geometry)
    return int(len(parts) + shapely.get_num_interior_rings(parts).sum())


def _too_big(covers: str, grid: Grid, max_tiles: int, why: str = "") -> InvalidRequest:
    return InvalidRequest(
        f"the campaign {covers} tiles of {grid.name}; this endpoint takes at most {max_tiles:,} per campaign{why}",
        hint="split the AOI into smaller campaigns, simplify its outline, or choose a grid of larger tiles",
    )
