"""A sample of a campaign's tiles spread over its AOI, to learn what the campaign will do before it runs.

Each tile's centre gets a key on a Z-order (Morton) curve of longitude and latitude; the tiles taken at
even steps along that order are spread over the whole AOI, its islands and far ends included, the way
a stratified sample is. The grid is walked a part at a time, twice (keys, then the chosen tiles), so a
whole globe is sampled in the memory of its keys, 8 bytes a tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ogc_upscaler.aoi import AOI
from ogc_upscaler.grid import Grid, TileSet
from ogc_upscaler.grid.tiles import concat
from ogc_upscaler.projection import WGS84, transformer

#: Bits per axis of the Morton key: 65,536 steps of longitude and of latitude.
_BITS = 16


@dataclass(frozen=True)
class Sample:
    """Some tiles of a campaign, and how many tiles (and km²) the whole campaign has."""

    tiles: TileSet
    total: int
    total_km2: float


def spread(grid: Grid, aoi: AOI, n: int) -> Sample:
    """``n`` tiles of ``grid`` over ``aoi`` (all of them when there are fewer), spread in space, in plan order."""
    keys, total_km2 = [], 0.0
    for part in grid.chunks(aoi):
        keys.append(_morton(part))
        total_km2 += part.area_km2
    every = np.concatenate(keys) if keys else np.empty(0, np.uint64)
    total = len(every)
    if total <= n:
        chosen = np.arange(total)
    else:
        order = np.argsort(every, kind="stable")
        chosen = np.sort(order[((np.arange(n) + 0.5) * total / n).astype(np.int64)])
    picked, offset = [], 0
    for part in grid.chunks(aoi):
        inside = chosen[(chosen >= offset) & (chosen < offset + len(part))] - offset
        if inside.size:
            picked.append(part.select(inside))
        offset += len(part)
    return Sample(concat(grid, picked, presorted=True), total, total_km2)


def _morton(part: TileSet) -> np.ndarray:
    """The Z-order key of each tile's centre in longitude and latitude."""
    lon, lat = np.empty(len(part)), np.empty(len(part))
    x = (part.bounds[:, 0] + part.bounds[:, 2]) / 2.0
    y = (part.bounds[:, 1] + part.bounds[:, 3]) / 2.0
    for epsg in np.unique(part.epsg):
        sel = part.epsg == epsg
        lon[sel], lat[sel] = transformer(int(epsg), WGS84).transform(x[sel], y[sel])
    scale = (1 << _BITS) - 1
    ix = np.clip((lon + 180.0) / 360.0 * scale, 0, scale).astype(np.uint64)
    iy = np.clip((lat + 90.0) / 180.0 * scale, 0, scale).astype(np.uint64)
    return _spaced(ix) | (_spaced(iy) << np.uint64(1))


def _spaced(v: np.ndarray) -> np.ndarray:
    """The 16 low bits of ``v`` moved to the even bit positions (0, 2, 4, ...)."""
    v = v & np.uint64(0xFFFF)
    for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v
