"""Collection's own cost per item: CPU and wall time, raster opens and memory, with plain pystac measured
in the same run, and the catalog rebuilt from the store at 10,000 items.

Run by hand: ``python bench/bench_collect.py`` (about 2 minutes; ``--items N`` collects N items per kind
of tile, 1,000 by default; ``--catalog-peer`` also times pystac saving a 10,000-item catalog the way the
notes say, 20-40 s more).

Each job's output is what a package writes: a COG of the demo's landscape (:mod:`ogc_upscaler.demo`'s
land cover and reflectances) with a cloud of nodata, as ``app_packages/ndvi`` writes its NDVI (float32,
DEFLATE with the floating-point predictor, 256 px blocks, average overviews), or as red and NIR uint16
bands; one kind adds sensor noise, which DEFLATE compresses worst. Each comes with its STAC catalog, with
and without ``raster:bands`` statistics of the package's own. Every COG lies inside its tile's footprint,
as all but the seam tiles' do. CPU times on a shared machine move with its load, printed at the start.

The peer writes the same items with pystac and no raster I/O (``pystac.Item`` with the projection, grid,
raster and file extensions, ``save_object``): it runs on the same jobs, chunk by chunk, interleaved with
the collector so both see the same machine. Goals (issue 16), on a 2-core machine: <= 2 ms of CPU per
item for a COG that is already valid, >= 2x faster than the peer, one raster open per item, memory flat;
``write_collection`` < 1 s at 10,000 items.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
import shapely
from pystac.extensions.file import FileExtension
from pystac.extensions.grid import GridExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension, Statistics
from rasterio.transform import from_origin

from ogc_upscaler.backends.base import Outputs
from ogc_upscaler.collect import collect, write_collection
from ogc_upscaler.demo import SCALE, land_cover, reflectance
from ogc_upscaler.projection import WGS84, to_wgs84, transformer
from ogc_upscaler.store import Job, JobOutputs, JobSpec, JobStore, Move, TileRecord

EPSG, PIXEL, NODATA = 32632, 20.0, -9999.0
WINDOW = ("2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z")
CHUNK = 50
VARIANTS = 25
GOAL_MS, GOAL_RATIO, GOAL_CATALOG_S = 2.0, 2.0, 1.0
CATALOG_ITEMS = 10_000


@dataclass(frozen=True)
class Kind:
    """A kind of tile the packages write."""

    name: str
    size: int
    bands: int
    dtype: str
    noise: float = 0.0


KINDS = (
    Kind("256 px NDVI float32", 256, 1, "float32"),
    Kind("512 px NDVI float32", 512, 1, "float32"),
    Kind("512 px red+NIR uint16", 512, 2, "uint16"),
    Kind("512 px NDVI float32 with 2 % sensor noise (worst case for DEFLATE)", 512, 1, "float32", 0.02),
)


# -- counting raster opens ---------------------------------------------------------------------------

OPENS = [0]
_open = rasterio.open


def _counting_open(*args: Any, **kwargs: Any) -> Any:
    OPENS[0] += 1
    return _open(*args, **kwargs)


rasterio.open = _counting_open  # every module calls rasterio.open through the module, rio-cogeo too


# -- what the packages write -------------------------------------------------------------------------


def pixels(kind: Kind, left: float, top: float, seed: int) -> np.ndarray:
    """The demo's landscape on the tile's grid (:mod:`ogc_upscaler.demo`), with a cloud of nodata: NDVI,
    or red and NIR digital numbers; with sensor-like noise for the ``noisy`` kind."""
    side = kind.size * PIXEL  # longitudes and latitudes bilinear between the corners': metres off, not classes
    xs, ys = [left, left + side, left, left + side], [top, top, top - side, top - side]
    corners = transformer(EPSG, WGS84).transform(xs, ys)
    u = (np.arange(kind.size) + 0.5) / kind.size
    lon, lat = (np.outer(1 - u, (1 - u) * c[0] + u * c[1]) + np.outer(u, (1 - u) * c[2] + u * c[3]) for c in corners)
    red, nir = reflectance(land_cover(lon, lat), 5)
    rng = np.random.default_rng(seed)
    if kind.noise:
        red, nir = red * rng.normal(1, kind.noise, red.shape), nir * rng.normal(1, kind.noise, nir.shape)
    rows, cols = np.mgrid[0 : kind.size, 0 : kind.size] / kind.size
    cloud = (cols - rng.uniform(0.2, 0.8)) ** 2 + (rows - rng.uniform(0.2, 0.8)) ** 2 < 0.01
    if kind.dtype == "uint16":
        bands = [np.round(band / SCALE).clip(1, 65535) for band in (red, nir)][: kind.bands]
        return np.where(cloud, 0, np.stack(bands)).astype("uint16")
    red, nir = np.round(red / SCALE) * SCALE, np.round(nir / SCALE) * SCALE
    return np.where(cloud, NODATA, (nir - red) / (nir + red)).astype("float32")[np.newaxis]


def write_cog(path: Path, kind: Kind, data: np.ndarray, left: float, top: float) -> None:
    """Write ``data`` as ``app_packages/ndvi`` writes its COG."""
    profile = {
        "driver": "COG", "width": kind.size, "height": kind.size, "count": kind.bands, "dtype": kind.dtype,
        "crs": f"EPSG:{EPSG}", "transform": from_origin(left, top, PIXEL, PIXEL),
        "nodata": 0 if kind.dtype == "uint16" else NODATA, "compress": "DEFLATE",
        "predictor": 2 if kind.dtype == "uint16" else 3, "blocksize": 256, "overview_resampling": "average",
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def declared_bands(data: np.ndarray, nodata: float, dtype: str) -> list[dict[str, Any]]:
    """The ``raster:bands`` a package computes for its own output."""
    found = []
    for band in data:
        valid = band[band != nodata]
        found.append({
            "nodata": nodata, "data_type": dtype, "spatial_resolution": PIXEL,
            "statistics": {"minimum": float(valid.min()), "maximum": float(valid.max()), "mean": float(valid.mean()),
                           "stddev": float(valid.std()), "valid_percent": round(100.0 * valid.size / band.size, 3)},
        })  # fmt: skip
    return found


def write_output(folder: Path, job_id: str, cog: Path, bands: list[dict[str, Any]] | None, name: str) -> Path:
    """A package's output catalog (``name``.json) linking one item whose data asset is ``cog``."""
    item_dir = folder / f"{name}-item"
    item_dir.mkdir(parents=True, exist_ok=True)
    asset: dict[str, Any] = {"href": f"../{cog.name}", "type": pystac.MediaType.COG, "roles": ["data"],
                             "title": "NDVI (maximum-value composite)"}  # fmt: skip
    if bands is not None:
        asset["raster:bands"] = bands
    item = {"type": "Feature", "stac_version": "1.1.0", "id": f"{job_id}-out", "geometry": None, "properties":
            {"datetime": WINDOW[0]}, "links": [], "assets": {"data": asset}}  # fmt: skip
    (item_dir / "item.json").write_text(json.dumps(item))
    link = {"rel": "item", "href": f"./{item_dir.name}/item.json", "type": "application/geo+json"}
    catalog = {"type": "Catalog", "id": job_id, "stac_version": "1.1.0", "description": "output", "links": [link]}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(catalog))
    return path


@dataclass(frozen=True)
class Prepared:
    """A job and its package's outputs, with and without statistics of the package's own."""

    job: Job
    plain: Path
    with_statistics: Path
    bands: list[dict[str, Any]]
    size: int


def prepare(root: Path, kind: Kind, n: int) -> list[Prepared]:
    """``n`` jobs on as many tiles, each with its package's output written."""
    root.mkdir(parents=True)
    side = kind.size * PIXEL
    cols = int(np.ceil(np.sqrt(n)))
    origins = [(600_000.0 + (i % cols) * side, 5_400_000.0 - (i // cols) * side) for i in range(n)]
    boxes = np.array([shapely.box(x, y - side, x + side, y) for x, y in origins])
    footprints = to_wgs84(boxes, EPSG, PIXEL)
    tiles = [TileRecord(f"B{kind.size}-{i:05d}", EPSG, tuple(map(float, shapely.bounds(b))), shapely.to_wkb(f), 1.0)
             for i, (b, f) in enumerate(zip(boxes, footprints, strict=True))]  # fmt: skip
    with JobStore.open(root / "jobs.sqlite") as store:
        store.put_tiles(tiles)
        store.insert(JobSpec(f"{t.tile_id}_w", t.tile_id, *WINDOW, "default", "{}", "{}", "h") for t in tiles)
        jobs = list(store.jobs(with_tile=True))
    found = []
    # the landscape of the first VARIANTS tiles, repeated: each COG has its own tile's grid all the same
    landscapes = [pixels(kind, left, top, i) for i, (left, top) in enumerate(origins[:VARIANTS])]
    described = [declared_bands(data, 0 if kind.dtype == "uint16" else NODATA, kind.dtype) for data in landscapes]
    for i, (job, (left, top)) in enumerate(zip(jobs, origins, strict=True)):
        folder = root / "runs" / job.job_id
        folder.mkdir(parents=True)
        data, bands = landscapes[i % VARIANTS], described[i % VARIANTS]
        cog = folder / f"{job.tile_id}_ndvi.tif"
        write_cog(cog, kind, data, left, top)
        plain = write_output(folder, job.job_id, cog, None, "catalog")
        stats = write_output(folder, job.job_id, cog, bands, "catalog-stats")
        found.append(Prepared(job, plain, stats, bands, cog.stat().st_size))
    return found


# -- the peer: pystac writing the same items, without raster I/O ----------------------------------------


def pystac_item(p: Prepared, folder: Path, campaign: str) -> None:
    """The item the collector writes for ``p``, made and saved with pystac (figures known beforehand)."""
    assert p.job.tile is not None
    footprint = shapely.from_wkb(p.job.tile.footprint)
    job = p.job
    item = pystac.Item(
        id=job.job_id, geometry=shapely.geometry.mapping(footprint), bbox=[float(v) for v in shapely.bounds(footprint)],
        datetime=datetime.fromisoformat(job.window_start.replace("Z", "+00:00")), collection=campaign,
        properties={"start_datetime": job.window_start, "end_datetime": job.window_end,
                    "ogc_upscaler:campaign": campaign, "ogc_upscaler:tile": job.tile_id,
                    "ogc_upscaler:parameters": dict(job.params)},
    )  # fmt: skip
    GridExtension.ext(item, add_if_missing=True).code = job.tile_id
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    xmin, _, xmax, ymax = job.tile.bounds
    size = round((xmax - xmin) / PIXEL)
    proj.code, proj.bbox, proj.shape = f"EPSG:{job.tile.epsg}", list(job.tile.bounds), [size, size]
    proj.transform = [PIXEL, 0.0, xmin, 0.0, -PIXEL, ymax]
    target = folder / job.job_id
    asset = pystac.Asset(href=str(target / f"{job.job_id}.tif"), media_type=pystac.MediaType.COG, roles=["data"],
                         title="NDVI (maximum-value composite)")  # fmt: skip
    item.add_asset("data", asset)
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(nodata=b["nodata"], data_type=DataType(b["data_type"]),
                          spatial_resolution=b["spatial_resolution"], statistics=Statistics.create(**b["statistics"]))
        for b in p.bands
    ]  # fmt: skip
    file = FileExtension.ext(asset, add_if_missing=True)
    file.size, file.checksum = p.size, "1220" + "0" * 64
    item.set_self_href(str(target / f"{job.job_id}.json"))
    item.make_asset_hrefs_relative()
    item.save_object(include_self_link=False)


# -- measuring ---------------------------------------------------------------------------------------


@dataclass
class Clock:
    """CPU and wall seconds summed over chunks."""

    cpu: float = 0.0
    wall: float = 0.0

    def run(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` and add its times."""
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        self.cpu += time.process_time() - cpu
        self.wall += time.perf_counter() - wall


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6


def chunks(items: list[Prepared]) -> Iterator[list[Prepared]]:
    """``items`` in chunks of :data:`CHUNK`."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def bench_kind(root: Path, kind: Kind, n: int) -> None:
    """Collect ``n`` items of ``kind`` with and without the package's statistics, beside the peer."""
    made = time.perf_counter()
    prepared = prepare(root, kind, n)
    print(f"{kind.name}: {n:,} jobs, COGs of {statistics.median(p.size for p in prepared) / 1e3:.0f} kB "
          f"(written in {time.perf_counter() - made:.1f} s)")  # fmt: skip
    for label, declared in (("statistics computed", False), ("the package's statistics", True)):
        ours, peer, opens, samples = measure(root, prepared, declared)
        ms, peer_ms = ours.cpu / n * 1000, peer.cpu / n * 1000
        print(
            f"  {label}: {ms:.3f} ms of CPU per item (goal {GOAL_MS:g}: {ms / GOAL_MS:.2f} of budget), "
            f"{ours.wall / n * 1000:.3f} ms wall ({ours.wall:.2f} s for {n:,}); {opens / n:.2f} raster opens "
            f"per item (goal 1)\n    pystac peer: {peer_ms:.3f} ms of CPU per item, {peer.wall / n * 1000:.3f} ms "
            f"wall; peer / ours = {peer_ms / ms:.2f}x (goal >= {GOAL_RATIO:g}x); "
            f"RSS while collecting {', '.join(f'{m:.0f}' for m in samples)} MB"
        )


def measure(root: Path, prepared: list[Prepared], declared: bool) -> tuple[Clock, Clock, int, list[float]]:
    """Our collection and the peer, chunk by chunk in turn; the raster opens of ours; RSS samples."""
    ours, peer, samples, opens = Clock(), Clock(), [], 0
    out, peer_out = root / f"catalog-{declared}", root / f"pystac-{declared}"

    def collected(chunk: list[Prepared]) -> None:
        for p in chunk:
            collect(p.job, Outputs(p.with_statistics if declared else p.plain, {}), out, "bench")

    def written(chunk: list[Prepared]) -> None:
        for p in chunk:
            pystac_item(p, peer_out, "bench")

    every = max(1, len(prepared) // CHUNK // 4)
    for i, chunk in enumerate(chunks(prepared)):
        before = OPENS[0]
        ours.run(lambda chunk=chunk: collected(chunk))
        opens += OPENS[0] - before
        peer.run(lambda chunk=chunk: written(chunk))
        if i % every == 0:
            samples.append(rss_mb())
    return ours, peer, opens, samples


def bench_catalog(root: Path, n: int = CATALOG_ITEMS) -> None:
    """``write_collection`` over a store of ``n`` collected jobs."""
    path = root / "catalog.sqlite"
    made = time.perf_counter()
    side, cols = 5120.0, int(np.ceil(np.sqrt(n)))
    left, bottom = 400_000 + np.arange(n) % cols * side, 5_000_000 + np.arange(n) // cols * side
    boxes = shapely.box(left, bottom, left + side, bottom + side)
    footprints = to_wgs84(boxes, EPSG, PIXEL)
    with JobStore.open(path) as store:
        store.put_tiles(TileRecord(f"C-{i:05d}", EPSG, tuple(map(float, shapely.bounds(b))), shapely.to_wkb(f), 1.0)
                        for i, (b, f) in enumerate(zip(boxes, footprints, strict=True)))  # fmt: skip
        store.insert(JobSpec(f"C-{i:05d}_w", f"C-{i:05d}", *WINDOW, "default", "{}", "{}", "h") for i in range(n))
        for i in range(n):
            job_id = f"C-{i:05d}_w"
            for move in (Move.SUBMIT, Move.START, Move.SUCCEED):
                store.move(job_id, move, backend="bench", remote_id=job_id)
            outputs = JobOutputs(item=f"items/{job_id}/{job_id}.json", cog=f"items/{job_id}/{job_id}.tif")
            store.move(job_id, Move.COLLECT, outputs=outputs)
    print(f"catalog: {n:,} collected jobs in the store (made in {time.perf_counter() - made:.1f} s)")
    times, cpus = [], []
    with JobStore.read(path) as store:
        for _ in range(5):
            cpu, wall = time.process_time(), time.perf_counter()
            written = write_collection(store, root / "catalog", "bench")
            times.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    links = len(json.loads(written.read_text())["links"]) - 1
    wall, cpu = statistics.median(times), statistics.median(cpus)
    print(
        f"  write_collection: {wall:.3f} s wall, {cpu:.3f} s CPU for {links:,} items "
        f"(goal < {GOAL_CATALOG_S:g} s: {wall / GOAL_CATALOG_S:.2f} of budget)"
    )


def bench_catalog_peer(root: Path, n: int = CATALOG_ITEMS) -> None:
    """pystac saving ``n`` items and their collection as the notes say (normalize, relative, save)."""
    footprint = shapely.segmentize(shapely.box(11.0, 47.0, 11.07, 47.05), 0.01)
    geometry = shapely.geometry.mapping(footprint)
    cpu, wall = time.process_time(), time.perf_counter()
    collection = pystac.Collection("bench", "peer", pystac.Extent(pystac.SpatialExtent([[-180, -90, 180, 90]]),
                                   pystac.TemporalExtent([[None, None]])))  # fmt: skip
    for i in range(n):
        item = pystac.Item(f"P-{i:05d}", geometry, list(footprint.bounds), datetime(2024, 5, 1, tzinfo=UTC), {})
        item.add_asset("data", pystac.Asset(str(root / f"P-{i:05d}.tif"), media_type=pystac.MediaType.COG))
        collection.add_item(item)
    collection.normalize_hrefs(str(root / "pystac-catalog"))
    collection.make_all_asset_hrefs_relative()
    collection.save(pystac.CatalogType.SELF_CONTAINED)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  pystac catalog save of {n:,} items (build, normalize_hrefs, save): {cpu / n * 1000:.3f} ms of CPU "
          f"per item, {wall:.1f} s wall")  # fmt: skip


def main() -> None:
    """Print figures and ratios against the goals."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000, help="items collected per kind of tile")
    parser.add_argument("--catalog-peer", action="store_true", help="also time pystac saving 10,000 items")
    args = parser.parse_args()
    print(f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for kind in KINDS:
            bench_kind(root / f"kind{KINDS.index(kind)}", kind, args.items)
        bench_catalog(root)
        if args.catalog_peer:
            bench_catalog_peer(root)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"peak RSS of the whole run: {peak:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
