"""Collecting results into one self-contained STAC Collection of Cloud-Optimized GeoTIFFs.

Each succeeded job's output catalog (the package's ``catalog.json``) gives a
data asset; it is checked with rio-cogeo (and rewritten as a COG if it is not
one), copied into ``OUTPUT/items/<job id>/``, and described by one STAC Item with
``proj:*`` (read from the file), ``raster:bands`` statistics, ``file:size`` and
``file:checksum``, and the tile's ``grid:code``. The Collection is written from
the store's collected jobs, so it can be rebuilt at any time; links are relative.
Collecting the same job twice gives the same item.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
import rasterio.features
import shapely
from pystac.extensions.file import FileExtension
from pystac.extensions.grid import GridExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension, Statistics
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.profiles import cog_profiles

from ogc_upscaler.backends.base import Outputs
from ogc_upscaler.errors import JobError
from ogc_upscaler.projection import WGS84, densify_degrees, project, stac_bbox
from ogc_upscaler.store import Job, JobStore, State

COLLECTION_FILE = "collection.json"


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
    folder = output / "items" / job.job_id
    folder.mkdir(parents=True, exist_ok=True)
    if outputs.catalog is None:
        if not outputs.raw:
            raise CollectError(
                f"job {job.job_id} succeeded without outputs",
                hint="the process must return results, or a Directory with a STAC catalog.json",
            )
        return _collect_values(job, outputs.raw, folder, output, campaign)
    source_item, asset = _data_asset(outputs.catalog)
    cog = folder / f"{job.job_id}.tif"
    _place_cog(Path(asset.get_absolute_href() or asset.href), cog)
    if job.tile is not None:
        _mask_outside(cog, shapely.from_wkb(job.tile.footprint))
    item = _item(job, campaign)
    _add_cog(item, source_item, asset, cog)
    item_path = _save(item, folder, job.job_id)
    return Collected(str(item_path.relative_to(output)), cog=str(cog.relative_to(output)))


def _collect_values(job: Job, raw: Mapping[str, Any], folder: Path, output: Path, campaign: str) -> Collected:
    results = folder / f"{job.job_id}-results.json"
    _write_json(results, dict(raw))
    item = _item(job, campaign)
    item.add_asset(
        "results",
        pystac.Asset(
            href=str(results), media_type=pystac.MediaType.JSON, roles=["data"], title="results of the process"
        ),
    )
    file = FileExtension.ext(item.assets["results"], add_if_missing=True)
    file.size = results.stat().st_size
    file.checksum = "1220" + _sha256(results)
    item_path = _save(item, folder, job.job_id)
    return Collected(str(item_path.relative_to(output)), results=str(results.relative_to(output)))


def _save(item: pystac.Item, folder: Path, job_id: str) -> Path:
    item_path = folder / f"{job_id}.json"
    item.set_self_href(str(item_path))
    item.make_asset_hrefs_relative()
    _write_json(item_path, _with_parent_links(item.to_dict(include_self_link=False)))
    return item_path


def write_collection(store: JobStore, output: Path, campaign: str, description: str = "") -> Path:
    """(Re)write ``output/collection.json`` linking every collected job's item; returns its path."""
    output.mkdir(parents=True, exist_ok=True)
    footprints = []
    start, end = None, None
    codes, links = set(), []
    for job in store.jobs(State.COLLECTED, with_tile=True):
        assert job.tile is not None
        if job.outputs is None or job.outputs.item is None:
            continue
        footprints.append(shapely.from_wkb(job.tile.footprint))
        start = min(start or job.window_start, job.window_start)
        end = max(end or job.window_end, job.window_end)
        codes.add(f"EPSG:{job.tile.epsg}")
        links.append({"rel": "item", "href": "./" + job.outputs.item, "type": pystac.MediaType.GEOJSON})
    bbox = stac_bbox(np.asarray(footprints, dtype=object)) if links else [-180.0, -90.0, 180.0, 90.0]
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
    _write_json(path, body)
    return path


def _data_asset(catalog: Path) -> tuple[pystac.Item, pystac.Asset]:
    try:
        root = pystac.Catalog.from_file(str(catalog))
        items = list(root.get_items(recursive=True))
    except (OSError, pystac.STACError, ValueError, KeyError) as err:
        raise CollectError(f"output catalog {catalog} is unreadable: {err}") from None
    for item in items:
        for asset in item.assets.values():
            if "data" in (asset.roles or []) or (asset.media_type or "").startswith("image/tiff"):
                return item, asset
    raise CollectError(
        f"output catalog {catalog} holds no item with a data asset",
        hint="the package must write an item whose COG asset has the role 'data'",
    )


def _place_cog(source: Path, target: Path) -> None:
    """Copy the asset to ``target`` as a valid COG (rewriting it as one if it is not)."""
    if not source.is_file():
        raise CollectError(f"data asset {source} does not exist")
    try:
        valid, _, _ = cog_validate(str(source), quiet=True)
    except (rasterio.errors.RasterioIOError, ValueError) as err:
        raise CollectError(f"data asset {source} is not a readable raster: {err}") from None
    tmp = target.with_name(target.name + ".tmp")
    if valid:
        shutil.copyfile(source, tmp)
    else:
        cog_translate(str(source), str(tmp), cog_profiles.get("deflate"), quiet=True, in_memory=False)
    os.replace(tmp, target)


def _mask_outside(cog: Path, footprint: shapely.Geometry) -> None:
    """Make the pixels of ``cog`` outside its tile's ``footprint`` (WGS84) nodata, and write it again.

    A tile clipped at a UTM zone seam is processed on its whole pixel window, which runs past the
    seam into the neighbour zone's tiles: without this, the place would be published twice, and the
    item's geometry would not say where its data is. A pixel is kept when its centre is inside. A COG
    whose window lies inside its footprint (most tiles) is left as it is, without being read.
    """
    with rasterio.open(cog) as src:
        window = shapely.box(*src.bounds)
        native = project(densify_degrees(footprint), WGS84, src.crs.to_epsg())
        if shapely.buffer(native, src.res[0] / 2).covers(window):  # within half a pixel: nothing to drop
            return
        if not shapely.intersects(native, window):  # not this tile's raster at all: kept as it is, not blanked
            return
        inside = rasterio.features.geometry_mask(
            [native], out_shape=(src.height, src.width), transform=src.transform, invert=True
        )
        profile, data = src.profile, src.read()
        nodata = src.nodata if src.nodata is not None else _nodata_for(data.dtype)
    data[:, ~inside] = nodata
    plain = cog.with_name(cog.name + ".masked.tif")
    profile.update(driver="GTiff", nodata=nodata)
    for key in ("blockxsize", "blockysize", "tiled", "interleave"):
        profile.pop(key, None)
    with rasterio.open(plain, "w", **profile) as out:
        out.write(data)
    tmp = cog.with_name(cog.name + ".tmp")
    cog_translate(str(plain), str(tmp), cog_profiles.get("deflate"), quiet=True, in_memory=False)
    plain.unlink()
    os.replace(tmp, cog)


def _nodata_for(dtype: np.dtype) -> float:
    """A nodata value for a raster that declares none: NaN for floats (and complex), the type's far end for
    integers."""
    if np.issubdtype(dtype, np.inexact):  # float and complex
        return float("nan")
    info = np.iinfo(dtype)
    return float(info.max if info.min == 0 else info.min)


def _item(job: Job, campaign: str) -> pystac.Item:
    if job.tile is None:
        raise ValueError(f"job {job.job_id} was read without its tile: read it with JobStore.get")
    footprint = shapely.from_wkb(job.tile.footprint)
    properties = {
        "start_datetime": job.window_start,
        "end_datetime": job.window_end,
        "ogc_upscaler:campaign": campaign,
        "ogc_upscaler:tile": job.tile_id,
        "ogc_upscaler:parameters": dict(job.params),
    }
    item = pystac.Item(
        id=job.job_id,
        geometry=shapely.geometry.mapping(footprint),
        bbox=stac_bbox(footprint),
        datetime=_time(job.window_start),
        properties=properties,
        collection=campaign,
    )
    GridExtension.ext(item, add_if_missing=True).code = _grid_code(job.tile_id)
    return item


def _add_cog(item: pystac.Item, source: pystac.Item, asset: pystac.Asset, cog: Path) -> None:
    with rasterio.open(cog) as src:
        proj = ProjectionExtension.ext(item, add_if_missing=True)
        proj.code = src.crs.to_string() if src.crs else None
        proj.bbox = list(src.bounds)
        proj.shape = [src.height, src.width]
        proj.transform = list(src.transform)[:6]
        bands = [_band(src, i) for i in range(1, src.count + 1)]
    data = pystac.Asset(href=str(cog), media_type=pystac.MediaType.COG, roles=["data"], title=asset.title or source.id)
    item.add_asset("data", data)
    RasterExtension.ext(data, add_if_missing=True).bands = bands
    file = FileExtension.ext(data, add_if_missing=True)
    file.size = cog.stat().st_size
    file.checksum = "1220" + _sha256(cog)


def _band(src: rasterio.DatasetReader, index: int) -> RasterBand:
    values = src.read(index, masked=True)
    valid = values.compressed()
    share = round(100.0 * valid.size / max(1, values.size), 3)
    extremes = {}
    if valid.size:
        extremes = {
            "minimum": float(valid.min()),
            "maximum": float(valid.max()),
            "mean": float(valid.mean()),
            "stddev": float(valid.std()),
        }
    statistics = Statistics.create(valid_percent=share, **extremes)
    nodata = src.nodatavals[index - 1]
    return RasterBand.create(
        nodata=None if nodata is None or np.isnan(nodata) else nodata,
        data_type=DataType(src.dtypes[index - 1]),
        spatial_resolution=float(src.res[0]),
        statistics=statistics,
    )


def _grid_code(tile_id: str) -> str:
    """``PREFIX-REST`` as the grid extension asks (``^[A-Z0-9]+-[-_.A-Za-z0-9]+$``)."""
    head, _, rest = tile_id.partition("-")
    if head.isalnum() and head.upper() == head and rest:
        return tile_id
    return f"TILE-{tile_id}"


def _with_parent_links(body: dict[str, Any]) -> dict[str, Any]:
    collection = f"../../{COLLECTION_FILE}"
    kept = [link for link in body.get("links", []) if link.get("rel") not in {"root", "parent", "collection", "self"}]
    body["links"] = kept
    body["links"] += [
        {"rel": rel, "href": collection, "type": pystac.MediaType.JSON} for rel in ("root", "parent", "collection")
    ]
    return body


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _write_json(path: Path, body: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(body, indent=1))
    tmp.replace(path)
