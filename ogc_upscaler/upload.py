"""The local catalog mirrored to the campaign's bucket, key for key (``items/<job>/…``): an item with
its files (the files first, the item last, so a reader of the bucket never finds an item whose data is not
there yet), the collection; in the bucket every href is absolute. A resume or a second ``catalog`` run
puts nothing twice (:class:`~ogc_upscaler.bucket.Bucket` leaves an object with the same bytes alone).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ogc_upscaler.collect import COLLECTION_FILE, CollectError
from ogc_upscaler.errors import redact

if TYPE_CHECKING:
    from ogc_upscaler.bucket import Bucket, S3Output

JSON_TYPE = "application/json"
GEOJSON_TYPE = "application/geo+json"


def upload_item(bucket: Bucket, output: Path, item: str) -> dict[str, Any]:
    """Upload the item at ``item`` (relative to the local catalog ``output``) and the local files its assets
    name, the item last; the item as uploaded, with absolute hrefs."""
    body = json.loads((output / item).read_text(encoding="utf-8"))
    for asset, relative in local_assets(body, item):
        bucket.upload(output / relative, relative, asset.get("type") or "application/octet-stream")
        asset["href"] = bucket.output.href(relative)
    _absolute_links(body, item, bucket.output)
    bucket.put(_encoded(body), item, GEOJSON_TYPE)
    return body


def upload_collection(bucket: Bucket, output: Path) -> dict[str, Any]:
    """Upload the local catalog's collection; as uploaded, with absolute hrefs."""
    body = json.loads((output / COLLECTION_FILE).read_text(encoding="utf-8"))
    _absolute_links(body, COLLECTION_FILE, bucket.output)
    bucket.put(_encoded(body), COLLECTION_FILE, JSON_TYPE)
    return body


def item_paths(output: Path) -> list[str]:
    """The catalog-relative paths of the items the local catalog's collection links to."""
    body = json.loads((output / COLLECTION_FILE).read_text(encoding="utf-8"))
    found = (local_href(link.get("href", ""), "") for link in body.get("links", []) if link.get("rel") == "item")
    return [path for path in found if path is not None]


def _absolute_links(body: dict[str, Any], path: str, output: S3Output) -> None:
    """Every relative link of the STAC object at ``path`` made absolute in the bucket, with its ``self``."""
    links = [link for link in body.get("links", []) if link.get("rel") != "self"]
    for link in links:
        relative = local_href(link.get("href", ""), posixpath.dirname(path))
        if relative is not None:
            link["href"] = output.href(relative)
    body["links"] = [*links, {"rel": "self", "href": output.href(path), "type": JSON_TYPE}]


def local_assets(body: dict[str, Any], path: str) -> Iterator[tuple[dict[str, Any], str]]:
    """The assets of the STAC object at ``path`` whose hrefs are relative, each with its catalog-relative path."""
    for asset in body.get("assets", {}).values():
        relative = local_href(asset.get("href", ""), posixpath.dirname(path))
        if relative is not None:
            yield asset, relative


def is_relative(href: str) -> bool:
    """Whether ``href`` is relative (no scheme, no leading slash)."""
    return bool(href) and not urlsplit(href).scheme and not href.startswith("/")


def local_href(href: str, folder: str) -> str | None:
    """The catalog-relative path of a relative ``href`` found in ``folder``; None for an absolute one."""
    if not is_relative(href):
        return None
    relative = posixpath.normpath(posixpath.join(folder, href))
    if relative.startswith("../"):
        raise CollectError(f"href {redact(href)} points outside the catalog", retryable=False)
    return relative


def _encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body, indent=2).encode("utf-8")
