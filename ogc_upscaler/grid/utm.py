"""UTM grids: each tile in its own zone's CRS (EPSG 326xx north, 327xx south).

Tiles are laid out from origin (0, 0) in zone coordinates. The seam rule is
*clip to the zone*: a cell that straddles a zone edge (a meridian, the 84°N or
80°S limit) is cut to the part inside its zone, so that no point of the Earth
belongs to two tiles; the clipped tile's bounds are the bounds of that part,
snapped outwards to whole pixels.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from ogc_upscaler.aoi import AOI
from ogc_upscaler.errors import InvalidAOI, InvalidGrid
from ogc_upscaler.grid.base import Grid, check_buffer, check_pixel_size, corner_code, parse_corner
from ogc_upscaler.grid.mask import cells_in
from ogc_upscaler.grid.tiles import Tile, TileSet, concat, split
from ogc_upscaler.projection import CUT_STEP, DEGREES_STEP, WGS84, densify_degrees, project, to_wgs84, transformer

SOUTH_LIMIT = -80.0
NORTH_LIMIT = 84.0
#: A clipped part smaller than the cell by less than this fraction is the whole cell (rounding at seams).
CLIP_TOLERANCE = 1e-9
#: Degrees to which a footprint cut by a zone that is not a rectangle is snapped (about 10 µm).
SEAM_PRECISION = 1e-10
#: Metres by which a cell must clear a seam to be told inside its zone without GEOS (the sampled meridians
#: stray from the true ones by under a metre).
SEAM_MARGIN = 10.0
POLYGONAL = [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON]


@dataclass(frozen=True)
class UTMGrid(Grid):
    """Square tiles of ``tile_size`` metres in every UTM zone, clipped at zone seams.

    A zone is a rectangle in longitude and latitude, so a seam tile is cut with a
    fast rectangle clip of its WGS84 footprint; the footprint edges it shares
    with its neighbours keep the very same vertices.

    Ids name the zone and the lower-left corner in km: ``UTM20KM-32N-E480N5340``.
    """

    name: str
    code: str
    tile_size: float
    pixel_size: float = 10.0
    buffer_px: int = 0

    def __post_init__(self) -> None:
        check_pixel_size(self.tile_size, self.pixel_size, f"grid {self.name}")
        check_buffer(self.buffer_px, f"grid {self.name}")
        if self.tile_size % 1000:
            raise InvalidGrid(f"grid {self.name}: UTM tile sizes are whole kilometres, got {self.tile_size:g} m")

    def tiles(self, aoi: AOI) -> TileSet:
        """The tiles whose area meets the AOI, zone by zone, north to south, west to east."""
        return concat(self, list(self.chunks(aoi)), presorted=True)

    def chunks(self, aoi: AOI) -> Iterator[TileSet]:
        """The tiles of :meth:`tiles`, a zone at a time, in parts of at most
        :data:`~ogc_upscaler.grid.tiles.PART_TILES` (an AOI outside UTM's range is refused at once)."""
        _, south, _, north = aoi.bounds
        if south < SOUTH_LIMIT or north > NORTH_LIMIT:
            raise InvalidAOI(
                f"AOI {aoi.source}: reaches latitude {south if south < SOUTH_LIMIT else north:.4g}°, "
                f"outside UTM's range ({SOUTH_LIMIT:g}° to {NORTH_LIMIT:g}°) for grid {self.name}",
                hint="use a laea-* grid, or a custom grid in a polar CRS (EPSG:3413 north, EPSG:3031 south)",
            )
        zones, boxes = self.zones()
        shapely.prepare(aoi.geometry)
        hit = shapely.intersects(aoi.geometry, boxes) & ~shapely.touches(aoi.geometry, boxes)
        pieces = _Pieces(aoi.geometry)
        zone_tiles = (self._zone_tiles(pieces.within(boxes[i]), boxes[i], int(zones[i])) for i in np.flatnonzero(hit))
        return (part for tiles in zone_tiles for part in split(tiles))

    def _zone_tiles(self, piece: shapely.Geometry, zone_box: shapely.Geometry, epsg: int) -> TileSet:
        mask = project(densify_degrees(piece), WGS84, epsg)
        hits = cells_in(mask, (0.0, 0.0), self.tile_size)
        return self._clipped(hits.col, hits.row, np.flatnonzero(hits.edge), epsg, zone_box)

    def _clipped(
        self,
        col: np.ndarray,
        row: np.ndarray,
        edge: np.ndarray,
        epsg: int,
        zone_box: shapely.Geometry,
    ) -> TileSet:
        """Tiles of one zone; cells at ``edge`` are clipped where they leave the zone."""
        s = self.tile_size
        order = np.lexsort((col, -row))
        bounds = np.column_stack([col * s, row * s, (col + 1) * s, (row + 1) * s]).astype(float)
        clipped = np.full(len(col), None, dtype=object)
        if edge.size:
            near = edge[~_surely_inside(bounds[edge], zone_box, epsg)]
            boxes = shapely.box(*bounds[near].T)
            zone = project(densify_degrees(zone_box), WGS84, epsg)
            shapely.prepare(zone)
            leaving = ~shapely.contains(zone, boxes)
            cut = near[leaving]
            lonlat = to_wgs84(boxes[leaving], epsg, self.pixel_size)
            parts = clip_to_zone(lonlat, zone_box)
            outside = cut[shapely.is_empty(parts)]  # cells that only touch the zone, at a seam on their edge
            order = order[~np.isin(order, outside)]
            real = ~shapely.is_empty(parts) & (shapely.area(parts) < (1.0 - CLIP_TOLERANCE) * shapely.area(lonlat))
            cut, parts = cut[real], parts[real]
            clipped[cut] = parts
            native = project(shapely.segmentize(parts, CUT_STEP), WGS84, epsg)
            bounds[cut] = _snap_out(shapely.bounds(native), self.pixel_size, bounds[cut])
        epsgs = np.full(len(col), epsg, np.int32)
        return TileSet(self, epsgs[order], col[order], row[order], bounds[order], clipped[order])

    def tile_ids(self, epsg: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        """``{code}-{zone}{N|S}-E{x}N{y}`` with the lower-left corner in km."""
        zone = [f"{e % 100:02d}{'N' if e < 32700 else 'S'}" for e in epsg.tolist()]
        east = corner_code(col * self.tile_size, 1000.0, "E", "W")
        north = corner_code(row * self.tile_size, 1000.0, "N", "S")
        return np.array([f"{self.code}-{z}-{e}{n}" for z, e, n in zip(zone, east, north, strict=True)], dtype=object)

    def tile(self, tile_id: str) -> Tile:
        """The tile named ``tile_id`` (clipped if it straddles its zone's edge)."""
        match = re.fullmatch(rf"{re.escape(self.code)}-(\d\d)([NS])-([EW]\d+)([NS]\d+)", tile_id)
        if match is None or not 1 <= int(match[1]) <= 60:
            raise InvalidGrid(
                f"tile id {tile_id!r} is not of grid {self.name}", hint=f"ids look like {self.code}-32N-E480N5340"
            )
        zone, north = int(match[1]), match[2] == "N"
        x, y = parse_corner(match[3], "E", "W") * 1000, parse_corner(match[4], "N", "S") * 1000
        if x % self.tile_size or y % self.tile_size:
            raise InvalidGrid(
                f"tile id {tile_id!r}: corner is not on the {self.tile_size:g} m lattice of grid {self.name}"
            )
        epsg = (32600 if north else 32700) + zone
        return self._cell(tile_id, epsg, int(x // self.tile_size), int(y // self.tile_size))

    def _cell(self, tile_id: str, epsg: int, col: int, row: int) -> Tile:
        """The tile of cell (``col``, ``row``) of zone ``epsg``, clipped to the zone; one outside it is refused."""
        zones, regions = self.zones()
        region = regions[int(np.flatnonzero(zones == epsg)[0])]
        cells = np.array([col], np.int64), np.array([row], np.int64)
        tiles = self._clipped(*cells, np.array([0]), epsg, region)
        if not len(tiles):
            raise InvalidGrid(
                f"tile id {tile_id!r} lies outside its zone, {epsg % 100}, which covers {_describe(region)}",
                hint="name a tile of the zone that covers the place",
            )
        return tiles[0]

    def zones(self) -> tuple[np.ndarray, np.ndarray]:
        """EPSG codes and WGS84 regions of the grid's zones: UTM's 120 zone halves, 6° wide everywhere."""
        return zone_boxes()

    def describe(self) -> dict[str, Any]:
        """The grid's defining values."""
        return {
            "kind": "utm",
            "name": self.name,
            "code": self.code,
            "tile_size": self.tile_size,
            "pixel_size": self.pixel_size,
            "buffer_px": self.buffer_px,
        }


class _Pieces:
    """The AOI's polygons, found zone by zone: those a zone holds whole are taken as they are and only those
    crossing its edge are cut, where an overlay of the whole AOI with each zone took 2 of 8 s on a 1:10m
    coastline (3,885 polygons)."""

    def __init__(self, geometry: shapely.Geometry) -> None:
        self.parts = shapely.get_parts(geometry)
        self.tree = shapely.STRtree(self.parts)

    def within(self, box: shapely.Geometry) -> shapely.Geometry:
        """The AOI inside ``box``, as a MultiPolygon."""
        found = self.parts[self.tree.query(box, predicate="intersects")]
        whole = shapely.contains(box, found)
        cut = shapely.get_parts(shapely.intersection(found[~whole], box))
        polygons = cut[shapely.get_type_id(cut) == shapely.GeometryType.POLYGON]
        return shapely.multipolygons(np.concatenate([found[whole], polygons]))


def zone_boxes() -> tuple[np.ndarray, np.ndarray]:
    """EPSG codes and WGS84 boxes of the 120 zone halves (60 zones, north and south)."""
    zone = np.arange(1, 61)
    west = -180.0 + 6.0 * (zone - 1)
    epsg = np.concatenate([32600 + zone, 32700 + zone])
    boxes = np.concatenate(
        [shapely.box(west, 0.0, west + 6.0, NORTH_LIMIT), shapely.box(west, SOUTH_LIMIT, west + 6.0, 0.0)]
    )
    return epsg, boxes


def _surely_inside(bounds: np.ndarray, region: shapely.Geometry, epsg: int) -> np.ndarray:
    """Which cells (their native ``bounds``) lie inside a rectangular zone, told from the bounds alone, so
    that only the cells near a seam are tested in GEOS: a zone's meridians are curves x(y) that move
    monotonically towards the central meridian as they near the pole, and its parallels lie nearest the
    zone's middle at the central meridian. A cell this cannot place (and every cell of a zone that is not
    a rectangle) is reported not inside, for the exact test."""
    west, south, east, north = region.bounds
    if shapely.area(region) < (1.0 - CLIP_TOLERANCE) * (east - west) * (north - south):
        return np.zeros(len(bounds), bool)
    to_zone = transformer(WGS84, epsg)
    lat = np.linspace(south, north, 1 + int(np.ceil((north - south) / DEGREES_STEP)))
    xw, yw = to_zone.transform(np.full(len(lat), west), lat)
    xe, ye = to_zone.transform(np.full(len(lat), east), lat)
    middle = (west + east) / 2.0
    _, (bottom, top) = to_zone.transform([middle, middle], [south, north])
    x0, y0, x1, y1 = bounds.T
    order_w, order_e = np.argsort(yw), np.argsort(ye)
    west_x = np.maximum(np.interp(y0, yw[order_w], xw[order_w]), np.interp(y1, yw[order_w], xw[order_w]))
    east_x = np.minimum(np.interp(y0, ye[order_e], xe[order_e]), np.interp(y1, ye[order_e], xe[order_e]))
    margin = SEAM_MARGIN
    return (y0 >= bottom + margin) & (y1 <= top - margin) & (x0 >= west_x + margin) & (x1 <= east_x - margin)


def clip_to_zone(footprints: np.ndarray, region: shapely.Geometry) -> np.ndarray:
    """The footprints cut to a zone's region: a fast rectangle clip where the region is a rectangle (every
    zone but MGRS's exceptions), an overlay keeping the polygonal parts where it is not."""
    west, south, east, north = region.bounds
    if shapely.area(region) >= (1.0 - CLIP_TOLERANCE) * (east - west) * (north - south):
        return shapely.clip_by_rect(footprints, west, south, east, north)
    parts = shapely.intersection(footprints, region)
    for i in np.flatnonzero(shapely.get_type_id(parts) == shapely.GeometryType.GEOMETRYCOLLECTION):
        found = shapely.get_parts(parts[i])
        polygonal = np.isin(shapely.get_type_id(found), POLYGONAL)
        parts[i] = shapely.multipolygons(shapely.get_parts(found[polygonal]))
    # a cell edge on a seam (zone 31's central meridian bounds it in band V) leaves slivers 1e-14° wide
    return shapely.set_precision(parts, SEAM_PRECISION)


def _describe(region: shapely.Geometry) -> str:
    west, south, east, north = region.bounds
    return f"longitude {west:g}° to {east:g}°, latitude {south:g}° to {north:g}°"


def _snap_out(parts_bounds: np.ndarray, pixel: float, cell_bounds: np.ndarray) -> np.ndarray:
    snapped = np.column_stack(
        [
            np.floor(parts_bounds[:, 0] / pixel) * pixel,
            np.floor(parts_bounds[:, 1] / pixel) * pixel,
            np.ceil(parts_bounds[:, 2] / pixel) * pixel,
            np.ceil(parts_bounds[:, 3] / pixel) * pixel,
        ]
    )
    lo = np.maximum(snapped[:, :2], cell_bounds[:, :2])
    hi = np.minimum(snapped[:, 2:], cell_bounds[:, 2:])
    return np.column_stack([lo, hi])
