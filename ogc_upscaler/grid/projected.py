"""A grid in one projected CRS: LAEA (EPSG:3035) and custom grids."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from ogc_upscaler.aoi import AOI
from ogc_upscaler.errors import InvalidAOI, InvalidGrid
from ogc_upscaler.grid.base import Grid, check_buffer, check_pixel_size, corner_code, decimals_of, parse_corner
from ogc_upscaler.grid.mask import cells_in
from ogc_upscaler.grid.tiles import Tile, TileSet, concat, split
from ogc_upscaler.projection import WGS84, densify_degrees, project


@dataclass(frozen=True)
class ProjectedGrid(Grid):
    """Square tiles of ``tile_size`` metres from ``origin`` in one projected CRS.

    Tile ids name the lower-left corner, in km where the grid allows it
    (the EEA reference grid convention): ``LAEA20KM-E4320N2860``.
    """

    name: str
    code: str
    epsg: int
    tile_size: float
    pixel_size: float = 10.0
    origin: tuple[float, float] = (0.0, 0.0)
    buffer_px: int = 0

    def __post_init__(self) -> None:
        check_projected(self.epsg, f"grid {self.name}")
        check_pixel_size(self.tile_size, self.pixel_size, f"grid {self.name}")
        check_buffer(self.buffer_px, f"grid {self.name}")

    @property
    def id_unit(self) -> float:
        """Metres per unit in tile ids: 1000 when every corner falls on whole kilometres."""
        whole_km = all(float(v) % 1000 == 0 for v in (self.tile_size, *self.origin))
        return 1000.0 if whole_km else 1.0

    def tiles(self, aoi: AOI) -> TileSet:
        """The tiles whose area meets the AOI, north to south, west to east."""
        return concat(self, list(self.chunks(aoi)), presorted=True)

    def chunks(self, aoi: AOI) -> Iterator[TileSet]:
        """The tiles of :meth:`tiles`, in parts of at most :data:`~ogc_upscaler.grid.tiles.PART_TILES`."""
        mask = project(densify_degrees(aoi.geometry), WGS84, self.epsg)
        if not np.all(np.isfinite(shapely.get_coordinates(mask))):
            raise InvalidAOI(
                f"AOI {aoi.source}: part of it cannot be projected to EPSG:{self.epsg} of grid {self.name}",
                hint="use a grid whose CRS covers the whole AOI (utm-* grids cover 80°S to 84°N)",
            )
        hits = cells_in(mask, self.origin, self.tile_size)
        order = np.lexsort((hits.col, -hits.row))
        return split(self._cells(hits.col[order], hits.row[order]))

    def _cells(self, col: np.ndarray, row: np.ndarray) -> TileSet:
        ox, oy = self.origin
        s = self.tile_size
        bounds = np.column_stack([ox + col * s, oy + row * s, ox + (col + 1) * s, oy + (row + 1) * s])
        return TileSet(self, np.full(len(col), self.epsg, np.int32), col, row, bounds)

    def tile_ids(self, epsg: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        """``{code}-E{x}N{y}`` from the lower-left corner of each tile."""
        places = decimals_of(self.tile_size / self.id_unit, *(v / self.id_unit for v in self.origin))
        east = corner_code(self.origin[0] + col * self.tile_size, self.id_unit, "E", "W", places)
        north = corner_code(self.origin[1] + row * self.tile_size, self.id_unit, "N", "S", places)
        return np.array([f"{self.code}-{e}{n}" for e, n in zip(east, north, strict=True)], dtype=object)

    def tile(self, tile_id: str) -> Tile:
        """The tile named ``tile_id``."""
        match = re.fullmatch(rf"{re.escape(self.code)}-([EW]\d+(?:\.\d+)?)([NS]\d+(?:\.\d+)?)", tile_id)
        if match is None:
            raise InvalidGrid(
                f"tile id {tile_id!r} is not of grid {self.name}", hint=f"ids look like {self.code}-E4320N2860"
            )
        x = parse_corner(match[1], "E", "W") * self.id_unit - self.origin[0]
        y = parse_corner(match[2], "N", "S") * self.id_unit - self.origin[1]
        col, row = round(x / self.tile_size), round(y / self.tile_size)
        if max(abs(col * self.tile_size - x), abs(row * self.tile_size - y)) > 1e-6 * self.tile_size:
            raise InvalidGrid(
                f"tile id {tile_id!r}: corner is not on the {self.tile_size:g} m lattice of grid {self.name}"
            )
        return self._cells(np.array([col]), np.array([row]))[0]

    def describe(self) -> dict[str, Any]:
        """The grid's defining values."""
        return {
            "kind": "projected",
            "name": self.name,
            "code": self.code,
            "epsg": self.epsg,
            "tile_size": self.tile_size,
            "pixel_size": self.pixel_size,
            "origin": list(self.origin),
            "buffer_px": self.buffer_px,
        }


def check_projected(epsg: int, where: str) -> None:
    """Reject an EPSG code that is unknown, or not a projected CRS in metres."""
    try:
        crs = CRS.from_epsg(epsg)
    except CRSError:
        raise InvalidGrid(
            f"{where}: EPSG:{epsg} is not a known CRS", hint="give a projected EPSG code, e.g. 3035"
        ) from None
    unit = crs.axis_info[0].unit_name if crs.axis_info else ""
    if not crs.is_projected or unit not in {"metre", "meter"}:
        raise InvalidGrid(
            f"{where}: EPSG:{epsg} ({crs.name}) is not a projected CRS in metres",
            hint="grids need metric tiles: use a projected EPSG code such as 3035 or a UTM zone (326xx/327xx)",
        )
