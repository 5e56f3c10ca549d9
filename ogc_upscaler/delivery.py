"""Results delivered where productions keep them, as each job is collected: its files and item uploaded to
the campaign's bucket (:mod:`ogc_upscaler.upload`), its item upserted into a STAC API
(:mod:`ogc_upscaler.stac_api`), with hrefs that open (``s3://`` in the bucket, else absolute local paths).

A delivery that fails is the job's collection error (retried with back-off when trying later may help);
the job is never run again for it. The Collection is put in the API before the first job runs (items
need it) and again, complete, when the catalog is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ogc_upscaler.bucket import Bucket, OutputError
from ogc_upscaler.collect import COLLECTION_FILE, Collected, CollectError, collect
from ogc_upscaler.stac_api import PublishError, StacApi
from ogc_upscaler.upload import is_relative, item_paths, local_assets, upload_collection, upload_item

if TYPE_CHECKING:
    from ogc_upscaler.backends.base import Outputs
    from ogc_upscaler.campaign import Campaign
    from ogc_upscaler.store import Job


@dataclass
class Delivery:
    """Where a campaign's results go besides its local catalog: a bucket, a STAC API, or both."""

    bucket: Bucket | None = None
    api: StacApi | None = None

    @classmethod
    def of(cls, campaign: Campaign) -> Delivery:
        """The campaign's delivery, its clients opened."""
        bucket = Bucket(campaign.upload) if campaign.upload is not None else None
        api = StacApi(campaign.publish) if campaign.publish is not None else None
        return cls(bucket, api)

    def __bool__(self) -> bool:
        return self.bucket is not None or self.api is not None

    def item(self, output: Path, item: str) -> None:
        """Deliver the item at ``item`` (relative to the local catalog ``output``) and its files."""
        body = self._in_bucket(output, item)
        if self.api is not None:
            self.api.put_item(_for_api(body))

    def collection(self, output: Path, *, items: bool, publish: bool) -> None:
        """Deliver the local catalog's collection (with ``items``, every item too); ``publish`` to the API."""
        api = self.api if publish else None
        for path in item_paths(output) if items else ():
            body = self._in_bucket(output, path)
            if api is not None:
                api.put_item(_for_api(body))
        body = self._in_bucket(output, COLLECTION_FILE)
        if api is not None:
            api.put_collection(_for_api(body))

    def _in_bucket(self, output: Path, path: str) -> dict[str, Any]:
        """The STAC object at ``path`` uploaded with its files (without a bucket: with absolute local hrefs)."""
        if self.bucket is None:
            return _absolute(output, path)
        if path == COLLECTION_FILE:
            return upload_collection(self.bucket, output)
        return upload_item(self.bucket, output, path)

    def start(self, campaign: Campaign) -> None:
        """Before the first job: the API's collection, so that items can go in (its extent from the plan)."""
        if self.api is not None:
            self.api.put_collection(planned_collection(campaign))

    def close(self) -> None:
        """Let the API's connections go."""
        if self.api is not None:
            self.api.close()


@dataclass
class Delivering:
    """A collector (the manager's ``collector``): collect into the local catalog, then deliver the item."""

    delivery: Delivery

    def __call__(self, job: Job, outputs: Outputs, output: Path, campaign: str) -> Collected:
        """The job collected and delivered; a delivery that fails is its collection error."""
        collected = collect(job, outputs, output, campaign)
        try:
            self.delivery.item(output, collected.item)
        except (OutputError, PublishError) as err:  # a bucket's failure may pass; the API says whether it may
            retryable = err.retryable if isinstance(err, PublishError) else True
            raise CollectError(f"job {job.job_id}: {err.message}", retryable=retryable, hint=err.hint) from None
        return collected


def planned_collection(campaign: Campaign) -> dict[str, Any]:
    """The campaign's Collection as planned: its AOI's bounds and its windows' span (the catalog written at
    the end replaces it with the extent of what was collected)."""
    west, south, east, north = campaign.aoi.bounds
    start = min(w.start for w in campaign.windows).isoformat().replace("+00:00", "Z")
    end = max(w.end for w in campaign.windows).isoformat().replace("+00:00", "Z")
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": campaign.name,
        "description": f"Results of the ogc-upscaler campaign {campaign.name}",
        "license": "other",
        "extent": {"spatial": {"bbox": [[west, south, east, north]]}, "temporal": {"interval": [[start, end]]}},
        "links": [],
    }


def _absolute(output: Path, path: str) -> dict[str, Any]:
    """The local STAC object at ``path`` with its asset hrefs made absolute local paths."""
    body = json.loads((output / path).read_text(encoding="utf-8"))
    for asset, relative in local_assets(body, path):
        asset["href"] = str((output / relative).resolve())
    return body


def _for_api(body: dict[str, Any]) -> dict[str, Any]:
    """A STAC object as an API takes it: the links it makes itself (relative ones, item lists) left out."""
    links = [link for link in body.get("links", []) if link.get("rel") not in {"self", "root", "parent", "item"}]
    return {**body, "links": [link for link in links if not is_relative(link.get("href", ""))]}
