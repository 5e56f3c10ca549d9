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


def check_priority(name: str, attributes: Iterable[Mapping[str, Any]]) -> None:
    """Refuse ``priority: NAME`` before anything is planned when no feature (of the AOI, of the grid file)
    has the attribute, or one has it with a value that is not a number."""
    names: set[str] = set()
    found = False
    for props in attributes:
        names.update(props)
        value = props.get(name)
        if _missing(value):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidConfig(
                f"priority: attribute {name!r} is {value!r} for a feature, not a number",
                hint="give priority the name of a numeric attribute of the AOI's (or the grid file's) features",
            )
        found = True
    if not found:
        raise InvalidConfig(
            f"priority: no tile has the attribute {name!r}",
            hint=f"the features' attributes are: {', '.join(sorted(names)) or 'none'}",
        )


def tile_rank(props: Mapping[str, Any], name: str) -> float:
    """The rank of a tile's jobs for ``priority: NAME`` (checked by :func:`check_priority`): the lower, the
    sooner (the attribute negated); a tile without it (missing, null, NaN as GDAL reads a null) runs last."""
    value = props.get(name)
    return math.inf if _missing(value) else -float(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


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
