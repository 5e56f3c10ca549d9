"""The MGRS 100 km squares, the tiling most EO archives use (Sentinel-2's tiles are named after them),
computed from the UTM zones rather than downloaded.

A square is a 100 km cell of a UTM zone laid out from (0, 0), clipped at the zone's seams as every UTM
grid here is. Its id is ``MGRS-`` and its MGRS designation (``MGRS-32TQM``, the STAC grid extension's
form): the zone, the latitude band of the square's centre, the column letter (A-H, J-R, S-Z for zones
1, 2, 3 mod 3, from 100 km easting) and the row letter (A-V without I and O, from 100 km northing,
shifted by five letters in even zones; south of the equator from the false northing, as MGRS counts).
A square that straddles a band edge is named after its centre's band (Sentinel-2 lists such squares
under both bands), or, where its centre lies outside its zone, after the band of its part inside.

The zones follow MGRS's two exceptions, as the archives do: in band V (56°N to 64°N) zone 32 reaches west
to 3°E over Norway's coast and zone 31 stops there; in band X (72°N to 84°N, Svalbard) zones 31, 33, 35
and 37 are 9°, 12°, 12° and 9° wide and zones 32, 34 and 36 do not exist. (The ``utm-*`` grids keep
6° zones everywhere: the plain UTM layout most projections tools give.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import shapely

from ogc_upscaler.errors import InvalidGrid
from ogc_upscaler.grid.tiles import Tile
from ogc_upscaler.grid.utm import UTMGrid, clip_to_zone, zone_boxes
from ogc_upscaler.projection import WGS84, to_wgs84, transformer

SQUARE = 100_000.0
COLUMNS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
ROWS = "ABCDEFGHJKLMNPQRSTUV"
#: Latitude bands of 8° from 80°S (X, the last, runs to 84°N).
BANDS = "CDEFGHJKLMNPQRSTUVWX"
#: MGRS's northern zones that are not 6° wide: zone -> the (west, south, east, north) boxes that make it up.
EXCEPTIONS = {
    31: [(0.0, 0.0, 6.0, 56.0), (0.0, 56.0, 3.0, 64.0), (0.0, 64.0, 6.0, 72.0), (0.0, 72.0, 9.0, 84.0)],
    32: [(6.0, 0.0, 12.0, 56.0), (3.0, 56.0, 12.0, 64.0), (6.0, 64.0, 12.0, 72.0)],
    33: [(12.0, 0.0, 18.0, 72.0), (9.0, 72.0, 21.0, 84.0)],
    34: [(18.0, 0.0, 24.0, 72.0)],
    35: [(24.0, 0.0, 30.0, 72.0), (21.0, 72.0, 33.0, 84.0)],
    36: [(30.0, 0.0, 36.0, 72.0)],
    37: [(36.0, 0.0, 42.0, 72.0), (33.0, 72.0, 42.0, 84.0)],
}


@dataclass(frozen=True)
class MGRSGrid(UTMGrid):
    """The MGRS 100 km squares: UTM's 100 km cells, named ``MGRS-32TQM``."""

    name: str = "mgrs"
    code: str = "MGRS"
    tile_size: float = SQUARE

    def tile_ids(self, epsg: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        """``MGRS-{zone}{band}{column}{row}`` for each square."""
        zone = epsg % 100
        lat = np.empty(len(epsg))
        codes, regions = self.zones()
        for code in np.unique(epsg):
            sel = np.flatnonzero(epsg == code)
            centres = (col[sel] + 0.5) * SQUARE, (row[sel] + 0.5) * SQUARE
            lon, lat[sel] = transformer(int(code), WGS84).transform(*centres)
            region = regions[np.flatnonzero(codes == code)[0]]
            outside = ~shapely.contains_xy(region, lon, lat[sel])
            if outside.any():  # named after the band of the part inside its zone
                c, r = col[sel[outside]], row[sel[outside]]
                cells = shapely.box(c * SQUARE, r * SQUARE, (c + 1) * SQUARE, (r + 1) * SQUARE)
                parts = clip_to_zone(to_wgs84(cells, int(code), self.pixel_size), region)
                some = sel[outside][~shapely.is_empty(parts)]
                lat[some] = shapely.get_y(shapely.point_on_surface(parts[~shapely.is_empty(parts)]))
        bands = np.clip(np.floor((lat + 80.0) / 8.0).astype(np.int64), 0, len(BANDS) - 1)
        columns = ((zone - 1) % 3) * 8 + col - 1
        rows = (row + np.where(zone % 2 == 0, 5, 0)) % 20
        parts = zip(zone.tolist(), bands.tolist(), columns.tolist(), col.tolist(), rows.tolist(), strict=True)
        out = [f"MGRS-{z:02d}{BANDS[b]}{COLUMNS[c] if 1 <= e <= 8 else '?'}{ROWS[r]}" for z, b, c, e, r in parts]
        return np.array(out, dtype=object)

    def tile(self, tile_id: str) -> Tile:
        """The square named ``tile_id`` (``MGRS-32TQM``; ``32TQM`` too)."""
        match = re.fullmatch(r"(?:MGRS-)?(\d\d)([C-HJ-NP-X])([A-HJ-NP-Z])([A-HJ-NP-V])", tile_id)
        if match is None or not 1 <= int(match[1]) <= 60:
            raise InvalidGrid(f"tile id {tile_id!r} is not an MGRS 100 km square", hint="ids look like MGRS-32TQM")
        zone, band = int(match[1]), BANDS.index(match[2])
        col = COLUMNS.index(match[3]) - ((zone - 1) % 3) * 8 + 1
        if not 1 <= col <= 8:
            raise InvalidGrid(f"tile id {tile_id!r}: column letter {match[3]} is not used in zone {zone}")
        epsg = (32600 if band >= BANDS.index("N") else 32700) + zone
        letter = (ROWS.index(match[4]) - (5 if zone % 2 == 0 else 0)) % 20
        # the rows whose letter this is, 2,000 km apart: the one whose centre lies in the band
        south, north = -80.0 + 8.0 * band, (84.0 if match[2] == "X" else -72.0 + 8.0 * band)
        meridian = -183.0 + 6.0 * zone
        _, (low, high) = transformer(WGS84, epsg).transform([meridian, meridian], [south, north])
        for row in range(int(low // SQUARE) - 1, int(high // SQUARE) + 2):
            if row % 20 == letter and self.tile_ids(np.array([epsg]), np.array([col]), np.array([row]))[0].endswith(
                tile_id[-5:]
            ):
                return self._cell(tile_id, epsg, col, row)
        raise InvalidGrid(f"tile id {tile_id!r}: no square of zone {zone} has row letter {match[4]} in band {match[2]}")

    def zones(self) -> tuple[np.ndarray, np.ndarray]:
        """EPSG codes and WGS84 regions of MGRS's zones: UTM's, with the Norway and Svalbard exceptions."""
        return _mgrs_zones()

    def describe(self) -> dict[str, Any]:
        """The grid's defining values."""
        return {**super().describe(), "kind": "mgrs"}


@cache
def _mgrs_zones() -> tuple[np.ndarray, np.ndarray]:
    codes, regions = zone_boxes()
    regions = regions.copy()
    for zone, boxes in EXCEPTIONS.items():
        regions[zone - 1] = shapely.union_all([shapely.box(*box) for box in boxes]).normalize()
    return codes, regions
