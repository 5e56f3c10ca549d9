"""Finding each job's input items by STAC search over the tile footprint and the time window.

Two sources behind one small interface: a static catalog read with pystac (all
items loaded once, then an STRtree query per tile) and a STAC API searched with
pystac-client (one search per tile over the whole time range, split by window
on our side). Both return item hrefs, which jobs carry in ``{inputs.stac_items}``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
import shapely
from shapely.geometry import shape

from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.windows import Window


class InputSource(ABC):
    """Where the input items of the jobs are found."""

    @abstractmethod
    def items(self, footprint: shapely.Geometry, windows: Sequence[Window]) -> list[list[str]]:
        """For each window, the hrefs of the items that meet the footprint during it."""


class StaticCatalog(InputSource):
    """A static STAC catalog or collection on disk (or at a URL pystac can read)."""

    def __init__(self, href: str, collections: Sequence[str] | None = None) -> None:
        try:
            root = pystac.read_file(href)
        except (OSError, pystac.STACError, ValueError) as err:
            raise InvalidConfig(
                f"inputs.stac: cannot read the STAC catalog {href}: {err}",
                hint="give the path of a catalog.json or collection.json, or a STAC API URL",
            ) from None
        if not isinstance(root, pystac.Catalog):
            raise InvalidConfig(f"inputs.stac: {href} is a STAC {type(root).__name__}, not a catalog or collection")
        items = [i for i in root.get_items(recursive=True) if not collections or i.collection_id in collections]
        self.hrefs = np.array([i.get_self_href() for i in items], dtype=object)
        self.starts, self.ends = _times(items)
        self.tree = shapely.STRtree([shape(i.geometry) if i.geometry else shapely.Polygon() for i in items])

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
        self.collections = list(collections) if collections else None

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


def open_source(stac: str, collections: Sequence[str] | None, base_dir: Path) -> InputSource:
    """A STAC API for an http(s) URL that is not a JSON file, else a static catalog."""
    if stac.startswith(("http://", "https://")) and not stac.endswith(".json"):
        return StacApi(stac, collections)
    href = stac if stac.startswith(("http://", "https://")) else str((base_dir / stac).resolve())
    return StaticCatalog(href, collections)


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
