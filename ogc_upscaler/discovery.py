"""Finding each job's input items by STAC search over the tile footprint and the time window.

Two sources behind one small interface: a static catalog read with pystac (all
items loaded once, then an STRtree query per tile) and a STAC API searched with
pystac-client (one search per tile over the whole time range, split by window
on our side). Both return item hrefs, which jobs carry in ``{inputs.stac_items}``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
import shapely
from shapely.geometry import shape

from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.projection import lonlat_box
from ogc_upscaler.s3_access import S3Access
from ogc_upscaler.s3_stac_io import stac_io_for
from ogc_upscaler.windows import Window


@dataclass(frozen=True)
class Coverage:
    """Where and when a source has items: the collections searched, a WGS84 footprint (the union of the
    items' footprints for a static catalog, of the collections' extents for an API) and a time span."""

    collections: tuple[str, ...]
    footprint: shapely.Geometry
    start: datetime | None
    end: datetime | None


class InputSource(ABC):
    """Where the input items of the jobs are found."""

    @abstractmethod
    def items(self, footprint: shapely.Geometry, windows: Sequence[Window]) -> list[list[str]]:
        """For each window, the hrefs of the items that meet the footprint during it."""

    @abstractmethod
    def coverage(self) -> Coverage:
        """Where and when the searched collections have items; :class:`InvalidConfig` when a collection the
        config names is not there (with the ones that are)."""


class StaticCatalog(InputSource):
    """A static STAC catalog or collection on disk (or at a URL pystac can read)."""

    def __init__(self, href: str, collections: Sequence[str] | None = None, access: S3Access | None = None) -> None:
        try:
            root = pystac.read_file(href, stac_io=stac_io_for(href, access))
        except (OSError, pystac.STACError, ValueError) as err:
            raise InvalidConfig(
                f"inputs.stac: cannot read the STAC catalog {href}: {err}",
                hint="give the path of a catalog.json or collection.json, or a STAC API URL",
            ) from None
        if not isinstance(root, pystac.Catalog):
            raise InvalidConfig(f"inputs.stac: {href} is a STAC {type(root).__name__}, not a catalog or collection")
        every = list(root.get_items(recursive=True))
        self.href, self.collections = href, tuple(collections or ())
        self.present = sorted({c for c in map(_collection_of, every) if c})
        items = [i for i in every if not collections or _collection_of(i) in collections]
        self.hrefs = np.array([i.get_self_href() for i in items], dtype=object)
        self.starts, self.ends = _times(items)
        self.tree = shapely.STRtree([shape(i.geometry) if i.geometry else shapely.Polygon() for i in items])

    def coverage(self) -> Coverage:
        """The union of the items' footprints and the span of their times."""
        missing = [c for c in self.collections if c not in self.present]
        if missing:
            raise InvalidConfig(
                f"inputs.collections: the catalog {self.href} has no items of collection {missing[0]!r}",
                hint=f"its items are of: {', '.join(self.present) or 'no collection'}",
            )
        footprint = shapely.union_all(self.tree.geometries)
        starts, ends = self.starts[np.isfinite(self.starts)], self.ends[np.isfinite(self.ends)]
        start = _instant(float(starts.min())) if len(starts) else None
        end = _instant(float(ends.max())) if len(ends) else None
        return Coverage(self.collections or tuple(self.present), footprint, start, end)

    def items(self, footprint: shapely.Geometry, windows: Sequence[Window]) -> list[list[str]]:
        """Items whose geometry meets the footprint and whose time falls in each window."""
        hits = self.tree.query(footprint, predicate="intersects")
        out = []
        for window in windows:
            start, end = window.start.timestamp(), window.end.timestamp()
            during = hits[(self.starts[hits] < end) & (self.ends[hits] >= start)]
            out.append(sorted(self.hrefs[during].tolist()))
        return out


class StacApi(InputSource):
    """A STAC API searched with pystac-client."""

    def __init__(self, url: str, collections: Sequence[str] | None = None) -> None:
        from pystac_client import Client
        from pystac_client.exceptions import APIError

        try:
            self.client = Client.open(url)
        except (APIError, OSError, ValueError) as err:
            raise InvalidConfig(
                f"inputs.stac: cannot open the STAC API {url}: {err}", hint="check the URL and that the API answers"
            ) from None
        self.url = url
        self.collections = list(collections) if collections else None

    def coverage(self) -> Coverage:
        """The union of the collections' spatial extents and the span of their temporal ones."""
        from pystac_client.exceptions import APIError

        try:
            offered = {c.id: c for c in self.client.get_collections()}
        except (APIError, OSError, ValueError) as err:
            raise InvalidConfig(f"inputs.stac: cannot list the collections of {self.url}: {err}") from None
        names = self.collections or sorted(offered)
        missing = [c for c in names if c not in offered]
        if missing:
            raise InvalidConfig(
                f"inputs.collections: the STAC API {self.url} has no collection {missing[0]!r}",
                hint=f"it offers: {', '.join(sorted(offered)) or 'no collection'}",
            )
        boxes, starts, ends = [], [], []
        for name in names:
            extent = offered[name].extent
            boxes.extend(_box(b) for b in extent.spatial.bboxes[:1])
            for start, end in extent.temporal.intervals[:1]:
                starts.append(start)
                ends.append(end)
        starts, ends = [_utc(t) for t in starts], [_utc(t) for t in ends]
        known_starts, known_ends = [t for t in starts if t], [t for t in ends if t]
        return Coverage(
            tuple(names),
            shapely.union_all(boxes) if boxes else shapely.Polygon(),
            None if None in starts or not known_starts else min(known_starts),
            None if None in ends or not known_ends else max(known_ends),
        )

    def items(self, footprint: shapely.Geometry, windows: Sequence[Window]) -> list[list[str]]:
        """One search over the whole time range, split by window."""
        if not windows:
            return []
        span = f"{min(w.start for w in windows):%Y-%m-%dT%H:%M:%SZ}/{max(w.end for w in windows):%Y-%m-%dT%H:%M:%SZ}"
        search = self.client.search(
            collections=self.collections, intersects=shapely.geometry.mapping(footprint), datetime=span, limit=100
        )
        found = list(search.items())
        starts, ends = _times(found)
        hrefs = np.array([_href(i) for i in found], dtype=object)
        out = []
        for window in windows:
            during = (starts < window.end.timestamp()) & (ends >= window.start.timestamp())
            out.append(sorted(hrefs[during].tolist()))
        return out


def open_source(
    stac: str, collections: Sequence[str] | None, base_dir: Path, access: S3Access | None = None
) -> InputSource:
    """A STAC API for an http(s) URL that is not a JSON file, else a static catalog (at a URL, ``s3://``
    reached with ``access``, or a path relative to ``base_dir``)."""
    if stac.startswith(("http://", "https://")) and not stac.endswith(".json"):
        return StacApi(stac, collections)
    href = stac if stac.startswith(("http://", "https://", "s3://")) else str((base_dir / stac).resolve())
    return StaticCatalog(href, collections, access)


def _box(bbox: Sequence[float]) -> shapely.Geometry:
    """A STAC bbox (2D or 3D; west > east crosses the antimeridian) as a WGS84 geometry."""
    west, south, east, north = (bbox[0], bbox[1], bbox[3], bbox[4]) if len(bbox) == 6 else tuple(bbox)
    return lonlat_box(west, south, east, north)


def _collection_of(item: pystac.Item) -> str | None:
    """The item's collection: its ``collection`` field, else the Collection it sits in."""
    if item.collection_id:
        return item.collection_id
    parent = item.get_parent()
    return parent.id if isinstance(parent, pystac.Collection) else None


def _utc(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware UTC datetime: a time written without a zone is UTC, as STAC means it."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _instant(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _times(items: Sequence[pystac.Item]) -> tuple[np.ndarray, np.ndarray]:
    starts, ends = [], []
    for item in items:
        props = item.properties
        start = props.get("start_datetime") or props.get("datetime")
        end = props.get("end_datetime") or props.get("datetime")
        starts.append(_seconds(start))
        ends.append(_seconds(end))
    return np.array(starts, dtype=float), np.array(ends, dtype=float)


def _seconds(value: str | None) -> float:
    if value is None:
        return np.nan
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _href(item: pystac.Item) -> str:
    self_link = item.get_single_link("self")
    if self_link is not None:
        return self_link.get_absolute_href() or self_link.href
    return item.get_self_href() or item.id
