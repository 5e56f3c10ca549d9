"""A grid of tiles listed by the user in a GeoJSON file.

Each feature is one tile. Its id is the feature's ``id`` (or ``properties.tile_id``
/ ``properties.id``); its CRS is ``properties.crs`` (or ``proj:code``), else the
UTM zone of its centre; its bounds are ``properties.bounds`` (or ``proj:bbox``)
in that CRS, else the bounds of its geometry there, snapped outwards to whole
pixels. The files ``ogc-upscaler grid -o`` writes read back as grid files.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from ogc_upscaler.aoi import AOI
from ogc_upscaler.errors import InvalidGrid
from ogc_upscaler.grid.base import EXACT, Grid
from ogc_upscaler.grid.projected import check_projected
from ogc_upscaler.grid.tiles import Tile, TileSet
from ogc_upscaler.projection import WGS84, densify_degrees, project

TILE_ID = re.compile(r"[A-Za-z0-9][-_.A-Za-z0-9]*")


@dataclass(frozen=True)
class FileGrid(Grid):
    """The tiles of a GeoJSON grid file, with ids chosen by the user."""

    path: Path
    pixel_size: float = 10.0
    buffer_px: int = 0
    name: str = field(init=False)
    code: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", str(self.path))
        object.__setattr__(self, "code", re.sub(r"[^A-Z0-9]", "", self.path.stem.upper()) or "FILE")
        if self.pixel_size <= 0:
            raise InvalidGrid(f"grid file {self.path}: resolution must be positive")

    @cached_property
    def all_tiles(self) -> TileSet:
        """Every tile of the file, whatever the AOI."""
        features = _features(self.path)
        ids, epsg, bounds, props = [], [], [], []
        for i, feature in enumerate(features):
            tile_id, code, box = _tile(feature, i, self.path, self.pixel_size)
            ids.append(tile_id)
            epsg.append(code)
            bounds.append(box)
            given = (feature.get("properties") or {}).items()
            props.append({k: v for k, v in given if k not in OWN and not k.startswith("proj:")})
        duplicated = {t for t, n in Counter(ids).items() if n > 1}
        if duplicated:
            raise InvalidGrid(f"grid file {self.path}: tile ids repeat: {', '.join(sorted(duplicated)[:5])}")
        n = len(ids)
        return TileSet(
            self,
            np.array(epsg, np.int32),
            np.arange(n, dtype=np.int64),
            np.zeros(n, np.int64),
            np.array(bounds, float).reshape(n, 4),
            names=np.array(ids, dtype=object),
            props=_column(props),
        )

    def feature_attributes(self) -> Sequence[Mapping[str, Any]]:
        """Each feature's properties, those that define the tile aside."""
        return list(self.all_tiles.props) if self.all_tiles.props is not None else []

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the file: a changed file is a changed grid."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def tiles(self, aoi: AOI) -> TileSet:
        """The file's tiles whose footprint shares area with the AOI, in file order."""
        every = self.all_tiles
        shapely.prepare(aoi.geometry)
        keep = shapely.intersects(aoi.geometry, every.footprints)
        keep[keep] = ~shapely.touches(aoi.geometry, every.footprints[keep])
        return every.select(keep)

    def tile_ids(self, epsg: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        """The ids given in the file (``col`` is the feature's index)."""
        return self.all_tiles.names[col]  # type: ignore[index]

    def tile(self, tile_id: str) -> Tile:
        """The tile with id ``tile_id`` in the file."""
        found = np.flatnonzero(self.all_tiles.ids == tile_id)
        if not found.size:
            raise InvalidGrid(f"tile id {tile_id!r} is not in grid file {self.path}")
        return self.all_tiles[int(found[0])]

    def describe(self) -> dict[str, Any]:
        """The file and its checksum, the pixel size and buffer."""
        return {
            "kind": "file",
            "path": str(self.path),
            "sha256": self.digest,
            "pixel_size": self.pixel_size,
            "buffer_px": self.buffer_px,
        }


#: A grid file's feature properties that define the tile (and those ``grid -o`` writes): not attributes.
OWN = frozenset({"tile_id", "id", "crs", "bounds", "grid", "resolution", "buffer_px", "shape", "transform", "area_km2"})


def _column(values: list[dict[str, Any]]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _features(path: Path) -> list[dict[str, Any]]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidGrid(
            f"grid file {path}: no such file",
            hint="give a grid name (see `ogc-upscaler grid --help`) or a GeoJSON file",
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidGrid(
            f"grid file {path}: not valid JSON ({err})", hint="give a GeoJSON FeatureCollection of tiles"
        ) from None
    if not isinstance(obj, dict) or obj.get("type") != "FeatureCollection" or not isinstance(obj.get("features"), list):
        raise InvalidGrid(f"grid file {path}: not a GeoJSON FeatureCollection", hint="one Feature per tile")
    if not obj["features"]:
        raise InvalidGrid(f"grid file {path}: holds no tiles")
    return obj["features"]


def _tile(feature: Any, i: int, path: Path, pixel: float) -> tuple[str, int, list[float]]:
    where = f"grid file {path}, features[{i}]"
    if not isinstance(feature, dict):
        raise InvalidGrid(f"{where}: not a GeoJSON Feature")
    props = feature.get("properties") or {}
    tile_id = feature.get("id", props.get("tile_id", props.get("id")))
    if not isinstance(tile_id, str | int) or not TILE_ID.fullmatch(str(tile_id)):
        raise InvalidGrid(
            f"{where}: tile id {tile_id!r} is missing or has characters other than letters, digits, '-', '_', '.'",
            hint='give each feature an "id" such as "T33UXP"; ids name jobs and folders',
        )
    geom = _geometry(feature, where)
    epsg = _epsg(props, geom, where)
    given = props.get("bounds", props.get("proj:bbox"))
    if given is not None:
        return str(tile_id), epsg, _checked_bounds(given, pixel, where)
    if geom is None:
        raise InvalidGrid(
            f"{where}: has neither a geometry nor 'bounds'", hint="give a WGS84 geometry or native bounds"
        )
    native = project(densify_degrees(geom), WGS84, epsg)
    xmin, ymin, xmax, ymax = native.bounds
    snapped = [
        np.floor(xmin / pixel) * pixel,
        np.floor(ymin / pixel) * pixel,
        np.ceil(xmax / pixel) * pixel,
        np.ceil(ymax / pixel) * pixel,
    ]
    return str(tile_id), epsg, [float(v) for v in snapped]


def _geometry(feature: dict[str, Any], where: str) -> shapely.Geometry | None:
    if feature.get("geometry") is None:
        return None
    try:
        return shape(feature["geometry"])
    except (ValueError, TypeError, AttributeError, KeyError, shapely.errors.GEOSException) as err:
        raise InvalidGrid(f"{where}: the geometry is not valid GeoJSON ({err})") from None


def _epsg(props: dict[str, Any], geom: shapely.Geometry | None, where: str) -> int:
    crs = props.get("crs", props.get("proj:code", props.get("proj:epsg")))
    if crs is None:
        if geom is None:
            raise InvalidGrid(f"{where}: has no 'crs' and no geometry to choose a UTM zone from")
        lon, lat = geom.centroid.x, geom.centroid.y
        return (32600 if lat >= 0 else 32700) + min(60, int((lon + 180) // 6) + 1)
    match = re.fullmatch(r"(?:EPSG:)?(\d{4,6})", str(crs), re.I)
    if match is None:
        raise InvalidGrid(f"{where}: crs {crs!r} is not an EPSG code", hint='write "crs": "EPSG:32632"')
    check_projected(int(match[1]), where)
    return int(match[1])


def _checked_bounds(given: Any, pixel: float, where: str) -> list[float]:
    try:
        box = [float(v) for v in given]
    except (TypeError, ValueError):
        box = []
    if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
        raise InvalidGrid(f"{where}: bounds {given!r} are not [xmin, ymin, xmax, ymax] with xmin < xmax, ymin < ymax")
    off = [abs(v / pixel - round(v / pixel)) for v in box]
    if max(off) > EXACT * max(1.0, max(abs(v) for v in box) / pixel):
        raise InvalidGrid(
            f"{where}: bounds {box} are not on multiples of the {pixel:g} m resolution",
            hint="give a resolution that divides the tile bounds, or fix the bounds",
        )
    return box
