"""A results document in our terms: its COG outputs fetched into the job's folder with a STAC catalog.

Results are parsed tolerantly (a mapping of id to value or link, pygeoapi's
``{"outputs": [...]}``, a list, a bare value). Links to GeoTIFFs are downloaded; when there
are none, links to STAC catalogs, collections or items are followed to their COG assets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pystac

from ogc_upscaler.backends.ogcapi.client import Client, json_of
from ogc_upscaler.errors import redact

#: Most STAC documents read to find the rasters of one job's outputs.
MAX_STAC_DOCUMENTS = 1000
TIFF_TYPES = ("image/tiff", "image/geotiff")


def fetch_rasters(client: Client, raw: dict[str, Any], folder: Path) -> Path | None:
    """Download the GeoTIFF outputs of ``raw`` into ``folder`` with a ``catalog.json``; its path, or None."""
    links = [link for link in links_in(raw) if is_tiff(link)]
    if not links:  # a STAC catalog, collection or item as output: its COG assets
        links = stac_assets(client, [link for link in links_in(raw) if is_json(link)])
    if not links:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    catalog = pystac.Catalog(id="results", description="outputs fetched from the OGC API")
    for i, link in enumerate(links):
        target = folder / f"output-{i}.tif"
        client.download(link["href"], target)
        item = pystac.Item(f"output-{i}", None, None, pystac.utils.str_to_datetime("1970-01-01T00:00:00Z"), {})
        item.add_asset("data", pystac.Asset(str(target), media_type=pystac.MediaType.COG, roles=["data"]))
        catalog.add_item(item)
    catalog.normalize_hrefs(str(folder))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return folder / "catalog.json"


def stac_assets(client: Client, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The GeoTIFF assets of the STAC documents ``links`` point at, following item and child links."""
    queue, seen, assets = [link["href"] for link in links], set(), []
    while queue and len(seen) < MAX_STAC_DOCUMENTS:
        href = client.absolute(queue.pop(0))
        if href in seen:
            continue
        seen.add(href)
        reply = client.request("GET", href)
        client.raise_for(reply, f"reading the STAC output {redact(href)}")
        document = json_of(reply, default=None)
        if not isinstance(document, dict):
            continue
        if document.get("type") == "Feature":
            for asset in (document.get("assets") or {}).values():
                if isinstance(asset, dict) and isinstance(asset.get("href"), str):
                    link = {"href": urljoin(href, asset["href"]), "type": asset.get("type", "")}
                    if is_tiff(link):
                        assets.append(link)
        elif document.get("type") in ("Catalog", "Collection"):
            for link in document.get("links") or []:
                if isinstance(link, dict) and link.get("rel") in ("item", "child") and link.get("href"):
                    queue.append(urljoin(href, link["href"]))
    return assets


def links_in(raw: Any) -> list[dict[str, Any]]:
    """Every ``{href, type}`` in a results document, whatever its shape."""
    found: list[dict[str, Any]] = []
    if isinstance(raw, dict):
        if isinstance(raw.get("href"), str):
            found.append(raw)
        for value in raw.values():
            found += links_in(value)
    elif isinstance(raw, list):
        for value in raw:
            found += links_in(value)
    return found


def is_tiff(link: dict[str, Any]) -> bool:
    """Whether a link names a GeoTIFF (by media type or file name)."""
    kind = str(link.get("type", "")).lower()
    return kind.startswith(TIFF_TYPES) or str(link["href"]).lower().split("?")[0].endswith((".tif", ".tiff"))


def is_json(link: dict[str, Any]) -> bool:
    """Whether a link names a JSON document (a STAC catalog, collection or item)."""
    kind = str(link.get("type", "")).lower()
    return "json" in kind or str(link["href"]).lower().split("?")[0].endswith(".json")
