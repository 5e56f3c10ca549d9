"""Tile attributes, as large productions prepare them up front: each tile gets the properties of the grid
file's feature it is (if the grid is a file) and of the AOI feature it lies most in (a country's code, the
model to run there), read in templates and exports as ``{tile.props.NAME}``; an attribute can set the order
in which tiles are planned, and so run (``priority: NAME``, highest first).

A tile that straddles two AOI features (a border) takes the attributes of the one holding the larger part of
it; the AOI's attributes win over the grid file's where both have a name.
"""

from __future__ import annotations

import numpy as np
import shapely

from ogc_upscaler.aoi import AOI
from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.grid import TileSet
from ogc_upscaler.projection import area_km2


def with_attributes(tiles: TileSet, aoi: AOI, priority: str | None = None) -> TileSet:
    """``tiles`` with their attributes, ordered by ``priority`` (highest first, stable) when it is given."""
    own = tiles.props if tiles.props is not None else [{}] * len(tiles)
    props = np.empty(len(tiles), dtype=object)
    props[:] = [dict(p) for p in own]
    if aoi.properties and len(tiles):
        chosen = _largest_overlap(tiles.footprints, np.asarray(aoi.features, dtype=object))
        for i, feature in enumerate(chosen.tolist()):
            if feature >= 0:
                props[i] = {**props[i], **aoi.properties[feature]}
    tiles = tiles.with_props(props)
    if priority is None:
        return tiles
    return tiles.select(_order(props, priority))


def _largest_overlap(footprints: np.ndarray, features: np.ndarray) -> np.ndarray:
    """For each footprint, the index of the feature sharing the most area with it (-1 for none)."""
    tree = shapely.STRtree(features)
    tile_index, feature_index = tree.query(footprints, predicate="intersects")
    shared = area_km2(shapely.intersection(footprints[tile_index], features[feature_index]))
    best = np.full(len(footprints), -1, np.int64)
    most = np.full(len(footprints), -1.0)
    for t, f, a in zip(tile_index.tolist(), feature_index.tolist(), shared.tolist(), strict=True):
        if a > most[t]:
            best[t], most[t] = f, a
    return best


def _order(props: np.ndarray, name: str) -> np.ndarray:
    """Tile positions by the numeric attribute ``name``, highest first; tiles without it last, in order."""
    values = []
    for p in props:
        value = p.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidConfig(
                f"priority: attribute {name!r} is {value!r} for a tile, not a number",
                hint="give priority the name of a numeric attribute of the AOI's (or the grid file's) features",
            )
        values.append(np.nan if value is None else float(value))
    keys = np.asarray(values)
    if np.isnan(keys).all():
        raise InvalidConfig(
            f"priority: no tile has the attribute {name!r}",
            hint=f"the tiles' attributes are: {', '.join(sorted({k for p in props for k in p})) or 'none'}",
        )
    return np.lexsort((np.arange(len(keys)), np.where(np.isnan(keys), np.inf, -keys)))
