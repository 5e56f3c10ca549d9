"""Collecting results into one self-contained STAC Collection of Cloud-Optimized GeoTIFFs.

Each succeeded job's output catalog (the package's ``catalog.json``, :mod:`ogc_upscaler.output_catalog`)
gives a data asset, which is placed in ``OUTPUT/items/<job id>/`` in one pass
(:mod:`ogc_upscaler.cog_asset`: read once, checked as a COG and rewritten as one if it is not, masked
outside the tile's footprint where its window runs past it) and described by one STAC Item with
``proj:*`` read from the file, ``raster:bands`` statistics, ``file:size`` and ``file:checksum``, and the
tile's ``grid:code``. Items are the JSON ``pystac.Item.to_dict`` gives, built directly and written
compact (building the pystac objects, and json's indenting encoder, cost more than the rest of an item).
The Collection is written from the store's collected jobs, so it can be rebuilt at any time; links are
relative. Collecting the same job twice gives the same item.

What the libraries below raise while an asset is read becomes a :class:`CollectError` here, in
:func:`_asset_errors` and :func:`_catalog_errors`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio.errors
import shapely
from pystac.extensions.file import FileExtension
from pystac.extensions.grid import GridExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension
from pystac.utils import datetime_to_str

from ogc_upscaler.backends.base import Outputs
from ogc_upscaler.cog_asset import CogAsset, place_cog
from ogc_upscaler.errors import JobError, UpscalerError
from ogc_upscaler.output_catalog import data_asset
from ogc_upscaler.projection import stac_bbox
from ogc_upscaler.store import Job, JobStore, State

COLLECTION_FILE = "collection.json"
#: The extensions of an item with a COG, in the order pystac's accessors add them; one of results.
COG_EXTENSIONS = tuple(e.get_schema_uri() for e in (GridExtension, ProjectionExtension, RasterExtension, FileExtension))
RESULTS_EXTENSIONS = (GridExtension.get_schema_uri(), FileExtension.get_schema_uri())


class CollectError(JobError):
    """A job succeeded but its outputs cannot be collected (missing, unreadable, not a raster)."""

    default_hint = "look at the job's output folder and log; `ogc-upscaler retry CONFIG --failed` runs it again"

    def __init__(
        self, message: str, *, retryable: bool = False, hint: str | None = None, trace: str | None = None
    ) -> None:
        super().__init__(message, retryable=retryable, hint=hint, trace=trace)


@dataclass(frozen=True)
class Collected:
    """Where a collected job's item and its assets are, relative to the campaign's output folder."""

    item: str
    cog: str | None = None
    results: str | None = None


def collect(job: Job, outputs: Outputs, output: Path, campaign: str) -> Collected:
    """Collect one job's outputs (``job`` read with its tile) into ``output``.

    A STAC catalog gives the item its COG; outputs that are plain values (a process's JSON
    results) are kept as the item's ``results`` asset.
    """
    if job.tile is None:
        raise ValueError(f"job {job.job_id} was read without its tile: read it with JobStore.get")
    folder = output / "items" / job.job_id
    folder.mkdir(parents=True, exist_ok=True)
    if outputs.catalog is None:
        if not outputs.raw:
            raise CollectError(
                f"job {job.job_id} succeeded without outputs",
                hint="the process must return results, or a Directory with a STAC catalog.json",
            )
        return _collect_values(job, outputs.raw, folder, output, campaign)
    with _catalog_errors(outputs.catalog):
        found = data_asset(outputs.catalog)
    if found is None:
        raise CollectError(
            f"output catalog {outputs.catalog} holds no item with a data asset",
            hint="the package must write an item whose COG asset has the role 'data'",
        )
    source, cog = Path(found.href), folder / f"{job.job_id}.tif"
    if not source.is_file():
        raise CollectError(f"data asset {source} does not exist")
    with _asset_errors(source):
        placed = place_cog(source, cog, shapely.from_wkb(job.tile.footprint), found.bands)
    asset = {
        "href": f"./{cog.name}",
        "type": pystac.MediaType.COG,
        "title": found.title,
        "raster:bands": placed.bands,
        "file:size": placed.size,
        "file:checksum": placed.checksum,
        "roles": ["data"],
    }
    item_path = _save(_item(job, campaign, COG_EXTENSIONS, _projection(placed), {"data": asset}), folder)
    return Collected(str(item_path.relative_to(output)), cog=str(cog.relative_to(output)))


def _collect_values(job: Job, raw: Mapping[str, Any], folder: Path, output: Path, campaign: str) -> Collected:
    results = folder / f"{job.job_id}-results.json"
    _write_json(results, dict(raw))
    content = results.read_bytes()
    asset = {
        "href": f"./{results.name}",
        "type": pystac.MediaType.JSON,
        "title": "results of the process",
        "file:size": len(content),
        "file:checksum": "1220" + hashlib.sha256(content).hexdigest(),
        "roles": ["data"],
    }
    item_path = _save(_item(job, campaign, RESULTS_EXTENSIONS, {}, {"results": asset}), folder)
    return Collected(str(item_path.relative_to(output)), results=str(results.relative_to(output)))


def _projection(cog: CogAsset) -> dict[str, Any]:
    """The item's ``proj:*`` fields, in the order the projection extension's accessor sets them."""
    return {
        "proj:code": cog.crs,
        "proj:bbox": list(cog.bounds),
        "proj:shape": list(cog.shape),
        "proj:transform": list(cog.transform),
    }


def _item(
    job: Job, campaign: str, extensions: Sequence[str], projection: dict[str, Any], assets: dict[str, Any]
) -> dict[str, Any]:
    """The item's JSON, as ``pystac.Item.to_dict`` gives it, with links to the collection two folders up."""
    assert job.tile is not None
    footprint = shapely.from_wkb(job.tile.footprint)
    properties = {
        "start_datetime": job.window_start,
        "end_datetime": job.window_end,
        "ogc_upscaler:campaign": campaign,
        "ogc_upscaler:tile": job.tile_id,
        "ogc_upscaler:parameters": dict(job.params),
        "grid:code": _grid_code(job.tile_id),
        **projection,
        "datetime": datetime_to_str(datetime.fromisoformat(job.window_start.replace("Z", "+00:00"))),
    }
    collection = f"../../{COLLECTION_FILE}"
    return {
        "type": "Feature",
        "stac_version": pystac.get_stac_version(),
        "stac_extensions": list(extensions),
        "id": job.job_id,
        "geometry": shapely.geometry.mapping(footprint),
        "bbox": stac_bbox(footprint),
        "properties": properties,
        "links": [
            {"rel": rel, "href": collection, "type": pystac.MediaType.JSON} for rel in ("root", "parent", "collection")
        ],
        "assets": assets,
        "collection": campaign,
    }


def _save(body: dict[str, Any], folder: Path) -> Path:
    item_path = folder / f"{body['id']}.json"
    _write_json(item_path, body)
    return item_path


@contextmanager
def _catalog_errors(catalog: Path) -> Iterator[None]:
    """A package's output catalog that cannot be read, or is not STAC, fails the collection of its job."""
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CollectError(f"output catalog {catalog} is unreadable: {err}") from None


@contextmanager
def _asset_errors(source: Path) -> Iterator[None]:
    """A data asset that is no raster, or one the catalog cannot describe, fails the collection of its job."""
    try:
        yield
    except rasterio.errors.RasterioError as err:
        raise CollectError(f"data asset {source} is not a readable raster: {err}") from None
    except UpscalerError as err:  # our modules' own: a band type STAC cannot name, a raster without a CRS…
        raise CollectError(f"data asset {source}: {err.message}", hint=err.hint) from None


def write_collection(store: JobStore, output: Path, campaign: str, description: str = "") -> Path:
    """(Re)write ``output/collection.json`` linking every collected job's item; returns its path.

    One streamed pass over the store's collected jobs: at 10,000 items the footprints are decoded and
    bounded in one vectorized call each, and no item is read.
    """
    output.mkdir(parents=True, exist_ok=True)
    footprints: list[bytes] = []
    start, end = None, None
    codes, links = set(), []
    for job in store.jobs(State.COLLECTED, with_tile=True):
        assert job.tile is not None
        if job.outputs is None or job.outputs.item is None:
            continue
        footprints.append(job.tile.footprint)
        start = min(start or job.window_start, job.window_start)
        end = max(end or job.window_end, job.window_end)
        codes.add(f"EPSG:{job.tile.epsg}")
        links.append({"rel": "item", "href": "./" + job.outputs.item, "type": pystac.MediaType.GEOJSON})
    bbox = stac_bbox(shapely.from_wkb(np.asarray(footprints, dtype=object))) if links else [-180.0, -90.0, 180.0, 90.0]
    collection = pystac.Collection(
        id=campaign,
        description=description or f"Results of the ogc-upscaler campaign {campaign}",
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[_time(start), _time(end)]])),
        license="other",
        summaries=pystac.Summaries({"proj:code": sorted(codes)}),
    )
    body = collection.to_dict(include_self_link=False)
    body["links"] = [
        {"rel": "root", "href": f"./{COLLECTION_FILE}", "type": pystac.MediaType.JSON},
        *links,
    ]
    body.setdefault("stac_extensions", [])
    path = output / COLLECTION_FILE
    _write_json(path, body, indent=1)  # one file, the one people open
    return path


def _grid_code(tile_id: str) -> str:
    """``PREFIX-REST`` as the grid extension asks (``^[A-Z0-9]+-[-_.A-Za-z0-9]+$``)."""
    head, _, rest = tile_id.partition("-")
    if head.isalnum() and head.upper() == head and rest:
        return tile_id
    return f"TILE-{tile_id}"


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _write_json(path: Path, body: Any, *, indent: int | None = None) -> None:
    """Write ``body`` to ``path`` at once (a reader sees the old file or the new one, never half of one).

    Compact by default: json's indenting encoder is pure Python, and took a tenth of collecting an item.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(body, indent=indent))
    os.replace(tmp, path)
