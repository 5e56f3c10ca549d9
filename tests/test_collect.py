"""Collection on real files: statistics, COG checks and conversion, the footprint mask, checksums, the
package's own statistics, the errors, and the collection rebuilt from the store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pystac.validation
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from ogc_upscaler.backends.base import Outputs
from ogc_upscaler.cog_layout import layout_errors
from ogc_upscaler.collect import CollectError, collect, write_collection
from ogc_upscaler.projection import WGS84, to_wgs84, transformer
from ogc_upscaler.raster_bands import nodata_pixels
from ogc_upscaler.store import Job, JobOutputs, JobSpec, JobStore, Move, TileRecord

EPSG, PIXEL, LEFT, TOP = 32632, 20.0, 690_000.0, 5_320_000.0
WINDOW = ("2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z")


def tile_bounds(size: int) -> tuple[float, float, float, float]:
    return LEFT, TOP - size * PIXEL, LEFT + size * PIXEL, TOP


def footprint(bounds: tuple[float, float, float, float]) -> shapely.Geometry:
    """The WGS84 footprint of native ``bounds``, made as the grids make theirs."""
    return to_wgs84(np.array([shapely.box(*bounds)]), EPSG, PIXEL)[0]


def job_on(tmp_path: Path, size: int, outline: shapely.Geometry | None = None, name: str = "T32-A") -> Job:
    """A job on a ``size`` px tile (footprint ``outline``, else the whole tile), read with its tile."""
    bounds = tile_bounds(size)
    outline = footprint(bounds) if outline is None else outline
    with JobStore.open(tmp_path / "jobs.sqlite") as store:
        store.put_tiles([TileRecord(name, EPSG, bounds, shapely.to_wkb(outline), 1.0)])
        store.insert([JobSpec(f"{name}_w", name, *WINDOW, "default", "{}", "{}", "h")])
        return store.get(f"{name}_w")


def package_output(
    folder: Path, data: np.ndarray, *, nodata: float | None, bands: list[dict[str, Any]] | None = None, **profile: Any
) -> Path:
    """What a package writes: a raster (a COG unless ``profile`` says otherwise) and a STAC catalog of it."""
    folder.mkdir(parents=True, exist_ok=True)
    raster = folder / "result.tif"
    count, height, width = data.shape
    options = {"driver": "COG", "compress": "DEFLATE", "blocksize": 256, **profile}
    with rasterio.open(raster, "w", width=width, height=height, count=count, dtype=data.dtype, crs=f"EPSG:{EPSG}",
                       transform=from_origin(LEFT, TOP, PIXEL, PIXEL), nodata=nodata, **options) as dst:  # fmt: skip
        dst.write(data)
    item = pystac.Item("result", None, None, pystac.utils.str_to_datetime(WINDOW[0]), {})
    asset = pystac.Asset(str(raster), media_type=pystac.MediaType.COG, roles=["data"], title="the result")
    if bands is not None:
        asset.extra_fields["raster:bands"] = bands
    item.add_asset("data", asset)
    catalog = pystac.Catalog("out", "outputs")
    catalog.add_item(item)
    catalog.normalize_and_save(str(folder), pystac.CatalogType.SELF_CONTAINED)
    return folder / "catalog.json"


def ndvi(size: int, seed: int = 0) -> np.ndarray:
    """A float32 band with a patch of nodata (-9999) and a few values next to it, which are data."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.5, 0.2, (1, size, size)).astype("float32")
    values[0, : size // 8, : size // 8] = -9999.0
    values[0, -1, :3] = [np.float32(-9999.0) * np.float32(1.01), -9998.0, 0.0]
    return values


def collected(tmp_path: Path, job: Job, catalog: Path) -> tuple[dict[str, Any], Path]:
    """Collect ``job``; its item and COG."""
    found = collect(job, Outputs(catalog, {}), tmp_path / "catalog", "test")
    return json.loads((tmp_path / "catalog" / found.item).read_text()), tmp_path / "catalog" / found.cog


def numpy_statistics(band: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    values = band[valid]
    return {
        "minimum": float(values.min()),
        "maximum": float(values.max()),
        "mean": float(values.mean()),
        "stddev": float(values.std()),
        "valid_percent": round(100.0 * values.size / band.size, 3),
    }


# -- statistics -------------------------------------------------------------------------------------


def test_statistics_equal_numpys_on_the_data(tmp_path) -> None:
    data = ndvi(300)
    item, cog = collected(tmp_path, job_on(tmp_path, 300), package_output(tmp_path / "out", data, nodata=-9999.0))
    band = item["assets"]["data"]["raster:bands"][0]
    assert band["statistics"] == numpy_statistics(data[0], data[0] != np.float32(-9999.0))
    assert band["nodata"] == -9999.0 and band["data_type"] == "float32" and band["spatial_resolution"] == PIXEL
    with rasterio.open(cog) as src:  # the COG holds the data as written
        np.testing.assert_array_equal(src.read(), data)


def test_statistics_of_each_band_of_an_integer_raster(tmp_path) -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(1, 4000, (2, 256, 256)).astype("uint16")
    data[1, :40] = 0
    item, _ = collected(tmp_path, job_on(tmp_path, 256), package_output(tmp_path / "out", data, nodata=0))
    bands = item["assets"]["data"]["raster:bands"]
    assert [b["statistics"] for b in bands] == [numpy_statistics(b, b != 0) for b in data]


def test_a_raster_without_nodata_counts_every_pixel(tmp_path) -> None:
    data = np.arange(64 * 64, dtype="int16").reshape(1, 64, 64)
    item, _ = collected(tmp_path, job_on(tmp_path, 64), package_output(tmp_path / "out", data, nodata=None))
    band = item["assets"]["data"]["raster:bands"][0]
    assert "nodata" not in band
    assert band["statistics"] == numpy_statistics(data[0], np.ones_like(data[0], dtype=bool))


@pytest.mark.parametrize(
    ("dtype", "nodata"),
    [("float32", -9999.0), ("float32", 1e-3), ("float32", float("nan")), ("float32", 0.0), ("float64", 2.5),
     ("float32", float("inf")), ("uint8", 255), ("int16", -32768), ("uint16", 0), ("int32", -1)],
)  # fmt: skip
def test_nodata_pixels_are_those_of_gdals_mask(tmp_path, dtype, nodata) -> None:
    """Values next to nodata count as nodata where GDAL's mask says so (its ARE_REAL_EQUAL), NaN only
    where nodata is NaN."""
    rng = np.random.default_rng(5)
    if np.dtype(dtype).kind == "f":
        kind = np.dtype(dtype).type
        target = kind(0 if np.isnan(nodata) else nodata)
        near = [target * (kind(1) + kind(k) * kind(np.finfo(np.float32).eps)) for k in range(-8, 9)]
        near += [np.nextafter(target, kind(np.inf)), np.nextafter(target, kind(-np.inf)), np.nan, np.inf, -np.inf]
        values = rng.normal(0, 10, 64 * 64).astype(dtype)
        values[: len(near)] = near
    else:
        info = np.iinfo(dtype)
        values = rng.integers(max(info.min, -100), min(info.max, 100), 64 * 64).astype(dtype)
        values[:2] = nodata
    path = tmp_path / "mask.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype=dtype, nodata=nodata,
                       crs=f"EPSG:{EPSG}", transform=from_origin(LEFT, TOP, PIXEL, PIXEL)) as dst:  # fmt: skip
        dst.write(values.reshape(1, 64, 64))
    with rasterio.open(path) as src:
        gdal = src.read_masks(1) == 0
        np.testing.assert_array_equal(nodata_pixels(src.read(1), src.nodatavals[0]), gdal)
    assert gdal.any()


def test_the_packages_own_statistics_are_taken_when_they_hold_up(tmp_path) -> None:
    data = ndvi(256)
    truth = numpy_statistics(data[0], data[0] != np.float32(-9999.0))
    given = {**truth, "mean": truth["mean"] + 0.01}  # the package's figure, not ours: it is the one published
    bands = [{"nodata": -9999.0, "data_type": "float32", "statistics": given}]
    catalog = package_output(tmp_path / "out", data, nodata=-9999.0, bands=bands)
    item, _ = collected(tmp_path, job_on(tmp_path, 256), catalog)
    assert item["assets"]["data"]["raster:bands"][0]["statistics"] == given


def over_nodata(band: dict[str, Any]) -> None:
    band["statistics"]["minimum"] = -9999.0  # taken over the nodata pixels too


def another_type(band: dict[str, Any]) -> None:
    band["data_type"] = "uint16"


def another_nodata(band: dict[str, Any]) -> None:
    band["nodata"] = 0


def no_share(band: dict[str, Any]) -> None:
    del band["statistics"]["valid_percent"]


def mean_out_of_range(band: dict[str, Any]) -> None:
    band["statistics"]["mean"] = band["statistics"]["maximum"] + 1


def spread_over_half_the_range(band: dict[str, Any]) -> None:
    figures = band["statistics"]
    figures["stddev"] = figures["maximum"] - figures["minimum"]


@pytest.mark.parametrize(
    "change", [over_nodata, another_type, another_nodata, no_share, mean_out_of_range, spread_over_half_the_range]
)
def test_the_packages_statistics_are_computed_again_where_they_do_not_hold_up(tmp_path, change) -> None:
    data = ndvi(256)
    truth = numpy_statistics(data[0], data[0] != np.float32(-9999.0))
    band: dict[str, Any] = {"nodata": -9999.0, "data_type": "float32", "statistics": dict(truth)}
    change(band)
    catalog = package_output(tmp_path / "out", data, nodata=-9999.0, bands=[band])
    item, _ = collected(tmp_path, job_on(tmp_path, 256), catalog)
    assert item["assets"]["data"]["raster:bands"][0]["statistics"] == truth


def test_the_packages_statistics_are_computed_again_for_another_number_of_bands(tmp_path) -> None:
    data = ndvi(256)
    truth = numpy_statistics(data[0], data[0] != np.float32(-9999.0))
    band = {"nodata": -9999.0, "data_type": "float32", "statistics": dict(truth, mean=truth["mean"] + 0.01)}
    catalog = package_output(tmp_path / "out", data, nodata=-9999.0, bands=[band, band])
    item, _ = collected(tmp_path, job_on(tmp_path, 256), catalog)
    assert item["assets"]["data"]["raster:bands"][0]["statistics"] == truth


# -- COG layout and conversion ------------------------------------------------------------------------


def write_raster(path: Path, size: int, **profile: Any) -> Path:
    data = np.random.default_rng(1).integers(0, 200, (1, size, size)).astype("uint8")
    with rasterio.open(path, "w", width=size, height=size, count=1, dtype="uint8", crs=f"EPSG:{EPSG}",
                       transform=from_origin(LEFT, TOP, PIXEL, PIXEL), **profile) as dst:  # fmt: skip
        dst.write(data)
    return path


def add_overviews(path: Path, **env: Any) -> Path:
    with rasterio.Env(**env), rasterio.open(path, "r+") as dst:
        dst.build_overviews([2, 4])
    return path


LAYOUTS = {
    "COG": (lambda p: write_raster(p, 600, driver="COG", blocksize=256), True),
    "COG over 1024 px": (lambda p: write_raster(p, 1100, driver="COG", blocksize=256), True),
    "small striped GeoTIFF": (lambda p: write_raster(p, 300, driver="GTiff"), True),
    "tiled GeoTIFF without overviews": (lambda p: write_raster(p, 600, driver="GTiff", tiled=True), True),
    "striped GeoTIFF over 512 px": (lambda p: write_raster(p, 600, driver="GTiff"), False),
    "overviews after the data": (
        lambda p: add_overviews(write_raster(p, 1100, driver="GTiff", tiled=True, blockxsize=256, blockysize=256)),
        False,
    ),
    "external overviews": (
        lambda p: add_overviews(write_raster(p, 600, driver="GTiff", tiled=True), TIFF_USE_OVR=True),
        False,
    ),
    "PNG": (lambda p: write_raster(p.with_suffix(".png"), 64, driver="PNG"), False),
}


@pytest.mark.parametrize("case", LAYOUTS)
def test_the_layout_check_agrees_with_rio_cogeo(tmp_path, case) -> None:
    make, valid = LAYOUTS[case]
    path = make(tmp_path / "raster.tif")
    assert cog_validate(str(path), quiet=True)[0] is valid
    with rasterio.open(path) as src:
        errors = layout_errors(src)
    assert (not errors) is valid, errors


@pytest.mark.parametrize("case", ["striped GeoTIFF over 512 px", "overviews after the data"])
def test_a_file_that_is_no_cog_is_rewritten_as_one(tmp_path, case) -> None:
    (tmp_path / "out").mkdir()
    source = LAYOUTS[case][0](tmp_path / "out" / "result.tif")
    with rasterio.open(source) as src:
        data = src.read()
    item = pystac.Item("result", None, None, pystac.utils.str_to_datetime(WINDOW[0]), {})
    item.add_asset("data", pystac.Asset(str(source), media_type=pystac.MediaType.GEOTIFF, roles=["data"]))
    catalog = pystac.Catalog("out", "outputs")
    catalog.add_item(item)
    catalog.normalize_and_save(str(tmp_path / "out"), pystac.CatalogType.SELF_CONTAINED)
    size = data.shape[-1]
    found, cog = collected(tmp_path, job_on(tmp_path, size), tmp_path / "out" / "catalog.json")
    assert cog_validate(str(cog), quiet=True)[0]
    with rasterio.open(cog) as src:
        np.testing.assert_array_equal(src.read(), data)
    assert found["properties"]["proj:shape"] == [size, size]
    assert found["assets"]["data"]["raster:bands"][0]["statistics"] == numpy_statistics(data[0], data[0] >= 0)
    assert not list(cog.parent.glob("*.tmp*")), "no temporary file is left behind"


# -- the footprint mask, checksums, idempotence ----------------------------------------------------------


def test_a_footprint_that_covers_the_raster_leaves_the_file_untouched(tmp_path) -> None:
    catalog = package_output(tmp_path / "out", ndvi(300), nodata=-9999.0)
    item, cog = collected(tmp_path, job_on(tmp_path, 300), catalog)
    assert cog.read_bytes() == (tmp_path / "out" / "result.tif").read_bytes()
    assert item["assets"]["data"]["file:checksum"] == "1220" + hashlib.sha256(cog.read_bytes()).hexdigest()


def test_a_footprint_that_does_not_cover_the_raster_masks_the_pixels_outside(tmp_path) -> None:
    """A tile clipped at a seam: the pixels whose centre lies outside its footprint become nodata."""
    size = 64
    xmin, ymin, _, ymax = tile_bounds(size)
    west = footprint((xmin, ymin, xmin + 40 * PIXEL, ymax))
    data = ndvi(size)
    catalog = package_output(tmp_path / "out", data, nodata=-9999.0)
    item, cog = collected(tmp_path, job_on(tmp_path, size, west), catalog)
    centres = (np.arange(size) + 0.5) * PIXEL
    x, y = np.meshgrid(xmin + centres, ymax - centres)
    lon, lat = transformer(EPSG, WGS84).transform(x, y)
    inside = shapely.contains_xy(west, lon, lat)
    with rasterio.open(cog) as src:
        masked = src.read(1)
    assert inside[:, :39].all() and not inside[:, 41:].any()
    np.testing.assert_array_equal(masked[inside], data[0][inside])
    assert (masked[~inside] == -9999.0).all()
    assert cog_validate(str(cog), quiet=True)[0]
    asset = item["assets"]["data"]
    assert asset["raster:bands"][0]["statistics"] == numpy_statistics(masked, masked != np.float32(-9999.0))
    assert asset["file:checksum"] == "1220" + hashlib.sha256(cog.read_bytes()).hexdigest()
    assert asset["file:size"] == cog.stat().st_size
    assert (tmp_path / "out" / "result.tif").read_bytes() != cog.read_bytes(), "the package's file is left as is"
    with rasterio.open(tmp_path / "out" / "result.tif") as src:
        np.testing.assert_array_equal(src.read(), data)


def test_a_raster_without_nodata_is_masked_with_a_nodata_of_its_type(tmp_path) -> None:
    size = 64
    xmin, ymin, _, ymax = tile_bounds(size)
    data = np.full((1, size, size), 7, dtype="uint8")
    catalog = package_output(tmp_path / "out", data, nodata=None)
    item, cog = collected(tmp_path, job_on(tmp_path, size, footprint((xmin, ymin, xmin + 32 * PIXEL, ymax))), catalog)
    with rasterio.open(cog) as src:
        assert src.nodata == 255
        assert set(np.unique(src.read())) == {7, 255}
    assert item["assets"]["data"]["raster:bands"][0]["statistics"]["valid_percent"] == 50.0


@pytest.mark.parametrize("clipped", [False, True])
def test_collecting_a_job_again_gives_the_same_item_and_cog(tmp_path, clipped) -> None:
    size = 64
    xmin, ymin, _, ymax = tile_bounds(size)
    outline = footprint((xmin, ymin, xmin + 32 * PIXEL, ymax)) if clipped else None
    job = job_on(tmp_path, size, outline)
    catalog = package_output(tmp_path / "out", ndvi(size), nodata=-9999.0)
    first, cog = collected(tmp_path, job, catalog)
    before = cog.read_bytes()
    again, cog_again = collected(tmp_path, job, catalog)
    assert again == first and cog_again == cog and cog.read_bytes() == before
    assert sorted(p.name for p in cog.parent.iterdir()) == [f"{job.job_id}.json", f"{job.job_id}.tif"]


def test_the_item_has_the_fields_of_a_collected_tile(tmp_path, offline_stac_validator) -> None:
    job = job_on(tmp_path, 256)
    item, cog = collected(tmp_path, job, package_output(tmp_path / "out", ndvi(256), nodata=-9999.0))
    props = item["properties"]
    assert props["proj:code"] == f"EPSG:{EPSG}" and props["proj:shape"] == [256, 256]
    assert props["proj:bbox"] == list(tile_bounds(256))
    assert props["proj:transform"] == [PIXEL, 0.0, LEFT, 0.0, -PIXEL, TOP]
    assert props["grid:code"] == "T32-A" and props["datetime"] == WINDOW[0]
    assert props["start_datetime"] == WINDOW[0] and props["end_datetime"] == WINDOW[1]
    outline = shapely.from_wkb(job.tile.footprint)
    assert shapely.equals_exact(shapely.geometry.shape(item["geometry"]), outline, tolerance=0)
    assert item["bbox"] == list(outline.bounds) and item["collection"] == "test"
    asset = item["assets"]["data"]
    assert asset["href"] == f"./{cog.name}" and asset["title"] == "the result" and asset["roles"] == ["data"]
    assert asset["type"] == pystac.MediaType.COG and asset["file:size"] == cog.stat().st_size
    assert pystac.validation.validate_dict(item)


def test_plain_values_are_kept_as_a_results_asset_with_their_checksum(tmp_path) -> None:
    job = job_on(tmp_path, 64)
    found = collect(job, Outputs(None, {"answer": 42}), tmp_path / "catalog", "test")
    results = tmp_path / "catalog" / found.results
    assert json.loads(results.read_text()) == {"answer": 42}
    asset = json.loads((tmp_path / "catalog" / found.item).read_text())["assets"]["results"]
    assert asset["file:checksum"] == "1220" + hashlib.sha256(results.read_bytes()).hexdigest()
    assert asset["file:size"] == results.stat().st_size


# -- errors -------------------------------------------------------------------------------------------


def broken(tmp_path: Path, how: str) -> Outputs:
    folder = tmp_path / "out"
    if how == "no outputs":
        return Outputs(None, {})
    if how == "unreadable catalog":
        folder.mkdir()
        (folder / "catalog.json").write_text("{not json")
        return Outputs(folder / "catalog.json", {})
    catalog = package_output(folder, ndvi(64), nodata=-9999.0)
    if how == "no data asset":
        item = next(folder.rglob("result.json"))
        body = json.loads(item.read_text())
        body["assets"]["data"].update(roles=["metadata"], type="application/json")
        item.write_text(json.dumps(body))
    elif how == "missing asset":
        (folder / "result.tif").unlink()
    elif how == "not a raster":
        (folder / "result.tif").write_text("not a raster")
    elif how == "complex":
        (folder / "result.tif").unlink()
        package_output(folder, np.ones((1, 64, 64), dtype="complex64"), nodata=None)
    return Outputs(catalog, {})


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("no outputs", "succeeded without outputs"),
        ("unreadable catalog", "is unreadable"),
        ("no data asset", "holds no item with a data asset"),
        ("missing asset", "does not exist"),
        ("not a raster", "is not a readable raster"),
        ("complex", "complex64"),
    ],
)
def test_outputs_that_cannot_be_collected_fail_with_what_to_do(tmp_path, how, says) -> None:
    job = job_on(tmp_path, 64)
    with pytest.raises(CollectError) as caught:
        collect(job, broken(tmp_path, how), tmp_path / "catalog", "test")
    assert says in caught.value.message and caught.value.hint and not caught.value.retryable
    assert not list((tmp_path / "catalog").rglob("*.tif*")), "nothing half-written is left"


# -- the collection --------------------------------------------------------------------------------------


def test_the_collection_is_rebuilt_from_the_store(tmp_path) -> None:
    path = tmp_path / "jobs.sqlite"
    names = ["T32-A", "T32-B"]
    for i, name in enumerate(names):
        xmin, ymin, xmax, ymax = tile_bounds(64)
        job = job_on(tmp_path, 64, footprint((xmin + i * 5000, ymin, xmax + i * 5000, ymax)), name=name)
        found = collect(job, Outputs(package_output(tmp_path / name, ndvi(64), nodata=-9999.0), {}),
                        tmp_path / "catalog", "test")  # fmt: skip
        with JobStore.open(path) as store:
            for move in (Move.SUBMIT, Move.START, Move.SUCCEED):
                store.move(job.job_id, move, backend="test", remote_id=job.job_id)
            store.move(job.job_id, Move.COLLECT, outputs=JobOutputs(item=found.item, cog=found.cog))
    with JobStore.read(path) as store:
        written = write_collection(store, tmp_path / "catalog", "test")
        text = written.read_text()
        assert write_collection(store, tmp_path / "catalog", "test").read_text() == text
    collection = pystac.Collection.from_file(str(written))
    items = list(collection.get_items())
    assert sorted(i.id for i in items) == [f"{n}_w" for n in names]
    west, south, east, north = collection.extent.spatial.bboxes[0]
    for item in items:
        a, b, c, d = item.bbox
        assert west <= a and south <= b and c <= east and d <= north
    assert collection.summaries.get_list("proj:code") == [f"EPSG:{EPSG}"]
