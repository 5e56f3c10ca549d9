"""Collected results uploaded to the campaign's bucket: each job's item with its files as the job is
collected (the files first, the item last, so a reader of the bucket never finds an item whose data is
not there yet), the collection when the catalog is written; in the bucket every href is absolute.

The local catalog stays the working copy the bucket mirrors, key for key (``items/<job>/…``), so a
resume or a second ``catalog`` run puts nothing twice (:class:`~ogc_upscaler.bucket.Bucket` leaves an
object with the same bytes alone). A failed upload is the job's collection error, retried with back-off
like any other; the job is never run again for it.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ogc_upscaler.collect import COLLECTION_FILE, Collected, CollectError, collect
from ogc_upscaler.errors import redact

if TYPE_CHECKING:
    from ogc_upscaler.backends.base import Outputs
    from ogc_upscaler.bucket import Bucket, S3Output
    from ogc_upscaler.store import Job

JSON_TYPE = "application/json"
GEOJSON_TYPE = "application/geo+json"


@dataclass
class Uploading:
    """A collector that uploads what ``collector`` collected (the manager's ``collector``)."""

    bucket: Bucket

    def __call__(self, job: Job, outputs: Outputs, output: Path, campaign: str) -> Collected:
        """Collect the job into the local catalog, then upload its item; an upload that fails is retryable."""
        from ogc_upscaler.bucket import OutputError

        collected = collect(job, outputs, output, campaign)
        try:
            upload_item(self.bucket, output, collected.item)
        except OutputError as err:
            raise CollectError(f"job {job.job_id}: {err.message}", retryable=True, hint=err.hint) from None
        return collected


def upload_item(bucket: Bucket, output: Path, item: str) -> int:
    """Upload the item at ``item`` (relative to the local catalog ``output``) and the local files its assets
    name, the item last with absolute hrefs; how many objects were put (those already there are not)."""
    body = json.loads((output / item).read_text(encoding="utf-8"))
    folder = posixpath.dirname(item)
    put = 0
    for asset in body.get("assets", {}).values():
        relative = _local(asset.get("href", ""), folder)
        if relative is not None:
            put += bucket.upload(output / relative, relative, asset.get("type") or "application/octet-stream")
            asset["href"] = bucket.output.href(relative)
    _absolute_links(body, item, bucket.output)
    put += bucket.put(_encoded(body), item, GEOJSON_TYPE)
    return put


def upload_catalog(bucket: Bucket, output: Path, *, items: bool) -> int:
    """Upload the local catalog's collection (with ``items``, every item it links to as well, each skipped
    where the bucket holds it already); how many objects were put."""
    body = json.loads((output / COLLECTION_FILE).read_text(encoding="utf-8"))
    put = 0
    if items:
        for link in body.get("links", []):
            relative = _local(link.get("href", ""), "") if link.get("rel") == "item" else None
            if relative is not None:
                put += upload_item(bucket, output, relative)
    _absolute_links(body, COLLECTION_FILE, bucket.output)
    put += bucket.put(_encoded(body), COLLECTION_FILE, JSON_TYPE)
    return put


def _absolute_links(body: dict[str, Any], path: str, output: S3Output) -> None:
    """Every relative link of the STAC object at ``path`` made absolute in the bucket, with its ``self``."""
    links = [link for link in body.get("links", []) if link.get("rel") != "self"]
    for link in links:
        relative = _local(link.get("href", ""), posixpath.dirname(path))
        if relative is not None:
            link["href"] = output.href(relative)
    body["links"] = [*links, {"rel": "self", "href": output.href(path), "type": JSON_TYPE}]


def _local(href: str, folder: str) -> str | None:
    """The catalog-relative path of a relative ``href`` found in ``folder``; None for an absolute one."""
    if not href or urlsplit(href).scheme or href.startswith("/"):
        return None
    relative = posixpath.normpath(posixpath.join(folder, href))
    if relative.startswith("../"):
        raise CollectError(f"href {redact(href)} points outside the catalog", retryable=False)
    return relative


def _encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body, indent=2).encode("utf-8")
