"""Tile attributes, as large productions prepare them up front: each tile gets the properties of the grid
file's feature it is (if the grid is a file) and of the AOI feature it lies most in (a country's code, the
model to run there), read in templates and exports as ``{tile.props.NAME}``; an attribute can set the order
in which tiles run (``priority: NAME``, highest first): each tile's jobs get a rank, so the order holds
however the plan is made, a UTM zone at a time or all at once.

A tile that straddles two AOI features (a border) takes the attributes of the one holding the larger part of
it; the AOI's attributes win over the grid file's where both have a name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import shapely

from ogc_upscaler.aoi import AOI
from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.grid import TileSet
from ogc_upscaler.projection import area_km2


def with_attributes(tiles: TileSet, aoi: AOI) -> TileSet:
    """``tiles`` with their attributes: the grid file's, then those of the AOI feature each lies most in."""
    own = tiles.props if tiles.props is not None else [{}] * len(tiles)
    props = np.empty(len(tiles), dtype=object)
    props[:] = [dict(p) for p in own]
    if aoi.properties and len(tiles):
        chosen = _largest_overlap(tiles.footprints, np.asarray(aoi.features, dtype=object))
        for i, feature in enumerate(chosen.tolist()):
            if feature >= 0:
                props[i] = {**props[i], **aoi.properties[feature]}
    return tiles.with_props(props)


def tile_rank(props: Mapping[str, Any], name: str) -> float:
    """The rank of a tile's jobs for ``priority: NAME``: the lower, the sooner (the attribute negated);
    a tile without the attribute runs last (infinity)."""
    value = props.get(name)
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidConfig(
            f"priority: attribute {name!r} is {value!r} for a tile, not a number",
            hint="give priority the name of a numeric attribute of the AOI's (or the grid file's) features",
        )
    return -float(value)


def no_tile_has(name: str, names: Iterable[str]) -> InvalidConfig:
    """The error for a ``priority`` attribute that no tile of the plan has; ``names`` are those they have."""
    return InvalidConfig(
        f"priority: no tile has the attribute {name!r}",
        hint=f"the tiles' attributes are: {', '.join(sorted(set(names))) or 'none'}",
    )


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
