"""The STAC catalog a package writes as its output, read for what collection needs: its data asset.

A package's ``catalog.json`` links its items, directly or through child catalogs; the first asset with
the role ``data`` (or a GeoTIFF media type), in the order pystac's ``get_items(recursive=True)`` walks
them, is the tile's result. The documents are read as plain JSON rather than built into pystac objects:
collection reads one catalog per job, and building it cost more than the rest of the item did.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pystac.utils import make_absolute_href

#: How deep child catalogs are followed: a package writes one level, a loop of links must not hang.
MAX_DEPTH = 16


@dataclass(frozen=True)
class DataAsset:
    """A package's data asset: where its file is, its title (else its item's id), and the
    ``raster:bands`` the package wrote for it (None when it wrote none)."""

    href: str
    title: str
    bands: Sequence[Mapping[str, Any]] | None = None


def data_asset(catalog: Path) -> DataAsset | None:
    """The first data asset of the items ``catalog`` links, or None if none has one.

    Raises OSError or ValueError (JSON) when a document is unreadable, and KeyError, TypeError or
    AttributeError when one is not shaped as STAC says.
    """
    for href, item in _items(str(catalog), 0):
        for asset in (item.get("assets") or {}).values():
            roles = asset.get("roles") or []
            if "data" in roles or str(asset.get("type") or "").startswith("image/tiff"):
                bands = asset.get("raster:bands")
                return DataAsset(
                    href=_absolute(asset["href"], href),
                    title=asset.get("title") or item["id"],
                    bands=bands if isinstance(bands, list) else None,
                )
    return None


def _items(href: str, depth: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(href, document)`` of each item of the catalog at ``href``: its own first, then its children's."""
    body = _read(href)
    links = body.get("links") or []
    for link in links:
        if link.get("rel") == "item":
            item_href = _absolute(link["href"], href)
            yield item_href, _read(item_href)
    if depth < MAX_DEPTH:
        for link in links:
            if link.get("rel") == "child":
                yield from _items(_absolute(link["href"], href), depth + 1)


def _absolute(href: str, start: str) -> str:
    """``href`` as an absolute path or URL, relative hrefs taken from the document at ``start``."""
    if "://" in href or "://" in start:
        return make_absolute_href(href, start)
    return os.path.abspath(os.path.join(os.path.dirname(start), href))


def _read(href: str) -> dict[str, Any]:
    path = href.removeprefix("file://")
    with open(path, "rb") as f:
        body = json.load(f)
    if not isinstance(body, dict):
        raise TypeError(f"{path} holds a JSON {type(body).__name__}, not a STAC object")
    return body
