"""Tiles: one :class:`Tile` as a value, and a columnar :class:`TileSet` of many.

A tile set keeps numpy columns (EPSG code, column, row, native bounds), not
Python objects per tile: a global 10 km grid has over a million tiles. Ids,
geometries and footprints are built only when asked for, vectorized.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from ogc_upscaler.projection import (
    CUT_STEP,
    WGS84,
    area_km2,
    box_areas_km2,
    boxes_to_wgs84,
    is_equal_area,
    measures_by_scale,
    project,
)

if TYPE_CHECKING:
    from ogc_upscaler.grid.base import Grid


class Props(dict):  # type: ignore[type-arg]
    """A tile's attributes (from the AOI's features and the grid file's), read in templates as
    ``{tile.props.NAME}``; a name it does not have is an error that lists those it has."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"the tile has no attribute {name!r} (its attributes: {', '.join(sorted(self)) or 'none'})"
            ) from None


@dataclass(frozen=True)
class Tile:
    """One tile: a pixel-aligned rectangle (possibly clipped) in its own projected CRS, and its attributes."""

    id: str
    grid: str
    epsg: int
    col: int
    row: int
    bounds: tuple[float, float, float, float]
    pixel_size: float
    buffer_px: int
    footprint: shapely.Geometry
    props: Props = field(default_factory=Props, compare=False)

    @property
    def crs(self) -> str:
        """The tile's CRS as ``EPSG:code``."""
        return f"EPSG:{self.epsg}"

    @property
    def buffered_bounds(self) -> tuple[float, float, float, float]:
        """The bounds grown by the buffer, still on pixel multiples: the window a job processes."""
        b = self.buffer_px * self.pixel_size
        xmin, ymin, xmax, ymax = self.bounds
        return (xmin - b, ymin - b, xmax + b, ymax + b)

    @property
    def bbox(self) -> str:
        """``xmin,ymin,xmax,ymax`` of the buffered bounds in the tile's CRS, for templates."""
        return ",".join(f"{v:.10g}" for v in self.buffered_bounds)

    @property
    def bbox_wgs84(self) -> str:
        """``W,S,E,N`` of the footprint in degrees, for templates and STAC searches."""
        return ",".join(f"{v:.8f}" for v in self.footprint.bounds)

    @property
    def shape(self) -> tuple[int, int]:
        """Rows and columns of pixels in the buffered window."""
        xmin, ymin, xmax, ymax = self.buffered_bounds
        return (round((ymax - ymin) / self.pixel_size), round((xmax - xmin) / self.pixel_size))

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """The affine geotransform ``(a, b, c, d, e, f)`` of the buffered window (as ``proj:transform``)."""
        xmin, _, _, ymax = self.buffered_bounds
        return (self.pixel_size, 0.0, xmin, 0.0, -self.pixel_size, ymax)


@dataclass(frozen=True, eq=False)
class TileSet:
    """The tiles of a grid that meet an AOI, as columns.

    ``clipped`` holds the WGS84 footprint of tiles clipped at a zone seam (None
    elsewhere); ``names`` holds ids given by a grid file, else ids are derived
    from the grid position.
    """

    grid: Grid
    epsg: np.ndarray
    col: np.ndarray
    row: np.ndarray
    bounds: np.ndarray
    clipped: np.ndarray | None = None
    names: np.ndarray | None = None
    #: Each tile's attributes (a dict per tile), from the grid file's features and the AOI's.
    props: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.epsg)

    def __getitem__(self, i: int) -> Tile:
        return Tile(
            id=str(self.ids[i]),
            grid=self.grid.code,
            epsg=int(self.epsg[i]),
            col=int(self.col[i]),
            row=int(self.row[i]),
            bounds=tuple(float(v) for v in self.bounds[i]),  # type: ignore[arg-type]
            pixel_size=self.grid.pixel_size,
            buffer_px=self.grid.buffer_px,
            footprint=self.footprints[i],
            props=Props(self.props[i] if self.props is not None else {}),
        )

    def __iter__(self) -> Iterator[Tile]:
        return (self[i] for i in range(len(self)))

    @cached_property
    def ids(self) -> np.ndarray:
        """Tile ids, derived from grid position (or read from the grid file)."""
        if self.names is not None:
            return self.names
        return self.grid.tile_ids(self.epsg, self.col, self.row)

    @cached_property
    def native(self) -> np.ndarray:
        """Each tile's geometry in its own CRS: its box, or the clipped part at a seam."""
        out = shapely.box(self.bounds[:, 0], self.bounds[:, 1], self.bounds[:, 2], self.bounds[:, 3])
        for i in self._clipped_index:
            cut = project(shapely.segmentize(self.clipped[i], CUT_STEP), WGS84, int(self.epsg[i]))  # type: ignore[index]
            out[i] = shapely.intersection(out[i], cut)
        return out

    @cached_property
    def footprints(self) -> np.ndarray:
        """WGS84 footprints, densified so that edges follow their true curved shape."""
        out = np.empty(len(self), dtype=object)
        for epsg in np.unique(self.epsg):
            sel = self.epsg == epsg
            out[sel] = boxes_to_wgs84(self.bounds[sel], int(epsg), self.grid.pixel_size)
        if self.clipped is not None:
            out[self._clipped_index] = self.clipped[self._clipped_index]
        return out

    @cached_property
    def _clipped_index(self) -> np.ndarray:
        if self.clipped is None:
            return np.empty(0, np.int64)
        return np.flatnonzero(np.array([s is not None for s in self.clipped], dtype=bool))

    @cached_property
    def areas_km2(self) -> np.ndarray:
        """Area of every tile in km² on the ellipsoid: measured in its own CRS where that is equal-area
        (LAEA), from its box and the CRS's areal scale in UTM, else (and for a tile clipped at a seam)
        the equal-area measure of its footprint."""
        out = np.empty(len(self))
        for epsg in np.unique(self.epsg):
            sel = self.epsg == epsg
            if is_equal_area(int(epsg)):
                out[sel] = shapely.area(self.native[sel]) / 1e6
            elif measures_by_scale(int(epsg)):
                out[sel] = box_areas_km2(self.bounds[sel], int(epsg))
                cut = np.intersect1d(np.flatnonzero(sel), self._clipped_index)
                if cut.size:
                    out[cut] = area_km2(self.clipped[cut])  # type: ignore[index]
            else:
                out[sel] = area_km2(self.footprints[sel])
        return out

    @property
    def area_km2(self) -> float:
        """Total area covered by the tiles, in km²."""
        return float(self.areas_km2.sum())

    def select(self, keep: np.ndarray) -> TileSet:
        """The tiles where ``keep`` (a boolean mask or index array) selects."""
        return TileSet(
            self.grid,
            self.epsg[keep],
            self.col[keep],
            self.row[keep],
            self.bounds[keep],
            None if self.clipped is None else self.clipped[keep],
            None if self.names is None else self.names[keep],
            None if self.props is None else self.props[keep],
        )

    def with_props(self, props: np.ndarray) -> TileSet:
        """These tiles with ``props`` (a dict per tile) as their attributes."""
        return dataclasses.replace(self, props=props)

    def properties(self, i: int) -> dict[str, Any]:
        """The attributes of tile ``i`` written with its footprint: id, CRS, bounds, pixel grid."""
        tile = self[i]
        return {
            "tile_id": tile.id,
            "grid": tile.grid,
            "crs": tile.crs,
            "bounds": list(tile.bounds),
            "resolution": tile.pixel_size,
            "buffer_px": tile.buffer_px,
            "shape": list(tile.shape),
            "transform": list(tile.transform),
            "area_km2": round(float(self.areas_km2[i]), 6),
        }

    def write_geojson(self, path: Path) -> None:
        """Write the tiles as a GeoJSON FeatureCollection (WGS84 footprints), atomically."""
        write_geojson(path, [self])

    def geojson_features(self) -> Iterator[str]:
        """Each tile as the text of a GeoJSON Feature, with the properties of :meth:`properties`.

        The text is put together from columns (footprints encoded by shapely at once, numbers by
        ``repr``, which is JSON's form of a finite float), without a Python object or a ``json.dumps``
        per tile. Footprint coordinates are rounded to :data:`GEOJSON_DECIMALS` places (about 1 cm;
        RFC 7946 finds 6 enough): the tile itself is its ``crs`` and ``bounds``, written exactly.
        """
        rounded = shapely.transform(self.footprints, lambda xy: np.round(xy, GEOJSON_DECIMALS))
        geometries = shapely.to_geojson(rounded, indent=None)
        pixel, buffer = float(self.grid.pixel_size), int(self.grid.buffer_px)
        grown = self.bounds + np.array([-1.0, -1.0, 1.0, 1.0]) * buffer * pixel
        rows = np.rint((grown[:, 3] - grown[:, 1]) / pixel).astype(np.int64)
        cols = np.rint((grown[:, 2] - grown[:, 0]) / pixel).astype(np.int64)
        grid = json.dumps(self.grid.code)
        columns = zip(
            self.ids.tolist(), self.epsg.tolist(), self.bounds.tolist(), grown[:, 0].tolist(), grown[:, 3].tolist(),
            rows.tolist(), cols.tolist(), np.round(self.areas_km2, 6).tolist(), geometries.tolist(), strict=True,
        )  # fmt: skip
        for tile_id, epsg, bounds, west, north, height, width, area, geometry in columns:
            name = json.dumps(str(tile_id))
            yield (
                f'{{"type": "Feature", "id": {name}, "geometry": {geometry}, "properties": '
                f'{{"tile_id": {name}, "grid": {grid}, "crs": "EPSG:{epsg}", '
                f'"bounds": [{", ".join(map(repr, bounds))}], "resolution": {pixel!r}, "buffer_px": {buffer}, '
                f'"shape": [{height}, {width}], '
                f'"transform": [{pixel!r}, 0.0, {west!r}, 0.0, {-pixel!r}, {north!r}], "area_km2": {area!r}}}}}'
            )


#: Decimal places of the footprint coordinates in the GeoJSON that tiles are written as.
GEOJSON_DECIMALS = 7


def write_geojson(path: Path, parts: Iterable[TileSet]) -> None:
    """Write tile sets, one after the other, as one GeoJSON FeatureCollection, atomically.

    Each part is encoded and let go before the next is made, so a whole globe (a
    UTM zone at a time, :meth:`Grid.chunks <ogc_upscaler.grid.base.Grid.chunks>`)
    is written in the memory of its largest part. An error leaves no file behind.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            out.write('{"type": "FeatureCollection", "features": [\n')
            sep = ""
            for part in parts:
                text = ",\n".join(part.geojson_features())
                if text:
                    out.write(sep + text)
                    sep = ",\n"
            out.write("\n]}\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


#: The most tiles in one part of :meth:`Grid.chunks <ogc_upscaler.grid.base.Grid.chunks>`: a part's footprints,
#: GeoJSON and jobs are held at once, tens of MB at this size.
PART_TILES = 50_000


def split(tiles: TileSet, size: int | None = None) -> Iterator[TileSet]:
    """``tiles`` in order, in parts of at most ``size`` tiles (default :data:`PART_TILES`; one empty part for
    no tiles)."""
    size = PART_TILES if size is None else size
    if size < 1:
        raise ValueError(f"split: a part holds at least one tile, not {size}")
    yield from (tiles.select(slice(i, i + size)) for i in range(0, max(len(tiles), 1), size))


def concat(grid: Grid, parts: list[TileSet], *, presorted: bool = False) -> TileSet:
    """One tile set from several of the same grid, sorted by CRS, north to south, west to east.

    With ``presorted``, the parts are already in that order within and between them (and keep their ids
    and attributes, when every part has them).
    """
    if not parts:
        return empty(grid)
    epsg = np.concatenate([p.epsg for p in parts])
    col = np.concatenate([p.col for p in parts])
    row = np.concatenate([p.row for p in parts])
    bounds = np.concatenate([p.bounds for p in parts])
    clipped = None
    if any(p.clipped is not None for p in parts):
        clipped = np.concatenate([p.clipped if p.clipped is not None else np.full(len(p), None, object) for p in parts])
    if presorted:
        names = np.concatenate([p.names for p in parts]) if all(p.names is not None for p in parts) else None
        props = np.concatenate([p.props for p in parts]) if all(p.props is not None for p in parts) else None
        return TileSet(grid, epsg, col, row, bounds, clipped, names, props)  # type: ignore[misc]
    order = np.lexsort((col, -row, epsg))
    return TileSet(
        grid, epsg[order], col[order], row[order], bounds[order], None if clipped is None else clipped[order]
    )


def empty(grid: Grid) -> TileSet:
    """A tile set with no tiles."""
    return TileSet(grid, np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 4)))
